"""QM/MM electrostatic embedding against direct PySCF, finite differences and the Store."""

from __future__ import annotations

import numpy as np
import pytest
from pyscf import gto, qmmm, scf

from ffparam.assign import assign_parameters
from ffparam.errors import InputError
from ffparam.reference import Store
from ffparam.reference.qmmm import (
    Environment,
    compute_qmmm,
    embedded_calculator,
    qm_molecules_of_atoms,
    qmmm_job,
    split_region,
)
from ffparam.units import BOHR_ANGSTROM, HARTREE_BOHR_TO_KCAL_MOL_A, HARTREE_KCAL_MOL

TIP3P = np.array([-0.834, 0.417, 0.417])
METHOD = "hf/sto-3g[scf_tolerance=1e-11]"
OFFSETS = np.array([[2.9, 0.3, 0.1], [-1.2, 2.7, 0.4], [0.4, -2.4, 1.6], [0.2, 0.5, -2.9]])


@pytest.fixture(scope="module")
def water_system(water):
    return assign_parameters(water, "sage", charges=TIP3P.copy())


def cluster(water_system, n_waters: int):
    """Rigid waters: the QM one at the origin conformer, the others shifted."""
    x0 = water_system.molecule.conformers[0]
    return [water_system] * n_waters, [x0] + [x0 + OFFSETS[k] for k in range(n_waters - 1)]


def direct_pyscf(numbers, qm_xyz, mm_xyz, mm_charges, xc: str | None = None):
    """PySCF's own QM/MM: energy (Hartree), QM and MM gradients (Hartree/Bohr)."""
    mol = gto.M(atom=[(int(z), tuple(p)) for z, p in zip(numbers, qm_xyz)], basis="sto-3g",
                unit="Angstrom", verbose=0)
    base = scf.RHF(mol) if xc is None else scf.RKS(mol, xc=xc)
    mf = qmmm.mm_charge(base, np.asarray(mm_xyz), np.asarray(mm_charges), unit="Angstrom")
    mf.conv_tol = 1e-11
    energy = mf.kernel()
    grad = mf.nuc_grad_method()
    g_qm = grad.kernel()
    dm = mf.make_rdm1()
    return energy, g_qm, grad.grad_hcore_mm(dm) + grad.grad_nuc_mm()


@pytest.mark.parametrize("xc", [None, "b3lyp"])
def test_water_dimer_matches_direct_pyscf(water_system, xc):
    systems, positions = cluster(water_system, 2)
    region = split_region(systems, positions, [0])
    method = METHOD if xc is None else f"{xc}/sto-3g[scf_tolerance=1e-11]"
    record = compute_qmmm([region], method)[0][0]
    assert record.ok
    energy, g_qm, g_mm = direct_pyscf(region.species.numbers, positions[0], positions[1],
                                      TIP3P, xc)
    assert abs(record.energy / HARTREE_KCAL_MOL - energy) < 1e-8
    assert np.abs(record.gradient / HARTREE_BOHR_TO_KCAL_MOL_A - g_qm).max() < 1e-7
    assert np.abs(record.mm_gradient / HARTREE_BOHR_TO_KCAL_MOL_A - g_mm).max() < 1e-7
    np.testing.assert_allclose(record.mm_charges, TIP3P)
    np.testing.assert_allclose(record.mm_positions, positions[1])


def test_water_in_four_waters_matches_direct_and_polarizes(water_system):
    systems, positions = cluster(water_system, 5)
    region = split_region(systems, positions, [0])
    assert len(region.environment) == 12
    record = compute_qmmm([region], METHOD)[0][0]
    energy, g_qm, _ = direct_pyscf(region.species.numbers, positions[0],
                                   np.concatenate(positions[1:]), np.tile(TIP3P, 4))
    assert abs(record.energy / HARTREE_KCAL_MOL - energy) < 1e-8
    assert np.abs(record.gradient / HARTREE_BOHR_TO_KCAL_MOL_A - g_qm).max() < 1e-7
    gas = compute_qmmm([split_region(systems[:1], positions[:1], [0])], METHOD)[0][0]
    assert gas.mm_gradient.shape == (0, 3)
    assert np.linalg.norm(record.dipole) != pytest.approx(np.linalg.norm(gas.dipole), abs=1e-3)


def test_two_qm_molecules_in_charges(water_system):
    systems, positions = cluster(water_system, 4)
    region = split_region(systems, positions, [0, 1])
    assert region.species.n_atoms == 6 and len(region.environment) == 6
    assert region.species.bonds[-1] == (3, 5)
    record = compute_qmmm([region], METHOD, task="energy")[0][0]
    energy, _, _ = direct_pyscf(region.species.numbers, region.geometry,
                                np.concatenate(positions[2:]), np.tile(TIP3P, 2))
    assert abs(record.energy / HARTREE_KCAL_MOL - energy) < 1e-8


def test_mm_forces_match_finite_differences(water_system):
    systems, positions = cluster(water_system, 2)
    region = split_region(systems, positions, [0])
    env = region.environment
    record = compute_qmmm([region], METHOD)[0][0]
    step = 1e-3
    for atom in (0, 2):
        for axis in range(3):
            energies = []
            for sign in (1.0, -1.0):
                moved = env.positions.copy()
                moved[atom, axis] += sign * step
                calc = embedded_calculator(METHOD, region.species, Environment(env.charges, moved))
                energies.append(calc.compute(region.geometry).energy)
            fd = (energies[0] - energies[1]) / (2 * step)
            assert fd == pytest.approx(record.mm_gradient[atom, axis], abs=2e-4)


def test_qm_forces_match_finite_differences(water_system):
    systems, positions = cluster(water_system, 2)
    region = split_region(systems, positions, [0])
    calc = embedded_calculator(METHOD, region.species, region.environment)
    gradient = calc.compute(region.geometry, gradient=True).gradient
    step = 1e-3
    for axis in range(3):
        energies = []
        for sign in (1.0, -1.0):
            moved = region.geometry.copy()
            moved[1, axis] += sign * step
            energies.append(calc.compute(moved).energy)
        fd = (energies[0] - energies[1]) / (2 * step)  # O(step^2) = 1e-6 relative
        assert fd == pytest.approx(gradient[1, axis], rel=1e-4, abs=2e-4)


def test_store_resume_and_environment_in_key(water_system, tmp_path):
    systems, positions = cluster(water_system, 3)
    region = split_region(systems, positions, [0])
    path = tmp_path / "qmmm.sqlite"
    with Store(path) as store:
        first, summary = compute_qmmm([region], METHOD, store=store)
    assert summary.n_computed == 1
    with Store(path) as store:
        again, summary = compute_qmmm([region], METHOD, store=store)
        assert summary.n_cached == 1 and summary.n_computed == 0
        assert again[0].energy == first[0].energy
        np.testing.assert_array_equal(again[0].mm_gradient, first[0].mm_gradient)
        np.testing.assert_array_equal(again[0].mm_charges, first[0].mm_charges)
        changed = Environment(region.environment.charges * 0.9, region.environment.positions)
        job = qmmm_job(region.species, region.geometry, changed, METHOD)
        assert job.key != first[0].key
        gas = qmmm_job(region.species, region.geometry, Environment([], np.zeros((0, 3))),
                       METHOD)
        assert gas.key != first[0].key
        # QM/MM records never pass for the plain molecule's data
        assert first[0].species.key == water_system.molecule.canonical_key() + " @qmmm"
        assert not list(store.records(molecule_key=water_system.molecule.canonical_key()))
        assert store.export_extxyz(tmp_path / "frames.xyz") == 0


def test_esp_is_the_polarized_solute_alone(water_system):
    systems, positions = cluster(water_system, 2)
    region = split_region(systems, positions, [0])
    record = compute_qmmm([region], METHOD, task="esp")[0][0]
    mol = gto.M(atom=[(int(z), tuple(p)) for z, p in zip(region.species.numbers, positions[0])],
                basis="sto-3g", unit="Angstrom", verbose=0)
    mf = qmmm.mm_charge(scf.RHF(mol), positions[1], TIP3P, unit="Angstrom")
    mf.conv_tol = 1e-11
    mf.kernel()
    points = record.esp_points / BOHR_ANGSTROM
    nuclear = sum(z / np.linalg.norm(points - r, axis=1)
                  for z, r in zip(mol.atom_charges(), mol.atom_coords()))
    electronic = np.einsum("ijp,ij->p", mol.intor("int1e_grids", grids=points).transpose(1, 2, 0),
                           mf.make_rdm1())
    np.testing.assert_allclose(record.esp / HARTREE_KCAL_MOL, nuclear - electronic, atol=1e-7)


def test_bad_input_is_refused_before_any_calculation(water_system):
    systems, positions = cluster(water_system, 2)
    region = split_region(systems, positions, [0])
    with pytest.raises(InputError, match="tblite"):
        qmmm_job(region.species, region.geometry, region.environment, "gfn2-xtb")
    with pytest.raises(InputError, match="not hessian"):
        qmmm_job(region.species, region.geometry, region.environment, METHOD, "hessian")
    with pytest.raises(InputError, match=r"cuts the bond 0-1 .* not supported"):
        qm_molecules_of_atoms(systems, [0, 2, 3, 4, 5])
    assert qm_molecules_of_atoms(systems, [3, 4, 5]) == (1,)
    overlap = Environment(TIP3P, positions[0] + 0.1)
    with pytest.raises(InputError, match="overlap"):
        qmmm_job(region.species, region.geometry, overlap, METHOD)
    with pytest.raises(InputError, match="positions"):
        Environment(TIP3P, np.zeros((2, 3)))
