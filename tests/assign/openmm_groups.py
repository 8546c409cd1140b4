"""Per force group energies and forces of an imported system (ffparam's MMEngine) and of
OpenMM's own loading of the same files, for the import tests.

Groups (OpenMM force class -> ffparam terms): HarmonicBondForce -> Bonds + UreyBradley,
HarmonicAngleForce -> Angles, PeriodicTorsionForce -> ProperTorsions + ImproperTorsions,
CustomTorsionForce -> HarmonicImpropers, NonbondedForce / CustomNonbondedForce /
CustomBondForce -> vdW + Electrostatics. Energies kcal/mol, forces kcal/mol/A.
"""

from __future__ import annotations

import numpy as np
import openmm
import torch
from openmm import unit as u

from ffparam.mm.engine import MMEngine

GROUPS = {
    "HarmonicBondForce": "bonds", "HarmonicAngleForce": "angles",
    "PeriodicTorsionForce": "torsions", "RBTorsionForce": "torsions",
    "CustomTorsionForce": "harmonic_impropers",
    "NonbondedForce": "nonbonded", "CustomNonbondedForce": "nonbonded",
    "CustomBondForce": "nonbonded", "CMAPTorsionForce": "cmap",
}
TERMS = {"Bonds": "bonds", "UreyBradley": "bonds", "Angles": "angles",
         "ProperTorsions": "torsions", "ImproperTorsions": "torsions",
         "HarmonicImpropers": "harmonic_impropers", "vdW": "nonbonded",
         "Electrostatics": "nonbonded"}


def openmm_groups(system: openmm.System, positions_a: np.ndarray) -> dict[str, tuple]:
    """Group -> (energy, forces) of an OpenMM System at ``positions_a`` (n_atoms, 3) A."""
    names = {}
    for force in list(system.getForces()):
        kind = type(force).__name__
        if kind == "CMMotionRemover":
            continue
        group = sorted(set(GROUPS.values())).index(GROUPS[kind])
        force.setForceGroup(group)
        names[group] = GROUPS[kind]
    context = openmm.Context(system, openmm.VerletIntegrator(1.0),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(np.asarray(positions_a) * 0.1)
    out = {}
    for group, name in names.items():
        state = context.getState(getEnergy=True, getForces=True, groups={group})
        e = state.getPotentialEnergy().value_in_unit(u.kilocalorie_per_mole)
        f = state.getForces(asNumpy=True).value_in_unit(u.kilocalorie_per_mole / u.angstrom)
        out[name] = (e, np.asarray(f))
    return out


def ffparam_groups(system, positions_a: np.ndarray) -> dict[str, tuple]:
    """Group -> (energy, forces) of ffparam's engine (forces by autograd per term)."""
    engine = MMEngine(system)
    pos = torch.tensor(np.asarray(positions_a)[None], dtype=torch.float64, requires_grad=True)
    terms = engine.term_energies(pos)
    out: dict[str, tuple] = {}
    for name, energy in terms.items():
        grad, = torch.autograd.grad(energy.sum(), pos, retain_graph=True, allow_unused=True)
        forces = np.zeros(pos.shape[1:]) if grad is None else -grad[0].detach().numpy()
        e0, f0 = out.get(TERMS[name], (0.0, 0.0))
        out[TERMS[name]] = (e0 + float(energy.detach()[0]), f0 + forces)
    return out


def max_relative_errors(ours: dict, theirs: dict) -> dict[str, tuple[float, float]]:
    """Group -> (|dE| / max(|E|, 1 kcal/mol), max |dF| / max(max |F|, 1 kcal/mol/A));
    a group present on one side only counts against the other side's zero."""
    out = {}
    for name in set(ours) | set(theirs):
        e1, f1 = ours.get(name, (0.0, 0.0))
        e2, f2 = theirs.get(name, (0.0, 0.0))
        f1, f2 = np.broadcast_arrays(np.asarray(f1, float), np.asarray(f2, float))
        de = abs(e1 - e2) / max(abs(e2), 1.0)
        df = float(np.max(np.abs(f1 - f2), initial=0.0)) / max(
            float(np.max(np.abs(f2), initial=0.0)), 1.0)
        out[name] = (de, df)
    return out
