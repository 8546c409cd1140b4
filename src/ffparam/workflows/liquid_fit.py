"""``ffparam liquid fit``: Lennard-Jones parameters fitted to liquid densities and heats of
vaporization, as ForceBalance's Liquid target does (the resumable workflow; the algorithms
are in :mod:`ffparam.liquid`).

Each round simulates every training liquid at the current parameters (in parallel through
:func:`~ffparam.liquid.job.run_liquid_jobs`), turns the properties and their
fluctuation-formula derivatives into the objective, gradient and Gauss-Newton Hessian of
:mod:`ffparam.liquid.objective` (with Gaussian priors), and takes a trust-region step in
the mathematical parameter space of :class:`~ffparam.fit.parameters.FitParameters`
(sigma linear in units of its prior width, epsilon logarithmic). A round whose objective
is higher than the current centre's is rejected (:func:`~ffparam.liquid.objective.judge_step`):
the centre stays, the trust radius halves and a shorter step is simulated. ``iterations``
steps mean ``iterations + 1`` rounds (round 0 is the start force field); the result is
the best *simulated* round, so every figure reported after the fit was computed, not
predicted.

Held-out liquids are simulated in round 0 and again at the final parameters, never fitted.

Everything lives in the output directory: ``fit_state.json`` (the typed, versioned record
of :mod:`ffparam.liquid.fit_state`, rewritten atomically after every liquid; a rerun
resumes from it and from the simulations' own checkpoints), ``round_XXX/<liquid>/``
(simulations and ``result.json``), ``fitted.offxml`` (the start force field with the
fitted vdW parameters), ``fitted_vdw.yaml``, ``fit_history.json``, ``metrics.json``
(:mod:`ffparam.liquid.fit_metrics`) and ``plots/liquids.png``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ffparam.errors import CalculationError, InputError
from ffparam.fit.parameters import FitParameters
from ffparam.io.atomic import write_json_atomic
from ffparam.liquid.conformers import TorsionDrift, drift_message
from ffparam.liquid.data import LiquidReference
from ffparam.liquid.fit_metrics import fit_metrics
from ffparam.liquid.fit_state import (
    STATE_FILE,
    FitRound,
    FitValidation,
    LiquidFitState,
    fit_fingerprint,
    read_fit_state,
)
from ffparam.liquid.job import LiquidJob, run_liquid_jobs
from ffparam.liquid.objective import (
    ObjectiveTerms,
    evaluate_objective,
    judge_step,
    no_worse_step,
    trust_region_step,
)
from ffparam.liquid.parameters import free_vdw_parameters, parse_vdw_entry, vdw_ids_used
from ffparam.liquid.prepare import prepare_system
from ffparam.liquid.properties import LiquidResult
from ffparam.liquid.settings import LiquidFitSettings
from ffparam.params.parameter_set import ParameterSet
from ffparam.params.system import ParameterizedSystem
from ffparam.runtime import Executor, SerialExecutor

Record = FitRound | FitValidation


@dataclass
class LiquidFitOutcome:
    """What a liquid fit produced: its final state, the best round, the full fitted
    parameter set, ``metrics.json``'s data and the files written (by label)."""

    state: LiquidFitState
    best_round: int
    fitted: ParameterSet
    metrics: dict[str, Any]
    files: dict[str, Path]


def split_holdout(references: Sequence[LiquidReference], holdout: Sequence[str]
                  ) -> tuple[list[LiquidReference], list[LiquidReference]]:
    """(training, held-out) liquids; held-out names are matched case-insensitively.

    Raises:
        InputError: a held-out name is not among ``references``, or nothing is left to fit.
    """
    names = {h.strip().lower() for h in holdout}
    unknown = names - {r.name.lower() for r in references}
    if unknown:
        raise InputError(f"held-out liquid(s) not in the CSV: {', '.join(sorted(unknown))}")
    training = [r for r in references if r.name.lower() not in names]
    if not training:
        raise InputError("every liquid is held out; nothing to fit")
    return training, [r for r in references if r.name.lower() in names]


def open_state(path: Path, fingerprint: str) -> LiquidFitState:
    """The state in ``path`` (a fresh one if absent); refused if it belongs to another fit."""
    if not path.exists():
        return LiquidFitState(fingerprint)
    state = read_fit_state(path)
    if state.fingerprint != fingerprint:
        raise InputError(f"{path.parent} holds a fit with other liquids, parameters or "
                         "settings; use a new output directory")
    return state


class LiquidFit:
    """A resumable liquid fit in ``outdir`` (see the module docstring)."""

    def __init__(self, references: Sequence[LiquidReference], settings: LiquidFitSettings,
                 outdir: str | Path, log: Callable[[str], None] | None = None,
                 executor: Executor | None = None) -> None:
        from ffparam.io.files import check_output_dir

        self.settings = settings
        self.executor = executor or SerialExecutor()
        self.outdir = check_output_dir(outdir)
        self.log = log or (lambda text: None)
        self.training, self.holdout = split_holdout(references, settings.holdout)
        if not settings.params:
            raise InputError("no --params given; use e.g. --params 'vdw:*' or "
                             "'vdw:n16:sigma'")
        for entry in settings.params:
            parse_vdw_entry(entry)
        self.state_path = self.outdir / STATE_FILE
        self.state = open_state(self.state_path, fit_fingerprint(references, settings))
        self.systems = self._systems(references)
        self.forcefield = self._forcefield()
        master = self.forcefield.parameters.copy()
        used = set().union(*(vdw_ids_used(self.systems[r.slug]) for r in self.training))
        free_vdw_parameters(master, settings.params, used, settings.prior_sigma_a,
                            settings.prior_epsilon_kcal_mol)
        self.fit = FitParameters.from_free(master)
        self.fit.check_used([self.systems[r.slug] for r in self.training])
        self.labels = [str(g[0]) for g in self.fit.groups]
        self.lower, self.upper = self.fit.bounds_x()
        self.outdir.mkdir(parents=True, exist_ok=True)

    def _forcefield(self):
        from ffparam.assign.smirnoff import SmirnoffForceField

        try:
            return SmirnoffForceField.load(self.settings.forcefield)
        except InputError as exc:
            raise InputError(f"liquid fits write an .offxml and need a SMIRNOFF force field: "
                             f"{exc}") from None

    def _systems(self, references: Sequence[LiquidReference]) -> dict[str, ParameterizedSystem]:
        cache = self.outdir / "molecules"
        return {r.slug: prepare_system(r.smiles, self.settings.forcefield, self.settings.charges,
                                       name=r.slug, cache_file=cache / f"{r.slug}.json")
                for r in references}

    def _save(self) -> None:
        self.state.save(self.state_path)

    def _store(self, record: Record) -> None:
        """Put ``record`` (a round or the validation) into the state and save it."""
        if isinstance(record, FitRound):
            self.state = self.state.with_round(record)
        else:
            self.state = self.state.replace(validation=record)
        self._save()

    # ------------------------------------------------------------------ jobs
    def job(self, ref: LiquidReference, x: np.ndarray, directory: Path) -> LiquidJob:
        """The simulation of ``ref`` at parameters ``x`` in ``directory``."""
        system = self.systems[ref.slug]
        xt = torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.float64)
        values = self.fit.system_values(system, xt).numpy()
        moved = system.with_parameters(system.parameters.with_vector(values))
        own = set(system.parameters.keys())
        keys = [g[0] for g in self.fit.groups if g[0] in own]
        simulation = self.settings.simulation
        if not self.executor.in_process:
            simulation = simulation.replace(threads=self.executor.threads_per_worker)
        return LiquidJob(ref.name, moved, ref.temperature_k, ref.pressure_atm, directory,
                         simulation, density_guess_g_ml=ref.density_g_ml, gradient_keys=keys)

    def outcomes(self, references: Sequence[LiquidReference], x: np.ndarray, where: Path,
                 done: Sequence[str]) -> Iterator[tuple[LiquidReference, LiquidResult | None,
                                                        str | None]]:
        """Simulate the liquids whose slug is not in ``done`` at ``x`` (each in
        ``where/<slug>``, its ``result.json`` written); yields (liquid, result, error)."""
        todo = [r for r in references if r.slug not in done]
        jobs = [self.job(r, x, where / r.slug) for r in todo]
        by_dir = {str(j.directory): r for j, r in zip(jobs, todo)}
        for job, result, error in run_liquid_jobs(jobs, self.executor):
            ref = by_dir[str(job.directory)]
            if result is not None:
                write_json_atomic(Path(job.directory) / "result.json", result.to_json())
            self._log_outcome(ref, result, error)
            yield ref, result, error

    def _log_outcome(self, ref: LiquidReference, result: LiquidResult | None,
                     error: str | None) -> None:
        if result is None:
            self.log(f"  {ref.name}: FAILED: {error}")
            return
        self.log(f"  {ref.name}: density {result.density.value:.4f} +/- "
                 f"{result.density.error:.4f} g/mL (exp {ref.density_g_ml:.4f}), "
                 f"Hvap {result.hvap.value:.3f} +/- {result.hvap.error:.3f} kcal/mol "
                 f"(exp {ref.hvap_kcal_mol:.3f})")
        warning = drift_message(ref.name, [TorsionDrift.from_json(d)
                                           for d in result.torsion_drift or []])
        if warning:
            self.log(f"  WARNING {warning}")

    def simulate(self, references: Sequence[LiquidReference], x: np.ndarray, where: Path,
                 record: Record) -> Record:
        """Simulate the liquids not yet recorded in ``record``, storing (and saving) the
        record after each outcome; returns the completed record."""
        for ref, result, error in self.outcomes(references, x, where, list(record.results)):
            record = record.with_outcome(ref.slug, result, error)
            self._store(record)
        return record

    # ------------------------------------------------------------------ objective
    def objective(self, record: FitRound) -> ObjectiveTerms:
        """The objective, gradient and Hessian at a round's x from its results."""
        s = self.settings
        return evaluate_objective(self.fit, np.array(record.x), self.training,
                                  dict(record.results), s.density_weight, s.hvap_weight,
                                  s.density_denominator_g_ml, s.hvap_denominator_kcal_mol,
                                  s.use_priors)

    def _propose(self) -> FitRound:
        """The next round: a step from the centre within the last verdict's radius."""
        rounds = self.state.rounds
        centre = rounds[self.state.centre]
        radius = rounds[-1].next_trust_radius
        x0 = np.array(centre.x)
        s = self.settings
        if s.step == "reweighted":
            dx, predicted = self._reweighted_step(x0, radius)
        elif s.no_worse_margin is None:
            terms = self.objective(centre)
            dx, predicted = trust_region_step(terms.gradient, terms.hessian, radius,
                                              self.lower, self.upper, x0)
        else:
            dx, predicted = no_worse_step(self.objective(centre), radius, s.no_worse_margin,
                                          s.model_safety, self.lower, self.upper, x0)
        return FitRound(len(rounds), tuple((x0 + dx).tolist()), radius, self.state.centre,
                        step_norm=float(np.linalg.norm(dx)), predicted_change=float(predicted))

    def _start_deviations(self) -> dict[tuple[str, str], tuple[float, float]] | None:
        """(slug, property) -> (|start value - experiment|, its error) for the guard of a
        reweighted step (None without a guard)."""
        if self.settings.no_worse_margin is None:
            return None
        first = self.state.rounds[0].results
        start = {}
        for ref in self.training:
            result = first[ref.slug]
            start[(ref.slug, "density")] = (abs(result.density.value - ref.density_g_ml),
                                            result.density.error)
            start[(ref.slug, "hvap")] = (abs(result.hvap.value - ref.hvap_kcal_mol),
                                         result.hvap.error)
        return start

    def _reweighted_step(self, x0: np.ndarray, radius: float) -> tuple[np.ndarray, float]:
        """(dx, predicted change of the objective) from MBAR over every finished round."""
        from ffparam.liquid.mbar import MultiStateReweighter, reweighted_step

        s = self.settings
        done = [r for r in self.state.rounds if r.status == "done"
                and all(ref.slug in r.results for ref in self.training)]
        reweighters = {}
        for ref in self.training:
            system = self.systems[ref.slug]
            runs = [(self.outdir / f"round_{r.index:03d}" / ref.slug,
                     self.fit.system_values(system, torch.as_tensor(np.array(r.x))).numpy())
                    for r in done]
            reweighters[ref.slug] = MultiStateReweighter(system, s.simulation,
                                                         ref.temperature_k, runs)
        x, value, at_centre, predictions = reweighted_step(
            self.fit, self.training, reweighters, x0, radius, self.lower, self.upper,
            density_weight=s.density_weight, hvap_weight=s.hvap_weight,
            density_denominator_g_ml=s.density_denominator_g_ml,
            hvap_denominator_kcal_mol=s.hvap_denominator_kcal_mol, use_priors=s.use_priors,
            min_eff_fraction=s.min_eff_fraction, start_deviations=self._start_deviations(),
            margin=s.no_worse_margin or 0.0)
        for ref in self.training:
            p = predictions[ref.slug]
            self.log(f"  reweighted prediction {ref.name}: density {p['density']:.4f}, Hvap "
                     f"{p['hvap']:.3f} (Kish {p['n_eff_liquid']:.0f} liquid, "
                     f"{p['n_eff_gas']:.0f} gas frames)")
        return x - x0, value - at_centre

    # ------------------------------------------------------------------ rounds
    def run(self) -> LiquidFitOutcome:
        """All rounds, the held-out validation and the outputs."""
        for k in range(self.settings.iterations + 1):
            if k >= len(self.state.rounds):
                if k == 0:
                    self.state = self.state.replace(centre=0)
                    record = FitRound(0, (0.0,) * self.fit.size, self.settings.trust_radius,
                                      None)
                else:
                    record = self._propose()
                self._store(record)
            record = self.state.rounds[k]
            if record.status == "done":
                continue
            self.log(f"round {k}: simulating {len(self.training)} liquid(s)"
                     + (f" + {len(self.holdout)} held out" if k == 0 and self.holdout else ""))
            liquids = self.training + (self.holdout if k == 0 else [])
            record = self.simulate(liquids, np.array(record.x), self.outdir / f"round_{k:03d}",
                                   record)
            self._judge(record)
        best = self.state.centre
        self._validate(best)
        return self._write_outputs(best)

    def _judge(self, record: FitRound) -> None:
        """Score a simulated round, accept or reject it, and store the verdict."""
        k = record.index
        s = self.settings
        failed = [r.name for r in self.training if r.slug not in record.results]
        if failed:
            if k == 0:
                raise CalculationError(
                    f"start force field: simulation failed for {', '.join(failed)}: "
                    f"{'; '.join(record.errors.values())}")
            record = dataclasses.replace(
                record, accepted=False, status="done",
                next_trust_radius=max(record.trust_radius / 2, s.min_trust_radius))
            self._store(record)
            self.log(f"round {k}: rejected (failed: {', '.join(failed)})")
            return
        terms = self.objective(record)
        record = dataclasses.replace(
            record, objective=float(terms.value), objective_error=float(terms.error),
            data_objective=float(terms.data_value), prior_objective=float(terms.prior_value),
            gradient_norm=float(np.linalg.norm(terms.gradient)), status="done")
        if k == 0:
            record = dataclasses.replace(record, accepted=True,
                                         next_trust_radius=record.trust_radius)
        else:
            verdict = judge_step(terms.value - self.state.rounds[self.state.centre].objective,
                                 record.predicted_change, record.step_norm,
                                 record.trust_radius, s.min_trust_radius, s.max_trust_radius)
            record = dataclasses.replace(record, **dataclasses.asdict(verdict))
            if verdict.accepted:
                self.state = self.state.replace(centre=k)
        self._store(record)
        self.log(f"round {k}: objective {terms.value:.4f} +/- {terms.error:.4f} "
                 f"({'accepted' if record.accepted else 'rejected'}), next trust radius "
                 f"{record.next_trust_radius:.3g}")

    def _validate(self, best: int) -> None:
        """Simulate the held-out liquids at round ``best`` (nothing for round 0: round 0
        simulated them)."""
        if not self.holdout or best == 0:
            return
        validation = self.state.validation
        if validation is None or validation.round != best:
            validation = FitValidation(best)
        self._store(validation)
        self.log(f"validation: {len(self.holdout)} held-out liquid(s) at round {best}")
        x = np.array(self.state.rounds[best].x)
        self.simulate(self.holdout, x, self.outdir / f"validation_round_{best:03d}", validation)
        self._save()

    # ------------------------------------------------------------------ outputs
    def fitted_parameters(self, best: int) -> tuple[ParameterSet, ParameterSet]:
        """(full fitted parameter set, the changed vdW parameters only)."""
        full = self.fit.updated_parameters(np.array(self.state.rounds[best].x))
        changed = ParameterSet(settings=dict(full.settings))
        for pid in sorted({g[0].id for g in self.fit.groups}):
            par = full.get("vdW", pid)
            changed.add("vdW", type(par)(par.id, dict(par.values), dict(par.fixed)))
        return full, changed

    def _write_outputs(self, best: int) -> LiquidFitOutcome:
        from ffparam.liquid.plots import liquids_plot

        files: dict[str, Path] = {}
        full, changed = self.fitted_parameters(best)
        files["offxml"] = self.forcefield.to_offxml(self.outdir / "fitted.offxml", extra=changed)
        files["parameters"] = changed.save(self.outdir / "fitted_vdw.yaml")
        metrics = self.metrics(best)
        files["metrics"] = write_json_atomic(self.outdir / "metrics.json", metrics)
        files["history"] = write_json_atomic(self.outdir / "fit_history.json",
                                             self.history(best))
        plots = self.outdir / "plots"
        plots.mkdir(exist_ok=True)
        files["plot"] = liquids_plot(plots / "liquids.png", metrics["liquids"])
        return LiquidFitOutcome(self.state, best, full, metrics, files)

    def history(self, best: int) -> dict[str, Any]:
        """``fit_history.json``: every round's summary with its physical parameters and
        each liquid's [value, error] of density (g/mL) and Hvap (kcal/mol)."""
        rounds = []
        for record in self.state.rounds:
            x = torch.as_tensor(np.array(record.x), dtype=torch.float64)
            summary = record.summary()
            summary["parameters"] = dict(zip(self.labels, self.fit.physical(x).numpy().tolist()))
            summary["liquids"] = {
                slug: {"density_g_ml": [r.density.value, r.density.error],
                       "hvap_kcal_mol": [r.hvap.value, r.hvap.error]}
                for slug, r in record.results.items()}
            rounds.append(summary)
        return {"forcefield": self.settings.forcefield, "parameters": self.labels,
                "best_round": best, "options": self.settings.fingerprint_data(),
                "rounds": rounds}

    def metrics(self, best: int) -> dict[str, Any]:
        """``metrics.json`` (:func:`~ffparam.liquid.fit_metrics.fit_metrics`)."""
        return fit_metrics(self.state, best, self.training, self.holdout, self.outdir,
                           {slug: system.molecule for slug, system in self.systems.items()},
                           self.settings.simulation.save_interval_ps)


def fit_liquids(references: Sequence[LiquidReference], settings: LiquidFitSettings,
                outdir: str | Path, log: Callable[[str], None] | None = None,
                executor: Executor | None = None) -> LiquidFitOutcome:
    """Fit LJ parameters to ``references`` (see the module docstring); the simulations run
    on ``executor`` (default: one after another in this process)."""
    return LiquidFit(references, settings, outdir, log, executor).run()
