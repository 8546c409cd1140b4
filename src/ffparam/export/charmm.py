"""CHARMM ``.psf`` (XPLOR format, atom type names) + ``.prm`` written by ffparam.

Why not ParmEd's writer: ``CharmmParameterSet.write`` prints force constants with 2
decimals and drops Urey-Bradley terms and NBFIX. This writer prints every float with
``repr`` and is read back by OpenMM's ``CharmmPsfFile`` + ``CharmmParameterSet``.

CHARMM conventions (internal k of E = k/2 (x - x0)^2 -> CHARMM K = k/2): bonds
``Kb (b - b0)^2``, angles ``Ktheta (theta - theta0)^2`` with the Urey-Bradley
``Kub (S - S0)^2`` of the 1-3 pair on the same ANGLES line, dihedrals
``Kchi (1 + cos(n chi - delta))`` (one line per term), harmonic impropers
``Kpsi (psi - psi0)^2``, LJ per type as ``-epsilon`` and ``Rmin/2`` with the 1-4 columns,
NBFIX (``-epsilon``, full ``Rmin``) per type pair for pairs beyond three bonds. Parameters
are keyed by atom type, so terms whose types agree must have the same values (else a
:class:`ConventionError`). CHARMM has no 1-4 scaling: 1-4 Coulomb must be unscaled, and
each 1-4 pair's LJ (combined or an ``LJ14`` override) must follow from per-type 1-4 values
(Lorentz-Berthelot), which are solved for from the pairs.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from ffparam.errors import ConventionError
from ffparam.export.gromacs import effective_lj, one_four_rows
from ffparam.export.terms import FlatTerms, atom_type_names, bonded_chain
from ffparam.export.topology import atom_names, check_residue_name
from ffparam.forms import FORMS
from ffparam.params.system import ParameterizedSystem
from ffparam.units import RMIN_PER_SIGMA

FMT = "CHARMM psf/prm"
_SAME = 1e-12
"""Relative agreement for two terms of the same types (their values are one parameter)."""


def _num(value: float) -> str:
    return repr(float(value))


def _put(table: dict, key: tuple, value, what: str) -> None:
    """``table[key] = value`` unless a different value is there already."""
    old = table.setdefault(key, value)
    if old is not value and not (np.shape(old) == np.shape(value) and np.allclose(
            np.asarray(old, float), np.asarray(value, float), rtol=_SAME, atol=1e-14)):
        raise ConventionError(f"cannot write {what} {'-'.join(key)} to {FMT} files: terms of "
                              f"these atom types have different parameters ({old} and "
                              f"{value}); CHARMM parameters are per atom type")


def _sym(types: tuple[str, ...]) -> tuple[str, ...]:
    return min(types, types[::-1])


def _group_values(system: ParameterizedSystem, section: str):
    """(atoms, {field: value}) per term of the section's groups (scale applied)."""
    p = system.parameters.vector()
    for g in system.terms:
        if g.name != section:
            continue
        form = FORMS.get(g.form)
        scaled = form.scaled({f: p[g.param_index[f]] for f in form.fields}, g.scale)
        for row, atoms in enumerate(g.atoms.tolist()):
            yield tuple(atoms), {f: float(np.asarray(scaled[f]).reshape(-1)[row])
                                 for f in form.fields}


def _check_forms(system: ParameterizedSystem) -> None:
    for g in system.terms:
        form = FORMS.get(g.form)
        if len(g) and g.name not in ("Bonds", "Angles", "ProperTorsions", "UreyBradley",
                                        "HarmonicImpropers"):
            raise ConventionError(f"cannot write {form.label} ({g.name}, {len(g)} terms) to "
                                  f"{FMT} files (written there: harmonic bonds, angles, "
                                  "Urey-Bradley, periodic propers, harmonic impropers)")
    if system.nonbonded.combining_rule != "lorentz-berthelot":
        raise ConventionError(f"cannot write the {system.nonbonded.combining_rule} combining "
                              f"rule to {FMT} files (CHARMM mixes Lorentz-Berthelot)")


def _bonded_tables(system: ParameterizedSystem, terms: FlatTerms, types: list[str]) -> dict:
    """Type-keyed bond, angle (+ Urey-Bradley), dihedral and improper parameters in
    CHARMM units (kcal/mol, Angstrom, degrees)."""
    t = types
    bonds: dict = {}
    for (i, j), k, r0 in zip(terms.bond_atoms.tolist(), terms.bond_k, terms.bond_length):
        _put(bonds, _sym((t[i], t[j])), (k / 2, r0), "the bond")
    ub = {tuple(sorted(a)): (v["k"] / 2, v["length"])
          for a, v in _group_values(system, "UreyBradley")}
    angles: dict = {}
    for (i, j, m), k, theta in zip(terms.angle_atoms.tolist(), terms.angle_k,
                                   terms.angle_theta):
        extra = ub.pop(tuple(sorted((i, m))), (0.0, 0.0))
        key = (t[i], t[j], t[m])
        _put(angles, _sym(key), (k / 2, math.degrees(theta), *extra), "the angle")
    if ub:
        raise ConventionError(f"cannot write a Urey-Bradley term on atoms {next(iter(ub))} "
                              f"without an angle to {FMT} files")
    impropers: dict = {}
    for atoms, v in _group_values(system, "HarmonicImpropers"):
        key = tuple(t[a] for a in atoms)
        _put(impropers, key, (v["k"] / 2, math.degrees(v["angle"])), "the improper")
    return {"bonds": bonds, "angles": angles, "impropers": impropers,
            "dihedrals": _dihedrals(system, terms, types)}


def _dihedrals(system: ParameterizedSystem, terms: FlatTerms, types: list[str]) -> dict:
    """Type quadruple -> sorted ((n, Kchi, delta deg), ...); every proper torsion of the
    bonded graph gets an entry (k = 0 where it has no term: CHARMM needs parameters for
    each dihedral of the psf, whose ends are its 1-4 pairs)."""
    bonded = {tuple(b) for b in system.molecule.bonds.tolist()}
    per_quad: dict[tuple, list] = defaultdict(list)
    for quad, n, phase, k in zip(terms.torsion_atoms.tolist(),
                                 terms.torsion_periodicity.tolist(), terms.torsion_phase,
                                 terms.torsion_k):
        if not bonded_chain(tuple(quad), bonded):
            raise ConventionError(f"cannot write the periodic improper on atoms {quad} to "
                                  f"{FMT} files (CHARMM impropers are harmonic)")
        quad = min(tuple(quad), tuple(quad[::-1]))
        per_quad[quad].append((int(n), float(k), math.degrees(phase)))
    for quad in system.topology.propers.tolist():
        per_quad.setdefault(min(tuple(quad), tuple(quad[::-1])), [(1, 0.0, 0.0)])
    table: dict = {}
    for quad, rows in per_quad.items():
        key = _sym(tuple(types[a] for a in quad))
        _put(table, key, tuple(sorted(rows)), "the dihedral")
    return table


def _nonbonded_tables(system: ParameterizedSystem, terms: FlatTerms, types: list[str]) -> dict:
    """Per type LJ (sigma A, epsilon kcal/mol) and 1-4 LJ, NBFIX per type pair."""
    nb = system.nonbonded
    rows14 = one_four_rows(system, FMT, overrides_ok=True)
    bad = [r for r in rows14 if nb.coulomb_scale[r] != 1.0]
    if bad:
        raise ConventionError(f"cannot write 1-4 Coulomb scale {nb.coulomb_scale[bad[0]]} "
                              f"to {FMT} files (CHARMM leaves 1-4 pairs unscaled)")
    lj: dict = {}
    for i, name in enumerate(types):
        _put(lj, (name,), (float(terms.sigma[i]), float(terms.epsilon[i])), "the LJ of type")
    sigma, epsilon = effective_lj(system)
    targets: dict = {}
    for r in rows14:
        a, b = (types[x] for x in nb.pairs[r])
        _put(targets, tuple(sorted((a, b))), (float(sigma[r]), float(epsilon[r])),
             "the 1-4 LJ of types")
    in14 = set(rows14)
    nbfix: dict = {}
    for r in np.asarray(nb.nbfix_rows, dtype=np.int64).tolist():
        if r not in in14:
            a, b = (types[x] for x in nb.pairs[r])
            _put(nbfix, tuple(sorted((a, b))), (float(sigma[r]), float(epsilon[r])),
                 "the NBFIX of types")
    return {"lj": lj, "lj14": solve_lj14(targets, lj), "nbfix": nbfix}


def solve_lj14(targets: dict[tuple[str, str], tuple[float, float]],
               lj: dict[tuple[str], tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Per-type 1-4 (sigma A, epsilon kcal/mol) whose Lorentz-Berthelot combinations are
    ``targets`` (type pair -> sigma, epsilon): same-type pairs fix a type; a pair with one
    known type fixes the other; a type left open is tried with its normal LJ, then with
    the value a triangle of pairs through it fixes. :class:`ConventionError` if the pairs
    admit no such values."""
    out = {a: value for (a, b), value in targets.items() if a == b}
    _propagate(targets, out)
    while True:
        open_types = [t for pair in targets for t in pair if t not in out]
        if not open_types:
            break
        for seed in _seeds(open_types[0], targets, lj):
            trial = {**out, open_types[0]: seed}
            _propagate(targets, trial)
            if not _mismatch(targets, trial):
                break
        out = trial
    bad = _mismatch(targets, out)
    if bad:
        raise ConventionError(f"cannot write the 1-4 LJ of types {'-'.join(bad)} to {FMT} "
                              "files: the 1-4 pairs admit no per-type CHARMM 1-4 values")
    return out


def _propagate(targets: dict, out: dict) -> None:
    """Fix every type paired with a fixed one (sigma additive, epsilon multiplicative)."""
    progress = True
    while progress:
        progress = False
        for (a, b), (s, e) in targets.items():
            if (a in out) != (b in out):
                known, other = (a, b) if a in out else (b, a)
                ks, ke = out[known]
                out[other] = (2 * s - ks, e * e / ke if ke else 0.0)
                progress = True


def _seeds(a: str, targets: dict, lj: dict) -> list[tuple[float, float]]:
    seeds = [lj[(a,)]] if (a,) in lj else []
    pairs = {frozenset(k): v for k, v in targets.items()}
    partners = [b for k in targets for b in k if a in k and b != a]
    for b in partners:
        for c in partners:
            bc = pairs.get(frozenset((b, c)))
            if b < c and bc is not None:
                (sab, eab), (sac, eac) = pairs[frozenset((a, b))], pairs[frozenset((a, c))]
                seeds.append((sab + sac - bc[0], eab * eac / bc[1] if bc[1] else 0.0))
    first = next(v for k, v in targets.items() if a in k)
    return seeds or [first]


def _mismatch(targets: dict, out: dict) -> tuple[str, str] | None:
    """The first pair whose fixed types do not combine to its target (or negative)."""
    for (a, b), (s, e) in targets.items():
        if a in out and b in out:
            got = (0.5 * (out[a][0] + out[b][0]), math.sqrt(max(out[a][1] * out[b][1], 0.0)))
            if not np.allclose(got, (s, e), rtol=1e-10, atol=1e-12) or \
                    min(out[a] + out[b]) < 0:
                return (a, b)
    return None


def charmm_texts(system: ParameterizedSystem, terms: FlatTerms, residue_name: str = "MOL"
                 ) -> tuple[str, str]:
    """(psf text, prm text) of ``system`` at its current parameter values."""
    _check_forms(system)
    residue_name = check_residue_name(residue_name)
    molecule = system.molecule
    types = [n.upper() for n in atom_type_names(molecule, terms, max_length=8)]
    if len(set(types)) != len({n.lower() for n in types}):
        raise ConventionError(f"atom type names differ only in case: {FMT} files are not")
    masses: dict = {}
    for name, mass in zip(types, molecule.masses):
        _put(masses, (name,), (float(mass),), "the mass of type")
    tables = {**_bonded_tables(system, terms, types),
              **_nonbonded_tables(system, terms, types), "masses": masses}
    psf = psf_text(system, types, residue_name)
    return psf, prm_text(tables, molecule.name)


def psf_text(system: ParameterizedSystem, types: list[str], residue_name: str) -> str:
    """XPLOR psf: atoms (type names, charges and masses at full precision), bonds,
    angles, proper dihedrals (the bonded graph's), harmonic impropers."""
    molecule = system.molecule
    charges = system.parameters.vector()[system.nonbonded.charge_index]
    out = ["PSF EXT XPLOR", "", f"{1:10d} !NTITLE", f"* {molecule.name} written by ffparam",
           "", f"{molecule.n_atoms:10d} !NATOM"]
    for i, (name, t) in enumerate(zip(atom_names(molecule), types), 1):
        out.append(f"{i:10d} MOL      1        {residue_name:<8s} {name:<8s} {t:<8s} "
                   f"{_num(charges[i - 1])} {_num(molecule.masses[i - 1])} 0")
    angles = [a for g in system.terms if g.name == "Angles" for a in g.atoms.tolist()]
    impropers = [a for g in system.terms if g.name == "HarmonicImpropers"
                 for a in g.atoms.tolist()]
    for title, rows, per_line in (("NBOND: bonds", molecule.bonds.tolist(), 4),
                                  ("NTHETA: angles", angles, 3),
                                  ("NPHI: dihedrals", system.topology.propers.tolist(), 2),
                                  ("NIMPHI: impropers", impropers, 2)):
        out += ["", f"{len(rows):10d} !{title}"]
        flat = [a + 1 for row in rows for a in row]
        width = per_line * len(rows[0]) if rows else 1
        out += ["".join(f"{a:10d}" for a in flat[k:k + width])
                for k in range(0, len(flat), width)]
    out += ["", f"{0:10d} !NDON: donors", "", f"{0:10d} !NACC: acceptors", "",
            f"{0:10d} !NNB", ""]
    zeros = [0] * molecule.n_atoms
    out += ["".join(f"{a:10d}" for a in zeros[k:k + 8]) for k in range(0, len(zeros), 8)]
    out += ["", f"{1:10d}{0:10d} !NGRP NST2", f"{0:10d}{1:10d}{0:10d}", "",
            f"{0:10d}{0:10d} !NUMLP NUMLPH", "", f"{0:10d} !NCRTERM: cross-terms", ""]
    return "\n".join(out)


def prm_text(tables: dict, name: str) -> str:
    """The ``.prm`` text of the type-keyed ``tables`` (see :func:`charmm_texts`)."""
    out = [f"* CHARMM parameters of {name} written by ffparam", "* units: kcal/mol, "
           "Angstrom, degrees; E = K (x - x0)^2", "*", "", "ATOMS"]
    out += [f"MASS -1 {t} {_num(m)}" for (t,), (m,) in tables["masses"].items()]
    out += ["", "BONDS"]
    out += [f"{a} {b} {_num(k)} {_num(r0)}" for (a, b), (k, r0) in tables["bonds"].items()]
    out += ["", "ANGLES"]
    for key, (k, theta, kub, s0) in tables["angles"].items():
        line = f"{' '.join(key)} {_num(k)} {_num(theta)}"
        out.append(line + (f" {_num(kub)} {_num(s0)}" if kub or s0 else ""))
    out += ["", "DIHEDRALS"]
    out += [f"{' '.join(key)} {_num(k)} {n} {_num(delta)}"
            for key, rows in tables["dihedrals"].items() for n, k, delta in rows]
    out += ["", "IMPROPER"]
    out += [f"{' '.join(key)} {_num(k)} 0 {_num(psi)}"
            for key, (k, psi) in tables["impropers"].items()]
    out += ["", "NONBONDED nbxmod 5 atom cdiel fshift vatom vdistance vfswitch -",
            "cutnb 14.0 ctofnb 12.0 ctonnb 10.0 eps 1.0 e14fac 1.0 wmin 1.5"]
    half = RMIN_PER_SIGMA / 2
    for (t,), (sigma, eps) in tables["lj"].items():
        line = f"{t} 0.0 {_num(-eps)} {_num(sigma * half)}"
        if t in tables["lj14"]:
            s14, e14 = tables["lj14"][t]
            line += f" 0.0 {_num(-e14)} {_num(s14 * half)}"
        out.append(line)
    if tables["nbfix"]:
        out += ["", "NBFIX"]
        out += [f"{a} {b} {_num(-eps)} {_num(sigma * RMIN_PER_SIGMA)}"
                for (a, b), (sigma, eps) in tables["nbfix"].items()]
    out += ["", "END", ""]
    return "\n".join(out)


__all__ = ["charmm_texts", "prm_text", "psf_text", "solve_lj14"]
