"""Modified Seminario bond/angle parameters from Hessians.

Checks: the projection recovers a known MM bond force constant; symmetry averaging;
writing bespoke/shared parameters into a system (energies agree with OpenMM); MM
frequencies with Seminario bonds/angles against GFN2-xTB Hessian frequencies; bad input.
"""

import numpy as np
import pytest
import torch

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.fit.normal_modes import match_modes, minimize_mm, mm_hessian, normal_modes
from ffparam.fit.seminario import apply_seminario, modified_seminario
from ffparam.mm import MMEngine
from ffparam.mm.openmm_export import evaluate_openmm, to_openmm
from ffparam.reference.methods import get_calculator
from ffparam.reference.optimize import optimize_geometry
from ffparam.reference.records import Species


def _valence_only(system):
    """The system with charges, LJ and torsions switched off: bonds and angles only."""
    params = system.parameters.copy()
    for section, par in params:
        for name in par.values:
            if (section == "Charges" or (section == "vdW" and name == "epsilon")
                    or (section.endswith("Torsions") and name.startswith("k"))):
                par.values[name] = 0.0
    return system.with_parameters(params)


@pytest.fixture(scope="module")
def ethane():
    mol = Molecule.from_smiles("CC").generate_conformers(1, seed=5)
    return mol, assign_parameters(mol, "sage", charges="gasteiger")


def test_projection_recovers_mm_bond_force_constants(ethane):
    mol, sage = ethane
    system = _valence_only(sage)
    engine = MMEngine(system)
    minimum = minimize_mm(engine, mol.conformers[0])
    hess = mm_hessian(engine, torch.as_tensor(minimum)).detach().numpy()
    result = modified_seminario(system.topology, minimum, hess)
    bonds = system.term_group("Bonds")
    vector = system.parameters.vector()
    true_k = vector[bonds.param_index["k"]]
    for (i, j), k in zip(bonds.atoms, true_k):
        fitted, length = result.bond(int(i), int(j))
        # the C-C bond block has only the bond term along its axis; C-H picks up a small
        # angle contribution (the method's known approximation)
        assert fitted == pytest.approx(k, rel=0.01)
        assert length == pytest.approx(np.linalg.norm(minimum[i] - minimum[j]), rel=1e-6)
    k_ccc, angle = result.angle(2, 0, 1)
    assert 50 < k_ccc < 300 and angle == pytest.approx(
        np.arccos(np.dot(minimum[2] - minimum[0], minimum[1] - minimum[0])
                  / np.linalg.norm(minimum[2] - minimum[0])
                  / np.linalg.norm(minimum[1] - minimum[0])), abs=1e-3)


def test_symmetry_averaging_and_units(ethane):
    mol, sage = ethane
    engine = MMEngine(sage)
    # a geometry that breaks the symmetry: averaging must restore equal values
    geometry = mol.conformers[0] + np.random.default_rng(2).normal(0, 0.02, (mol.n_atoms, 3))
    hess = mm_hessian(engine, torch.as_tensor(geometry)).detach().numpy()
    averaged = modified_seminario(sage.topology, geometry, hess)
    raw = modified_seminario(sage.topology, geometry, hess, symmetrize=False)
    ch = [i for i, (a, b) in enumerate(averaged.bonds) if 1 in mol.atomic_numbers[[a, b]]]
    assert np.ptp(averaged.bond_k[ch]) < 1e-9 and np.ptp(raw.bond_k[ch]) > 1.0
    assert averaged.bond_k[ch][0] == pytest.approx(raw.bond_k[ch].mean())
    assert np.all(averaged.angle_value > 1.5) and np.all(averaged.angle_value < 2.2)  # rad
    scaled = modified_seminario(sage.topology, geometry, hess, vibrational_scaling=0.9)
    np.testing.assert_allclose(scaled.angle_k, 0.81 * averaged.angle_k)


def test_apply_bespoke_and_shared_parameters_match_openmm(ethane):
    mol, sage = ethane
    hess = mm_hessian(MMEngine(sage), torch.as_tensor(mol.conformers[0])).detach().numpy()
    result = modified_seminario(sage.topology, mol.conformers[0], hess)
    bespoke = apply_seminario(sage, result)
    assert len(bespoke.parameters.sections["Bonds"]) == 2  # C-C and one C-H class
    assert len(bespoke.parameters.sections["Angles"]) == 2  # H-C-H and H-C-C
    assert set(bespoke.parameters.sections["ProperTorsions"]) == set(
        sage.parameters.sections["ProperTorsions"])
    shared = apply_seminario(sage, result, mode="shared")
    assert shared.parameters.keys() == sage.parameters.keys()
    geometries = mol.conformers[0] + np.random.default_rng(3).normal(0, 0.05, (4, mol.n_atoms, 3))
    for system in (bespoke, shared):
        ours = MMEngine(system).energy(geometries).numpy()
        theirs, _, _ = evaluate_openmm(to_openmm(system), geometries)
        np.testing.assert_allclose(ours, theirs, atol=1e-6)
    # both write the same (symmetric) values, so the energies agree
    np.testing.assert_allclose(MMEngine(bespoke).energy(geometries).numpy(),
                               MMEngine(shared).energy(geometries).numpy(), atol=1e-8)


@pytest.mark.parametrize("smiles", ["O", "CO", "CC"])
def test_seminario_frequencies_against_gfn2_hessian(smiles):
    """MM frequencies (Seminario bonds/angles + Sage rest, at the MM minimum) vs the GFN2-xTB
    Hessian's. A bonds+angles force field has no stretch-stretch or stretch-bend coupling,
    so the method is only expected to be good to a few per cent (measured 66, 136, 151
    cm^-1 RMS for water, methanol, ethane); a convention error (k vs k/2) or dropping the
    series-spring/scaling terms shifts the frequencies by factors near sqrt(2) (> 500 cm^-1
    RMS), which the 200 cm^-1 bound catches."""
    mol = Molecule.from_smiles(smiles).generate_conformers(1, seed=5)
    calc = get_calculator("gfn2-xtb", Species.from_molecule(mol))
    minimum = optimize_geometry(calc, mol.conformers[0]).geometry
    hess = calc.compute(minimum, hessian=True).hessian
    qm = normal_modes(hess, minimum, mol.masses)
    sage = assign_parameters(mol, "sage", charges="gasteiger")
    system = apply_seminario(sage, modified_seminario(sage.topology, minimum, hess))
    engine = MMEngine(system)
    mm_minimum = minimize_mm(engine, minimum)
    mm = normal_modes(mm_hessian(engine, torch.as_tensor(mm_minimum)).detach(), mm_minimum,
                      mol.masses)
    order = match_modes(qm.modes, mm.modes)
    error = mm.frequencies.numpy()[order] - qm.frequencies.numpy()
    assert np.sqrt(np.mean(error**2)) < 200.0


def test_bad_input(ethane):
    mol, sage = ethane
    hess = mm_hessian(MMEngine(sage), torch.as_tensor(mol.conformers[0])).detach().numpy()
    with pytest.raises(InputError, match="Hessian has shape"):
        modified_seminario(sage.topology, mol.conformers[0], hess[:6, :6])
    order = np.roll(np.arange(mol.n_atoms), 3)
    with pytest.raises(InputError, match="atom order"):
        modified_seminario(sage.topology, mol.conformers[0][order], hess)
    with pytest.raises(InputError, match="mode"):
        apply_seminario(sage, modified_seminario(sage.topology, mol.conformers[0], hess),
                        mode="typed")
    other = Molecule.from_smiles("CCC").generate_conformers(1)
    other_system = assign_parameters(other, "sage", charges="gasteiger")
    with pytest.raises(InputError, match="no Bonds term"):
        apply_seminario(other_system, modified_seminario(sage.topology, mol.conformers[0],
                                                         hess))
