"""OpenMM Systems of a liquid box and of one gas-phase molecule.

Both start from ffparam's own single-molecule export (:func:`ffparam.mm.build_openmm`,
gas phase, NoCutoff): the liquid System replicates every bonded term and every
nonbonded exception (1-2/1-3 exclusions, scaled 1-4 pairs) of that export N times with
atom offsets, copies the per-atom charge/sigma/epsilon, and switches the NonbondedForce
to PME with the settings' cutoff, LJ switching function and long-range dispersion
correction. Nothing is re-typed, so the box energy is exactly N x the molecule's
intramolecular terms plus the periodic intermolecular LJ and Ewald electrostatics
(``tests/liquid/test_openmm_system.py`` checks this against independent sums).

Constraints: the force field's (``parameters.settings["constraints"]``, Angstrom) plus,
with ``constrain_h_bonds``, every other bond to hydrogen at its assigned length. The
gas-phase System keeps NoCutoff and gets the same constraints, so both phases share one
Hamiltonian for the heat of vaporization.
"""

from __future__ import annotations

import numpy as np
import openmm

from ffparam.errors import InputError
from ffparam.liquid.settings import LiquidSettings
from ffparam.mm import build_openmm
from ffparam.params.system import ParameterizedSystem
from ffparam.units import NM_PER_ANGSTROM

BONDED_FORCE_TYPES = (openmm.HarmonicBondForce, openmm.HarmonicAngleForce,
                      openmm.PeriodicTorsionForce, openmm.CustomBondForce,
                      openmm.CustomTorsionForce)


def constraint_rows(system: ParameterizedSystem, settings: LiquidSettings) -> list[tuple]:
    """(i, j, distance_A) of every constrained pair of one molecule."""
    if not settings.constrain_h_bonds:
        return []
    rows: dict[tuple[int, int], float] = {}
    for i, j, distance in system.parameters.settings.get("constraints", []) or []:
        if distance is None:
            raise InputError(f"constraint {i}-{j} of {system.molecule.name} has no distance")
        rows[(min(i, j), max(i, j))] = float(distance)
    numbers = system.molecule.atomic_numbers
    bonds = system.term_group("Bonds")
    if bonds is not None:
        lengths = system.parameters.vector()[bonds.param_index["length"]]
        for (i, j), length in zip(bonds.atoms.tolist(), lengths):
            key = (min(i, j), max(i, j))
            if key not in rows and (numbers[i] == 1 or numbers[j] == 1):
                rows[key] = float(length)
    for i, j in system.topology.bonds.tolist():
        key = (min(i, j), max(i, j))
        if key not in rows and (numbers[i] == 1 or numbers[j] == 1):
            raise InputError(f"bond {i}-{j} to hydrogen of {system.molecule.name} has no "
                             "length to constrain it at")
    return [(i, j, d) for (i, j), d in sorted(rows.items())]


def build_gas_system(system: ParameterizedSystem, settings: LiquidSettings,
                     values: np.ndarray | None = None) -> openmm.System:
    """One molecule, NoCutoff, with the liquid's constraints (``values``: parameter
    vector in internal units, default the system's)."""
    omm = build_openmm(system, values).system
    for i, j, distance in constraint_rows(system, settings):
        omm.addConstraint(i, j, distance * NM_PER_ANGSTROM)
    return omm


def build_box_system(system: ParameterizedSystem, n_molecules: int, box_length_a: float,
                     settings: LiquidSettings, values: np.ndarray | None = None,
                     single: openmm.System | None = None) -> openmm.System:
    """``n_molecules`` copies of ``system`` in a cubic periodic box of ``box_length_a``
    Angstrom: PME, LJ cutoff/switch/dispersion correction from ``settings``, the same
    constraints, a centre-of-mass motion remover. Particles ordered molecule by molecule.
    No barostat (the simulation adds it). ``single``: the one-molecule System to
    replicate (default :func:`ffparam.mm.build_openmm`; a Drude System of
    :func:`ffparam.mm.drude.build_openmm_drude` gets its ``DrudeForce`` replicated too,
    each molecule's particles being its atoms then its Drudes)."""
    if box_length_a < 2.0 * settings.cutoff_a:
        raise InputError(f"box edge {box_length_a:.2f} A is shorter than twice the cutoff "
                         f"({settings.cutoff_a} A); use more molecules or a shorter cutoff")
    if len(system.nonbonded.nbfix_rows):
        raise InputError("pair-specific LJ (NBFix) is not supported in liquid boxes")
    single = build_openmm(system, values).system if single is None else single
    n_atoms = single.getNumParticles()
    box = openmm.System()
    for _ in range(n_molecules):
        for i in range(n_atoms):
            box.addParticle(single.getParticleMass(i))
    edge = box_length_a * NM_PER_ANGSTROM
    box.setDefaultPeriodicBoxVectors(openmm.Vec3(edge, 0, 0), openmm.Vec3(0, edge, 0),
                                     openmm.Vec3(0, 0, edge))
    for force in single.getForces():
        if isinstance(force, openmm.NonbondedForce):
            copy = _replicate_nonbonded(force, n_molecules, n_atoms, settings)
        elif isinstance(force, BONDED_FORCE_TYPES):
            copy = _replicate_bonded(force, n_molecules, n_atoms)
        elif isinstance(force, openmm.DrudeForce):
            copy = _replicate_drude(force, n_molecules, n_atoms)
        else:  # pragma: no cover - build_openmm makes only the forces above
            raise InputError(f"cannot replicate {type(force).__name__}")
        copy.setForceGroup(force.getForceGroup())
        box.addForce(copy)
    rows = constraint_rows(system, settings)
    for m in range(n_molecules):
        offset = m * n_atoms
        for i, j, distance in rows:
            box.addConstraint(offset + i, offset + j, distance * NM_PER_ANGSTROM)
    box.addForce(openmm.CMMotionRemover())
    return box


def _replicate_nonbonded(force: openmm.NonbondedForce, n_molecules: int, n_atoms: int,
                         settings: LiquidSettings) -> openmm.NonbondedForce:
    out = openmm.NonbondedForce()
    out.setNonbondedMethod(openmm.NonbondedForce.PME)
    out.setCutoffDistance(settings.cutoff_a * NM_PER_ANGSTROM)
    out.setEwaldErrorTolerance(settings.ewald_tolerance)
    out.setUseDispersionCorrection(settings.dispersion_correction)
    if settings.switch_a is not None:
        out.setUseSwitchingFunction(True)
        out.setSwitchingDistance(settings.switch_a * NM_PER_ANGSTROM)
    particles = [force.getParticleParameters(i) for i in range(n_atoms)]
    exceptions = [force.getExceptionParameters(k) for k in range(force.getNumExceptions())]
    for _ in range(n_molecules):
        for charge, sigma, epsilon in particles:
            out.addParticle(charge, sigma, epsilon)
    for m in range(n_molecules):
        offset = m * n_atoms
        for i, j, charge_product, sigma, epsilon in exceptions:
            out.addException(offset + i, offset + j, charge_product, sigma, epsilon)
    return out


def _replicate_drude(force: openmm.DrudeForce, n_molecules: int, n_particles: int
                     ) -> openmm.DrudeForce:
    """``n_molecules`` copies of a one-molecule DrudeForce (particles and screened pairs,
    particle indices offset by ``n_particles`` per molecule)."""
    out = openmm.DrudeForce()
    particles = [force.getParticleParameters(k) for k in range(force.getNumParticles())]
    pairs = [force.getScreenedPairParameters(k) for k in range(force.getNumScreenedPairs())]
    for m in range(n_molecules):
        o, first = m * n_particles, m * len(particles)
        for p, p1, p2, p3, p4, charge, alpha, aniso12, aniso34 in particles:
            out.addParticle(o + p, o + p1, *(x if x < 0 else o + x for x in (p2, p3, p4)),
                            charge, alpha, aniso12, aniso34)
        for a, b, thole in pairs:
            out.addScreenedPair(first + a, first + b, thole)
    return out


def _replicate_bonded(force: openmm.Force, n_molecules: int, n_atoms: int) -> openmm.Force:
    if isinstance(force, openmm.HarmonicBondForce):
        out = openmm.HarmonicBondForce()
        terms = [force.getBondParameters(k) for k in range(force.getNumBonds())]
        for m in range(n_molecules):
            o = m * n_atoms
            for i, j, length, k in terms:
                out.addBond(o + i, o + j, length, k)
    elif isinstance(force, openmm.HarmonicAngleForce):
        out = openmm.HarmonicAngleForce()
        terms = [force.getAngleParameters(k) for k in range(force.getNumAngles())]
        for m in range(n_molecules):
            o = m * n_atoms
            for i, j, k, angle, kk in terms:
                out.addAngle(o + i, o + j, o + k, angle, kk)
    elif isinstance(force, openmm.PeriodicTorsionForce):
        out = openmm.PeriodicTorsionForce()
        terms = [force.getTorsionParameters(k) for k in range(force.getNumTorsions())]
        for m in range(n_molecules):
            o = m * n_atoms
            for i, j, k, m4, n, phase, kk in terms:
                out.addTorsion(o + i, o + j, o + k, o + m4, n, phase, kk)
    elif isinstance(force, openmm.CustomBondForce):
        out = openmm.CustomBondForce(force.getEnergyFunction())
        for p in range(force.getNumPerBondParameters()):
            out.addPerBondParameter(force.getPerBondParameterName(p))
        terms = [force.getBondParameters(k) for k in range(force.getNumBonds())]
        for m in range(n_molecules):
            o = m * n_atoms
            for i, j, params in terms:
                out.addBond(o + i, o + j, params)
    else:
        out = openmm.CustomTorsionForce(force.getEnergyFunction())
        for p in range(force.getNumPerTorsionParameters()):
            out.addPerTorsionParameter(force.getPerTorsionParameterName(p))
        terms = [force.getTorsionParameters(k) for k in range(force.getNumTorsions())]
        for m in range(n_molecules):
            o = m * n_atoms
            for i, j, k, m4, params in terms:
                out.addTorsion(o + i, o + j, o + k, o + m4, params)
    return out
