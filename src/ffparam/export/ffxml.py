"""An OpenMM ForceField XML (ffxml) for one molecule: one residue template, one atom type
per atom, every term an explicit per-type entry.

``openmm.app.ForceField(path).createSystem(pdb.topology, nonbondedMethod=NoCutoff,
constraints=None)`` on the exported PDB rebuilds the System. Details that make this exact:

* Types are ``<residue>-<atom name>`` (``MOL-C1``), so each entry matches exactly one
  term. Template atoms and bonds are written in the molecule's order (bonds sorted), with
  which OpenMM's template matcher maps the molecule's atoms onto themselves.
* Charges sit on the template atoms (``<UseAttributeFromResidue name="charge"/>``);
  ``coulomb14scale``/``lj14scale`` on ``NonbondedForce`` make OpenMM's 1-4 exceptions
  from the bond graph (1-2, 1-3 excluded), which is ffparam's pair list.
* Propers: one ``<Proper>`` per torsion with all its periodic terms.
* Impropers: OpenMM applies one ``<Improper>`` per centre and neighbour triple, with the
  atom order given by the force's ``ordering``: ``smirnoff`` adds the three SMIRNOFF
  permutations (centre first) with the written k each, so k/3 is written; ``charmm``
  without wildcards keeps (centre, a, b, c) as typed; ``amber`` without wildcards gives
  (a, b, centre, c). Any other improper layout raises :class:`ConventionError`.

Units in the file: nm, kJ/mol, radians, e, amu.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from ffparam.chem.molecule import Molecule
from ffparam.errors import ConventionError
from ffparam.export.terms import (
    FlatTerms,
    bonded_chain,
    improper_centre,
    require_standard_forms,
)
from ffparam.export.topology import atom_names, check_residue_name
from ffparam.units import KCAL_MOL_A2_TO_KJ_MOL_NM2, KJ_PER_KCAL, NM_PER_ANGSTROM

TorsionTerm = tuple[int, float, float]
"""(periodicity, phase rad, k kcal/mol) of one periodic term."""


def _num(value: float) -> str:
    return repr(float(value))


def ffxml_text(molecule: Molecule, terms: FlatTerms, residue_name: str = "MOL",
               source: str = "") -> str:
    """The ffxml text for ``molecule`` with ``terms`` (see the module docstring)."""
    require_standard_forms(terms, "OpenMM ffxml")
    residue_name = check_residue_name(residue_name)
    names = atom_names(molecule)
    types = [f"{residue_name}-{name}" for name in names]
    root = ET.Element("ForceField")
    info = ET.SubElement(root, "Info")
    ET.SubElement(info, "Source").text = (f"ffparam export of {molecule.name}"
                                          + (f" ({source})" if source else ""))
    ET.SubElement(info, "Note").text = ("One residue template with one atom type per atom; "
                                        "units nm, kJ/mol, rad, e")
    atom_types = ET.SubElement(root, "AtomTypes")
    for t, symbol, mass in zip(types, molecule.symbols, molecule.masses):
        ET.SubElement(atom_types, "Type", name=t, attrib={"class": t}, element=symbol,
                      mass=_num(mass))
    residues = ET.SubElement(root, "Residues")
    residue = ET.SubElement(residues, "Residue", name=residue_name)
    for name, t, q in zip(names, types, terms.charges):
        ET.SubElement(residue, "Atom", name=name, type=t, charge=_num(q))
    for i, j in sorted(tuple(b) for b in molecule.bonds.tolist()):
        ET.SubElement(residue, "Bond", atomName1=names[i], atomName2=names[j])
    _bonds(root, terms, types)
    _angles(root, terms, types)
    _torsions(root, terms, types, {tuple(b) for b in molecule.bonds.tolist()}, molecule)
    _nonbonded(root, terms, types)
    ET.indent(root, space=" ")
    return ET.tostring(root, encoding="unicode") + "\n"


def _bonds(root: ET.Element, terms: FlatTerms, types: list[str]) -> None:
    force = ET.SubElement(root, "HarmonicBondForce")
    seen: set[tuple[int, int]] = set()
    for (i, j), k, r0 in zip(terms.bond_atoms.tolist(), terms.bond_k, terms.bond_length):
        key = (min(i, j), max(i, j))
        if key in seen:
            raise ConventionError(f"OpenMM ffxml holds one bond term per atom pair; atoms "
                                  f"{i}-{j} have two")
        seen.add(key)
        ET.SubElement(force, "Bond", type1=types[i], type2=types[j],
                      length=_num(r0 * NM_PER_ANGSTROM),
                      k=_num(k * KCAL_MOL_A2_TO_KJ_MOL_NM2))


def _angles(root: ET.Element, terms: FlatTerms, types: list[str]) -> None:
    force = ET.SubElement(root, "HarmonicAngleForce")
    seen: set[tuple[int, int, int]] = set()
    for (i, j, m), k, theta in zip(terms.angle_atoms.tolist(), terms.angle_k,
                                   terms.angle_theta):
        key = (min(i, m), j, max(i, m))
        if key in seen:
            raise ConventionError(f"OpenMM ffxml holds one angle term per atom triple; atoms "
                                  f"{i}-{j}-{m} have two")
        seen.add(key)
        ET.SubElement(force, "Angle", type1=types[i], type2=types[j], type3=types[m],
                      angle=_num(theta), k=_num(k * KJ_PER_KCAL))


def _torsions(root: ET.Element, terms: FlatTerms, types: list[str],
              bonded: set[tuple[int, int]], molecule: Molecule) -> None:
    propers: dict[tuple[int, ...], list[TorsionTerm]] = defaultdict(list)
    impropers: dict[tuple[int, frozenset], list[tuple[tuple[int, ...], TorsionTerm]]] = \
        defaultdict(list)
    for quad, n, phase, k in zip(map(tuple, terms.torsion_atoms.tolist()),
                                 terms.torsion_periodicity.tolist(), terms.torsion_phase,
                                 terms.torsion_k):
        term = (int(n), float(phase), float(k))
        if bonded_chain(quad, bonded):
            propers[min(quad, quad[::-1])].append(term)
            continue
        pos = improper_centre(quad, bonded)
        if pos is None:
            raise ConventionError(f"torsion on atoms {_atoms(quad, molecule)} is neither a "
                                  "bonded chain nor an improper around a centre atom; "
                                  "OpenMM ffxml cannot type it")
        centre = quad[pos]
        impropers[(centre, frozenset(quad) - {centre})].append((quad, term))
    if propers:
        force = ET.SubElement(root, "PeriodicTorsionForce")
        for quad, plist in propers.items():
            ET.SubElement(force, "Proper", _torsion_attrib(quad, plist, types))
    by_ordering: dict[str, list[dict[str, str]]] = defaultdict(list)
    for (centre, _), rows in impropers.items():
        ordering, quad, plist = _improper_entry(centre, rows, molecule)
        by_ordering[ordering].append(_torsion_attrib(quad, plist, types))
    for ordering in ("smirnoff", "charmm", "amber"):
        if by_ordering[ordering]:
            force = ET.SubElement(root, "PeriodicTorsionForce", ordering=ordering)
            for attrib in by_ordering[ordering]:
                ET.SubElement(force, "Improper", attrib)


def _improper_entry(centre: int, rows: list[tuple[tuple[int, ...], TorsionTerm]],
                    molecule: Molecule) -> tuple[str, tuple[int, ...], list[TorsionTerm]]:
    """(ordering, type order (centre first), terms) of one improper centre+triple."""
    def centre_first(q: tuple[int, ...]) -> tuple[int, ...] | None:
        return q if q[0] == centre else (q[::-1] if q[3] == centre else None)

    quads = {q for q, _ in rows}
    if len(quads) == 1:
        (quad,) = quads
        plist = [term for _, term in rows]
        first = centre_first(quad)
        if first is not None:
            return "charmm", first, plist
        third = quad if quad[2] == centre else quad[::-1]
        return "amber", (centre, third[0], third[1], third[3]), plist
    firsts = [centre_first(q) for q, _ in rows]
    if None not in firsts:
        c, a, b, d = firsts[0]
        trefoil = [(c, a, b, d), (c, b, d, a), (c, d, a, b)]
        by_term: dict[TorsionTerm, list[tuple[int, ...]]] = defaultdict(list)
        for q, term in zip(firsts, (t for _, t in rows)):
            by_term[term].append(q)
        if all(sorted(qs) == sorted(trefoil) for qs in by_term.values()):
            return "smirnoff", (c, a, b, d), list(by_term)
    raise ConventionError(f"impropers around atom {centre} ({molecule.symbols[centre]}) on "
                          f"atom orders {sorted(quads)[:3]} are neither one torsion nor the "
                          "three SMIRNOFF permutations with equal parameters; OpenMM ffxml "
                          "cannot express them")


def _torsion_attrib(quad: tuple[int, ...], plist: list[TorsionTerm],
                    types: list[str]) -> dict[str, str]:
    attrib = {f"type{p + 1}": types[a] for p, a in enumerate(quad)}
    for m, (n, phase, k) in enumerate(plist, 1):
        attrib[f"periodicity{m}"] = str(n)
        attrib[f"phase{m}"] = _num(phase)
        attrib[f"k{m}"] = _num(k * KJ_PER_KCAL)
    return attrib


def _nonbonded(root: ET.Element, terms: FlatTerms, types: list[str]) -> None:
    force = ET.SubElement(root, "NonbondedForce", coulomb14scale=_num(terms.coulomb_14),
                          lj14scale=_num(terms.lj_14))
    ET.SubElement(force, "UseAttributeFromResidue", name="charge")
    for t, s, e in zip(types, terms.sigma, terms.epsilon):
        ET.SubElement(force, "Atom", type=t, sigma=_num(s * NM_PER_ANGSTROM),
                      epsilon=_num(e * KJ_PER_KCAL))


def _atoms(quad: tuple[int, ...], molecule: Molecule) -> str:
    return "-".join(f"{molecule.symbols[a]}{a}" for a in quad)


__all__ = ["ffxml_text"]
