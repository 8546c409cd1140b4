"""Read an export back and compare its energies with ffparam's MM engine.

Each format is re-read by a reader other than its writer where one exists (OpenMM's
``XmlSerializer``, ``ForceField``, ``AmberPrmtopFile`` and ``GromacsTopFile``, ParmEd's
GROMACS reader; for ``.offxml`` ffparam's SMIRNOFF loader, since nothing else here reads
SMIRNOFF), its energy and forces are computed on OpenMM's Reference platform (double
precision) at every conformer, and compared with :class:`~ffparam.mm.MMEngine`.

On a mismatch the error names what disagrees: the term category with the largest
energy difference (bonds, angles, torsions, vdW, electrostatics; OpenMM's nonbonded
energy is split by re-evaluating it with all charges zeroed) and the first parameter
that differs between the file and ffparam (a charge, a bond, a torsion's k and phase,
a 1-4 pair), in internal units.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import openmm
from openmm import unit as omm_unit

from ffparam.errors import ExportVerificationError
from ffparam.forms import FORMS
from ffparam.mm.engine import MMEngine
from ffparam.mm.openmm_export import build_openmm
from ffparam.params.system import ParameterizedSystem
from ffparam.units import ANGSTROM_PER_NM, KJ_PER_KCAL, NM_PER_ANGSTROM

CATEGORIES = ("bonds", "angles", "torsions", "vdW", "electrostatics")

_FORCE_CATEGORY = {
    "HarmonicBondForce": "bonds", "CustomBondForce": "bonds",
    "HarmonicAngleForce": "angles", "CustomAngleForce": "angles",
    "PeriodicTorsionForce": "torsions",
    "CustomTorsionForce": "torsions", "RBTorsionForce": "torsions",
    "NonbondedForce": "nonbonded",
}
_LJ_EXPRESSIONS = {
    "A1*A2/r^12-C1*C2/r^6",  # OpenMM GromacsTopFile, comb-rule 1/3 (C6/C12 per particle)
    "-C/r^6+A/r^12",  # OpenMM GromacsTopFile, its 1-4 pairs (CustomBondForce)
    "(a/r6)^2-b/r6; r6=r^6; a=acoef(type1, type2); b=bcoef(type1, type2)",  # NBFIX table
    "(a/r6)^2-b/r6; r6=r^6;a=acoef(type1, type2);b=bcoef(type1, type2)",  # CHARMM NBFIX
    "(a/r6)^2-b/r6; r6=r2*r2*r2; r2=r^2; a=acoef(type1, type2); b=bcoef(type1, type2)",
    "epsilon1*epsilon2*(sigr6^2-sigr6); sigr6=sigr2*sigr2*sigr2; sigr2=(sigc/r)^2; "
    "sigc=sigma1*sigma2",  # ParmEd, geometric combining
}
"""Energy expressions of the Custom forces that OpenMM's ``GromacsTopFile`` and
``CharmmPsfFile`` and ParmEd (last one: its NBFIX table) build for the Lennard-Jones part
of comb-rule 1/3 (geometric) files and NBFIX tables
(charges stay in the NonbondedForce). Their energy counts as vdW; any other Custom
nonbonded force is refused."""
_NO_ENERGY_FORCES = ("CMMotionRemover",)


@dataclass
class Evaluation:
    """Energies of one model at a batch of conformers.

    Attributes:
        energy: (n_conf,) kcal/mol.
        forces: (n_conf, n_atoms, 3) kcal/mol/Angstrom.
        categories: category -> (n_conf,) kcal/mol (see :data:`CATEGORIES`).
    """

    energy: np.ndarray
    forces: np.ndarray
    categories: dict[str, np.ndarray]


@dataclass
class FormatCheck:
    """Result of reading one export back.

    Attributes:
        format: export format name.
        reader: what read the file back.
        max_abs_de: max |E_file - E_ffparam| over conformers, kcal/mol.
        max_abs_df: max |F_file - F_ffparam| over conformers and atoms, kcal/mol/A.
        n_conformers: conformers compared.
    """

    format: str
    reader: str
    max_abs_de: float
    max_abs_df: float
    n_conformers: int


def reference_evaluation(system: ParameterizedSystem, positions: np.ndarray) -> Evaluation:
    """ffparam's own energies, forces and per-category energies."""
    result = MMEngine(system).compute(positions, forces=True, terms=True)
    terms = result.terms_numpy()
    n_conf = len(result.energy)
    cats = {c: np.zeros(n_conf) for c in CATEGORIES}
    for g in system.terms:
        if g.name in terms:
            category = FORMS.get(g.form).category
            cats[category] = cats[category] + terms.pop(g.name)
    cats["vdW"] = cats["vdW"] + terms.pop("vdW", 0.0)
    cats["electrostatics"] = cats["electrostatics"] + terms.pop("Electrostatics", 0.0)
    return Evaluation(result.energy.numpy(), result.forces.numpy(), cats)


def openmm_evaluation(omm_system: openmm.System, positions: np.ndarray) -> Evaluation:
    """Energies, forces and per-category energies of ``omm_system`` (Reference platform).

    Works on a copy: forces are put in one group per category, and a copy of each
    NonbondedForce with every charge and exception charge product zeroed gives the vdW
    part (electrostatics = nonbonded - vdW). Lennard-Jones as Custom forces (see
    :data:`_LJ_EXPRESSIONS`) is a group of its own, added to vdW. The total energy and forces
    are those of every force of the System, whatever its category.
    """
    work = openmm.XmlSerializer.clone(omm_system)
    group_of = {c: g for g, c in enumerate(("bonds", "angles", "torsions", "nonbonded"))}
    other, vdw_group, lj_group = 4, 5, 6
    lj_only = []
    for force in work.getForces():
        force.setForceGroup(_group(force, group_of, other, lj_group))
        if isinstance(force, openmm.NonbondedForce):
            lj_only.append(_zero_charges(force))
    for force in lj_only:
        force.setForceGroup(vdw_group)
        work.addForce(force)
    main_groups = {0, 1, 2, 3, other, lj_group}
    integrator = openmm.VerletIntegrator(1.0 * omm_unit.femtoseconds)
    context = openmm.Context(work, integrator, openmm.Platform.getPlatformByName("Reference"))
    kj = omm_unit.kilojoule_per_mole
    energies, forces = [], []
    per_group: dict[int, list[float]] = defaultdict(list)
    try:
        for xyz in np.asarray(positions, dtype=float):
            context.setPositions(xyz * NM_PER_ANGSTROM)
            state = context.getState(getEnergy=True, getForces=True, groups=main_groups)
            energies.append(state.getPotentialEnergy().value_in_unit(kj))
            forces.append(state.getForces(asNumpy=True).value_in_unit(kj / omm_unit.nanometer))
            for g in (0, 1, 2, 3, vdw_group, lj_group):
                e = context.getState(getEnergy=True, groups={g}).getPotentialEnergy()
                per_group[g].append(e.value_in_unit(kj))
    finally:
        del context
    to_kcal = 1.0 / KJ_PER_KCAL
    groups = {g: np.array(v) * to_kcal for g, v in per_group.items()}
    cats = {"bonds": groups[0], "angles": groups[1], "torsions": groups[2],
            "vdW": groups[vdw_group] + groups[lj_group],
            "electrostatics": groups[3] - groups[vdw_group]}
    return Evaluation(np.array(energies) * to_kcal,
                      np.array(forces) * to_kcal * NM_PER_ANGSTROM, cats)


def _group(force: openmm.Force, group_of: dict[str, int], other: int, lj_group: int) -> int:
    """Force group of ``force`` by category; :class:`ExportVerificationError` for a force
    kind ffparam's files do not produce."""
    kind = type(force).__name__
    if isinstance(force, openmm.CustomNonbondedForce | openmm.CustomBondForce) and \
            force.getEnergyFunction() in _LJ_EXPRESSIONS:
        return lj_group
    category = _FORCE_CATEGORY.get(kind)
    empty_cmap = isinstance(force, openmm.CMAPTorsionForce) and force.getNumTorsions() == 0
    if category is None and kind not in _NO_ENERGY_FORCES and not empty_cmap:
        raise ExportVerificationError(f"read-back System has a {kind}, which ffparam "
                                      "does not write")
    return group_of.get(category, other)


def _zero_charges(force: openmm.NonbondedForce) -> openmm.NonbondedForce:
    copy = openmm.XmlSerializer.clone(force)
    for i in range(copy.getNumParticles()):
        _, sigma, epsilon = copy.getParticleParameters(i)
        copy.setParticleParameters(i, 0.0, sigma, epsilon)
    for k in range(copy.getNumExceptions()):
        i, j, _, sigma, epsilon = copy.getExceptionParameters(k)
        copy.setExceptionParameters(k, i, j, 0.0, sigma, epsilon)
    return copy


# ---------------------------------------------------------------------- parameter tables
def parameter_table(omm_system: openmm.System) -> dict[str, dict]:
    """The parameters of ``omm_system`` keyed by atoms, internal units, order-free.

    ``charge``/``lj`` per atom; ``bond`` (i<j) -> (r0 A, k kcal/mol/A^2); ``angle``
    (i<k) -> (theta0 rad, k kcal/mol/rad^2); ``torsion`` (quad, n) -> (sum k, sum
    k cos(phase), sum k sin(phase)) kcal/mol, which is what the energy depends on; ``pair``
    (i<j) -> (charge product e^2, sigma A, epsilon kcal/mol) of every exception.
    """
    table: dict[str, dict] = {k: {} for k in ("mass", "charge", "lj", "bond", "angle",
                                              "torsion", "pair")}
    for i in range(omm_system.getNumParticles()):
        table["mass"][i] = (omm_system.getParticleMass(i).value_in_unit(omm_unit.dalton),)
    kj = 1.0 / KJ_PER_KCAL
    for force in omm_system.getForces():
        if isinstance(force, openmm.HarmonicBondForce):
            for n in range(force.getNumBonds()):
                i, j, r0, k = force.getBondParameters(n)
                _add(table["bond"], (min(i, j), max(i, j)),
                     (r0.value_in_unit(omm_unit.nanometer) * ANGSTROM_PER_NM,
                      k.value_in_unit(omm_unit.kilojoule_per_mole / omm_unit.nanometer**2)
                      * kj / ANGSTROM_PER_NM**2))
        elif isinstance(force, openmm.HarmonicAngleForce):
            for n in range(force.getNumAngles()):
                i, j, m, theta, k = force.getAngleParameters(n)
                _add(table["angle"], (min(i, m), j, max(i, m)),
                     (theta.value_in_unit(omm_unit.radian),
                      k.value_in_unit(omm_unit.kilojoule_per_mole / omm_unit.radian**2) * kj))
        elif isinstance(force, openmm.PeriodicTorsionForce):
            for n in range(force.getNumTorsions()):
                i, j, m, l_, per, phase, k = force.getTorsionParameters(n)
                quad = (i, j, m, l_)
                key = (min(quad, quad[::-1]), int(per))
                kk = k.value_in_unit(omm_unit.kilojoule_per_mole) * kj
                ph = phase.value_in_unit(omm_unit.radian)
                old = table["torsion"].get(key, (0.0, 0.0, 0.0))
                table["torsion"][key] = (old[0] + kk, old[1] + kk * math.cos(ph),
                                         old[2] + kk * math.sin(ph))
        elif isinstance(force, openmm.NonbondedForce):
            for i in range(force.getNumParticles()):
                q, s, e = force.getParticleParameters(i)
                table["charge"][i] = (q.value_in_unit(omm_unit.elementary_charge),)
                table["lj"][i] = (s.value_in_unit(omm_unit.angstrom),
                                  e.value_in_unit(omm_unit.kilojoule_per_mole) * kj)
            for n in range(force.getNumExceptions()):
                i, j, qq, s, e = force.getExceptionParameters(n)
                table["pair"][(min(i, j), max(i, j))] = (
                    qq.value_in_unit(omm_unit.elementary_charge**2),
                    s.value_in_unit(omm_unit.angstrom),
                    e.value_in_unit(omm_unit.kilojoule_per_mole) * kj)
    return table


def _add(bucket: dict, key: tuple, value: tuple) -> None:
    if key in bucket:  # a second term on the same atoms: keep both, in order
        bucket[key] = (*bucket[key], *value)
    else:
        bucket[key] = value


_CATEGORY_TABLES = {
    "bonds": ("bond",), "angles": ("angle",), "torsions": ("torsion",),
    "vdW": ("lj", "pair"), "electrostatics": ("charge", "pair"),
}


def first_difference(reference: dict[str, dict], other: dict[str, dict],
                     prefer: str | None = None, symbols: list[str] | None = None,
                     rtol: float = 1e-6, atol: float = 1e-8) -> str | None:
    """A one-line description of the first parameter that differs, tables in the order
    most relevant to category ``prefer``; None if none differs."""
    order = [*_CATEGORY_TABLES.get(prefer, ()), "charge", "lj", "pair", "bond", "angle",
             "torsion", "mass"]
    for name in dict.fromkeys(order):
        ref, got = _normalized(name, reference[name]), _normalized(name, other[name])
        for key in sorted(set(ref) | set(got)):
            a, b = ref.get(key), got.get(key)
            if name == "torsion":
                a, b = a or (0.0, 0.0, 0.0), b or (0.0, 0.0, 0.0)
            if a is None or b is None or len(a) != len(b) or not np.allclose(
                    a, b, rtol=rtol, atol=atol):
                return _describe(name, key, a, b, symbols)
    return None


def _normalized(name: str, bucket: dict) -> dict:
    """Drop what no energy depends on: sigma where epsilon is 0, excluded pairs."""
    if name == "lj":
        return {k: (v if v[1] != 0.0 else (0.0, 0.0)) for k, v in bucket.items()}
    if name == "pair":
        out = {}
        for k, (qq, sigma, eps) in bucket.items():
            if qq != 0.0 or eps != 0.0:
                out[k] = (qq, sigma if eps != 0.0 else 0.0, eps)
        return out
    return bucket


def _describe(name: str, key, expected, found, symbols: list[str] | None) -> str:
    def atoms(idx) -> str:
        idx = (idx,) if isinstance(idx, int) else idx
        return "-".join(f"{symbols[a]}{a}" if symbols else str(a) for a in idx)

    def fmt(values) -> str:
        return "absent" if values is None else "(" + ", ".join(f"{v:.6g}" for v in values) + ")"

    if name == "torsion":
        quad, n = key

        def polar(v) -> str:
            return f"k {math.hypot(v[1], v[2]):.6g} kcal/mol phase " \
                   f"{math.degrees(math.atan2(v[2], v[1])):.4g} deg"
        return (f"torsion {atoms(quad)} periodicity {n}: file has {polar(found)}, ffparam "
                f"{polar(expected)}")
    labels = {"charge": "charge (e)", "lj": "LJ (sigma A, epsilon kcal/mol)",
              "bond": "bond (r0 A, k kcal/mol/A^2)", "angle": "angle (theta0 rad, k "
              "kcal/mol/rad^2)", "pair": "scaled (1-4) pair (qq e^2, sigma A, epsilon "
              "kcal/mol)", "mass": "mass (amu)"}
    return f"{labels[name]} of {atoms(key)}: file {fmt(found)}, ffparam {fmt(expected)}"


# ---------------------------------------------------------------------- the check
def compare(fmt: str, reader: str, system: ParameterizedSystem, reference: Evaluation,
            got: Evaluation, read_system: openmm.System | None, tolerance: float,
            force_tolerance: float, what: str) -> FormatCheck:
    """Compare ``got`` with ``reference``; raise :class:`ExportVerificationError` naming
    the worst term category and the first differing parameter if energies differ by
    more than ``tolerance`` kcal/mol or forces by more than ``force_tolerance``."""
    if read_system is not None:
        _check_masses(fmt, what, read_system, system)
    de = np.abs(got.energy - reference.energy)
    df = np.abs(got.forces - reference.forces)
    max_de = float(de.max()) if de.size else 0.0
    max_df = float(df.max()) if df.size else 0.0
    if not (np.all(np.isfinite(got.energy)) and max_de <= tolerance and max_df <= force_tolerance):
        cat_diff = {c: float(np.abs(got.categories[c] - reference.categories[c]).max())
                    for c in CATEGORIES}
        worst = max(cat_diff, key=cat_diff.get)
        detail = None
        if read_system is not None:
            detail = first_difference(parameter_table(build_openmm(system).system),
                                      parameter_table(read_system), prefer=worst,
                                      symbols=system.molecule.symbols)
        conf = int(np.argmax(de)) if de.size else 0
        raise ExportVerificationError(
            f"{fmt} export {what} read back by {reader} does not reproduce ffparam: max |dE| "
            f"{max_de:.3g} kcal/mol at conformer {conf} (tolerance {tolerance:g}), max |dF| "
            f"{max_df:.3g} kcal/mol/A; largest term difference: {worst} "
            f"{cat_diff[worst]:.3g} kcal/mol"
            + (f"; first differing parameter: {detail}" if detail else ""))
    return FormatCheck(fmt, reader, max_de, max_df, len(reference.energy))


MASS_TOLERANCE = 1e-4
"""amu: masses read back must equal the molecule's (also catches a changed atom order)."""


def _check_masses(fmt: str, what: str, read_system: openmm.System,
                  system: ParameterizedSystem) -> None:
    n = system.n_atoms
    if read_system.getNumParticles() != n:
        raise ExportVerificationError(f"{fmt} export {what} has {read_system.getNumParticles()} "
                                      f"particles, the molecule {n} atoms")
    masses = np.array([read_system.getParticleMass(i).value_in_unit(omm_unit.dalton)
                       for i in range(n)])
    dm = np.abs(masses - system.molecule.masses)
    if n and dm.max() > MASS_TOLERANCE:
        i = int(np.argmax(dm))
        raise ExportVerificationError(
            f"{fmt} export {what}: mass of atom {i} ({system.molecule.symbols[i]}) is "
            f"{masses[i]:.6g} amu, ffparam has {system.molecule.masses[i]:.6g}")


__all__ = ["CATEGORIES", "Evaluation", "FormatCheck", "compare", "first_difference",
           "openmm_evaluation", "parameter_table", "reference_evaluation"]
