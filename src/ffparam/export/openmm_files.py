"""OpenMM-side exports: the serialized ``System`` XML (every ffparam form, one force group
per term group, from :func:`ffparam.mm.build_openmm`) and a *standard* ``System`` with one
force per kind (what ParmEd converts to AMBER files).

Unit edge: kcal/mol -> kJ/mol, Angstrom -> nm; conventions are OpenMM's own (harmonic
k/2, LJ sigma), so only units change.
"""

from __future__ import annotations

import numpy as np
import openmm

from ffparam.export.terms import FlatTerms
from ffparam.mm.openmm_export import build_openmm
from ffparam.params.system import ParameterizedSystem
from ffparam.units import KCAL_MOL_A2_TO_KJ_MOL_NM2, KJ_PER_KCAL, NM_PER_ANGSTROM


def system_xml(system: ParameterizedSystem) -> str:
    """``openmm.XmlSerializer`` text of the gas-phase (NoCutoff) System of ``system``."""
    return openmm.XmlSerializer.serialize(build_openmm(system).system)


def standard_system(terms: FlatTerms, masses: np.ndarray,
                    exclusions: np.ndarray) -> openmm.System:
    """One HarmonicBondForce, HarmonicAngleForce, PeriodicTorsionForce and NonbondedForce
    (NoCutoff) holding ``terms``.

    Exceptions: every pair of ``exclusions`` (1-2, 1-3) with zero charge product and
    epsilon; every 1-4 pair with charge product q_i q_j * coulomb_14, Lorentz-Berthelot
    sigma and epsilon * lj_14 (the form ParmEd maps to AMBER SCEE/SCNB).
    """
    omm = openmm.System()
    for mass in masses:
        omm.addParticle(float(mass))
    bonds = openmm.HarmonicBondForce()
    for (i, j), k, r0 in zip(terms.bond_atoms.tolist(), terms.bond_k, terms.bond_length):
        bonds.addBond(i, j, float(r0 * NM_PER_ANGSTROM), float(k * KCAL_MOL_A2_TO_KJ_MOL_NM2))
    angles = openmm.HarmonicAngleForce()
    for (i, j, m), k, theta in zip(terms.angle_atoms.tolist(), terms.angle_k,
                                   terms.angle_theta):
        angles.addAngle(i, j, m, float(theta), float(k * KJ_PER_KCAL))
    torsions = openmm.PeriodicTorsionForce()
    for (i, j, m, n), per, phase, k in zip(terms.torsion_atoms.tolist(),
                                           terms.torsion_periodicity.tolist(),
                                           terms.torsion_phase, terms.torsion_k):
        torsions.addTorsion(i, j, m, n, int(per), float(phase), float(k * KJ_PER_KCAL))
    nonbonded = openmm.NonbondedForce()
    nonbonded.setNonbondedMethod(openmm.NonbondedForce.NoCutoff)
    sigma = terms.sigma * NM_PER_ANGSTROM
    epsilon = terms.epsilon * KJ_PER_KCAL
    for q, s, e in zip(terms.charges, sigma, epsilon):
        nonbonded.addParticle(float(q), float(s), float(e))
    for i, j in np.asarray(exclusions).reshape(-1, 2).tolist():
        nonbonded.addException(i, j, 0.0, 0.1, 0.0)
    q = terms.charges
    for i, j in terms.pairs_14.tolist():
        nonbonded.addException(i, j, float(q[i] * q[j] * terms.coulomb_14),
                               float(0.5 * (sigma[i] + sigma[j])),
                               float(np.sqrt(epsilon[i] * epsilon[j]) * terms.lj_14))
    for force in (bonds, angles, torsions, nonbonded):
        omm.addForce(force)
    return omm
