"""GROMACS ``.top`` (self-contained, every parameter inline) and ``.gro`` files.

Why not ParmEd's writer: ParmEd 4.3 prints bond lengths with 5 decimals in nm
(``%.5f``), i.e. rounded to 1e-4 Angstrom; with Sage's bond lengths that moved the energy
of test conformers by 0.7-7.7e-3 kcal/mol, over the 1e-4 gate. This writer prints every
float with ``repr`` (exact round trip); the file is read back by OpenMM's
``GromacsTopFile`` and by ParmEd's reader (two independent parsers).

Conventions (GROMACS manual, "Topology file"): ``[ defaults ]`` nbfunc 1 (LJ),
comb-rule 2 (sigma arithmetic, epsilon geometric = Lorentz-Berthelot), gen-pairs yes
with fudgeLJ / fudgeQQ = ffparam's 1-4 scales, nrexcl 3 (pairs within 3 bonds excluded
from the normal nonbonded list), and the 1-4 pairs listed once each in ``[ pairs ]``
(funct 1, parameters generated), so a pair reached by two torsion paths (rings) is not
counted twice. Bonds funct 1 (E = kb/2 (r - b0)^2), angles funct 1 (E = k/2 (theta -
theta0)^2), proper torsions funct 9 and impropers funct 4 (E = k (1 + cos(n phi -
phase))), one line per periodic term; a second term with the same atoms and periodicity
(an improper that is also a bonded chain in a 3-ring, a bespoke term on top of a base
one) is written as funct 4, the same function, because readers merge funct 9 lines per
atom quadruple and reject repeated periodicities. Units nm, kJ/mol, degrees.
"""

from __future__ import annotations

import math

import numpy as np

from ffparam.chem.molecule import Molecule
from ffparam.export.terms import (
    FlatTerms,
    atom_type_names,
    bonded_chain,
    require_standard_forms,
)
from ffparam.export.topology import atom_names, check_residue_name
from ffparam.units import KCAL_MOL_A2_TO_KJ_MOL_NM2, KJ_PER_KCAL, NM_PER_ANGSTROM

GRO_COORDINATE_TOLERANCE = 5.1e-3
"""Angstrom, per coordinate: .gro stores nm with 3 decimals (rounding error 5e-3 A)."""

def _num(value: float) -> str:
    return repr(float(value))


def top_text(molecule: Molecule, terms: FlatTerms, residue_name: str = "MOL",
             source: str = "") -> str:
    """The ``.top`` text of ``molecule`` with ``terms``."""
    require_standard_forms(terms, "GROMACS .top")
    residue_name = check_residue_name(residue_name)
    names = atom_names(molecule)
    types = atom_type_names(molecule, terms)
    numbers = molecule.atomic_numbers
    masses = molecule.masses
    out = [f"; GROMACS topology of {molecule.name} written by ffparam"
           + (f" ({source})" if source else ""),
           "; units: nm, kJ/mol, degrees, e, amu; every parameter inline", "",
           "[ defaults ]", "; nbfunc comb-rule gen-pairs fudgeLJ fudgeQQ",
           f"1 2 yes {_num(terms.lj_14)} {_num(terms.coulomb_14)}", "",
           "[ atomtypes ]", "; name at.num mass charge ptype sigma epsilon"]
    written: set[str] = set()
    for i, t in enumerate(types):
        if t not in written:
            written.add(t)
            out.append(f"{t} {numbers[i]} {_num(masses[i])} 0.0 A "
                       f"{_num(terms.sigma[i] * NM_PER_ANGSTROM)} "
                       f"{_num(terms.epsilon[i] * KJ_PER_KCAL)}")
    out += ["", "[ moleculetype ]", "; name nrexcl", f"{residue_name} 3", "",
            "[ atoms ]", "; nr type resnr residue atom cgnr charge mass"]
    for i, (t, name) in enumerate(zip(types, names), 1):
        out.append(f"{i} {t} 1 {residue_name} {name} {i} {_num(terms.charges[i - 1])} "
                   f"{_num(masses[i - 1])}")
    out += ["", "[ bonds ]", "; ai aj funct b0 kb"]
    for (i, j), k, r0 in zip(terms.bond_atoms.tolist(), terms.bond_k, terms.bond_length):
        out.append(f"{i + 1} {j + 1} 1 {_num(r0 * NM_PER_ANGSTROM)} "
                   f"{_num(k * KCAL_MOL_A2_TO_KJ_MOL_NM2)}")
    if len(terms.pairs_14):
        out += ["", "[ pairs ]", "; ai aj funct (parameters from gen-pairs)"]
        out += [f"{i + 1} {j + 1} 1" for i, j in terms.pairs_14.tolist()]
    out += ["", "[ angles ]", "; ai aj ak funct theta0 k"]
    for (i, j, m), k, theta in zip(terms.angle_atoms.tolist(), terms.angle_k,
                                   terms.angle_theta):
        out.append(f"{i + 1} {j + 1} {m + 1} 1 {_num(math.degrees(theta))} "
                   f"{_num(k * KJ_PER_KCAL)}")
    bonded = {tuple(b) for b in molecule.bonds.tolist()}
    out += ["", "[ dihedrals ]", "; ai aj ak al funct phase k n (9 proper, 4 improper or "
            "repeated periodicity)"]
    seen: set[tuple] = set()
    for quad, n, phase, k in zip(terms.torsion_atoms.tolist(),
                                 terms.torsion_periodicity.tolist(), terms.torsion_phase,
                                 terms.torsion_k):
        key = (min(tuple(quad), tuple(quad[::-1])), int(n))
        funct = 9 if bonded_chain(tuple(quad), bonded) and key not in seen else 4
        seen.add(key)
        out.append(f"{' '.join(str(a + 1) for a in quad)} {funct} "
                   f"{_num(math.degrees(phase))} {_num(k * KJ_PER_KCAL)} {int(n)}")
    out += ["", "[ system ]", molecule.name or residue_name, "", "[ molecules ]",
            f"{residue_name} 1", ""]
    return "\n".join(out)


def gro_text(molecule: Molecule, positions: np.ndarray, residue_name: str = "MOL") -> str:
    """``.gro`` text of ``positions`` (n_atoms, 3) Angstrom (nm, 3 decimals), with a
    rectangular box 2 nm larger than the molecule in each direction (gas phase: the box
    is only a placeholder)."""
    xyz = np.asarray(positions, dtype=float).reshape(molecule.n_atoms, 3) * NM_PER_ANGSTROM
    lines = [f"{molecule.name} written by ffparam", f"{molecule.n_atoms:5d}"]
    for i, name in enumerate(atom_names(molecule)):
        x, y, z = xyz[i]
        lines.append(f"{1:5d}{residue_name:<5.5s}{name:>5.5s}{(i + 1) % 100000:5d}"
                     f"{x:8.3f}{y:8.3f}{z:8.3f}")
    box = (np.ptp(xyz, axis=0) if len(xyz) else np.zeros(3)) + 2.0
    lines.append(f"{box[0]:10.5f}{box[1]:10.5f}{box[2]:10.5f}")
    return "\n".join(lines) + "\n"


__all__ = ["GRO_COORDINATE_TOLERANCE", "gro_text", "top_text"]
