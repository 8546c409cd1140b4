"""Reference methods against independent numbers: finite differences, the dispersion
packages called directly, other integral routes, experiment."""

from __future__ import annotations

import numpy as np
import pytest

from ffparam.errors import InputError, SCFConvergenceError, UnsupportedChemistryError
from ffparam.reference import MethodSpec, Species, get_calculator
from ffparam.units import (
    BOHR_ANGSTROM,
    HARTREE_BOHR_TO_KCAL_MOL_A,
    HARTREE_KCAL_MOL,
)


def fd_gradient(calc, x: np.ndarray, h: float) -> np.ndarray:
    """Central differences of energies, (n_atoms, 3) kcal/mol/Angstrom."""
    grad = np.zeros(x.size)
    for a in range(x.size):
        xp, xm = x.reshape(-1).copy(), x.reshape(-1).copy()
        xp[a] += h
        xm[a] -= h
        grad[a] = (
            calc.compute(xp.reshape(x.shape)).energy - calc.compute(xm.reshape(x.shape)).energy
        ) / (2 * h)
    return grad.reshape(x.shape)


def test_tblite_gradient_matches_finite_differences(ethanol):
    species = Species.from_molecule(ethanol)
    calc = get_calculator("gfn2-xtb[scf_tolerance=1e-10]", species)
    x = ethanol.conformers[0]
    analytic = calc.compute(x, gradient=True).gradient
    numeric = fd_gradient(calc, x, h=1e-4)
    assert np.abs(analytic).max() > 1.0  # not at a stationary point
    np.testing.assert_allclose(analytic, numeric, atol=2e-3)


def test_gfn1_and_gfn2_differ_and_charges_sum_to_total_charge():
    from ffparam.chem import Molecule

    acetate = Molecule.from_smiles("CC(=O)[O-]").generate_conformers(1, seed=3)
    species = Species.from_molecule(acetate)
    e2 = get_calculator("gfn2-xtb", species).compute(acetate.conformers[0])
    e1 = get_calculator("gfn1-xtb", species).compute(acetate.conformers[0])
    assert abs(e2.energy - e1.energy) > 1.0
    np.testing.assert_allclose(e2.charges.sum(), -1.0, atol=1e-6)
    assert e2.charges[[2, 3]].max() < -0.5  # both carboxylate oxygens negative


def test_alpb_water_solvation_of_ethanol_near_experiment(ethanol):
    """GFN2/ALPB(water) hydration free energy of ethanol vs experiment (-5.0 kcal/mol,
    FreeSolv/Mobley & Guthrie 2014), same geometry for both phases."""
    species = Species.from_molecule(ethanol)
    x = ethanol.conformers[0]
    gas = get_calculator("gfn2-xtb", species).compute(x).energy
    water = get_calculator("gfn2-xtb[solvent=water]", species).compute(x).energy
    assert water - gas == pytest.approx(-5.0, abs=2.5)


def test_radical_uses_unpaired_electrons():
    from ffparam.chem import Molecule

    methyl = Molecule.from_smiles("[CH3]").generate_conformers(1, seed=1)
    species = Species.from_molecule(methyl)
    assert species.multiplicity == 2
    result = get_calculator("gfn2-xtb", species).compute(methyl.conformers[0], gradient=True)
    assert np.isfinite(result.energy)
    bad = Species(species.numbers, species.charge, 1, species.bonds, species.key)
    with pytest.raises(InputError, match="inconsistent"):
        get_calculator("gfn2-xtb", bad)


@pytest.mark.parametrize(
    "method,atol",
    # DFT: the grid moves with the atoms but grid-response terms are not in the analytic
    # gradient (PySCF default), so agreement is ~1e-4 relative instead of ~1e-6.
    [("hf/sto-3g", 2e-3), ("b3lyp-d3bj/sto-3g", 3e-2)],
)
def test_pyscf_gradient_matches_finite_differences(water, method, atol):
    species = Species.from_molecule(water)
    calc = get_calculator(method, species)
    x = water.conformers[0] + np.array([0.0, 0.05, 0.0])  # off the minimum
    x[0, 0] += 0.08
    analytic = calc.compute(x, gradient=True).gradient
    numeric = fd_gradient(calc, x, h=1e-4)
    assert np.abs(analytic).max() > 1.0
    np.testing.assert_allclose(analytic, numeric, atol=atol)


@pytest.mark.parametrize("method", ["hf/sto-3g", "b3lyp-d3bj/sto-3g"])
def test_pyscf_analytic_hessian_matches_finite_differences_of_gradients(water, method):
    species = Species.from_molecule(water)
    calc = get_calculator(method, species)
    x = water.conformers[0]
    analytic = calc.compute(x, hessian=True).hessian
    numeric = calc.finite_difference_hessian(x, step=1e-3)
    assert analytic.shape == (9, 9)
    np.testing.assert_allclose(analytic, analytic.T, atol=1e-6)
    scale = np.abs(analytic).max()
    assert np.abs(analytic - numeric).max() < 2e-3 * scale


def test_d3bj_energy_and_gradient_match_dftd3_called_directly(ethanol):
    """E(B3LYP-D3BJ) - E(B3LYP) equals the simple-dftd3 two-body D3(BJ) energy."""
    from dftd3.interface import DispersionModel, RationalDampingParam

    species = Species.from_molecule(ethanol)
    x = ethanol.conformers[0]
    with_d3 = get_calculator("b3lyp-d3bj/sto-3g", species).compute(x, gradient=True)
    plain = get_calculator("b3lyp/sto-3g", species).compute(x, gradient=True)
    model = DispersionModel(np.asarray(species.numbers), x / BOHR_ANGSTROM)
    ref = model.get_dispersion(RationalDampingParam(method="b3lyp", atm=False), grad=True)
    assert ref["energy"] < 0
    assert with_d3.energy - plain.energy == pytest.approx(
        ref["energy"] * HARTREE_KCAL_MOL, abs=1e-6
    )
    np.testing.assert_allclose(
        with_d3.gradient - plain.gradient, ref["gradient"] * HARTREE_BOHR_TO_KCAL_MOL_A, atol=1e-6
    )


def test_d4_energy_matches_dftd4_called_directly(methanol):
    """E(PBE0-D4) - E(PBE0) equals the dftd4 energy (with its three-body term)."""
    from dftd4.interface import DampingParam, DispersionModel

    species = Species.from_molecule(methanol)
    x = methanol.conformers[0]
    with_d4 = get_calculator("pbe0-d4/sto-3g", species).compute(x).energy
    plain = get_calculator("pbe0/sto-3g", species).compute(x).energy
    model = DispersionModel(np.asarray(species.numbers), x / BOHR_ANGSTROM, charge=0)
    ref = model.get_dispersion(DampingParam(method="pbe0"), grad=False)["energy"]
    assert with_d4 - plain == pytest.approx(ref * HARTREE_KCAL_MOL, abs=1e-6)


def test_dzvp_is_the_dgauss_basis_openff_uses():
    """PySCF 'dzvp' = DGauss DZVP (Godbout et al. 1992), as in Psi4's dzvp.gbs: C/O
    [3s2p1d], H [2s], spherical d; leading exponents from that basis set file."""
    from pyscf import gto

    mol = gto.M(atom="C 0 0 0; O 0 0 1.2; H 0 1 -0.5; H 0 -1 -0.5", basis="dzvp", verbose=0)
    assert not mol.cart
    assert mol.nao == 14 + 14 + 2 + 2
    carbon = gto.basis.load("dzvp", "C")
    assert [shell[0] for shell in carbon] == [0, 0, 0, 1, 1, 2]
    assert carbon[0][1][0] == pytest.approx(2808.0645)
    assert gto.basis.load("dzvp", "H")[0][1][0] == pytest.approx(50.999178)
    assert gto.basis.load("dzvp", "O")[0][1][0] == pytest.approx(5222.9022)


def test_esp_matches_point_by_point_integrals_and_dipole_far_field(water):
    from pyscf import gto, scf

    from ffparam.reference.esp_grid import merz_kollman_points
    from ffparam.units import COULOMB_CONSTANT_KCAL_MOL_A_E2

    species = Species.from_molecule(water)
    calc = get_calculator("hf/sto-3g", species)
    x = water.conformers[0]
    points = merz_kollman_points(np.asarray(species.numbers), x)[:5]
    dipole = calc.compute(x).dipole
    axis = dipole / np.linalg.norm(dipole)
    far = np.array([200.0 * axis, -200.0 * axis])
    result = calc.compute(x, esp_points=np.concatenate([points, far]))
    # independent route: nuclear-attraction integrals <mu|1/|r-C||nu>, one point at a time
    atoms = [(z, tuple(p)) for z, p in zip(species.numbers, x)]
    mol = gto.M(atom=atoms, basis="sto-3g", verbose=0)
    mf = scf.RHF(mol)
    mf.kernel()
    dm = mf.make_rdm1()
    for point, value in zip(points, result.esp[:5]):
        with mol.with_rinv_origin(point / BOHR_ANGSTROM):
            electronic = np.einsum("ij,ij", mol.intor("int1e_rinv"), dm)
        r = np.linalg.norm(mol.atom_coords() - point / BOHR_ANGSTROM, axis=1)
        reference = (mol.atom_charges() / r).sum() - electronic
        assert value == pytest.approx(reference * HARTREE_KCAL_MOL, abs=1e-4)  # SCF conv_tol
    # 200 Angstrom along the dipole a neutral molecule looks like its dipole: V = k mu.r/r^3
    for point, value in zip(far, result.esp[5:]):
        expected = COULOMB_CONSTANT_KCAL_MOL_A_E2 * dipole @ point / np.linalg.norm(point) ** 3
        assert value == pytest.approx(expected, rel=0.01)


def test_merz_kollman_points_lie_outside_scaled_radii(ethanol):
    from ffparam.reference.esp_grid import MK_SCALES, merz_kollman_points, vdw_radius

    numbers = ethanol.atomic_numbers
    x = ethanol.conformers[0]
    points = merz_kollman_points(numbers, x)
    radii = np.array([vdw_radius(z) for z in numbers])
    d = np.linalg.norm(points[:, None] - x[None], axis=-1)
    assert (d >= MK_SCALES[0] * radii[None] - 1e-6).all()
    assert len(points) > 300


def test_scf_cycle_limit_raises_scf_convergence_error(water):
    species = Species.from_molecule(water)
    with pytest.raises(SCFConvergenceError, match="not converged"):
        get_calculator("hf/sto-3g[max_scf_cycles=1]", species).compute(water.conformers[0])
    with pytest.raises(SCFConvergenceError, match="not converged"):
        get_calculator("gfn2-xtb[max_scf_cycles=1]", species).compute(water.conformers[0])


def test_bad_method_specs_give_one_line_errors(water):
    species = Species.from_molecule(water)
    with pytest.raises(InputError, match="unknown method"):
        MethodSpec.parse("gfn3-xtb")
    with pytest.raises(InputError, match="cannot set up"):
        get_calculator("b3lyp/no-such-basis", species)
    with pytest.raises(InputError, match="unknown method option"):
        MethodSpec.parse("gfn2-xtb[colour=blue]")
    with pytest.raises(InputError, match="no ESP"):
        get_calculator("gfn2-xtb", species).compute(
            water.conformers[0], esp_points=np.zeros((1, 3))
        )
    with pytest.raises(UnsupportedChemistryError):
        get_calculator("gfn2-xtb", Species((118, 1), 0, 2, ((0, 1),), "x"))


def test_method_spec_canonical_form_is_order_independent():
    a = MethodSpec.parse("B3LYP-D3BJ/DZVP[max_scf_cycles=50,density_fit]")
    b = MethodSpec.parse("b3lyp-d3bj/dzvp[density_fit=true, max_scf_cycles=50]")
    assert a == b
    assert a.canonical() == "b3lyp-d3bj/dzvp[density_fit=true,max_scf_cycles=50]"
    assert (a.functional, a.dispersion, a.basis) == ("b3lyp", "d3bj", "dzvp")
    assert MethodSpec.parse("gfn2-xtb").canonical() == "gfn2-xtb"


def test_fresh_calculator_starts_from_nearest_stored_density_with_same_result(ethanol):
    """A new calculator (one Store job) starts its SCF from the converged density of the
    nearest geometry this process computed: fewer cycles, the same converged energy (to the
    SCF tolerance), and no guess from a geometry beyond GUESS_MAX_RMSD_A."""
    from ffparam.reference.methods import pyscf_backend as backend

    species = Species.from_molecule(ethanol)
    spec = "b3lyp/sto-3g[scf_tolerance=1e-10]"
    x0 = ethanol.conformers[0]
    rng = np.random.default_rng(0)
    x1 = x0 + rng.normal(0.0, 0.02, x0.shape)  # RMSD ~0.035 A
    backend.GUESSES.clear()
    cold = get_calculator(spec, species).compute(x1)
    backend.GUESSES.clear()
    get_calculator(spec, species).compute(x0)
    warm = get_calculator(spec, species).compute(x1)
    assert abs(warm.energy - cold.energy) < 1e-6  # kcal/mol; tolerance 1e-10 Hartree
    assert warm.details["scf_cycles"] < cold.details["scf_cycles"]
    far = x0 + np.array([2.0, 0.0, 0.0])  # a rigid shift of 2 A: no stored density used
    assert backend.GUESSES.nearest(backend.PySCFCalculator(MethodSpec.parse(spec),
                                                           species)._guess_key(), far) is None
    other = get_calculator("b3lyp/sto-3g", species)._guess_key()
    assert backend.GUESSES.nearest(other, x1) is None  # another method: its own densities
    backend.GUESSES.clear()
