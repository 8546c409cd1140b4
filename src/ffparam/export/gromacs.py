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

Imported OPLS-style systems (geometric combining, 1-4 LJ of their own from ``[ pairtypes ]``
kept as ``LJ14`` overrides, 1-4 pairs that the file leaves out) are written by the same
function with comb-rule 3 (or 2), gen-pairs no and every 1-4 pair's LJ explicit in
``[ pairs ]`` (funct 1, sigma nm, epsilon kJ/mol, already scaled, so fudgeLJ, written
as the system's 1-4 LJ setting, changes no energy; fudgeQQ is the one Coulomb 1-4
scale); see :func:`gromacs_nonbonded`. A 1-4 pair without Coulomb and LJ is not listed
(nrexcl 3 excludes it). Torsions imported from Ryckaert-Bellemans dihedrals (parameter
ids ``rb:...``, converted to periodic terms on import) are written back as funct 3
(:func:`rb_coefficients`), so a re-import gives the same parameters; once refitted to
phases other than 0/180 deg they are written as periodic terms. Urey-Bradley terms go on
their angle's line (angle funct 5: theta0, k, r13, kUB; E = k/2 (x - x0)^2 for both) and
harmonic impropers are dihedral funct 2 (E = k/2 (psi - psi0)^2), both as GROMACS defines
them; NBFIX overrides of pairs beyond three bonds are ``[ nonbond_params ]`` (comb-rule 2
only). Imported CHARMM systems can be written here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ffparam.chem.molecule import Molecule
from ffparam.errors import ConventionError
from ffparam.export.terms import (
    FlatTerms,
    atom_type_names,
    bonded_chain,
    require_standard_forms,
)
from ffparam.export.topology import atom_names, check_residue_name
from ffparam.forms import FORMS
from ffparam.params.system import ParameterizedSystem
from ffparam.units import KCAL_MOL_A2_TO_KJ_MOL_NM2, KJ_PER_KCAL, NM_PER_ANGSTROM

GRO_COORDINATE_TOLERANCE = 5.1e-3
"""Angstrom, per coordinate: .gro stores nm with 3 decimals (rounding error 5e-3 A)."""

COMB_RULES = {"lorentz-berthelot": 2, "geometric": 3}
"""ffparam combining rule -> GROMACS comb-rule (both take sigma/epsilon in the file)."""


@dataclass(frozen=True)
class GromacsNonbonded:
    """What ``[ defaults ]`` and ``[ pairs ]`` say.

    Attributes:
        comb_rule: GROMACS comb-rule (2 Lorentz-Berthelot, 3 geometric).
        gen_pairs: True: 1-4 LJ generated (combined LJ times ``fudge_lj``); False: explicit.
        fudge_lj, fudge_qq: the 1-4 LJ and Coulomb scales.
        pairs: (i, j, sigma A, epsilon kcal/mol) per listed 1-4 pair (0-based atoms);
            sigma/epsilon None when generated.
        nbfix: (type a, type b) -> (sigma A, epsilon kcal/mol) of ``[ nonbond_params ]``
            (every pair of those types beyond three bonds), type names of
            :func:`~ffparam.export.terms.atom_type_names`.
    """

    comb_rule: int
    gen_pairs: bool
    fudge_lj: float
    fudge_qq: float
    pairs: list[tuple[int, int, float | None, float | None]]
    nbfix: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)


def _num(value: float) -> str:
    return repr(float(value))


def gromacs_nonbonded(system: ParameterizedSystem, terms: FlatTerms) -> GromacsNonbonded:
    """The nonbonded part of ``system`` as GROMACS ``[ defaults ]`` / ``[ pairs ]``.

    Standard systems (Lorentz-Berthelot, one 1-4 scaling of the bonded graph's 1-4 pairs)
    keep the generated form. Otherwise every 1-4 pair gets its effective LJ (override or
    combined, times its LJ scale) explicitly and NBFIX overrides of full pairs become
    ``[ nonbond_params ]``; this needs one Coulomb 1-4 scale, unscaled full pairs, one
    override per type pair (for all its full pairs) and a pair list of the bonded graph,
    else :class:`ConventionError`.
    """
    nb = system.nonbonded
    if not terms.unsupported:
        return GromacsNonbonded(2, True, terms.lj_14, terms.coulomb_14,
                                [(i, j, None, None) for i, j in terms.pairs_14.tolist()])
    _require_bonded_forms(system, terms)
    rule = COMB_RULES.get(nb.combining_rule)
    if rule is None:
        raise ConventionError(f"cannot write the {nb.combining_rule} combining rule to "
                              "GROMACS .top files (comb-rule 2 and 3 are written)")
    rows = one_four_rows(system, overrides_ok=True)
    sigma, epsilon = effective_lj(system)
    nbfix = _nonbond_params(system, terms, set(rows), sigma, epsilon)
    if nbfix and rule != 2:
        # ParmEd 4.3's reading of such a file differs from OpenMM's GromacsTopFile and
        # ffparam by 0.4 kcal/mol of vdW on two dimethyl ethers (OpenMM agrees), so the
        # file could not be verified by both readers.
        raise ConventionError("cannot write NBFIX pairs with the geometric combining rule "
                              "to GROMACS .top files (ParmEd misreads [ nonbond_params ] "
                              "under comb-rule 3)")
    listed, scales = [], set()
    for row in rows:
        i, j = (int(a) for a in nb.pairs[row])
        c_scale, eps = float(nb.coulomb_scale[row]), float(epsilon[row])
        if c_scale == 0.0 and eps == 0.0:
            continue  # no 1-4 interaction: excluded by nrexcl
        scales.add(c_scale)
        listed.append((min(i, j), max(i, j), float(sigma[row]), eps))
    if len(scales) > 1:
        raise ConventionError(f"cannot write 1-4 Coulomb scales {sorted(scales)[:3]} to "
                              "GROMACS .top files (one fudgeQQ)")
    fudge_qq = scales.pop() if scales else terms.coulomb_14
    return GromacsNonbonded(rule, False, terms.lj_14, fudge_qq, sorted(listed), nbfix)


def _nonbond_params(system: ParameterizedSystem, terms: FlatTerms, rows14: set[int],
                    sigma: np.ndarray, epsilon: np.ndarray) -> dict:
    """Type pair -> (sigma, epsilon) of the full pairs with an override; every full pair
    of such a type pair must carry the same override."""
    nb = system.nonbonded
    types = atom_type_names(system.molecule, terms)
    fixed = set(np.asarray(nb.nbfix_rows, dtype=np.int64).tolist()) - rows14
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for row in sorted(fixed):
        i, j = (int(a) for a in nb.pairs[row])
        key = tuple(sorted((types[i], types[j])))
        value = out.setdefault(key, (float(sigma[row]), float(epsilon[row])))
        if not np.allclose(value, (sigma[row], epsilon[row]), rtol=1e-12, atol=0.0):
            raise ConventionError(f"cannot write NBFIX pairs of types {'-'.join(key)} with "
                                  "different values to GROMACS .top files")
    for row in range(len(nb.pairs)):
        i, j = (int(a) for a in nb.pairs[row])
        if row not in fixed and row not in rows14 and tuple(sorted((types[i], types[j]))) in out:
            raise ConventionError(f"cannot write the full pair {i}-{j} of NBFIX types without "
                                  "its override to GROMACS .top files")
    return out


def one_four_rows(system: ParameterizedSystem, fmt: str = "GROMACS .top",
                  overrides_ok: bool = False) -> list[int]:
    """Rows of the 1-4 pairs; checks that the other rows are the bonded graph's full
    pairs, each once, unscaled and (unless ``overrides_ok``: NBFIX) without an override;
    errors name ``fmt``."""
    nb, topo = system.nonbonded, system.topology
    keys = [tuple(sorted(p)) for p in np.asarray(nb.pairs, dtype=np.int64).tolist()]
    p14 = {tuple(sorted(p)) for p in topo.pairs_14.tolist()}
    full = {tuple(p) for p in np.sort(topo.nonbonded_pairs, axis=1).tolist()}
    override = set(np.asarray(nb.nbfix_rows, dtype=np.int64).tolist())
    rows, seen = [], set()
    for row, key in enumerate(keys):
        if key in seen:
            raise ConventionError(f"cannot write the nonbonded pair {key} twice to {fmt} "
                                  "files")
        seen.add(key)
        if key in p14:
            rows.append(row)
        elif key not in full:
            raise ConventionError(f"cannot write a nonbonded pair list that is not the "
                                  f"bonded graph's (pair {key}) to {fmt} files")
        elif (row in override and not overrides_ok) or nb.coulomb_scale[row] != 1.0 or \
                nb.lj_scale[row] != 1.0:
            raise ConventionError(f"cannot write a scaled or NBFIX'd full pair {key} to "
                                  f"{fmt} files")
    if full - seen:
        raise ConventionError(f"cannot write a nonbonded pair list without the pair "
                              f"{sorted(full - seen)[0]} to {fmt} files")
    return rows


def effective_lj(system: ParameterizedSystem) -> tuple[np.ndarray, np.ndarray]:
    """Per pair row: sigma (A) and epsilon (kcal/mol) as the MM engine uses them (combined
    or override, epsilon times the row's LJ scale)."""
    nb = system.nonbonded
    p = system.parameters.vector()
    sig, eps = p[nb.sigma_index], p[nb.epsilon_index]
    i, j = np.asarray(nb.pairs, dtype=np.int64).reshape(-1, 2).T
    pair_eps = np.sqrt(eps[i] * eps[j])
    pair_sigma = np.sqrt(sig[i] * sig[j]) if nb.combining_rule == "geometric" \
        else 0.5 * (sig[i] + sig[j])
    if len(nb.nbfix_rows):
        pair_sigma[nb.nbfix_rows] = p[nb.nbfix_sigma_index]
        pair_eps[nb.nbfix_rows] = p[nb.nbfix_epsilon_index]
    return pair_sigma, pair_eps * nb.lj_scale


EXTRA_BONDED = ("UreyBradley", "HarmonicImpropers")
"""Non-standard bonded sections a ``.top`` holds: angle funct 5, dihedral funct 2."""


def _require_bonded_forms(system: ParameterizedSystem, terms: FlatTerms) -> None:
    """The standard-forms error (naming the first such term) if a bonded term is outside
    the forms a ``.top`` holds (those terms are listed first in ``terms.unsupported``)."""
    if any(FORMS.get(g.form).standard is None and len(g) and g.name not in EXTRA_BONDED
           for g in system.terms):
        require_standard_forms(terms, "GROMACS .top")


@dataclass(frozen=True)
class GromacsBonded:
    """Bonded terms beyond FlatTerms' tables, in internal units.

    Attributes:
        rb_mask: bool per torsion row written as Ryckaert-Bellemans (see :func:`rb_rows`).
        urey_bradley: sorted 1-3 pair -> (k kcal/mol/A^2 of E = k/2 (r - r0)^2, r0 A).
        harmonic_impropers: (atoms, k kcal/mol/rad^2 of E = k/2 (psi - psi0)^2, psi0 rad).
    """

    rb_mask: np.ndarray
    urey_bradley: dict[tuple[int, int], tuple[float, float]]
    harmonic_impropers: list[tuple[tuple[int, ...], float, float]]


def gromacs_bonded(system: ParameterizedSystem) -> GromacsBonded:
    """RB rows, Urey-Bradley and harmonic impropers of ``system`` (scales applied)."""
    p = system.parameters.vector()
    ub: dict[tuple[int, int], tuple[float, float]] = {}
    impropers = []
    for g in system.terms:
        if g.name not in EXTRA_BONDED or not len(g):
            continue
        form = FORMS.get(g.form)
        values = form.scaled({f: p[g.param_index[f]] for f in form.fields}, g.scale)
        k = np.broadcast_to(values["k"], len(g))
        x0 = np.broadcast_to(values["length" if g.name == "UreyBradley" else "angle"], len(g))
        for atoms, kk, xx in zip(g.atoms.tolist(), k, x0):
            if g.name == "UreyBradley":
                ub[(min(atoms), max(atoms))] = (float(kk), float(xx))
            else:
                impropers.append((tuple(atoms), float(kk), float(xx)))
    return GromacsBonded(rb_rows(system), ub, impropers)


_CHEBYSHEV = ([1.0], [0.0, 1.0], [-1.0, 0.0, 2.0], [0.0, -3.0, 0.0, 4.0],
              [1.0, 0.0, -8.0, 0.0, 8.0], [0.0, 5.0, 0.0, -20.0, 0.0, 16.0])
"""cos(m psi) as a polynomial in cos(psi), m = 0..5 (coefficients of cos^n, n = 0..m)."""


def rb_rows(system: ParameterizedSystem) -> np.ndarray:
    """bool per torsion row of :func:`~ffparam.export.terms.flat_terms`: the row belongs
    to a Ryckaert-Bellemans parameter of an import (id ``rb:...``) whose terms on that
    atom quadruple are still expressible as one (phases 0 or 180 deg, periodicity 1-5), so
    it is written back as funct 3 and re-imported under the same parameter."""
    p = system.parameters.vector()
    rows = []
    for g in system.terms:
        form = FORMS.get(g.form)
        if form.standard != "torsion":
            continue
        phases = p[g.param_index["phase"]]
        for quad, pid, n, phase in zip(g.atoms.tolist(), g.parameter_ids or [""] * len(g),
                                       g.periodicity.tolist(), phases):
            ok = pid.startswith("rb:") and 1 <= n <= 5 and (
                abs(math.sin(phase)) < 1e-12)
            rows.append(((tuple(quad), pid), ok))
    good: dict[tuple, bool] = {}
    for key, ok in rows:
        good[key] = good.get(key, True) and ok
    return np.array([good[key] for key, _ in rows], dtype=bool)


def rb_coefficients(periodic: list[tuple[int, float, float]]) -> list[float]:
    """C0..C5 of E = sum_n C_n cos^n(psi), psi = phi - 180 deg, equal to the sum of
    ``periodic`` (n, phase 0 or pi, k) terms k (1 + cos(n phi - phase)); units of k.
    The inverse of :func:`ffparam.assign.import_common.rb_to_periodic`."""
    cos_m = [0.0] * 6  # E = sum_m a_m cos(m phi), a_0 the constant
    for n, phase, k in periodic:
        cos_m[0] += k
        cos_m[n] += k * math.cos(phase)
    c = [0.0] * 6
    for m, a in enumerate(cos_m):
        for power, t in enumerate(_CHEBYSHEV[m]):  # cos(m phi) = (-1)^m cos(m psi)
            c[power] += (-1) ** m * a * t
    return c


def _rb_lines(terms: FlatTerms, mask: np.ndarray) -> list[str]:
    per_quad: dict[tuple, list] = {}
    for quad, n, phase, k, use in zip(terms.torsion_atoms.tolist(),
                                      terms.torsion_periodicity.tolist(), terms.torsion_phase,
                                      terms.torsion_k, mask):
        if use:
            per_quad.setdefault(tuple(quad), []).append((int(n), float(phase), float(k)))
    return [f"{' '.join(str(a + 1) for a in quad)} 3 "
            + " ".join(_num(c * KJ_PER_KCAL) for c in rb_coefficients(rows))
            for quad, rows in per_quad.items()]


def top_text(molecule: Molecule, terms: FlatTerms, residue_name: str = "MOL",
             source: str = "", nonbonded: GromacsNonbonded | None = None,
             extra: GromacsBonded | None = None) -> str:
    """The ``.top`` text of ``molecule`` with ``terms``; ``nonbonded`` (from
    :func:`gromacs_nonbonded`) for systems outside the standard forms; ``extra`` (from
    :func:`gromacs_bonded`): RB rows, Urey-Bradley (angle funct 5) and harmonic impropers
    (dihedral funct 2)."""
    if extra is None:
        extra = GromacsBonded(np.zeros(len(terms.torsion_k), dtype=bool), {}, [])
    if nonbonded is None:
        require_standard_forms(terms, "GROMACS .top")
        nonbonded = GromacsNonbonded(2, True, terms.lj_14, terms.coulomb_14,
                                     [(i, j, None, None) for i, j in terms.pairs_14.tolist()])
    residue_name = check_residue_name(residue_name)
    names = atom_names(molecule)
    types = atom_type_names(molecule, terms)
    numbers = molecule.atomic_numbers
    masses = molecule.masses
    out = [f"; GROMACS topology of {molecule.name} written by ffparam"
           + (f" ({source})" if source else ""),
           "; units: nm, kJ/mol, degrees, e, amu; every parameter inline", "",
           "[ defaults ]", "; nbfunc comb-rule gen-pairs fudgeLJ fudgeQQ",
           f"1 {nonbonded.comb_rule} {'yes' if nonbonded.gen_pairs else 'no'} "
           f"{_num(nonbonded.fudge_lj)} {_num(nonbonded.fudge_qq)}", "",
           "[ atomtypes ]", "; name at.num mass charge ptype sigma epsilon"]
    written: set[str] = set()
    for i, t in enumerate(types):
        if t not in written:
            written.add(t)
            out.append(f"{t} {numbers[i]} {_num(masses[i])} 0.0 A "
                       f"{_num(terms.sigma[i] * NM_PER_ANGSTROM)} "
                       f"{_num(terms.epsilon[i] * KJ_PER_KCAL)}")
    if nonbonded.nbfix:
        out += ["", "[ nonbond_params ]", "; i j func sigma epsilon"]
        out += [f"{a} {b} 1 {_num(sg * NM_PER_ANGSTROM)} {_num(ep * KJ_PER_KCAL)}"
                for (a, b), (sg, ep) in nonbonded.nbfix.items()]
    out += ["", "[ moleculetype ]", "; name nrexcl", f"{residue_name} 3", "",
            "[ atoms ]", "; nr type resnr residue atom cgnr charge mass"]
    for i, (t, name) in enumerate(zip(types, names), 1):
        out.append(f"{i} {t} 1 {residue_name} {name} {i} {_num(terms.charges[i - 1])} "
                   f"{_num(masses[i - 1])}")
    out += ["", "[ bonds ]", "; ai aj funct b0 kb"]
    for (i, j), k, r0 in zip(terms.bond_atoms.tolist(), terms.bond_k, terms.bond_length):
        out.append(f"{i + 1} {j + 1} 1 {_num(r0 * NM_PER_ANGSTROM)} "
                   f"{_num(k * KCAL_MOL_A2_TO_KJ_MOL_NM2)}")
    out += _pairs_lines(nonbonded)
    out += _angle_lines(terms, extra.urey_bradley)
    bonded = {tuple(b) for b in molecule.bonds.tolist()}
    out += ["", "[ dihedrals ]", "; ai aj ak al funct phase k n (9 proper, 4 improper or "
            "repeated periodicity)"]
    seen: set[tuple] = set()
    mask = extra.rb_mask
    for quad, n, phase, k in zip(terms.torsion_atoms[~mask].tolist(),
                                 terms.torsion_periodicity[~mask].tolist(),
                                 terms.torsion_phase[~mask], terms.torsion_k[~mask]):
        key = (min(tuple(quad), tuple(quad[::-1])), int(n))
        funct = 9 if bonded_chain(tuple(quad), bonded) and key not in seen else 4
        seen.add(key)
        out.append(f"{' '.join(str(a + 1) for a in quad)} {funct} "
                   f"{_num(math.degrees(phase))} {_num(k * KJ_PER_KCAL)} {int(n)}")
    out += _rb_lines(terms, mask)
    out += [f"{' '.join(str(a + 1) for a in atoms)} 2 {_num(math.degrees(psi))} "
            f"{_num(k * KJ_PER_KCAL)}" for atoms, k, psi in extra.harmonic_impropers]
    out += ["", "[ system ]", molecule.name or residue_name, "", "[ molecules ]",
            f"{residue_name} 1", ""]
    return "\n".join(out)


def _angle_lines(terms: FlatTerms, urey_bradley: dict) -> list[str]:
    """``[ angles ]``: funct 1, or funct 5 (+ r13 nm, kUB kJ/mol/nm^2) with a Urey-Bradley
    term on the angle's 1-3 pair."""
    out = ["", "[ angles ]", "; ai aj ak funct theta0 k"
           + (" (funct 5: r13 kUB)" if urey_bradley else "")]
    left = dict(urey_bradley)
    for (i, j, m), k, theta in zip(terms.angle_atoms.tolist(), terms.angle_k,
                                   terms.angle_theta):
        ub = left.pop((min(i, m), max(i, m)), None)
        line = f"{i + 1} {j + 1} {m + 1} {1 if ub is None else 5} " \
               f"{_num(math.degrees(theta))} {_num(k * KJ_PER_KCAL)}"
        if ub is not None:
            line += f" {_num(ub[1] * NM_PER_ANGSTROM)} {_num(ub[0] * KCAL_MOL_A2_TO_KJ_MOL_NM2)}"
        out.append(line)
    if left:
        raise ConventionError(f"cannot write a Urey-Bradley term on atoms {next(iter(left))} "
                              "without an angle to GROMACS .top files")
    return out


def _pairs_lines(nonbonded: GromacsNonbonded) -> list[str]:
    if not nonbonded.pairs:
        return []
    if nonbonded.gen_pairs:
        return ["", "[ pairs ]", "; ai aj funct (parameters from gen-pairs)",
                *(f"{i + 1} {j + 1} 1" for i, j, _, _ in nonbonded.pairs)]
    return ["", "[ pairs ]", "; ai aj funct sigma epsilon (1-4 LJ, already scaled)",
            *(f"{i + 1} {j + 1} 1 {_num(s * NM_PER_ANGSTROM)} {_num(e * KJ_PER_KCAL)}"
              for i, j, s, e in nonbonded.pairs)]


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


__all__ = [
    "COMB_RULES",
    "GRO_COORDINATE_TOLERANCE",
    "GromacsBonded",
    "GromacsNonbonded",
    "effective_lj",
    "gro_text",
    "gromacs_bonded",
    "gromacs_nonbonded",
    "one_four_rows",
    "rb_coefficients",
    "rb_rows",
    "top_text",
]
