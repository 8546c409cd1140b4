"""Metropolis Monte Carlo against exactly known Boltzmann distributions.

Statistical argument used throughout: each chain contributes only its last frame, taken
after an equilibration many autocorrelation times long, so the frames of different chains
are independent draws (chains share nothing but the start geometry). A histogram of N such
draws against exact bin probabilities has Pearson's chi-square with (bins - 1) degrees of
freedom; the bound is its 1 - 1e-7 quantile, so a correct sampler fails for about one seed
in ten million, while a biased one (a wrong sign, a missing Jacobian, an asymmetric
proposal) fails at these sample sizes for every seed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.mm.engine import MMEngine
from ffparam.sample import MCSettings, TorsionMoves, dihedral_angles, rotate_about_bond, run_mc
from ffparam.units import BOLTZMANN_KCAL_MOL_K
from tests.sample.models import (
    CHAIN,
    chain_energy,
    chain_moves,
    exact_bin_probabilities,
    harmonic_pair_energy,
)

EDGES = np.linspace(0.0, 360.0, 25)
P_FAIL = 1e-7


def chi_square_ok(angles_deg: np.ndarray, expected_p: np.ndarray) -> tuple[float, float]:
    """(chi-square of the histogram of ``angles_deg`` against ``expected_p``, its bound)."""
    counts = np.histogram(np.mod(angles_deg, 360.0), bins=EDGES)[0]
    expected = expected_p * counts.sum()
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    return chi2, float(stats.chi2.isf(P_FAIL, len(counts) - 1))


def last_frames(result) -> np.ndarray:
    """(n_temperatures, n_chains, n_atoms, 3): each chain's last kept frame."""
    return result.positions[:, -1]


@pytest.mark.stochastic
def test_one_dimensional_torsion_model(seed: int) -> None:
    """4000 independent chains of torsion moves on V(phi): the histogram of phi is the
    analytic exp(-V/kT) (bonds and angles never change, so phi has uniform measure)."""
    settings = MCSettings(n_chains=4000, n_steps=20, equilibration_steps=120, stride=20,
                          torsion_fraction=1.0, adapt_every=20, seed=seed)
    result = run_mc(chain_energy, CHAIN, settings, moves=chain_moves())
    phi = dihedral_angles(last_frames(result)[0], np.array([[0, 1, 2, 3]]))[:, 0]
    chi2, bound = chi_square_ok(phi, exact_bin_probabilities(EDGES, 300.0))
    assert chi2 < bound
    assert 0.05 < result.acceptance["torsion"][0] < 0.95
    assert np.isnan(result.acceptance["cartesian"][0])  # torsion moves only


@pytest.mark.stochastic
def test_detailed_balance_flux(seed: int) -> None:
    """Detailed balance means no net probability current: in equilibrium the number of
    transitions i -> j equals that of j -> i between every pair of the three wells.
    For a reversible chain the difference is a sum of +-1 cycle currents of mean zero and
    variance at most the number of transitions, so 5 sqrt(N_ij + N_ji) bounds it (a
    kernel that rotates one way more often than the other circulates and fails)."""
    settings = MCSettings(n_chains=400, n_steps=400, equilibration_steps=100, stride=1,
                          torsion_fraction=1.0, seed=seed)
    result = run_mc(chain_energy, CHAIN, settings, moves=chain_moves())
    phi = dihedral_angles(result.frames, np.array([[0, 1, 2, 3]]))[..., 0]
    state = np.digitize(phi, [120.0, 240.0])
    before, after = state[:-1].ravel(), state[1:].ravel()
    for i, j in ((0, 1), (1, 2), (0, 2)):
        forward = int(((before == i) & (after == j)).sum())
        backward = int(((before == j) & (after == i)).sum())
        assert forward + backward > 1000  # the test has power
        assert abs(forward - backward) < 5 * np.sqrt(forward + backward)


@pytest.mark.stochastic
def test_cartesian_moves_harmonic_pair(seed: int) -> None:
    """Cartesian moves on E = k/2 (r - r0)^2 of two atoms: p(r) ~ r^2 exp(-E/kT) (the r^2
    Jacobian shifts <r> by ~2 sigma^2 / r0 = 0.012 A, about 7 standard errors here).
    <r> of 2000 independent chains within 5 standard errors of the exact mean."""
    k, r0 = 100.0, 1.0
    settings = MCSettings(n_chains=2000, n_steps=50, equilibration_steps=300, stride=50,
                          torsion_fraction=0.0, cartesian_step_a=0.05, seed=seed)
    start = np.array([[0.0, 0.0, 0.0], [r0, 0.0, 0.0]])
    result = run_mc(harmonic_pair_energy(k, r0), start, settings)
    x = last_frames(result)[0]
    r = np.linalg.norm(x[:, 1] - x[:, 0], axis=-1)
    grid = np.linspace(1e-6, r0 + 2.0, 200001)
    weight = grid**2 * np.exp(-0.5 * k * (grid - r0) ** 2 / (BOLTZMANN_KCAL_MOL_K * 300.0))
    weight /= weight.sum()
    mean = (grid * weight).sum()
    sd = np.sqrt(((grid - mean) ** 2 * weight).sum())
    assert abs(r.mean() - mean) < 5 * sd / np.sqrt(r.size)
    assert 0.1 < result.acceptance["cartesian"][0] < 0.8


@pytest.mark.stochastic
def test_replica_exchange_every_temperature_exact(seed: int) -> None:
    """With exchanges between 300, 600 and 1200 K each temperature keeps its own
    Boltzmann distribution (chi-square per temperature as above), swaps are accepted."""
    temps = (300.0, 600.0, 1200.0)
    settings = MCSettings(n_chains=3000, n_steps=20, equilibration_steps=120, stride=20,
                          torsion_fraction=1.0, replica_temperatures_k=temps[1:],
                          exchange_every=2, seed=seed)
    result = run_mc(chain_energy, CHAIN, settings, moves=chain_moves())
    assert result.positions.shape[:3] == (3, 1, 3000)
    for t, temp in enumerate(temps):
        phi = dihedral_angles(last_frames(result)[t], np.array([[0, 1, 2, 3]]))[:, 0]
        chi2, bound = chi_square_ok(phi, exact_bin_probabilities(EDGES, temp))
        assert chi2 < bound, temp
    assert ((result.exchange_acceptance > 0.05) & (result.exchange_acceptance < 1)).all()
    assert "exchange with next" in result.summary()


@pytest.fixture(scope="module")
def butane():
    molecule = Molecule.from_smiles("CCCC", name="butane").generate_conformers(1, seed=7)
    return assign_parameters(molecule, "sage", "gasteiger")


@pytest.mark.stochastic
def test_butane_central_torsion_matches_engine_profile(butane, seed: int) -> None:
    """The MM engine as the energy: torsion moves about the C-C-C-C bond only (terminal
    rotors off, no Cartesian moves) leave one coordinate, so the exact distribution of
    the dihedral is exp(-E(rotated start)/kT) on a fine grid of rotations of the start."""
    moves = TorsionMoves.from_topology(butane.topology, include_terminal_rotors=False)
    assert moves.n_bonds == 1
    start = butane.molecule.conformers[0]
    settings = MCSettings(n_chains=2000, n_steps=10, equilibration_steps=100, stride=10,
                          torsion_fraction=1.0, seed=seed)
    result = run_mc(butane, start, settings, moves=moves)
    quad = np.array([[0, 1, 2, 3]])
    phi = dihedral_angles(last_frames(result)[0], quad)[:, 0]
    grid = torch.linspace(0.0, 2 * np.pi, 7200 + 1, dtype=torch.float64)[:-1]
    n = grid.shape[0]
    rotated = rotate_about_bond(torch.as_tensor(start).expand(n, -1, -1),
                                torch.as_tensor(moves.axis).expand(n, -1),
                                torch.as_tensor(moves.moving).expand(n, -1), grid)
    energy = MMEngine(butane).compute(rotated, terms=False).energy.numpy()
    grid_phi = dihedral_angles(rotated.numpy(), quad)[:, 0]
    weight = np.exp(-(energy - energy.min()) / (BOLTZMANN_KCAL_MOL_K * 300.0))
    expected = np.histogram(grid_phi, bins=EDGES, weights=weight)[0]
    chi2, bound = chi_square_ok(phi, expected / expected.sum())
    assert chi2 < bound


def test_steps_adapt_in_equilibration_only(butane) -> None:
    """Without equilibration the steps stay as set; with it they move towards the
    target acceptance, and production frames come every ``stride`` steps."""
    start = butane.molecule.conformers[0]
    fixed = run_mc(butane, start, MCSettings(n_chains=4, n_steps=30, equilibration_steps=0,
                                             stride=10, seed=3))
    assert fixed.step_sizes["torsion"][0] == pytest.approx(120.0)
    assert fixed.step_sizes["cartesian"][0] == pytest.approx(0.02)
    assert fixed.positions.shape == (1, 3, 4, butane.n_atoms, 3)
    adapted = run_mc(butane, start, MCSettings(n_chains=4, n_steps=10, equilibration_steps=50,
                                               seed=3))
    assert adapted.step_sizes["cartesian"][0] != pytest.approx(0.02)
    np.testing.assert_allclose(adapted.energies[0, -1],
                               MMEngine(butane).compute(adapted.frames[-1]).energy.numpy())


def test_bad_input(butane) -> None:
    with pytest.raises(InputError, match="torsion_step_deg"):
        MCSettings(torsion_step_deg=200.0)
    with pytest.raises(InputError, match="replica_temperatures_k"):
        MCSettings(temperature_k=300.0, replica_temperatures_k=(250.0,))
    with pytest.raises(InputError, match="torsion_fraction"):
        MCSettings(torsion_fraction=1.5)
    with pytest.raises(InputError, match="n_chains"):
        MCSettings.from_dict({"n_chains": 0})
    with pytest.raises(InputError, match="start positions have 3 atoms, the system 14"):
        run_mc(butane, np.zeros((3, 3)))
    with pytest.raises(InputError, match="start positions must be"):
        run_mc(harmonic_pair_energy(1.0, 1.0), np.zeros((2, 2)))
    with pytest.raises(InputError, match="torsion moves are for 4 atoms"):
        run_mc(butane, butane.molecule.conformers[0], MCSettings(n_chains=2, n_steps=1),
               moves=chain_moves())
