"""``ffparam liquid fit``: Lennard-Jones parameters fitted to liquid densities and heats of
vaporization, as ForceBalance's Liquid target does.

Each round simulates every training liquid at the current parameters (in parallel through
:func:`~ffparam.liquid.job.run_liquid_jobs`), turns the properties and their
fluctuation-formula derivatives into the objective, gradient and Gauss-Newton Hessian of
:mod:`ffparam.liquid.objective` (with Gaussian priors), and takes a trust-region step in
the mathematical parameter space of :class:`~ffparam.fit.parameters.FitParameters`
(sigma linear in units of its prior width, epsilon logarithmic). A round whose objective
is higher than the current centre's is rejected: the centre stays, the trust radius
halves and a shorter step is simulated. ``iterations`` steps mean ``iterations + 1``
rounds (round 0 is the start force field); the result is the best *simulated* round, so
every figure reported after the fit was computed, not predicted.

Held-out liquids are simulated in round 0 and again at the final parameters, never fitted.

Everything lives in the output directory: ``fit_state.json`` (the client's record,
rewritten atomically after every liquid; a rerun resumes from it and from the
simulations' own checkpoints), ``round_XXX/<liquid>/`` (simulations and ``result.json``),
``fitted.offxml`` (the start force field with the fitted vdW parameters),
``fitted_vdw.yaml``, ``fit_history.json``, ``metrics.json`` and ``plots/liquids.png``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ffparam.chem import Molecule
from ffparam.errors import CalculationError, InputError
from ffparam.fit.parameters import FitParameters
from ffparam.liquid.conformers import TorsionDrift, drift_message, stored_drift
from ffparam.liquid.data import LiquidReference
from ffparam.liquid.job import LiquidJob, run_liquid_jobs
from ffparam.liquid.objective import (
    DENSITY_DENOMINATOR_G_ML,
    HVAP_DENOMINATOR_KCAL_MOL,
    ObjectiveTerms,
    evaluate_objective,
    no_worse_step,
    trust_region_step,
)
from ffparam.liquid.prepare import prepare_system
from ffparam.liquid.properties import LiquidResult
from ffparam.liquid.settings import LiquidSettings, fit_round_settings
from ffparam.params.parameter_set import FreeSpec, ParameterKey, ParameterSet
from ffparam.params.system import ParameterizedSystem
from ffparam.runtime import Executor, SerialExecutor

STATE_FILE = "fit_state.json"
VDW_FIELDS = ("epsilon", "sigma")


@dataclass
class LiquidFitOptions:
    """Options of a liquid fit (units: g/mL, kcal/mol, Angstrom; radii in x units).

    Attributes:
        forcefield: start SMIRNOFF force field (name or .offxml path).
        charges: charge method of every molecule.
        params: ``vdw:PATTERN[:FIELDS]`` entries (see :func:`free_vdw_parameters`).
        iterations: trust-region steps (rounds = iterations + 1).
        trust_radius, min_trust_radius, max_trust_radius: radius of the step in x.
        density_weight, hvap_weight, density_denominator_g_ml, hvap_denominator_kcal_mol:
            objective weights and denominators.
        prior_sigma_a, prior_epsilon_kcal_mol: Gaussian prior widths (also the x scale of
            sigma). use_priors: include them.
        no_worse_margin: when set, every step is guarded (:func:`no_worse_step`): no
            training liquid's density or Hvap may be predicted to move away from
            experiment by more than this many of its own error bars. None: plain step.
        model_safety: the guard assumes the true change may be this many times the linear
            prediction.
        step: ``linear`` (the trust-region or guarded step on the fluctuation-formula
            Jacobian) or ``reweighted`` (:func:`~ffparam.liquid.mbar.reweighted_step`: the
            objective minimized on MBAR estimates from the frames of every simulated
            round, with the guard, if set, on those estimates).
        min_eff_fraction: for ``reweighted``, each phase's Kish size must stay above this
            fraction of one run's frames.
        holdout: liquid names simulated but not fitted.
        settings: the simulation settings of every liquid (default
            :func:`~ffparam.liquid.settings.fit_round_settings`).
    """

    forcefield: str = "sage"
    charges: str = "am1bcc"
    params: tuple[str, ...] = ("vdw:*",)
    iterations: int = 3
    trust_radius: float = 0.3
    min_trust_radius: float = 0.02
    max_trust_radius: float = 1.0
    density_weight: float = 1.0
    hvap_weight: float = 1.0
    density_denominator_g_ml: float = DENSITY_DENOMINATOR_G_ML
    hvap_denominator_kcal_mol: float = HVAP_DENOMINATOR_KCAL_MOL
    prior_sigma_a: float = 0.1
    prior_epsilon_kcal_mol: float = 0.05
    use_priors: bool = True
    no_worse_margin: float | None = None
    model_safety: float = 1.5
    step: str = "linear"
    min_eff_fraction: float = 0.2
    holdout: tuple[str, ...] = ()
    settings: LiquidSettings = field(default_factory=fit_round_settings)

    def __post_init__(self) -> None:
        if self.iterations < 0:
            raise InputError(f"iterations must not be negative, got {self.iterations}")
        for name in ("trust_radius", "min_trust_radius", "max_trust_radius", "prior_sigma_a",
                     "prior_epsilon_kcal_mol", "model_safety", "density_denominator_g_ml",
                     "hvap_denominator_kcal_mol"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("density_weight", "hvap_weight"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.no_worse_margin is not None and self.no_worse_margin < 0:
            raise InputError(f"no_worse_margin must not be negative (None: no guard), got "
                             f"{self.no_worse_margin}")
        if not 0 < self.min_eff_fraction <= 1:
            raise InputError(f"min_eff_fraction must lie in (0, 1], got "
                             f"{self.min_eff_fraction}")
        if self.step not in ("linear", "reweighted"):
            raise InputError(f"unknown step {self.step!r}: use 'linear' or 'reweighted'")

    def fingerprint_data(self) -> dict[str, Any]:
        data = asdict(self)
        # how later steps are proposed, not what the recorded rounds mean
        for name in ("iterations", "no_worse_margin", "model_safety", "step", "min_eff_fraction"):
            data.pop(name)
        data["settings"].pop("threads")
        data["settings"].pop("platform")
        # sampling options at their plain values are left out, so stores written before
        # they existed keep their fingerprint
        for name, plain in (("gas_replicas", 1), ("box_conformers", 0)):
            if data["settings"].get(name) == plain:
                data["settings"].pop(name)
        if "gas_replicas" not in data["settings"]:
            data["settings"].pop("gas_max_temperature_k")
        return data


@dataclass
class LiquidFitOutcome:
    """What a liquid fit produced."""

    state: dict[str, Any]
    best_round: int
    fitted: ParameterSet
    metrics: dict[str, Any]
    files: dict[str, Path]


# ---------------------------------------------------------------------- parameters
def free_vdw_parameters(master: ParameterSet, entries: Sequence[str], used_ids: set[str],
                        prior_sigma: float, prior_epsilon: float) -> list[ParameterKey]:
    """Mark vdW fields free from ``vdw:PATTERN[:FIELDS]`` entries.

    PATTERN is a SMIRKS of the vdW section, a file id (``n16``; globs allowed, ``n1*``) or
    ``*``/``all`` (every vdW parameter some fitted liquid uses); FIELDS is ``epsilon``,
    ``sigma`` or both comma-separated (default both). Sigma gets a linear transform scaled
    by its prior width, epsilon a log transform (stays positive).
    """
    import fnmatch

    if not entries:
        raise InputError("no --params given; use e.g. --params 'vdw:*' or 'vdw:n16:sigma'")
    section = master.sections.get("vdW", {})
    made: list[ParameterKey] = []
    for entry in entries:
        pattern, fields = parse_vdw_entry(entry)
        if pattern in ("*", "all"):
            ids = [pid for pid in section if pid in used_ids]
        elif pattern in section:
            ids = [pattern]
        else:
            ids = [pid for pid, par in section.items()
                   if fnmatch.fnmatchcase(str(par.fixed.get("offxml_id", "")), pattern)]
        if not ids:
            raise InputError(f"--params {entry!r}: no vdW parameter of the force field matches "
                             f"{pattern!r}")
        for pid in ids:
            for name in fields:
                value = section[pid].values[name]
                spec = (FreeSpec(0.1, None, prior_sigma, "linear") if name == "sigma"
                        else FreeSpec(0.0, None, prior_epsilon, "log"))
                if name == "epsilon" and value <= 0:
                    raise InputError(f"vdW {pid} has epsilon {value}; a zero well depth "
                                     "cannot be fitted")
                key = ParameterKey("vdW", pid, name)
                master.free[key] = spec
                made.append(key)
    return made


def parse_vdw_entry(entry: str) -> tuple[str, list[str]]:
    """``vdw:PATTERN[:FIELDS]`` -> (PATTERN, fields); raises for anything but vdW."""
    text = entry.strip()
    if not text.lower().startswith("vdw:") or len(text) == 4:
        raise InputError(f"--params {entry!r}: only Lennard-Jones parameters are fitted to "
                         "liquids; use vdw:PATTERN[:epsilon,sigma]")
    pattern, fields = text[4:], list(VDW_FIELDS)
    head, _, tail = pattern.rpartition(":")
    if head and tail and all(t.strip() in (*VDW_FIELDS, "*") for t in tail.split(",")):
        pattern = head
        fields = [t.strip() for t in tail.split(",")]
        fields = list(VDW_FIELDS) if "*" in fields else list(dict.fromkeys(fields))
    return pattern, fields


def vdw_ids_used(system: ParameterizedSystem) -> set[str]:
    keys = system.parameters.keys()
    return {keys[i].id for i in system.nonbonded.sigma_index.tolist()}


# ---------------------------------------------------------------------- state
def _fingerprint(references: Sequence[LiquidReference], options: LiquidFitOptions) -> str:
    data = {"options": options.fingerprint_data(),
            "liquids": [asdict(r) for r in references]}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _load_state(path: Path, key: str) -> dict[str, Any]:
    if not path.exists():
        return {"fingerprint": key, "rounds": [], "validation": None}
    state = json.loads(path.read_text())
    if state.get("fingerprint") != key:
        raise InputError(f"{path.parent} holds a fit with other liquids, parameters or "
                         "settings; use a new output directory")
    return state


def _save_json(path: Path, data: Any) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_json_default))
    tmp.replace(path)
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")


# ---------------------------------------------------------------------- the fit
class LiquidFit:
    """A resumable liquid fit in ``outdir`` (see the module docstring)."""

    def __init__(self, references: Sequence[LiquidReference], options: LiquidFitOptions,
                 outdir: str | Path, log: Callable[[str], None] | None = None,
                 executor: Executor | None = None) -> None:
        self.options = options
        self.executor = executor or SerialExecutor()
        from ffparam.io.files import check_output_dir

        self.outdir = check_output_dir(outdir)
        self.log = log or (lambda text: None)
        holdout = {h.strip().lower() for h in options.holdout}
        unknown = holdout - {r.name.lower() for r in references}
        if unknown:
            raise InputError(f"held-out liquid(s) not in the CSV: {', '.join(sorted(unknown))}")
        self.training = [r for r in references if r.name.lower() not in holdout]
        self.holdout = [r for r in references if r.name.lower() in holdout]
        if not self.training:
            raise InputError("every liquid is held out; nothing to fit")
        if not options.params:
            raise InputError("no --params given; use e.g. --params 'vdw:*' or "
                             "'vdw:n16:sigma'")
        for entry in options.params:
            parse_vdw_entry(entry)
        self.state_path = self.outdir / STATE_FILE
        self.state = _load_state(self.state_path, _fingerprint(references, options))
        self.systems = self._systems(references)
        from ffparam.assign.smirnoff import SmirnoffForceField

        try:
            self.forcefield = SmirnoffForceField.load(options.forcefield)
        except InputError as exc:
            raise InputError(f"liquid fits write an .offxml and need a SMIRNOFF force field: "
                             f"{exc}") from None
        master = self.forcefield.parameters.copy()
        used = set().union(*(vdw_ids_used(self.systems[r.slug]) for r in self.training))
        free_vdw_parameters(master, options.params, used, options.prior_sigma_a,
                            options.prior_epsilon_kcal_mol)
        self.fit = FitParameters.from_free(master)
        self.fit.check_used([self.systems[r.slug] for r in self.training])
        self.labels = [str(g[0]) for g in self.fit.groups]
        self.lower, self.upper = self.fit.bounds_x()
        self.outdir.mkdir(parents=True, exist_ok=True)

    def _systems(self, references: Sequence[LiquidReference]) -> dict[str, ParameterizedSystem]:
        cache = self.outdir / "molecules"
        return {r.slug: prepare_system(r.smiles, self.options.forcefield, self.options.charges,
                                       name=r.slug, cache_file=cache / f"{r.slug}.json")
                for r in references}

    # ------------------------------------------------------------------ jobs
    def job(self, ref: LiquidReference, x: np.ndarray, directory: Path) -> LiquidJob:
        system = self.systems[ref.slug]
        xt = torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.float64)
        values = self.fit.system_values(system, xt).numpy()
        moved = system.with_parameters(system.parameters.with_vector(values))
        own = set(system.parameters.keys())
        keys = [g[0] for g in self.fit.groups if g[0] in own]
        settings = self.options.settings
        if not self.executor.in_process:
            settings = settings.with_options(threads=self.executor.threads_per_worker)
        return LiquidJob(ref.name, moved, ref.temperature_k, ref.pressure_atm, directory,
                         settings, density_guess_g_ml=ref.density_g_ml, gradient_keys=keys)

    def simulate(self, references: Sequence[LiquidReference], x: np.ndarray, where: Path,
                 record: dict[str, Any]) -> None:
        """Simulate the liquids not yet recorded in ``record`` and record each outcome."""
        results = record.setdefault("results", {})
        errors = record.setdefault("errors", {})
        todo = [r for r in references if r.slug not in results]
        jobs = [self.job(r, x, where / r.slug) for r in todo]
        by_dir = {str(j.directory): r for j, r in zip(jobs, todo)}
        for job, result, error in run_liquid_jobs(jobs, self.executor):
            ref = by_dir[str(job.directory)]
            if result is None:
                errors[ref.slug] = error
                self.log(f"  {ref.name}: FAILED: {error}")
            else:
                errors.pop(ref.slug, None)
                results[ref.slug] = result.to_json()
                _save_json(Path(job.directory) / "result.json", result.to_json())
                self.log(f"  {ref.name}: density {result.density.value:.4f} +/- "
                         f"{result.density.error:.4f} g/mL (exp {ref.density_g_ml:.4f}), "
                         f"Hvap {result.hvap.value:.3f} +/- {result.hvap.error:.3f} kcal/mol "
                         f"(exp {ref.hvap_kcal_mol:.3f})")
                warning = drift_message(ref.name, [TorsionDrift.from_json(d)
                                                   for d in result.torsion_drift])
                if warning:
                    self.log(f"  WARNING {warning}")
            _save_json(self.state_path, self.state)

    # ------------------------------------------------------------------ objective
    def objective(self, round_: dict[str, Any]) -> ObjectiveTerms:
        results = {slug: LiquidResult.from_json(data)
                   for slug, data in round_["results"].items()}
        o = self.options
        return evaluate_objective(self.fit, np.array(round_["x"]), self.training, results,
                                  o.density_weight, o.hvap_weight, o.density_denominator_g_ml,
                                  o.hvap_denominator_kcal_mol, o.use_priors)

    def _propose(self) -> dict[str, Any]:
        rounds = self.state["rounds"]
        centre = rounds[self.state["centre"]]
        terms = self.objective(centre)
        radius = rounds[-1]["next_trust_radius"]
        x0 = np.array(centre["x"])
        o = self.options
        if o.step == "reweighted":
            dx, predicted = self._reweighted_step(x0, radius)
        elif o.no_worse_margin is None:
            dx, predicted = trust_region_step(terms.gradient, terms.hessian, radius,
                                              self.lower, self.upper, x0)
        else:
            dx, predicted = no_worse_step(terms, radius, o.no_worse_margin, o.model_safety,
                                          self.lower, self.upper, x0)
        return {"index": len(rounds), "x": (x0 + dx).tolist(), "trust_radius": radius,
                "from_round": self.state["centre"], "step_norm": float(np.linalg.norm(dx)),
                "predicted_change": predicted, "status": "pending"}

    def _reweighted_step(self, x0: np.ndarray, radius: float) -> tuple[np.ndarray, float]:
        """(dx, predicted change of the objective) from MBAR over every finished round."""
        from ffparam.liquid.mbar import MultiStateReweighter, reweighted_step

        o = self.options
        done = [r for r in self.state["rounds"] if r["status"] == "done"
                and all(ref.slug in r.get("results", {}) for ref in self.training)]
        reweighters = {}
        for ref in self.training:
            system = self.systems[ref.slug]
            runs = [(self.outdir / f"round_{r['index']:03d}" / ref.slug,
                     self.fit.system_values(system, torch.as_tensor(np.array(r["x"])))
                     .numpy()) for r in done]
            reweighters[ref.slug] = MultiStateReweighter(system, o.settings, ref.temperature_k,
                                                         runs)
        start = None
        if o.no_worse_margin is not None:
            first = self.state["rounds"][0]["results"]
            start = {}
            for ref in self.training:
                data = first[ref.slug]
                start[(ref.slug, "density")] = (abs(data["density_g_ml"]["value"]
                                                    - ref.density_g_ml),
                                                data["density_g_ml"]["error"])
                start[(ref.slug, "hvap")] = (abs(data["hvap_kcal_mol"]["value"]
                                                 - ref.hvap_kcal_mol),
                                             data["hvap_kcal_mol"]["error"])
        kwargs = dict(density_weight=o.density_weight, hvap_weight=o.hvap_weight,
                      density_denominator=o.density_denominator_g_ml,
                      hvap_denominator=o.hvap_denominator_kcal_mol, use_priors=o.use_priors,
                      min_eff_fraction=o.min_eff_fraction, start_deviations=start,
                      margin=o.no_worse_margin or 0.0)
        x, value, at_centre, predictions = reweighted_step(
            self.fit, self.training, reweighters, x0, radius, self.lower, self.upper, **kwargs)
        for ref in self.training:
            p = predictions[ref.slug]
            self.log(f"  reweighted prediction {ref.name}: density {p['density']:.4f}, Hvap "
                     f"{p['hvap']:.3f} (Kish {p['n_eff_liquid']:.0f} liquid, "
                     f"{p['n_eff_gas']:.0f} gas frames)")
        return x - x0, value - at_centre

    def run(self) -> LiquidFitOutcome:
        """All rounds, the held-out validation and the outputs."""
        rounds = self.state["rounds"]
        for k in range(self.options.iterations + 1):
            if k >= len(rounds):
                if k == 0:
                    rounds.append({"index": 0, "x": [0.0] * self.fit.size,
                                   "trust_radius": self.options.trust_radius,
                                   "from_round": None, "status": "pending"})
                    self.state["centre"] = 0
                else:
                    rounds.append(self._propose())
                _save_json(self.state_path, self.state)
            record = rounds[k]
            if record["status"] == "done":
                continue
            self.log(f"round {k}: simulating {len(self.training)} liquid(s)"
                     + (f" + {len(self.holdout)} held out" if k == 0 and self.holdout else ""))
            liquids = self.training + (self.holdout if k == 0 else [])
            self.simulate(liquids, np.array(record["x"]), self.outdir / f"round_{k:03d}", record)
            self._judge(record)
            _save_json(self.state_path, self.state)
        best = self.state["centre"]
        self._validate(best)
        return self._write_outputs(best)

    def _judge(self, record: dict[str, Any]) -> None:
        k = record["index"]
        failed = [r.name for r in self.training if r.slug not in record["results"]]
        o = self.options
        if failed:
            if k == 0:
                raise CalculationError(
                    f"start force field: simulation failed for {', '.join(failed)}: "
                    f"{'; '.join(record['errors'].values())}")
            record.update(objective=None, accepted=False, status="done",
                          next_trust_radius=max(record["trust_radius"] / 2, o.min_trust_radius))
            self.log(f"round {k}: rejected (failed: {', '.join(failed)})")
            return
        terms = self.objective(record)
        record.update(objective=terms.value, objective_error=terms.error,
                      data_objective=terms.data_value, prior_objective=terms.prior_value,
                      gradient_norm=float(np.linalg.norm(terms.gradient)))
        radius = record["trust_radius"]
        if k == 0:
            record.update(accepted=True, next_trust_radius=radius)
        else:
            centre = self.state["rounds"][self.state["centre"]]
            change = terms.value - centre["objective"]
            accepted = change <= 0.0
            ratio = change / record["predicted_change"] if record["predicted_change"] else 0.0
            if not accepted:
                radius = max(radius / 2, o.min_trust_radius)
            elif ratio > 0.5 and record["step_norm"] >= 0.9 * record["trust_radius"]:
                radius = min(radius * 1.5, o.max_trust_radius)
            elif ratio < 0.25:
                radius = max(radius / 2, o.min_trust_radius)
            record.update(accepted=accepted, actual_change=change, model_ratio=ratio,
                          next_trust_radius=radius)
            if accepted:
                self.state["centre"] = k
        record["status"] = "done"
        self.log(f"round {k}: objective {terms.value:.4f} +/- {terms.error:.4f} "
                 f"({'accepted' if record['accepted'] else 'rejected'}), next trust radius "
                 f"{record['next_trust_radius']:.3g}")

    def _validate(self, best: int) -> None:
        if not self.holdout or best == 0:
            return
        validation = self.state.get("validation") or {"round": best, "results": {},
                                                      "errors": {}}
        if validation.get("round") != best:
            validation = {"round": best, "results": {}, "errors": {}}
        self.state["validation"] = validation
        self.log(f"validation: {len(self.holdout)} held-out liquid(s) at round {best}")
        x = np.array(self.state["rounds"][best]["x"])
        self.simulate(self.holdout, x, self.outdir / f"validation_round_{best:03d}", validation)
        _save_json(self.state_path, self.state)

    # ------------------------------------------------------------------ outputs
    def fitted_parameters(self, best: int) -> tuple[ParameterSet, ParameterSet]:
        """(full fitted parameter set, the changed vdW parameters only)."""
        full = self.fit.updated_parameters(np.array(self.state["rounds"][best]["x"]))
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
        files["metrics"] = _save_json(self.outdir / "metrics.json", metrics)
        files["history"] = _save_json(self.outdir / "fit_history.json", self.history(best))
        plots = self.outdir / "plots"
        plots.mkdir(exist_ok=True)
        files["plot"] = liquids_plot(plots / "liquids.png", metrics["liquids"])
        return LiquidFitOutcome(self.state, best, full, metrics, files)

    def history(self, best: int) -> dict[str, Any]:
        rounds = []
        for record in self.state["rounds"]:
            x = torch.as_tensor(np.array(record["x"]), dtype=torch.float64)
            physical = self.fit.physical(x).numpy()
            summary = {k: v for k, v in record.items() if k not in ("results",)}
            summary["parameters"] = dict(zip(self.labels, physical.tolist()))
            summary["liquids"] = {
                slug: {"density_g_ml": [d["density_g_ml"]["value"], d["density_g_ml"]["error"]],
                       "hvap_kcal_mol": [d["hvap_kcal_mol"]["value"], d["hvap_kcal_mol"]["error"]]}
                for slug, data in record.get("results", {}).items() for d in [data]}
            rounds.append(summary)
        return {"forcefield": self.options.forcefield, "parameters": self.labels,
                "best_round": best, "options": self.options.fingerprint_data(),
                "rounds": rounds}

    def metrics(self, best: int) -> dict[str, Any]:
        """Per liquid before/after with errors, MAE/RMSE per set, the liquids that got
        worse by more than their combined error bar, and the torsions whose populations
        drift over the start, best and validation runs (``torsion_drift``; fractions of
        molecules in the trans well)."""
        start = self.state["rounds"][0]["results"]
        after_train = self.state["rounds"][best]["results"]
        validation = self.state.get("validation") or {}
        after_holdout = start if best == 0 else validation.get("results", {})
        liquids = []
        for ref, after_set, role in ([(r, after_train, "train") for r in self.training]
                                     + [(r, after_holdout, "holdout") for r in self.holdout]):
            row: dict[str, Any] = {"name": ref.name, "role": role,
                                   "density_exp": ref.density_g_ml,
                                   "hvap_exp_kcal_mol": ref.hvap_kcal_mol}
            for tag, source in (("before", start), ("after", after_set)):
                data = source.get(ref.slug)
                if data is None:
                    continue
                row[f"density_{tag}"] = data["density_g_ml"]["value"]
                row[f"density_{tag}_error"] = data["density_g_ml"]["error"]
                row[f"hvap_{tag}_kcal_mol"] = data["hvap_kcal_mol"]["value"]
                row[f"hvap_{tag}_error"] = data["hvap_kcal_mol"]["error"]
            liquids.append(row)
        summary = {}
        for role in ("train", "holdout"):
            rows = [r for r in liquids if r["role"] == role]
            for tag in ("before", "after"):
                for prop, exp in (("density", "density_exp"), ("hvap", "hvap_exp_kcal_mol")):
                    name = f"{prop}_{tag}" if prop == "density" else f"hvap_{tag}_kcal_mol"
                    errs = np.array([r[name] - r[exp] for r in rows if name in r])
                    if errs.size:
                        summary[f"{role}_{prop}_{tag}_mae"] = float(np.abs(errs).mean())
                        summary[f"{role}_{prop}_{tag}_rmse"] = float(np.sqrt((errs**2).mean()))
        worse = []
        for row in liquids:
            for prop, exp in (("density", "density_exp"), ("hvap", "hvap_exp_kcal_mol")):
                b = f"{prop}_before" if prop == "density" else "hvap_before_kcal_mol"
                a = f"{prop}_after" if prop == "density" else "hvap_after_kcal_mol"
                if b in row and a in row:
                    bar = math.hypot(row[f"{prop}_before_error"], row[f"{prop}_after_error"])
                    if abs(row[a] - row[exp]) - abs(row[b] - row[exp]) > bar:
                        worse.append(f"{row['name']} {prop}")
        details = drifting_torsions(
            self.state, best, self.outdir, {r.slug: r.name for r in self.training + self.holdout},
            {slug: system.molecule for slug, system in self.systems.items()},
            self.options.settings.save_interval_ps)
        return {"best_round": best, "rounds": len(self.state["rounds"]), "summary": summary,
                "worse_by_more_than_error_bar": worse, "liquids": liquids,
                "conformers_not_equilibrated": sorted({f"{d['liquid']} ({d['round']})"
                                                       for d in details}),
                "torsion_drift": details,
                "units": {"density": "g/mL", "hvap": "kcal/mol"}}


def drifting_torsions(state: dict[str, Any], best: int, outdir: str | Path,
                      names: dict[str, str], molecules: dict[str, Molecule],
                      save_interval_ps: float) -> list[dict[str, Any]]:
    """Every torsion whose trans fraction drifts (:mod:`ffparam.liquid.conformers`) in the
    start round, the ``best`` round and its held-out validation of the fit stored in
    ``outdir`` with ``state``: dicts with ``liquid`` (from ``names``, by slug), ``round``
    ("start" or "fitted") and :meth:`TorsionDrift.to_json`'s fields. Results stored before
    they carried the check are checked from their frames (``molecules``, by slug)."""
    outdir = Path(outdir)
    runs = [("start", state["rounds"][0], outdir / "round_000")]
    if best:
        runs.append(("fitted", state["rounds"][best], outdir / f"round_{best:03d}"))
        validation = state.get("validation") or {}
        if validation.get("round") == best:
            runs.append(("fitted", validation, outdir / f"validation_round_{best:03d}"))
    details = []
    for label, record, root in runs:
        for slug, data in (record.get("results") or {}).items():
            details.extend({"liquid": names[slug], "round": label, **d.to_json()}
                           for d in stored_drift(data, root / slug, molecules[slug],
                                                 save_interval_ps) if d.drifting)
    return details


def fit_liquids(references: Sequence[LiquidReference], options: LiquidFitOptions,
                outdir: str | Path, log: Callable[[str], None] | None = None,
                executor: Executor | None = None) -> LiquidFitOutcome:
    """Fit LJ parameters to ``references`` (see the module docstring); the simulations run
    on ``executor`` (default: one after another in this process)."""
    return LiquidFit(references, options, outdir, log, executor).run()
