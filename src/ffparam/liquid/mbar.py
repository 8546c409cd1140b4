"""Density and Hvap of one liquid at any LJ parameters from the frames of *several*
finished runs (MBAR), and the fit step that optimizes the liquid objective on them.

Each run r of a liquid was simulated at its own parameters theta_r (a round of the fit).
Only the LJ energy depends on theta, and the frame sums of :mod:`ffparam.liquid.lj` give
U_LJ(theta; x_n) of every saved frame n exactly. Pooling the frames of all K runs of one
phase, MBAR (Shirts & Chodera, J. Chem. Phys. 2008) gives the free energies f_k of the
sampled states from u_kn = beta U_LJ(theta_k; x_n) (everything else in the potential,
and PV in NPT, is the same for every state and cancels), and then the weight of frame n
at any theta:

    w_n(theta) ~ exp(-u(theta; x_n)) / sum_k N_k exp(f_k - u_kn),

so <rho>(theta) = sum w_n rho_n and <E>(theta) = sum w_n [E_n + U_LJ(theta) - U_LJ(own)]
for the liquid and the gas phase separately, Hvap = <E_gas> - <E_liq>/N + RT. The Kish
size (sum w)^2 / sum w^2 per phase says how well the pooled frames cover theta; far from
every sampled state it collapses and the estimate must not be trusted. Everything is
PyTorch and differentiable in theta, so the fit can optimize through it.

:func:`reweighted_step` minimizes the objective of :mod:`ffparam.liquid.objective`
(same residuals, denominators and priors) on these estimates, inside the fit's trust
radius, with every liquid's Kish sizes above a floor (the trust region that the data
itself sets), and, optionally, with no property predicted worse than at the start of the
fit by more than a margin times its error bar: the ForceBalance idea of re-using old
simulations, extended from one state to all of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ffparam.errors import InputError
from ffparam.liquid.box import box_density, molar_mass
from ffparam.liquid.lj import CutoffScheme, FrameStatistics, LJLayout, LJModel
from ffparam.liquid.properties import production_start
from ffparam.liquid.settings import LiquidSettings
from ffparam.liquid.simulate import load_trajectory
from ffparam.params.system import ParameterizedSystem
from ffparam.units import GAS_CONSTANT_KCAL_MOL_K

Tensor = torch.Tensor


@dataclass
class _Phase:
    stats: FrameStatistics  # pooled frames of all runs
    energies: Tensor  # (N,) total potential at the frame's own parameters, kcal/mol
    own_lj: Tensor  # (N,) U_LJ at the frame's own parameters
    log_denominator: Tensor  # (N,) log sum_k N_k exp(f_k - u_kn)
    observable: Tensor | None  # (N,) density g/mL (liquid) or None

    @property
    def n_frames(self) -> int:
        return len(self.energies)


def _solve_mbar(u_kn: np.ndarray, n_k: np.ndarray) -> np.ndarray:
    """Dimensionless free energies f_k (f_0 = 0) of the sampled states (pymbar)."""
    if len(n_k) == 1:
        return np.zeros(1)
    import pymbar

    return np.asarray(pymbar.MBAR(u_kn, n_k, verbose=False).f_k)


class MultiStateReweighter:
    """One liquid's density and Hvap at any parameters from several finished runs.

    Args:
        system: the parameterized molecule (its layout; its own values are not used).
        settings: the runs' settings (cutoff scheme, box size, save intervals).
        temperature_k: the runs' temperature.
        runs: (run directory, full parameter vector the run used) per finished run.
    """

    def __init__(self, system: ParameterizedSystem, settings: LiquidSettings,
                 temperature_k: float, runs: Sequence[tuple[str | Path, np.ndarray]]) -> None:
        if not runs:
            raise InputError("reweighting needs at least one finished run")
        self.system = system
        self.n_runs = len(runs)
        self.beta = 1.0 / (GAS_CONSTANT_KCAL_MOL_K * temperature_k)
        self.rt = GAS_CONSTANT_KCAL_MOL_K * temperature_k
        self.n_molecules = settings.n_molecules
        self.model = LJModel(LJLayout.from_system(system), CutoffScheme(
            settings.cutoff_a, settings.switch_a, settings.dispersion_correction))
        states = [np.asarray(v, dtype=float) for _, v in runs]
        mass = molar_mass(system.molecule)
        self.phases: dict[str, _Phase] = {}
        for phase, interval in (("liquid", settings.save_interval_ps),
                                ("gas", settings.gas_save_interval_ps)):
            parts = []
            for directory, values in runs:
                directory = Path(directory)
                trajectory = load_trajectory(directory / phase, interval)
                stats = FrameStatistics.load(directory / f"{phase}_lj.npz")
                if len(stats) != len(trajectory):
                    raise InputError(f"{directory}: {phase} frame sums do not match its frames")
                density = (box_density(mass, settings.n_molecules, trajectory.volumes)
                           if phase == "liquid" else None)
                t0 = production_start(trajectory.energies, density, detect=phase == "liquid")
                kept = FrameStatistics(stats.c12[t0:], stats.c6[t0:],
                                       stats.inverse_volume[t0:], stats.n_molecules)
                own = self.model.energies(kept, values)
                parts.append((kept, torch.as_tensor(trajectory.energies[t0:]), own,
                              None if density is None else torch.as_tensor(density[t0:])))
            pooled = FrameStatistics(np.concatenate([p[0].c12 for p in parts]),
                                     np.concatenate([p[0].c6 for p in parts]),
                                     np.concatenate([p[0].inverse_volume for p in parts]),
                                     parts[0][0].n_molecules)
            n_k = np.array([len(p[0]) for p in parts], dtype=float)
            with torch.no_grad():
                u_kn = np.stack([self.beta * self.model.energies(pooled, v).numpy()
                                 for v in states])
            f_k = _solve_mbar(u_kn - u_kn.min(), n_k)
            log_den = torch.logsumexp(torch.as_tensor(
                np.log(n_k)[:, None] + f_k[:, None] - (u_kn - u_kn.min())), dim=0)
            self.phases[phase] = _Phase(
                pooled, torch.cat([p[1] for p in parts]), torch.cat([p[2] for p in parts]),
                log_den - float(u_kn.min()),
                None if parts[0][3] is None else torch.cat([p[3] for p in parts]))

    def _weights(self, phase: _Phase, values: Tensor) -> tuple[Tensor, Tensor]:
        u_lj = self.model.energies(phase.stats, values)
        log_w = -self.beta * u_lj - phase.log_denominator
        w = torch.softmax(log_w, dim=0)
        return w, u_lj

    def predict(self, values: np.ndarray | Tensor) -> dict[str, Tensor]:
        """density (g/mL), hvap (kcal/mol), n_eff_liquid, n_eff_gas at the full parameter
        vector ``values`` (differentiable when ``values`` requires grad)."""
        values = torch.as_tensor(values, dtype=torch.float64)
        out: dict[str, Tensor] = {}
        means = {}
        for name, phase in self.phases.items():
            w, u_lj = self._weights(phase, values)
            means[name] = (w * (phase.energies - phase.own_lj + u_lj)).sum()
            out[f"n_eff_{name}"] = 1.0 / (w * w).sum()
            if phase.observable is not None:
                out["density"] = (w * phase.observable).sum()
        out["hvap"] = means["gas"] - means["liquid"] / self.n_molecules + self.rt
        return out


def reweighted_step(fit, references, reweighters: dict[str, MultiStateReweighter],
                    x_centre: np.ndarray, radius: float, lower: np.ndarray, upper: np.ndarray,
                    density_weight: float, hvap_weight: float, density_denominator_g_ml: float,
                    hvap_denominator_kcal_mol: float, use_priors: bool, min_eff_fraction: float,
                    start_deviations: dict[tuple[str, str], tuple[float, float]] | None = None,
                    margin: float = 0.0) -> tuple[np.ndarray, float, float, dict]:
    """Minimize the liquid objective on the MBAR estimates (see the module docstring).

    Args:
        fit: :class:`~ffparam.fit.parameters.FitParameters`; references: the training
            liquids; reweighters: keyed by liquid slug.
        x_centre: where the search starts; radius: |x - x_centre| limit.
        lower, upper: bounds of x.
        min_eff_fraction: every liquid's Kish size per phase must stay above this fraction
            of the frames of one run (the pooled frames over the number of runs).
        start_deviations: (slug, "density"|"hvap") -> (|computed - exp| at the start of the
            fit, its error); with it, each predicted |deviation| must stay below
            start + margin * error.

    Returns:
        (x, predicted objective at x, the same at ``x_centre``, per-liquid predictions at
        x).
    """
    from scipy.optimize import minimize

    n = len(references)

    def evaluate(x_np: np.ndarray, grad: bool):
        x = torch.as_tensor(x_np, dtype=torch.float64).requires_grad_(grad)
        rows, cons, preds = [], [], {}
        for ref in references:
            rw = reweighters[ref.slug]
            values = fit.system_values(rw.system, x)
            p = rw.predict(values)
            preds[ref.slug] = p
            for prop, exp, weight, denom in (
                    ("density", ref.density_g_ml, density_weight, density_denominator_g_ml),
                    ("hvap", ref.hvap_kcal_mol, hvap_weight, hvap_denominator_kcal_mol)):
                rows.append(math.sqrt(weight / n) / denom * (p[prop] - exp))
                if start_deviations is not None:
                    start, error = start_deviations[(ref.slug, prop)]
                    limit = start + margin * error
                    cons.append((limit - (p[prop] - exp).abs()) / max(limit, 1e-12))
            per_run = {ph: rw.phases[ph].n_frames / rw.n_runs for ph in ("liquid", "gas")}
            cons.append(p["n_eff_liquid"] / (min_eff_fraction * per_run["liquid"]) - 1.0)
            cons.append(p["n_eff_gas"] / (min_eff_fraction * per_run["gas"]) - 1.0)
        value = sum(r * r for r in rows)
        if use_priors:
            pr = fit.prior_residuals(x)
            value = value + (pr * pr).sum()
        cons.append((radius**2 - ((x - torch.as_tensor(x_centre)) ** 2).sum()) / radius**2)
        return x, value, torch.stack([torch.as_tensor(c) for c in cons]), preds

    def objective(x_np):
        x, value, _, _ = evaluate(x_np, True)
        (g,) = torch.autograd.grad(value, x)
        return float(value.detach()), g.numpy()

    def constraints(x_np):
        with torch.no_grad():
            return evaluate(x_np, False)[2].numpy()

    def constraint_jac(x_np):
        x, _, c, _ = evaluate(x_np, True)
        return torch.stack([torch.autograd.grad(ci, x, retain_graph=True)[0]
                            for ci in c]).numpy()

    bounds = list(zip(np.maximum(lower, x_centre - radius), np.minimum(upper, x_centre + radius)))
    result = minimize(objective, np.asarray(x_centre, dtype=float), jac=True, method="SLSQP",
                      bounds=bounds, constraints=[{"type": "ineq", "fun": constraints,
                                                   "jac": constraint_jac}],
                      options={"maxiter": 200, "ftol": 1e-9})
    x_best = result.x
    if np.any(constraints(x_best) < -1e-6):  # infeasible end point: stay at the centre
        x_best = np.asarray(x_centre, dtype=float)
    with torch.no_grad():
        _, value, _, preds = evaluate(x_best, False)
        at_centre = float(evaluate(np.asarray(x_centre, dtype=float), False)[1])
    return x_best, float(value), at_centre, {slug: {k: float(v) for k, v in p.items()}
                                             for slug, p in preds.items()}
