"""The dielectric-constant formulas against independent computations: the fluctuation term
in Gaussian (cgs) units from hand-built dipole series, the box dipole summed by hand,
Clausius-Mossotti on closed-form cases, the blocked-jackknife error written out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ffparam.errors import InputError
from ffparam.liquid.dielectric import (
    box_dipoles,
    clausius_mossotti,
    dielectric_constant,
    fluctuation_term,
)

# cgs constants (CODATA 2018), independent of the SI path in the module
E_ESU = 4.80320471e-10  # statC
K_B_ERG = 1.380649e-16  # erg/K
ANGSTROM_CM = 1e-8


def gaussian_fluctuation(dipoles_e_a: np.ndarray, volumes_a3: np.ndarray, t: float) -> float:
    """4 pi (<M^2> - <M>^2) / (3 <V> k_B T) in cgs: M in statC cm, V in cm^3."""
    m = dipoles_e_a * E_ESU * ANGSTROM_CM
    var = np.mean((m**2).sum(1)) - (m.mean(0) ** 2).sum()
    return 4 * math.pi * var / (3 * np.mean(volumes_a3) * ANGSTROM_CM**3 * K_B_ERG * t)


def test_fluctuation_term_equals_the_gaussian_units_formula():
    rng = np.random.default_rng(3)
    dipoles = rng.normal(loc=[1.0, -2.0, 0.5], scale=[4.0, 5.0, 6.0], size=(5000, 3))
    volumes = rng.uniform(20000.0, 21000.0, size=5000)
    ours = fluctuation_term(dipoles, volumes, 298.15)
    assert ours == pytest.approx(gaussian_fluctuation(dipoles, volumes, 298.15), rel=1e-6)
    # and the closed form of a known variance: sum of the component variances 16+25+36
    exact_var = 77.0 * (E_ESU * ANGSTROM_CM) ** 2
    closed = 4 * math.pi * exact_var / (3 * 20500.0 * ANGSTROM_CM**3 * K_B_ERG * 298.15)
    assert ours == pytest.approx(closed, rel=0.05)  # sampling error of 5000 draws


def test_constant_dipole_has_no_fluctuation_and_eps_is_eps_inf():
    dipoles = np.tile([3.0, 0.0, -1.0], (40, 1))
    estimate = dielectric_constant(dipoles, np.full(40, 1e4), 300.0, eps_inf=1.7)
    assert estimate.fluctuation == pytest.approx(0.0, abs=1e-12)
    assert estimate.value == pytest.approx(1.7)
    assert estimate.error == pytest.approx(0.0, abs=1e-12)


def test_jackknife_error_with_two_blocks_is_half_the_spread():
    rng = np.random.default_rng(5)
    dipoles = rng.normal(scale=3.0, size=(200, 3))
    volumes = np.full(200, 8000.0)
    estimate = dielectric_constant(dipoles, volumes, 300.0, n_blocks=2)
    # leave-one-block-out with B = 2: sqrt((B-1)/B sum (t_b - mean)^2) = |t_1 - t_2| / 2
    t1 = fluctuation_term(dipoles[100:], volumes[100:], 300.0)
    t2 = fluctuation_term(dipoles[:100], volumes[:100], 300.0)
    assert estimate.error == pytest.approx(abs(t1 - t2) / 2, rel=1e-10)
    assert estimate.n_blocks == 2 and estimate.n_samples == 200


def test_box_dipole_is_the_charge_weighted_sum_and_translation_invariant():
    rng = np.random.default_rng(1)
    q = np.array([0.4, -0.4, 0.25, -0.1, -0.15])
    xyz = rng.normal(size=(3, 5, 3)) * 5
    expected = np.array([sum(q[i] * xyz[f, i] for i in range(5)) for f in range(3)])
    assert np.allclose(box_dipoles(xyz, q), expected)
    assert np.allclose(box_dipoles(xyz + np.array([7.0, -3.0, 11.0]), q), expected)
    with pytest.raises(InputError, match="neutral"):
        box_dipoles(xyz, q + 0.1)
    with pytest.raises(InputError, match="do not match"):
        box_dipoles(xyz[:, :4], q)


def test_clausius_mossotti_closed_forms():
    # 4 pi n alpha / 3 = 1/4  ->  eps = (1 + 1/2) / (3/4) = 2
    n = 0.01
    alpha = 0.25 * 3 / (4 * math.pi * n)
    assert clausius_mossotti(alpha, n) == pytest.approx(2.0, rel=1e-12)
    # inverse: (eps - 1)/(eps + 2) recovers 4 pi n alpha / 3
    eps = clausius_mossotti(10.5, 0.00622)
    assert (eps - 1) / (eps + 2) == pytest.approx(4 * math.pi * 0.00622 * 10.5 / 3, rel=1e-12)
    # dilute limit: eps - 1 -> 4 pi n alpha
    assert clausius_mossotti(10.0, 1e-7) - 1 == pytest.approx(4 * math.pi * 1e-6, rel=1e-5)
    assert clausius_mossotti(0.0, 0.01) == 1.0
    with pytest.raises(InputError, match="catastrophe"):
        clausius_mossotti(30.0, 0.01)


def test_bad_series_are_refused():
    with pytest.raises(InputError, match="volumes"):
        dielectric_constant(np.zeros((10, 3)), np.ones(9), 300.0)
    with pytest.raises(InputError, match="temperature"):
        dielectric_constant(np.zeros((10, 3)), np.ones(10), 0.0)
