"""Exponential reweighting of a finished liquid estimate to other LJ parameters.

The frames of one simulation at parameters theta carry their LJ frame sums
(:mod:`ffparam.liquid.lj`), so U(theta') - U(theta) of every frame is exact and cheap
(only LJ changes). With weights w_f ~ exp(-beta dU_f) (NPT: the PV term cancels),

    <rho>' = sum w_f rho_f,   <E>' = sum w_f (E_f + dU_f),

for the liquid and (separately) the gas phase, and Hvap' = <E_gas>' - <E_liq>'/N + RT.
The Kish effective sample size (sum w)^2 / sum w^2 says how far the estimate can be
trusted: a few effective frames out of hundreds mean the new parameters are too far away
and must be simulated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ffparam.liquid.box import box_density, molar_mass
from ffparam.liquid.lj import CutoffScheme, FrameStatistics, LJLayout, LJModel
from ffparam.liquid.properties import production_start
from ffparam.liquid.settings import LiquidSettings
from ffparam.liquid.simulate import load_trajectory
from ffparam.liquid.statistics import reweighting_weights
from ffparam.params.system import ParameterizedSystem
from ffparam.units import GAS_CONSTANT_KCAL_MOL_K


def reweight_liquid(directory: str | Path, system: ParameterizedSystem,
                    new_values: np.ndarray, settings: LiquidSettings,
                    temperature_k: float) -> dict[str, Any]:
    """Density (g/mL) and Hvap (kcal/mol) at ``new_values`` (full parameter vector of
    ``system``) from the frames of the finished run in ``directory`` (simulated at
    ``system``'s own parameters), with the effective sample sizes of both phases."""
    directory = Path(directory)
    beta = 1.0 / (GAS_CONSTANT_KCAL_MOL_K * temperature_k)
    layout = LJLayout.from_system(system)
    model = LJModel(layout, CutoffScheme(settings.cutoff_a, settings.switch_a,
                                         settings.dispersion_correction))
    old = system.parameters.vector()
    liquid = load_trajectory(directory / "liquid", settings.save_interval_ps)
    gas = load_trajectory(directory / "gas", settings.gas_save_interval_ps)
    densities = box_density(molar_mass(system.molecule), settings.n_molecules,
                            liquid.volumes)
    out: dict[str, Any] = {}
    means = {}
    for phase, trajectory, extra in (("liquid", liquid, densities), ("gas", gas, None)):
        stats = FrameStatistics.load(directory / f"{phase}_lj.npz")
        t0 = production_start(trajectory.energies, extra, detect=phase == "liquid")
        kept = FrameStatistics(stats.c12[t0:], stats.c6[t0:], stats.inverse_volume[t0:],
                               stats.n_molecules)
        delta = (model.energies(kept, new_values) - model.energies(kept, old)).numpy()
        weights, n_eff = reweighting_weights(delta, beta)
        means[phase] = float(weights @ (trajectory.energies[t0:] + delta))
        out[f"n_eff_{phase}"] = n_eff
        out[f"n_frames_{phase}"] = len(delta)
        if extra is not None:
            out["density"] = float(weights @ extra[t0:])
    out["hvap"] = (means["gas"] - means["liquid"] / settings.n_molecules
                   + GAS_CONSTANT_KCAL_MOL_K * temperature_k)
    return out
