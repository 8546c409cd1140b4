"""A ParmEd ``Structure`` (read from AMBER prmtop, GROMACS top, CHARMM psf + parameters)
as an :class:`~ffparam.assign.import_common.ImportDraft`.

ParmEd's conventions (its ``topologyobjects``) and what they become internally:

* bonds, angles, Urey-Bradley: ``k`` of E = K (x - x0)^2 -> k = 2 K; angles in degrees;
* dihedrals (AMBER/CHARMM/GROMACS funct 1, 4, 9): E = phi_k (1 + cos(per phi - phase))
  (``improper`` flag -> ``ImproperTorsions``), one parameter per atom quadruple holding
  every periodic term of it;
* CHARMM/GROMACS funct 2 harmonic impropers: E = psi_k (psi - psi_eq)^2 -> k = 2 psi_k
  (``HarmonicImpropers``);
* Ryckaert-Bellemans (GROMACS funct 3): exact periodic terms
  (:func:`~ffparam.assign.import_common.rb_to_periodic`);
* LJ per atom type from rmin/2 and epsilon; CHARMM 1-4 LJ (``rmin_14``/``epsilon_14``)
  and NBFIX (full rmin, epsilon; 1-4 columns) per type pair;
* 1-4 pairs: GROMACS ``[ pairs ]`` (``adjusts``, explicit or generated with fudgeLJ/QQ),
  else the ends of dihedrals without ``ignore_end`` with that dihedral's SCEE/SCNB.

Anything else a Structure can hold (CMAP, AMOEBA terms) is refused by the readers.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from ffparam.assign.import_common import (
    ImportDraft,
    Pair14,
    periodic_fields,
    rb_to_periodic,
    type_key,
)
from ffparam.errors import ConventionError

SIGMA_PER_RMIN = 2.0 ** (-1.0 / 6.0)


def _types(atoms) -> list[str]:
    return [str(a.type) for a in atoms]


def _harmonic_rows(items, length_attr: str, angle: bool) -> list:
    rows = []
    for term in items:
        atoms = [term.atom1, term.atom2] + ([term.atom3] if angle else [])
        if term.type is None:
            raise ConventionError(f"no parameters for the term on atoms "
                                  f"{[a.idx + 1 for a in atoms]} ({'-'.join(_types(atoms))})")
        x0 = getattr(term.type, length_attr)
        values = {"k": 2.0 * float(term.type.k),
                  ("angle" if angle else "length"): math.radians(x0) if angle else float(x0)}
        rows.append((tuple(a.idx for a in atoms), type_key(_types(atoms)), values, {}))
    return rows


def _dihedral_rows(struct) -> dict[str, list]:
    """Periodic dihedrals grouped per (atoms, improper): one parameter per quadruple."""
    grouped: dict[tuple, list] = defaultdict(list)
    for dih in struct.dihedrals:
        if dih.type is None:
            raise ConventionError("no parameters for the dihedral on atoms "
                                  f"{[a.idx + 1 for a in _dihedral_atoms(dih)]}")
        types = dih.type if hasattr(dih.type, "__iter__") else [dih.type]
        key = (tuple(a.idx for a in _dihedral_atoms(dih)), bool(dih.improper))
        grouped[key] += [(float(t.phi_k), math.radians(t.phase), int(t.per)) for t in types]
    out: dict[str, list] = {"ProperTorsions": [], "ImproperTorsions": []}
    for (atoms, improper), terms in grouped.items():
        values, fixed = periodic_fields(terms)
        names = [str(struct.atoms[i].type) for i in atoms]
        section = "ImproperTorsions" if improper else "ProperTorsions"
        out[section].append((atoms, type_key(names, symmetric=not improper), values, fixed))
    for rb in struct.rb_torsions:
        atoms = _dihedral_atoms(rb)
        t = rb.type
        values, fixed = periodic_fields(rb_to_periodic([t.c0, t.c1, t.c2, t.c3, t.c4, t.c5]))
        out["ProperTorsions"].append((tuple(a.idx for a in atoms),
                                      "rb:" + type_key(_types(atoms)), values, fixed))
    return out


def _dihedral_atoms(dih) -> list:
    return [dih.atom1, dih.atom2, dih.atom3, dih.atom4]


def _harmonic_impropers(struct) -> list:
    rows = []
    for imp in struct.impropers:
        atoms = _dihedral_atoms(imp)
        values = {"k": 2.0 * float(imp.type.psi_k), "angle": math.radians(imp.type.psi_eq)}
        rows.append((tuple(a.idx for a in atoms), type_key(_types(atoms), symmetric=False),
                     values, {}))
    return rows


def _lj_types(struct) -> dict[str, tuple[float, float]]:
    lj: dict[str, tuple[float, float]] = {}
    for atom in struct.atoms:
        value = (float(atom.sigma), float(abs(atom.epsilon)))
        if lj.setdefault(str(atom.type), value) != value:
            raise ConventionError(f"atoms of type {atom.type} carry different LJ parameters "
                                  "(per-atom LJ is not supported; give them their own types)")
    return lj


def _nbfix(struct) -> dict[tuple[str, str], tuple[float, float]]:
    out = {}
    for atom in struct.atoms:
        for other, (rmin, eps, _rmin14, _eps14) in (atom.atom_type.nbfix or {}).items():
            key = tuple(sorted((str(atom.type), str(other))))
            out[key] = (float(rmin) * SIGMA_PER_RMIN, float(eps))
    return out


def _pairs_14(struct, rule: str) -> list[Pair14]:
    """The file's 1-4 pairs (see the module doc); the first definition of a pair wins."""
    seen: dict[tuple[int, int], Pair14] = {}
    if struct.adjusts:
        for adj in struct.adjusts:
            pair = tuple(sorted((adj.atom1.idx, adj.atom2.idx)))
            if adj.type.chgscale == 0.0 and adj.type.epsilon == 0.0:
                continue  # ParmEd's zero pair for a 1-4 pair [ pairs ] leaves out
            seen.setdefault(pair, _adjust_pair(struct, adj, pair, rule))
        return list(seen.values())
    charmm_14 = any(a.sigma_14 != a.sigma or a.epsilon_14 != a.epsilon for a in struct.atoms)
    for dih in list(struct.dihedrals) + list(struct.rb_torsions):
        if dih.ignore_end:
            continue
        a, b = dih.atom1, dih.atom4
        pair = tuple(sorted((a.idx, b.idx)))
        if pair in seen:
            continue
        first = dih.type[0] if hasattr(dih.type, "__iter__") else dih.type
        scee, scnb = float(first.scee), float(first.scnb)
        fix = (a.atom_type.nbfix or {}).get(str(b.type))
        lj = None
        if fix is not None:
            lj = (float(fix[2]) * SIGMA_PER_RMIN, float(fix[3]) / scnb)
        elif charmm_14:
            sigma = 0.5 * (a.sigma_14 + b.sigma_14) if rule == "lorentz-berthelot" \
                else math.sqrt(a.sigma_14 * b.sigma_14)
            lj = (float(sigma), math.sqrt(abs(a.epsilon_14 * b.epsilon_14)) / scnb)
        seen[pair] = Pair14(pair, 1.0 / scee, 1.0 / scnb, lj)
    return list(seen.values())


def _combined(a, b, rule: str) -> tuple[float, float]:
    sigma = 0.5 * (a.sigma + b.sigma) if rule == "lorentz-berthelot" \
        else math.sqrt(a.sigma * b.sigma)
    return sigma, math.sqrt(abs(a.epsilon * b.epsilon))


def _adjust_pair(struct, adj, pair: tuple[int, int], rule: str) -> Pair14:
    """A GROMACS ``[ pairs ]`` entry: the combined per-type LJ times fudgeLJ when that is
    what it holds (gen-pairs; refitting the types' LJ then moves it as in GROMACS), else
    its own LJ (``[ pairtypes ]`` or parameters on the line) as an LJ14 override."""
    t = adj.type
    sigma, epsilon = float(t.sigma), float(abs(t.epsilon))
    defaults = getattr(struct, "defaults", None)
    fudge = float(getattr(defaults, "fudgeLJ", 1.0))
    comb_sigma, comb_eps = _combined(adj.atom1, adj.atom2, rule)
    if math.isclose(sigma, comb_sigma, rel_tol=1e-12, abs_tol=1e-14) and \
            math.isclose(epsilon, fudge * comb_eps, rel_tol=1e-12, abs_tol=1e-14):
        return Pair14(pair, float(t.chgscale), fudge, None)
    return Pair14(pair, float(t.chgscale), 1.0, (sigma, epsilon))


def draft_from_structure(struct, name: str, source: str) -> ImportDraft:
    """The :class:`ImportDraft` of a parametrized ParmEd ``Structure``."""
    unsupported = [(label, len(items)) for label, items in (
        ("CMAP torsion-torsion terms", struct.cmaps),
        ("AMOEBA trigonal angles", struct.trigonal_angles),
        ("AMOEBA out-of-plane bends", struct.out_of_plane_bends),
        ("AMOEBA pi-torsions", struct.pi_torsions),
        ("AMOEBA stretch-bends", struct.stretch_bends),
        ("AMOEBA torsion-torsions", struct.torsion_torsions)) if len(items)]
    if unsupported:
        label, count = unsupported[0]
        raise ConventionError(f"{source}: {count} {label}; ffparam has no functional form "
                              "for them")
    rule = "geometric" if struct.combining_rule == "geometric" else "lorentz-berthelot"
    terms = {"Bonds": _harmonic_rows(struct.bonds, "req", angle=False),
             "Angles": _harmonic_rows(struct.angles, "theteq", angle=True),
             "UreyBradley": _harmonic_rows(struct.urey_bradleys, "req", angle=False),
             "HarmonicImpropers": _harmonic_impropers(struct), **_dihedral_rows(struct)}
    positions = None
    if struct.coordinates is not None:
        positions = np.asarray(struct.coordinates, dtype=float)
    return ImportDraft(
        name=name,
        atomic_numbers=[int(a.atomic_number) for a in struct.atoms],
        masses=[float(a.mass) for a in struct.atoms],
        bonds=[tuple(sorted((b.atom1.idx, b.atom2.idx))) for b in struct.bonds],
        atom_types=_types(struct.atoms),
        charges=np.array([float(a.charge) for a in struct.atoms]),
        lj=_lj_types(struct), terms=terms, pairs_14=_pairs_14(struct, rule),
        combining_rule=rule, nbfix=_nbfix(struct), positions=positions, source=source)


__all__ = ["draft_from_structure"]
