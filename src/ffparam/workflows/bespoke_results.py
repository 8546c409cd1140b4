"""The typed results of a bespoke run (:class:`~ffparam.report.bespoke_metrics.BespokeMetrics`)
built from what the run produced: rotor scans, fit targets and result, validation, exports.

Profile plots of the fitted rotors are drawn here (``plots/rotor_N.png``), with the +/-1
sigma band of the fitted profile from the Laplace posterior of the torsion fit
(:mod:`ffparam.fit.uncertainty`), whose sigma of each fitted k goes into the changed
parameters; each fitted rotor gets its cross-validated RMSE (:mod:`ffparam.fit.crossval`)
next to the training RMSE, and a warning when they differ by more than 2x.
:func:`population_validation` gives the Boltzmann rotamer populations at 300 K of the
start and the fitted force field (Monte Carlo, :mod:`ffparam.sample`) next to those of
the reference method's held-out conformer energies.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.fit.crossval import cross_validated_rmse
from ffparam.fit.objective import Objective
from ffparam.fit.optimizers import FitResult
from ffparam.fit.sensitivity import Sensitivity, fit_sensitivity
from ffparam.fit.uncertainty import ParameterUncertainty, laplace_uncertainty, propagated_sigma
from ffparam.params.parameter_set import ParameterSet, field_unit
from ffparam.report.bespoke_metrics import (
    BespokeMetrics,
    BespokeSummary,
    ChangedParameter,
    FitSummary,
    FragmentInfo,
    MoleculeInfo,
    Provenance,
    RotorResult,
    TorsionProfileData,
)
from ffparam.report.sensitivity import write_sensitivity
from ffparam.workflows.bespoke_scans import RotorScan

GFN2_NOTE = ("RMSE is measured against the reference method's own scans: GFN2-xTB itself "
             "differs from B3LYP-D3BJ/DZVP by about 0.3 kcal/mol RMSE on a biaryl torsion, so "
             "a GFN2-xTB fit is only as good as GFN2-xTB.")
RMSE = "rmse [kcal/mol]"
OVERFIT_RATIO = 2.0
"""Cross-validated vs training RMSE ratio above which a rotor gets a warning."""


class Clock:
    """Wall time of each step (``<step>_s``, seconds) and of the whole run."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._start = time.perf_counter()

    def lap(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.timings[f"{name}_s"] = round(now - since, 3)
        return now

    def total(self) -> None:
        self.timings["total_s"] = round(time.perf_counter() - self._start, 3)


def changed_parameter_rows(start: ParameterSet, fitted: ParameterSet, keys,
                           sigma: dict | None = None) -> list[ChangedParameter]:
    """Start and fitted value of each parameter field ``keys`` (angles in degrees), with its
    posterior standard deviation from ``sigma`` (key -> sigma, internal units) if there."""
    rows = []
    sigma = sigma or {}
    for key in keys:
        before = start.get(key.section, key.id).values.get(key.field) \
            if (key.section, key.id) in start else None
        after = fitted.get(key.section, key.id).values[key.field]
        spread = sigma.get(key)
        unit = field_unit(key.section, key.field)
        if unit == "rad":
            before = None if before is None else float(np.degrees(before))
            after, unit = float(np.degrees(after)), "degree"
            spread = None if spread is None else float(np.degrees(spread))
        rows.append(ChangedParameter(key.section, key.id, key.field, before, after, unit,
                                     None if spread is None else float(spread)))
    return rows


@dataclass
class FitDiagnostics:
    """What a torsion fit says about itself: the Laplace posterior of its parameters and
    the cross-validated RMSE (kcal/mol) of each target (:mod:`ffparam.fit.crossval`)."""

    posterior: ParameterUncertainty | None = None
    rmse_cv: dict[str, float] = field(default_factory=dict)
    sensitivity: Sensitivity | None = None


def fit_diagnostics(targets, result: FitResult | None) -> FitDiagnostics:
    """:class:`FitDiagnostics` of a fit, the objective rebuilt from its targets and
    parameter space (as :func:`~ffparam.workflows.bespoke.fit_rotors` built it); a part the
    fit leaves undetermined (InputError) is left out."""
    if result is None or result.fit is None or not targets:
        return FitDiagnostics()
    objective = Objective(list(targets), result.fit)
    out = FitDiagnostics()
    try:
        out.posterior = laplace_uncertainty(objective, result.x)
    except InputError:
        pass
    try:
        out.rmse_cv = cross_validated_rmse(objective, result.x)
    except InputError:
        pass
    out.sensitivity = fit_sensitivity(objective, result.x, out.posterior)
    return out


def parameter_sigmas(uncertainty: ParameterUncertainty | None) -> dict:
    """Parameter key -> posterior sigma (internal units) for every key of every group."""
    if uncertainty is None:
        return {}
    return {key: float(s) for group, s in zip(uncertainty.groups, uncertainty.sigma)
            for key in group}


def overfit_warnings(rotors: list[RotorResult], ratio: float = OVERFIT_RATIO) -> list[str]:
    """One warning per fitted rotor whose cross-validated and training RMSE differ by more
    than ``ratio`` times (either way)."""
    out = []
    for r in rotors:
        cv, train = r.rmse_cv, r.rmse_fitted
        if cv is None or train is None or not (cv > 0 and train > 0):
            continue
        if max(cv / train, train / cv) > ratio:
            out.append(f"bond {r.bond[0]}-{r.bond[1]}: cross-validated RMSE {cv:.3f} kcal/mol "
                       f"vs training RMSE {train:.3f} kcal/mol (more than {ratio:g}x apart: "
                       "the fit may not hold between grid points)")
    return out


def rotor_results(rotors: list[RotorScan], targets, fit_result: FitResult | None,
                  plots: Path, joint: FitDiagnostics | None = None) -> list[RotorResult]:
    """One :class:`RotorResult` per rotor; fitted ones get RMSEs (training and
    cross-validated), profile and plot (``joint``: the diagnostics of the joint fit
    ``fit_result``; fragment fits get theirs here)."""
    joint = joint or FitDiagnostics()
    by_name = {t.name: (t, fit_result, joint) for t in targets}
    for rotor in rotors:
        if rotor.fit_target is not None:
            by_name[rotor.fit_target.name] = (
                rotor.fit_target, rotor.fit_result,
                fit_diagnostics([rotor.fit_target], rotor.fit_result))
    out = []
    for n, rotor in enumerate(rotors, start=1):
        entry = RotorResult(
            bond=list(rotor.bond), dihedral=list(rotor.dihedral), source=rotor.source,
            missing=[list(m) for m in rotor.missing],
            n_points=0 if rotor.profile is None else len(rotor.profile.energies),
            n_jobs=rotor.n_jobs, n_cached=rotor.n_cached, n_failed=rotor.n_failed,
            error=rotor.error, prior_width_kcal_mol=rotor.prior_width)
        if rotor.bond2 is not None:  # a 2-D drive
            entry.bond2, entry.dihedral2 = list(rotor.bond2), list(rotor.dihedral2)
        if rotor.fragment is not None:
            entry.fragment = FragmentInfo(rotor.fragment.molecule.n_atoms,
                                          rotor.fragment.molecule.to_smiles())
        target, result, diagnostics = by_name.get(f"rotor_{rotor.bond[0]}-{rotor.bond[1]}",
                                                  (None, None, None))
        if target is not None and result is not None:
            entry.rmse_cv = diagnostics.rmse_cv.get(target.name)
            _add_fit(entry, rotor, target, result, diagnostics.posterior,
                     plots / f"rotor_{n}.png")
        if rotor.delta is not None:
            from ffparam.workflows.bespoke_delta import delta_info

            entry.delta = delta_info(rotor.delta, plots / f"rotor_{n}_delta.png")
        out.append(entry)
    return out


def _add_fit(entry: RotorResult, rotor: RotorScan, target, result: FitResult,
             posterior: ParameterUncertainty | None, plot: Path) -> None:
    """RMSEs before/after, the profile table and its plot (with the +/-1 sigma band of the
    fitted profile when ``posterior`` is known) for a fitted rotor."""
    from ffparam.report.plots import torsion_profile_plot

    fit = result.fit
    x0 = torch.zeros(fit.size, dtype=torch.float64)
    x1 = torch.as_tensor(result.x, dtype=torch.float64)
    start, final = target.profile_table(fit, x0), target.profile_table(fit, x1)
    entry.rmse_start = result.metrics_before[target.name][RMSE]
    entry.rmse_fitted = result.metrics_after[target.name][RMSE]
    entry.mode = target.mode
    angles = start["angles"][:, 0]
    band = None if posterior is None else propagated_sigma(
        lambda x: target.mm_relative(fit, x), posterior)
    if rotor.bond2 is not None:  # a 2-D drive: heat maps
        from ffparam.workflows.bespoke_delta2d import pair_label, profile_2d_plot

        drawn = profile_2d_plot(plot, start["angles"], start["qm"], final["mm"],
                                f"bonds {pair_label(rotor.bonds)} ({target.mode} MM)",
                                entry.rmse_fitted)
    else:
        drawn = torsion_profile_plot(
            plot, angles, {"reference": start["qm"], "start": start["mm"],
                           "bespoke": final["mm"]},
            f"bond {rotor.bond[0]}-{rotor.bond[1]} ({target.mode} MM)",
            {"start": entry.rmse_start, "bespoke": entry.rmse_fitted},
            bands=None if band is None else {"bespoke": band})
    entry.plot = f"plots/{drawn.name}"
    entry.profile = TorsionProfileData(angles.tolist(), start["qm"].tolist(),
                                       start["mm"].tolist(), final["mm"].tolist(),
                                       None if band is None else band.tolist())
    if rotor.bond2 is not None:
        entry.profile.angles2 = start["angles"][:, 1].tolist()
    if entry.fragment is not None:
        entry.fragment.wbo_parent = rotor.fragment.parent_wbo
        entry.fragment.wbo_fragment = rotor.fragment.wbo
        entry.fragment.note = "RMSE measured on the fragment"


def fit_summary(fit_result: FitResult | None) -> FitSummary | None:
    if fit_result is None:
        return None
    return FitSummary(fit_result.objective_before, fit_result.objective_after,
                      fit_result.optimizer, fit_result.wall_time, len(fit_result.history) - 1)


def bespoke_summary(rotors: list[RotorResult], scans: list[RotorScan], method: str
                    ) -> BespokeSummary:
    start = [r.rmse_start for r in rotors if r.rmse_start is not None]
    fitted = [r.rmse_fitted for r in rotors if r.rmse_fitted is not None]
    return BespokeSummary(
        n_rotors=len(rotors), n_fitted=len(fitted),
        median_rmse_start=float(np.median(start)) if start else None,
        median_rmse_fitted=float(np.median(fitted)) if fitted else None,
        reference=method, incomplete=any(r.error or r.missing for r in scans))


def molecule_info(molecule: Molecule) -> MoleculeInfo:
    return MoleculeInfo(molecule.name, molecule.to_smiles(), molecule.to_smiles(mapped=True),
                        molecule.formula, molecule.n_atoms)


def provenance(settings, start_source: str, clock: Clock) -> Provenance:
    import ffparam
    from ffparam.reference.jobs import package_versions
    from ffparam.reference.spec import is_composite
    from ffparam.workflows.bespoke_scans import composite_reference_note

    clock.total()
    if getattr(settings, "high_budget", None) is not None:
        from ffparam.workflows.bespoke_delta import delta_reference_note

        note = delta_reference_note(settings)
    elif is_composite(settings.method):
        note = composite_reference_note(settings.method)
    elif "xtb" in settings.method:
        note = GFN2_NOTE
    else:
        note = f"RMSE is measured against {settings.method} scans."
    return Provenance(ffparam.__version__, package_versions(), settings.method, start_source,
                      clock.timings, note)


def build_metrics(run, clock: Clock, outdir: Path) -> BespokeMetrics:
    """:class:`BespokeMetrics` of a finished run (``run``: a
    :class:`~ffparam.workflows.bespoke.BespokeRun`)."""
    plots = outdir / "plots"
    plots.mkdir(exist_ok=True)
    settings = run.settings
    joint = fit_diagnostics(run.targets, run.fit_result)
    write_sensitivity(outdir, None if joint.sensitivity is None else joint.sensitivity.to_json())
    rotors = rotor_results(run.rotors, run.targets, run.fit_result, plots, joint)
    sigma = parameter_sigmas(joint.posterior)
    changed: list[ChangedParameter] = []
    if run.bespoke is not None:
        ids = run.bespoke.parameters.sections.get("ProperTorsions", {})
        keys = [k for k in run.fitted.parameters.keys()
                if k.section == "ProperTorsions" and k.id in ids and k.field.startswith("k")]
        changed = changed_parameter_rows(run.bespoke.parameters, run.fitted.parameters, keys,
                                         sigma)
    shown = ("forcefield", "method", "charges", "spacing_deg", "mode", "workers")
    return BespokeMetrics(
        molecule=molecule_info(run.molecule),
        settings={**{k: getattr(settings, k) for k in shown},
                  "references": [str(p) for p in settings.references],
                  **({"high_budget": settings.high_budget,
                      "high_sigma_kcal_mol": settings.high_sigma_kcal_mol}
                     if settings.high_budget is not None else {}),
                  **({"drives_2d": [[list(b) for b in pair] for pair in settings.drives_2d],
                      "spacing_2d_deg": settings.spacing_2d_deg}
                     if getattr(settings, "drives_2d", None) else {})},
        summary=bespoke_summary(rotors, run.rotors, settings.method),
        rotors=rotors, fit=fit_summary(run.fit_result), changed_parameters=changed,
        validation={k: v.to_json() for k, v in run.validation.items()},
        exports=run.exports.to_dict(), provenance=provenance(settings, run.start.source, clock),
        warnings=run.warnings + overfit_warnings(rotors), valence=run.valence)


def population_validation(molecule: Molecule, systems: dict, mc_steps: int, seed: int,
                          conformers=None):
    """Rotamer populations at 300 K of ``systems`` (name -> ParameterizedSystem) by Monte
    Carlo (32 chains x ``mc_steps`` steps), and of the reference method's energies of the
    held-out ``conformers`` (a :class:`~ffparam.validate.conformers.ConformerValidation`)
    when there are any."""
    from ffparam.sample import MCSettings
    from ffparam.sample.populations import conformer_populations

    settings = MCSettings(temperature_k=300.0, n_chains=32, n_steps=mc_steps,
                          equilibration_steps=max(mc_steps // 4, 1), seed=seed)
    reference, method = None, None
    if conformers is not None and conformers.n_used:
        reference = (conformers.geometries, conformers.reference_energy_kcal_mol)
        method = f"{conformers.method} (held-out conformers, {conformers.relax})"
    systems = {name: system for name, system in systems.items() if system is not None}
    return conformer_populations(systems, molecule.conformers[0], settings, reference,
                                 method, min_fraction=0.02)
