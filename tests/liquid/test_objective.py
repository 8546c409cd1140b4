"""Liquid objective: the analytic gradient equals finite differences of the objective
under the linear response the derivatives describe (sigma linear, epsilon log
transform, priors included), and --params parsing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ffparam.assign.smirnoff import SmirnoffForceField
from ffparam.errors import InputError
from ffparam.fit.parameters import FitParameters
from ffparam.liquid.data import LiquidReference
from ffparam.liquid.objective import evaluate_objective
from ffparam.liquid.parameters import free_vdw_parameters
from ffparam.liquid.properties import LiquidResult
from ffparam.liquid.settings import DENSITY_DENOMINATOR_G_ML, HVAP_DENOMINATOR_KCAL_MOL
from ffparam.liquid.statistics import Estimate

IDS = {"C": "[#6X4:1]", "O": "[#8X2H1+0:1]"}


def _master():
    master = SmirnoffForceField.load("sage").parameters.copy()
    free_vdw_parameters(master, ["vdw:n16", "vdw:[#8X2H1+0:1]:sigma"],
                        set(IDS.values()), prior_sigma_a=0.1, prior_epsilon_kcal_mol=0.05)
    return master


def _result(name: str, density: float, hvap: float, grads: dict[str, tuple[float, float]]):
    keys = list(grads)
    return LiquidResult(
        name=name, smiles="C", temperature_k=298.15, pressure_atm=1.0, n_molecules=10,
        density=Estimate(density, 0.003), hvap=Estimate(hvap, 0.05),
        liquid_energy_per_molecule=Estimate(0, 0), gas_energy=Estimate(0, 0), keys=keys,
        values=[0.0] * len(keys),
        density_gradient=np.array([grads[k][0] for k in keys]),
        density_gradient_error=np.zeros(len(keys)),
        hvap_gradient=np.array([grads[k][1] for k in keys]),
        hvap_gradient_error=np.zeros(len(keys)))


def test_gradient_is_the_derivative_of_the_objective():
    fit = FitParameters.from_free(_master())
    labels = [str(g[0]) for g in fit.groups]
    assert labels == ["vdW/[#6X4:1]/epsilon", "vdW/[#6X4:1]/sigma",
                      "vdW/[#8X2H1+0:1]/sigma"]
    refs = [LiquidReference("a", "C", 298.15, 1.0, 0.80, 9.0),
            LiquidReference("b", "CC", 298.15, 1.0, 1.00, 7.0)]
    grads = {"a": {labels[0]: (0.3, 40.0), labels[1]: (-0.2, 3.0), labels[2]: (-0.4, -2.0)},
             "b": {labels[0]: (0.1, 25.0), labels[1]: (-0.5, 1.0)}}
    base = {"a": (0.77, 9.4), "b": (1.03, 6.1)}
    start = fit.physical(torch.zeros(3, dtype=torch.float64)).numpy()

    def linear_results(x: np.ndarray) -> dict[str, LiquidResult]:
        p = fit.physical(torch.as_tensor(x, dtype=torch.float64)).numpy()
        out = {}
        for slug, (rho, hvap) in base.items():
            g = grads[slug]
            d_rho = sum(g[k][0] * (p[i] - start[i]) for i, k in enumerate(labels) if k in g)
            d_h = sum(g[k][1] * (p[i] - start[i]) for i, k in enumerate(labels) if k in g)
            out[slug] = _result(slug, rho + d_rho, hvap + d_h, g)
        return out

    x0 = np.array([0.1, -0.3, 0.2])
    terms = evaluate_objective(fit, x0, refs, linear_results(x0))
    # by hand: 2 liquids, weights 1, ForceBalance denominators, plus the priors
    res = linear_results(x0)
    by_hand = sum(((res[r.slug].density.value - r.density_g_ml) / DENSITY_DENOMINATOR_G_ML)
                  ** 2 / 2 + ((res[r.slug].hvap.value - r.hvap_kcal_mol)
                              / HVAP_DENOMINATOR_KCAL_MOL) ** 2 / 2 for r in refs)
    assert terms.data_value == pytest.approx(by_hand, rel=1e-12)
    assert terms.prior_value > 0
    h = 1e-6
    for i in range(3):
        step = np.zeros(3)
        step[i] = h
        up = evaluate_objective(fit, x0 + step, refs, linear_results(x0 + step)).value
        down = evaluate_objective(fit, x0 - step, refs, linear_results(x0 - step)).value
        assert terms.gradient[i] == pytest.approx((up - down) / (2 * h), rel=1e-6)
    assert np.all(np.linalg.eigvalsh(terms.hessian) >= -1e-9)
    assert terms.error > 0


def test_params_parsing():
    master = SmirnoffForceField.load("sage").parameters.copy()
    keys = free_vdw_parameters(master, ["vdw:n1*:sigma", "vdw:[#6X4:1]"], {"[#6X4:1]"},
                               0.1, 0.05)
    # n1* globs file ids n1, n10-n19 (sigma only); the SMIRKS entry frees both fields
    assert {k.id for k in keys if k.field == "sigma"} >= {"[#1:1]", "[#6X4:1]", "[#8X2H1+0:1]"}
    assert {k.field for k in keys if k.id == "[#6X4:1]"} == {"epsilon", "sigma"}
    assert {k.field for k in keys if k.id != "[#6X4:1]"} == {"sigma"}
    assert master.free[("vdW", "[#6X4:1]", "sigma")].transform == "linear"
    assert master.free[("vdW", "[#6X4:1]", "epsilon")].transform == "log"
    everything = free_vdw_parameters(SmirnoffForceField.load("sage").parameters.copy(),
                                     ["vdw:*"], {"[#6X4:1]", "[#8X2H1+0:1]"}, 0.1, 0.05)
    assert len(everything) == 4
    for bad, message in (("bonds:[#6:1]", "only Lennard-Jones"), ("vdw:n999", "no vdW"),
                         ("vdw:n-tip3p-H", "zero well depth")):
        with pytest.raises(InputError, match=message):
            free_vdw_parameters(SmirnoffForceField.load("sage").parameters.copy(), [bad],
                                set(), 0.1, 0.05)
