"""geomeTRIC optimizations with a reference method: minima, fixed dihedrals, frozen atoms."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit.Chem import rdMolTransforms

from ffparam.errors import CalculationError
from ffparam.reference import Constraints, Species, get_calculator
from ffparam.reference.optimize import optimize_geometry


def dihedral_deg(molecule, xyz, idx) -> float:
    """Dihedral measured by RDKit (independent of geomeTRIC), degrees."""
    probe = molecule.with_conformers(xyz[None])
    return rdMolTransforms.GetDihedralDeg(probe.rdmol.GetConformer(), *map(int, idx))


def test_unconstrained_optimization_reaches_a_minimum(ethanol):
    calc = get_calculator("gfn2-xtb", Species.from_molecule(ethanol))
    start = ethanol.conformers[0]
    e0 = calc.compute(start).energy
    opt = optimize_geometry(calc, start)
    _, gradient = calc.energy_and_gradient(opt.geometry)
    assert opt.energy < e0 - 0.1
    assert opt.energy == pytest.approx(calc.compute(opt.geometry).energy, abs=1e-5)
    # GAU criterion: max gradient 4.5e-4 Hartree/Bohr = 0.53 kcal/mol/A
    assert np.abs(gradient).max() < 0.53
    np.testing.assert_allclose(opt.gradient, gradient, atol=1e-2)  # SCF-restart noise
    assert np.all(np.diff(opt.trajectory_energies[[0, -1]]) < 0)


def test_fixed_dihedral_is_held_and_frozen_atoms_stay_put(ethane):
    calc = get_calculator("gfn2-xtb", Species.from_molecule(ethane))
    from ffparam.chem import Topology

    dihedral = Topology(ethane).dihedral_for_bond((0, 1))
    start = ethane.conformers[0]
    constraints = Constraints(dihedrals=((*dihedral, 25.0),))
    opt = optimize_geometry(calc, start, constraints)
    assert dihedral_deg(ethane, opt.geometry, dihedral) == pytest.approx(25.0, abs=0.01)
    frozen = Constraints(frozen_atoms=(0, 2))
    opt2 = optimize_geometry(calc, start + 0.05 * np.eye(3)[[0]], frozen)
    np.testing.assert_allclose(
        opt2.geometry[[0, 2]], (start + 0.05 * np.eye(3)[[0]])[[0, 2]], atol=1e-6
    )


def test_optimizer_step_limit_is_a_calculation_error(ethanol):
    calc = get_calculator("gfn2-xtb", Species.from_molecule(ethanol))
    distorted = ethanol.conformers[0] * 1.1
    with pytest.raises(CalculationError, match="geomeTRIC"):
        optimize_geometry(calc, distorted, max_steps=2)
