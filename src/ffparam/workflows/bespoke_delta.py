"""Delta-learning of a ``HIGH//LOW`` torsion profile from a few actively chosen HIGH points
(``ffparam bespoke --method HIGH//LOW --high-budget N``).

Per rotor: the torsion drive runs with LOW (constrained optimizations through the Store);
the correction dE = E_HIGH - E_LOW on its geometries is learned by the periodic GP of
:mod:`ffparam.fit.profile_gp`, which asks for HIGH single points one at a time where the
relative corrected profile is least certain, until every point's sigma is below
``high_sigma_kcal_mol`` or ``high_budget`` HIGH calculations are spent. Each HIGH single
point is an ordinary ``energy`` record of HIGH on a LOW geometry (the same job as a full
``HIGH//LOW`` drive asks for), run through ``run_jobs``: a rerun answers every point from
the Store, asks the same points in the same order (the GP is deterministic) and computes
nothing. A failed HIGH point is recorded as failed, counted against the budget, and the GP
goes on without it; the report lists it.

The rotor's profile becomes E_LOW + the GP mean (kcal/mol), and the fit weighs each point
by ``s0^2 / (s0^2 + sigma^2)`` with ``s0`` = :data:`FIT_SIGMA_FLOOR_KCAL_MOL`, so points
the GP is unsure of pull less.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ffparam.chem import Molecule
from ffparam.fit.profile_gp import ActiveDeltaResult, active_delta
from ffparam.fit.profile_gp_branches import BranchDeltaResult, active_delta_branches
from ffparam.fit.targets.torsion import TorsionProfile
from ffparam.reference.compute import RunSummary
from ffparam.reference.drive_branches import DriveBranches, drive_branches
from ffparam.reference.relax_high import (
    RelaxedPoint,
    RelaxSettings,
    parse_high_relax,
    relax_points,
)
from ffparam.report.bespoke_metrics import DeltaInfo
from ffparam.workflows.bespoke_scans import RotorScan, drive_rotor

FIT_SIGMA_FLOOR_KCAL_MOL = 0.1
"""Error a bespoke torsion fit is expected to keep anyway, kcal/mol (fits fed DFT drives
reach 0.02-0.3): a point with this GP sigma gets half the weight of a computed one."""


@dataclass
class DeltaScan:
    """The Delta-learned correction of one rotor's LOW drive.

    Attributes:
        high_method, low_method: canonical methods.
        budget: HIGH calculations allowed; threshold_kcal_mol: the sigma goal.
        angles: (n, d) grid angles, degrees (the profile's order).
        low_energies: (n,) LOW energies, kcal/mol.
        learned: what the active loop did (:class:`~ffparam.fit.profile_gp.ActiveDeltaResult`).
        summary: the HIGH jobs (asked, from the Store, computed, failed).
        geometries: (n, n_atoms, 3) the profile's geometries when HIGH chose among
            conformer branches (:mod:`ffparam.reference.drive_branches`), else None (the
            LOW drive's own); branches: the candidates; branch_of_point: (n,) the branch
            the profile takes at each grid point (0: the LOW drive's own);
            branch_result: the loop over the candidates.
        high_relax: how the HIGH points were relaxed (``none``, ``newton``, ``steps:N``:
            :mod:`ffparam.reference.relax_high`); relaxed: grid index -> its
            :class:`~ffparam.reference.relax_high.RelaxedPoint` (empty for ``none``).
        time_limit_s: the wall seconds the HIGH rounds were allowed (None: no limit).
    """

    high_method: str
    low_method: str
    budget: int
    threshold_kcal_mol: float
    angles: np.ndarray
    low_energies: np.ndarray
    learned: ActiveDeltaResult
    summary: RunSummary = field(default_factory=RunSummary)
    high_relax: str = "none"
    relaxed: dict[int, RelaxedPoint] = field(default_factory=dict)
    geometries: np.ndarray | None = None
    branches: DriveBranches | None = None
    branch_of_point: np.ndarray | None = None
    branch_result: BranchDeltaResult | None = None
    time_limit_s: float | None = None

    @property
    def sigma(self) -> np.ndarray:
        """(n,) relative sigma of the corrected profile, kcal/mol."""
        return self.learned.posterior.relative_sigma

    @property
    def corrected(self) -> np.ndarray:
        """(n,) E_LOW + predicted dE, kcal/mol."""
        return self.low_energies + self.learned.posterior.mean

    def levels(self) -> list[str]:
        """Per grid point: ``high`` (computed), ``failed`` (HIGH asked, failed) or ``low``
        (LOW + the GP's correction)."""
        computed, failed = set(self.learned.values), set(self.learned.failed)
        return ["high" if i in computed else "failed" if i in failed else "low"
                for i in range(len(self.angles))]


def delta_rotor(molecule: Molecule, bond: tuple[int, int], settings, store, executor,
                fragment=None) -> RotorScan:
    """The LOW drive of ``bond`` (on ``fragment`` if given) with its profile replaced by the
    Delta-learned ``HIGH//LOW`` one (``settings``: a
    :class:`~ffparam.workflows.bespoke.BespokeSettings` with ``high_budget``)."""
    from ffparam.reference.spec import CompositeSpec

    spec = CompositeSpec.parse(settings.method)
    rotor = drive_rotor(molecule, bond, spec.low.canonical(), settings.spacing_deg, store,
                        executor, settings.retry_failed, settings.progress, fragment)
    if not rotor.usable:
        return rotor
    target = molecule if fragment is None else fragment.molecule
    return correct_rotor(rotor, target, spec, settings, store, executor)


def correct_rotor(rotor: RotorScan, target: Molecule, spec, settings, store,
                  executor) -> RotorScan:
    """``rotor`` (a usable LOW scan of ``target``, 1-D or 2-D) with its profile replaced
    by LOW + the GP of HIGH - LOW learned by :func:`learn_correction` (``spec``: the
    :class:`~ffparam.reference.spec.CompositeSpec`); no HIGH point succeeded: an error."""
    profile = rotor.profile
    delta = learn_correction(target, profile, spec, settings, store, executor)
    for part in (delta.summary, *(() if delta.branches is None else (delta.branches.summary,))):
        rotor.n_jobs += part.n_jobs
        rotor.n_cached += part.n_cached
        rotor.n_failed += part.n_failed
    rotor.delta = delta
    if delta.learned.posterior is None:
        rotor.error = (f"no {spec.high.canonical()} single point succeeded "
                       f"({delta.learned.n_asked} tried)")
        rotor.profile = None
        return rotor
    geometries = profile.geometries if delta.geometries is None else delta.geometries
    rotor.profile = TorsionProfile(profile.dihedrals, profile.angles, geometries,
                                   delta.corrected, profile.label)
    return rotor


def learn_correction(target: Molecule, profile: TorsionProfile, spec, settings, store,
                     executor) -> DeltaScan:
    """Run the active loop of :func:`~ffparam.fit.profile_gp.active_delta` on ``profile``
    (LOW energies and geometries of ``target``), HIGH single points through ``store``."""
    from ffparam.reference.records import Species

    species = Species.from_molecule(target)
    summary = RunSummary()
    low = np.asarray(profile.energies, dtype=float)
    relax_mode = getattr(settings, "high_relax", "none")
    steps = parse_high_relax(relax_mode)
    relaxed: dict[int, RelaxedPoint] = {}

    def evaluate(indices: list[int]) -> list[float]:
        if steps is not None:
            return relaxed_delta(species, profile, spec, RelaxSettings(steps=steps),
                                 indices, settings, store, executor, summary, relaxed)
        return high_minus_low(species, spec, profile.geometries, low, indices, settings,
                              store, executor, summary)

    if steps is None and getattr(settings, "high_branches", False) \
            and profile.angles.shape[1] == 1:
        branches = drive_branches(target, profile.dihedrals[0], profile.angles[:, 0],
                                  profile.geometries, low, spec.low, store, executor,
                                  retry_failed=settings.retry_failed)
        if branches.n_branches > 1:
            return _learn_on_branches(branches, profile, spec, settings, species, store,
                                      executor, summary)
    time_limit_s = high_time_limit_s(settings)
    learned = active_delta(profile.angles, evaluate, settings.high_budget,
                           settings.high_sigma_kcal_mol, first=int(np.argmin(low)),
                           time_limit_s=time_limit_s)
    return DeltaScan(spec.high.canonical(), spec.low.canonical(), settings.high_budget,
                     settings.high_sigma_kcal_mol, profile.angles, low, learned, summary,
                     relax_mode, relaxed, time_limit_s=time_limit_s)


def high_time_limit_s(settings) -> float | None:
    """The wall seconds one rotor's Delta loop may spend on HIGH rounds
    (``settings.high_minutes``; None: no limit)."""
    minutes = getattr(settings, "high_minutes", None)
    return None if minutes is None else 60.0 * float(minutes)


def high_minus_low(species, spec, geometries: np.ndarray, low: np.ndarray,
                   indices: list[int], settings, store, executor,
                   summary: RunSummary) -> list[float]:
    """dE = E_HIGH - E_LOW (kcal/mol, NaN where HIGH failed) of ``geometries[i]`` for each
    ``i`` in ``indices``: HIGH ``energy`` single points through ``store`` (``low``: (n,)
    LOW energies, kcal/mol); the jobs are counted in ``summary``."""
    from ffparam.reference.compute import run_jobs
    from ffparam.reference.jobs import Job
    from ffparam.reference.records import Task

    jobs = [Job.create(species, spec.high, Task.parse("energy"), geometries[i])
            for i in indices]
    records, part = run_jobs(jobs, store, executor, settings.retry_failed,
                             settings.progress, f"  {spec.high.canonical()} energy")
    summary.merge(part)
    return [r.energy - low[i] if r.ok else float("nan") for i, r in zip(indices, records)]


def _learn_on_branches(branches: DriveBranches, profile: TorsionProfile, spec, settings,
                       species, store, executor, summary: RunSummary) -> DeltaScan:
    """The active loop over conformer branches
    (:func:`~ffparam.fit.profile_gp_branches.active_delta_branches`): HIGH single points
    on any branch's LOW geometry; the profile follows the branch HIGH prefers."""
    low = branches.low_energies

    def evaluate(indices: list[int]) -> list[float]:
        return high_minus_low(species, spec, branches.geometries, low, indices, settings,
                              store, executor, summary)

    n_grid = len(profile.energies)
    time_limit_s = high_time_limit_s(settings)
    result = active_delta_branches(branches.grid_index, branches.branch,
                                   profile.angles[branches.grid_index], low, evaluate,
                                   settings.high_budget, settings.high_sigma_kcal_mol,
                                   first=int(np.argmin(low[:n_grid])),
                                   time_limit_s=time_limit_s)
    learned = result.on_grid(branches.grid_index)
    winners = result.winners if result.winners is not None else np.arange(n_grid)
    return DeltaScan(spec.high.canonical(), spec.low.canonical(), settings.high_budget,
                     settings.high_sigma_kcal_mol, profile.angles, low[winners], learned,
                     summary, "none", {}, branches.geometries[winners], branches,
                     branches.branch[winners], result, time_limit_s)


def relaxed_delta(species, profile: TorsionProfile, spec, relax: RelaxSettings,
                  indices: list[int], settings, store, executor, summary: RunSummary,
                  relaxed: dict[int, RelaxedPoint]) -> list[float]:
    """dE = relaxed HIGH estimate - E_LOW (kcal/mol, NaN where it failed) at grid points
    ``indices`` of ``profile`` (:func:`~ffparam.reference.relax_high.relax_points`, the
    scanned dihedrals held); each point's :class:`RelaxedPoint` goes into ``relaxed``."""
    points = relax_points(species, spec.high, spec.low, profile.geometries[indices],
                          profile.dihedrals, relax, store, executor, settings.retry_failed,
                          settings.progress, summary)
    low = np.asarray(profile.energies, dtype=float)
    out = []
    for i, point in zip(indices, points):
        relaxed[i] = point
        out.append(point.energy_kcal_mol - low[i] if point.ok else float("nan"))
    return out


def weigh_by_sigma(target, delta: DeltaScan) -> None:
    """Point weights of a torsion target built on a Delta-learned profile:
    ``s0^2 / (s0^2 + sigma^2)`` (module docstring), on the target's kept points."""
    floor = FIT_SIGMA_FLOOR_KCAL_MOL**2
    weights = floor / (floor + delta.sigma**2)
    target.sqrt_w = torch.as_tensor(np.sqrt(weights[target.keep]), dtype=torch.float64)


def delta_info(delta: DeltaScan, plot: Path | None = None) -> DeltaInfo:
    """The metrics of a Delta-learned rotor (kcal/mol, degrees); draws ``plot`` (the
    correction, its +/-1 sigma band and the HIGH points) when given."""
    learned = delta.learned
    levels = delta.levels()
    info = DeltaInfo(
        high_method=delta.high_method, low_method=delta.low_method, budget=delta.budget,
        threshold_kcal_mol=delta.threshold_kcal_mol, n_high=len(learned.computed),
        n_failed=len(learned.failed), n_cached=delta.summary.n_cached,
        high_angles=[delta.angles[i].tolist() for i in learned.computed],
        failed_angles=[delta.angles[i].tolist() for i in learned.failed],
        levels=levels, stop=learned.stop, sigma_history=list(learned.history),
        high_relax=delta.high_relax, high_seconds=float(sum(learned.round_seconds)),
        time_limit_s=delta.time_limit_s)
    if delta.relaxed:
        info.relax_kcal_mol = [delta.relaxed[i].energy_kcal_mol
                               - delta.relaxed[i].energy_sp_kcal_mol for i in learned.computed]
        info.n_high_calculations = sum(p.n_high for p in delta.relaxed.values())
    if delta.branches is not None:
        info.n_branches = delta.branches.n_branches
        info.branch_of_point = [int(b) for b in delta.branch_of_point]
        held = delta.branches.held[delta.branch_result.winners]
        info.held_points = [float(a) for a in delta.angles[held, 0]]
    if learned.posterior is None:
        return info
    mean = learned.posterior.mean
    info.correction = (mean - mean.mean()).tolist()
    info.sigma = delta.sigma.tolist()
    info.max_sigma = float(delta.sigma.max())
    info.amplitude_kcal_mol = learned.amplitude_kcal_mol
    info.length_scales = list(learned.length_scales)
    if plot is not None and delta.angles.shape[1] == 1:
        info.plot = f"plots/{correction_plot(plot, delta).name}"
    elif plot is not None and delta.angles.shape[1] == 2:  # a 2-D drive: heat maps
        from ffparam.workflows.bespoke_delta2d import delta_2d_plot

        info.plot = f"plots/{delta_2d_plot(plot, delta).name}"
    return info


def correction_plot(path: Path, delta: DeltaScan) -> Path:
    """dE relative to its grid mean (kcal/mol) vs angle: the GP mean with its +/-1 sigma
    band (relative), the computed HIGH points and the failed ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ffparam.io.atomic import savefig_atomic

    learned = delta.learned
    mean = learned.posterior.mean - learned.posterior.mean.mean()
    order = np.argsort(delta.angles[:, 0])
    x, y, s = delta.angles[order, 0], mean[order], delta.sigma[order]
    fig, ax = plt.subplots(figsize=(5.5, 3.2), dpi=110)
    ax.grid(alpha=0.3)
    ax.plot(x, y, color="tab:purple", label="GP correction")
    ax.fill_between(x, y - s, y + s, color="tab:purple", alpha=0.2, linewidth=0,
                    label="\u00b11\u03c3 (GP, relative)")
    high = learned.computed
    ax.plot(delta.angles[high, 0], mean[high], "o", color="black", markersize=5,
            label=f"{delta.high_method} computed ({len(high)})")
    if learned.failed:
        ax.plot(delta.angles[learned.failed, 0], mean[learned.failed], "x", color="red",
                markersize=7, label=f"failed ({len(learned.failed)})")
    ax.set(xlabel="dihedral angle (degrees)", ylabel="E_HIGH - E_LOW, relative (kcal/mol)",
           title=f"{delta.high_method} - {delta.low_method} correction")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    try:
        return savefig_atomic(fig, path)
    finally:
        plt.close(fig)


def delta_warnings(rotors: list[RotorScan]) -> list[str]:
    """One warning per rotor with failed HIGH points, and per rotor whose budget ran out
    before its sigma reached the threshold."""
    out = []
    for r in rotors:
        delta = getattr(r, "delta", None)
        if delta is None:
            continue
        name = f"rotor {r.bond[0]}-{r.bond[1]}"
        learned = delta.learned
        if learned.failed:
            angles = [delta.angles[i].tolist() for i in learned.failed]
            out.append(f"{name}: {delta.high_method} single point(s) failed at {angles}; the "
                       "correction was learned without them")
        if learned.posterior is not None and learned.stop != "threshold":
            out.append(f"{name}: {learned.n_asked} {delta.high_method} calculation(s) spent "
                       f"({learned.stop}); max predicted sigma "
                       f"{delta.sigma.max():.2f} kcal/mol is above the "
                       f"{delta.threshold_kcal_mol:g} kcal/mol threshold")
    return out


def delta_reference_note(settings) -> str:
    """What a Delta-learned bespoke fit is measured against."""
    from ffparam.reference.spec import CompositeSpec

    spec = CompositeSpec.parse(settings.method)
    high, low = spec.high.canonical(), spec.low.canonical()
    return (f"Torsion profiles are {low} constrained-optimized drives corrected by a "
            f"Gaussian-process model of {high} - {low} learned from at most "
            f"{settings.high_budget} {high} single points per rotor (chosen where the "
            f"corrected profile was least certain, goal sigma "
            f"{settings.high_sigma_kcal_mol:g} kcal/mol); RMSE is measured against those "
            f"corrected profiles. Valence and optimized geometries use {low}; held-out "
            f"conformers are scored against {high}."
            + ("" if getattr(settings, "high_relax", "none") == "none" else
               f" Each {high} point was relaxed from its {low} geometry with the scanned "
               f"dihedral held ({settings.high_relax}): one {high} gradient per step and "
               f"the {low} Hessian as the model Hessian."))


__all__ = [
    "FIT_SIGMA_FLOOR_KCAL_MOL",
    "DeltaScan",
    "correct_rotor",
    "correction_plot",
    "delta_info",
    "delta_reference_note",
    "delta_rotor",
    "delta_warnings",
    "high_minus_low",
    "learn_correction",
    "relaxed_delta",
    "weigh_by_sigma",
]
