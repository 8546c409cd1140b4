"""Statistics of correlated samples against cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from ffparam.errors import InputError
from ffparam.sample import (
    block_average,
    chain_average,
    dihedral_angles,
    effective_sample_size,
    integrated_autocorrelation_time,
    torsion_states,
)


def ar1(rho: float, n: int, n_chains: int, rng: np.random.Generator) -> np.ndarray:
    x = np.empty((n, n_chains))
    x[0] = rng.normal(size=n_chains) / np.sqrt(1 - rho**2)
    noise = rng.normal(size=(n, n_chains))
    for i in range(1, n):
        x[i] = rho * x[i - 1] + noise[i]
    return x


@pytest.mark.stochastic
def test_autocorrelation_time_of_ar1(seed: int) -> None:
    """AR(1) with rho 0.8 has tau = (1 + rho) / (1 - rho) = 9. The windowed estimator's
    relative standard deviation is about sqrt(2 (2M + 1) / N) (Sokal), M ~ 5 tau: with
    N = 8 chains x 20000 it is ~1.1%, so 10% is far beyond 5 sigma."""
    x = ar1(0.8, 20000, 8, np.random.default_rng(seed))
    tau = integrated_autocorrelation_time(x)
    assert tau == pytest.approx(9.0, rel=0.10)
    assert effective_sample_size(x) == pytest.approx(x.size / tau)


@pytest.mark.stochastic
def test_block_and_chain_errors_agree_with_tau(seed: int) -> None:
    """The standard error of the mean of one AR(1) series is sqrt(tau var / N); block
    averaging with blocks of 5000 >> tau recovers it (20 blocks: the error of an error is
    ~1/sqrt(2 * 19) = 16%, so a factor 2 either way is > 5 sigma)."""
    rng = np.random.default_rng(seed)
    x = ar1(0.8, 100000, 1, rng)[:, 0]
    exact = np.sqrt(9.0 / (1 - 0.8**2) / x.size)
    mean, error = block_average(x, 20)
    assert 0.5 * exact < error < 2.0 * exact
    assert abs(mean) < 5 * exact
    chains = rng.normal(size=(50, 40))
    mean, error = chain_average(chains)
    assert error == pytest.approx(chains.mean(axis=0).std(ddof=1) / np.sqrt(40))


def test_constant_series_and_bad_input() -> None:
    assert integrated_autocorrelation_time(np.ones(50)) == 1.0
    with pytest.raises(InputError, match="at least 2"):
        integrated_autocorrelation_time(np.ones(1))
    with pytest.raises(InputError, match="n_blocks"):
        block_average(np.ones(5), 10)
    with pytest.raises(InputError, match="n_chains"):
        chain_average(np.ones((5, 1)))


def test_dihedrals_and_states() -> None:
    """Known geometries: atom 3 turned from cis by t right-handedly about the 1 -> 2 axis
    (+x) has the dihedral t (IUPAC sign, the same as RDKit's GetDihedralDeg)."""
    frames = []
    for deg in (180.0, 60.0, -60.0):
        t = np.radians(deg)
        frames.append([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.5, 0.0, 0.0],
                       [1.5, np.cos(t), np.sin(t)]])
    angles = dihedral_angles(np.array(frames), np.array([[0, 1, 2, 3]]))[:, 0]
    np.testing.assert_allclose(angles, [180.0, 60.0, 300.0], atol=1e-9)
    assert torsion_states(angles).tolist() == [1, 0, 2]
    assert torsion_states(np.array([0.0, 120.0, 240.0, 359.9])).tolist() == [0, 0, 1, 2]
