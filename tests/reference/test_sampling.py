"""Samplers: conformer minima, MD through ASE, normal modes checked against PySCF."""

from __future__ import annotations

import numpy as np
import pytest

from ffparam.chem import Molecule
from ffparam.energy.ase import EnergyModelCalculator
from ffparam.reference import Species, Store, get_calculator
from ffparam.reference.sampling import (
    normal_modes,
    sample_conformers,
    sample_md,
    sample_normal_modes,
)
from ffparam.units import BOLTZMANN_KCAL_MOL_K, HARTREE_BOHR2_TO_KCAL_MOL_A2


def test_conformers_are_distinct_minima_sorted_by_energy(tmp_path):
    butanol = Molecule.from_smiles("CCCCO", name="butanol")
    with Store(tmp_path / "c.db") as store:
        result = sample_conformers(butanol, n_conformers=6, store=store)
        again = sample_conformers(butanol, n_conformers=6, store=store)
    assert result.complete and len(result.records) >= 2
    energies = result.energies
    assert np.all(np.diff(energies) >= 0)
    calc = get_calculator("gfn2-xtb", Species.from_molecule(butanol))
    for geometry in result.geometries:  # minima: small gradient with an independent call
        _, gradient = calc.energy_and_gradient(geometry)
        assert np.abs(gradient).max() < 0.6
    assert again.summary.n_computed == 0 and np.allclose(again.energies, energies)


@pytest.mark.stochastic
def test_ase_calculator_conserves_energy_in_nve(ethanol, seed):
    """Velocity-Verlet with the reference Calculator in ASE conserves total energy: the forces
    are the gradient of the energies (units eV, eV/A consistent)."""
    from ase import Atoms, units
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet

    species = Species.from_molecule(ethanol)
    atoms = Atoms(numbers=list(species.numbers), positions=ethanol.conformers[0])
    atoms.calc = EnergyModelCalculator(get_calculator("gfn2-xtb[scf_tolerance=1e-9]", species))
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(seed))
    dynamics = VelocityVerlet(atoms, 0.25 * units.fs)
    totals = []
    for _ in range(200):
        dynamics.run(1)
        totals.append(atoms.get_total_energy())
    # Verlet at 0.25 fs (36 steps per O-H period) keeps the total energy to ~(omega dt)^2 / 8
    # = 0.4 % of a mode's energy: ~1e-4 of the kinetic scale for any thermal start
    kinetic_scale = 1.5 * len(atoms) * units.kB * 300
    assert np.ptp(totals) < 0.01 * kinetic_scale
    assert atoms.get_potential_energy() == pytest.approx(
        get_calculator("gfn2-xtb[scf_tolerance=1e-9]", species).compute(atoms.positions).energy
        / 23.060547830619,
        rel=1e-9,
    )


@pytest.mark.stochastic
def test_langevin_md_frames_are_recorded_and_reproducible(tmp_path, ethanol, seed):
    with Store(tmp_path / "md.db") as store:
        result = sample_md(
            ethanol, 400.0, n_frames=4, stride=10, equilibration_steps=20, store=store,
            seed=seed,
        )
        again = sample_md(
            ethanol, 400.0, n_frames=4, stride=10, equilibration_steps=20, store=store,
            seed=seed,
        )
    assert result.complete and result.forces.shape == (4, 9, 3)
    assert again.summary.n_computed == 0  # same seed, same frames, all from the store
    assert len({r.key for r in result.records}) == 4
    assert np.all(result.energies > result.energies.min() - 1e-9)


def test_normal_modes_match_pyscf_harmonic_analysis(water):
    """Wavenumbers from our kcal/mol/A^2 Hessian vs PySCF's thermo.harmonic_analysis on
    its own Hartree/Bohr^2 Hessian (HF/STO-3G water at its minimum)."""
    from pyscf import gto, scf
    from pyscf.hessian import thermo

    from ffparam.reference.optimize import optimize_geometry

    species = Species.from_molecule(water)
    calc = get_calculator("hf/sto-3g", species)
    x0 = optimize_geometry(calc, water.conformers[0]).geometry
    mol = gto.M(
        atom=[(z, tuple(p)) for z, p in zip(species.numbers, x0)], basis="sto-3g", verbose=0
    )
    mf = scf.RHF(mol).run()
    raw = mf.Hessian().kernel()
    ref = thermo.harmonic_analysis(mol, raw)["freq_wavenumber"]
    ours, modes, k = normal_modes(
        raw.transpose(0, 2, 1, 3).reshape(9, 9) * HARTREE_BOHR2_TO_KCAL_MOL_A2, water.masses, x0
    )
    np.testing.assert_allclose(np.sort(ours), np.sort(np.real(ref)), atol=0.01)
    assert modes.shape == (3, 3, 3) and np.all(k > 0)


@pytest.mark.stochastic
def test_normal_mode_sampling_energies_follow_the_harmonic_estimate(tmp_path, ethanol, seed):
    """At 50 K the reference energy rise of sampled frames is close to the harmonic
    energy the sampler put into them (an independent check of modes and amplitudes).

    The sampler's harmonic energy of a frame is 1.5 N kT (1 - c), c ~ Beta(1, 21) (the
    spare Dirichlet component): relative sd 4.5 % a frame, 1.3 % for the mean of 12, so
    rel = 0.1 is > 7 sigma for any seed. At 50 K the anharmonic part is a few per cent."""
    with Store(tmp_path / "nm.db") as store:
        result = sample_normal_modes(ethanol, n_frames=12, temperature_k=50.0, store=store,
                                     seed=seed)
    assert result.complete
    rise = result.energies - result.info["minimum_energy"]
    harmonic = result.info["harmonic_energies"]
    expected_mean = 1.5 * ethanol.n_atoms * BOLTZMANN_KCAL_MOL_K * 50.0 * 21 / 22
    assert harmonic.mean() == pytest.approx(expected_mean, rel=0.1)
    assert np.mean(rise) == pytest.approx(np.mean(harmonic), rel=0.15)
    assert np.median(np.abs(rise / harmonic - 1)) < 0.2
    assert len(result.info["wavenumbers"]) == 3 * ethanol.n_atoms - 6


@pytest.mark.stochastic
def test_mm_md_frames_labelled_by_the_reference_are_thermal_and_reproducible(tmp_path, ethanol,
                                                                              seed):
    """OpenMM Langevin MD with Sage (Gasteiger charges), GFN2-xTB labels: the mean
    reference energy above the GFN2 minimum is of the equipartition size (3N-6)/2 kT
    (6.3 kcal/mol at 300 K for ethanol), and a rerun with the same seed hits the store."""
    from ffparam.reference import compute
    from ffparam.reference.sampling import sample_mm_md

    # the rise of a thermal frame is ~ kT/2 chi^2 with 3N - 6 = 21 degrees of freedom
    # (relative sd 0.31, 0.13 for the mean of 6 frames): the 0.3-3 x window is > 5 sigma
    # even with the Sage / GFN2 difference of the potential energy surfaces
    kwargs = dict(charges="gasteiger", stride=200, equilibration_steps=500, seed=seed)
    with Store(tmp_path / "mm.db") as store:
        result = sample_mm_md(ethanol, 300.0, 6, store=store, **kwargs)
        again = sample_mm_md(ethanol, 300.0, 6, store=store, **kwargs)
    assert result.complete and again.summary.n_computed == 0
    (minimum,) = compute(ethanol, method="gfn2-xtb", task="optimize")
    rise = result.energies - minimum.energy
    equipartition = 0.5 * (3 * ethanol.n_atoms - 6) * BOLTZMANN_KCAL_MOL_K * 300.0
    assert rise.min() > 0
    assert 0.3 * equipartition < rise.mean() < 3.0 * equipartition
