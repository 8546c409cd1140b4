"""Transferable fits: SMIRKS types shared by many molecules, and how well they transfer.

Shared types. A fit spec's ``types`` define new torsion parameters keyed by SMIRKS
(:class:`~ffparam.fit.spec.TypeSettings`). Each is appended after the start force field's
parameters of its section, so by the SMIRNOFF last-match rule it wins on every torsion it
matches, in every molecule: :func:`apply_shared_types` rebinds exactly those torsions to
one :class:`Parameter` object, so the type is one entry of the fit's parameter vector
however many molecules it serves, and ``fitted.offxml`` (the types appended in spec order)
assigns the same parameters when read back.

Leave-one-molecule-out cross-validation (:func:`leave_one_out`, ``ffparam fit SPEC --cv``
through :func:`ffparam.workflows.fit.spec_leave_one_out`).
For every molecule m with targets, three errors of each of its targets (the target's first
metric, RMSE in kcal/mol for torsion profiles and relative energies):

- ``start``: the spec's start parameters (x = 0: the start force field, shared types at
  their start values);
- ``left_out``: the spec refitted to every other molecule's targets (m's data unseen), then
  evaluated on m — the transferability of the shared parameters;
- ``bespoke``: the spec fitted to m's targets alone (the same free parameters, m's own
  values: the best the spec's functional form can do for m);

plus ``fitted``, the error of the fit to all molecules. The summary figure is the fraction
of the bespoke gain the shared parameters keep on a molecule they never saw,
``(start - left_out) / (start - bespoke)`` (1: as good as bespoke; 0: no better than the
start; < 0: worse), with its median over targets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ffparam.assign.smirnoff_matching import canonical_valence, find_matches, matching_molecule
from ffparam.errors import InputError
from ffparam.fit.objective import Objective
from ffparam.fit.optimizers import FitResult
from ffparam.fit.spec import TypeSettings
from ffparam.params.builder import rebind_terms
from ffparam.params.parameter_set import FreeSpec, Parameter, ParameterSet
from ffparam.params.system import ParameterizedSystem

# ---------------------------------------------------------------------- shared types


def type_torsions(system: ParameterizedSystem, smirks: str) -> list[tuple[int, ...]]:
    """Proper torsions (i, j, k, l), canonical direction (i < l), of ``system`` that
    ``smirks`` matches, sorted."""
    propers = system.topology.propers
    if not len(propers):
        return []
    known = {tuple(r) for r in canonical_valence(propers).tolist()}
    hits = find_matches(matching_molecule(system.molecule.rdmol), smirks)
    if not len(hits):
        return []
    return sorted({tuple(r) for r in canonical_valence(hits).tolist()} & known)


def assigned_torsion_ids(system: ParameterizedSystem,
                         rows: list[tuple[int, ...]]) -> list[str]:
    """Id of the ProperTorsions parameter ``system`` gives each torsion of ``rows``."""
    group = system.term_group("ProperTorsions")
    if group is None:
        raise InputError(f"{system.molecule.name} has no proper torsions")
    owner = {}
    for atoms, pid in zip(group.atoms.tolist(), group.parameter_ids):
        owner[tuple(atoms) if atoms[0] < atoms[-1] else tuple(atoms[::-1])] = pid
    return [owner[row] for row in rows]


def type_start_parameter(entry: TypeSettings, systems: dict[str, ParameterizedSystem],
                         matched: dict[str, list[tuple[int, ...]]]) -> Parameter:
    """The type's start :class:`Parameter` (id = its SMIRKS, ``offxml_id`` = its id).

    ``start: forcefield`` copies k and phase of the parameter that the start force field
    gives most of the matched torsions over all molecules (the first such in spec order on
    a tie), keeping that parameter's periodicities besides the type's own; ``zero`` starts
    every term at k = 0 kcal/mol, phase 0 rad."""
    by_period: dict[int, tuple[float, float]] = {}
    if entry.start == "forcefield":
        counts: Counter[str] = Counter()
        holder: dict[str, ParameterizedSystem] = {}
        for name, rows in matched.items():
            for pid in assigned_torsion_ids(systems[name], rows):
                counts[pid] += 1
                holder.setdefault(pid, systems[name])
        pid = counts.most_common(1)[0][0]
        old = holder[pid].parameters.get(entry.section, pid)
        by_period = {int(old.fixed[f"periodicity{n}"]): (old.values[f"k{n}"],
                                                         old.values[f"phase{n}"])
                     for n in range(1, old.n_terms() + 1)}
    values: dict[str, float] = {}
    fixed: dict = {"offxml_id": entry.id}
    for term, period in enumerate(sorted(set(entry.periodicities) | set(by_period)), start=1):
        k, phase = by_period.get(period, (0.0, 0.0))
        values[f"k{term}"], values[f"phase{term}"] = float(k), float(phase)
        fixed[f"periodicity{term}"] = period
        fixed[f"idivf{term}"] = 1.0
    return Parameter(entry.smirks, values, fixed)


def apply_shared_types(systems: dict[str, ParameterizedSystem], types: list[TypeSettings],
                       forcefield_smirks: set[tuple[str, str]] = frozenset()
                       ) -> tuple[dict[str, ParameterizedSystem], ParameterSet]:
    """Bind each shared type (in spec order: a later type wins where two match) to the
    torsions it matches in every molecule, its ``fields`` free.

    Returns the new systems and the types' start parameters (one :class:`ParameterSet`,
    spec order). Raises InputError for a type that matches none of the molecules or whose
    SMIRKS is already a parameter of the start force field (``forcefield_smirks``)."""
    systems = dict(systems)
    extra = ParameterSet()
    for entry in types:
        if (entry.section, entry.smirks) in forcefield_smirks:
            raise InputError(f"type {entry.id}: SMIRKS {entry.smirks!r} is already a "
                             f"{entry.section} parameter of the start force field; free it "
                             "in 'parameters' instead")
        matched = {name: type_torsions(system, entry.smirks)
                   for name, system in systems.items()}
        matched = {name: rows for name, rows in matched.items() if rows}
        if not matched:
            raise InputError(f"type {entry.id} ({entry.smirks}) matches none of the molecules "
                             f"({', '.join(systems)})")
        parameter = type_start_parameter(entry, systems, matched)
        extra.add(entry.section, parameter)
        fields = [entry.fields] if isinstance(entry.fields, str) else list(entry.fields)
        for name, rows in matched.items():
            new = rebind_terms(systems[name], entry.section,
                               {row: parameter for row in rows},
                               label=f"{systems[name].source} + type {entry.id}")
            if fields:
                new.parameters.set_free(entry.section, parameter.id, fields,
                                        FreeSpec(None, None, entry.prior_width, "linear"))
            systems[name] = new
    return systems, extra


# ---------------------------------------------------------------------- cross-validation


@dataclass
class TargetCV:
    """Leave-one-molecule-out figures of one target (its first metric, ``metric``)."""

    target: str
    molecule: str
    metric: str
    start: float
    fitted: float
    left_out: float
    bespoke: float

    @property
    def kept(self) -> float:
        """(start - left_out) / (start - bespoke): the share of the bespoke gain kept on
        this molecule by parameters fitted without it (NaN when bespoke gains nothing)."""
        gain = self.start - self.bespoke
        return (self.start - self.left_out) / gain if gain > 0 else float("nan")


@dataclass
class LeaveOneOut:
    """Outcome of :func:`leave_one_out`: one :class:`TargetCV` per target, and per held-out
    molecule the free parameters' values fitted without it (``Section/id/field`` ->
    value, internal units)."""

    targets: list[TargetCV]
    left_out_values: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def median_kept(self) -> float:
        """Median over targets of :attr:`TargetCV.kept` (NaN targets left out)."""
        kept = [t.kept for t in self.targets if np.isfinite(t.kept)]
        return float(np.median(kept)) if kept else float("nan")

    def to_json(self) -> dict:
        return {"targets": [{"target": t.target, "molecule": t.molecule, "metric": t.metric,
                             "start": t.start, "fitted": t.fitted, "left_out": t.left_out,
                             "bespoke": t.bespoke, "kept": t.kept} for t in self.targets],
                "median_kept": self.median_kept,
                "left_out_values": self.left_out_values}

    def table(self) -> str:
        """Markdown table: one row per target (errors in the metric's unit)."""
        lines = ["| molecule | target | metric | start | left out | bespoke | all | kept |",
                 "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for t in self.targets:
            lines.append(f"| {t.molecule} | {t.target} | {t.metric} | {t.start:.3f} | "
                         f"{t.left_out:.3f} | {t.bespoke:.3f} | {t.fitted:.3f} | "
                         f"{t.kept:.2f} |")
        lines.append(f"\nmedian share of the bespoke gain kept on unseen molecules: "
                     f"{self.median_kept:.2f}")
        return "\n".join(lines)


def first_metrics(metrics: dict[str, dict[str, float]]) -> dict[str, tuple[str, float]]:
    """Target name -> (first metric name, value) from an objective's target metrics."""
    return {name: next(iter(m.items())) for name, m in metrics.items() if name != "priors"}


def metrics_at(objective: Objective, fitted: ParameterSet) -> dict[str, tuple[str, float]]:
    """First metric of every target of ``objective`` with its free parameters set to their
    values in ``fitted`` (start values for keys ``fitted`` lacks)."""
    fit = objective.fit
    if not fit.size:
        return first_metrics(objective.target_metrics(np.zeros(0)))
    start = fit.physical(torch.zeros(fit.size, dtype=torch.float64)).numpy()
    physical = np.array([
        fitted.get(g[0].section, g[0].id).values[g[0].field]
        if (g[0].section, g[0].id) in fitted else start[n]
        for n, g in enumerate(fit.groups)])
    return first_metrics(objective.target_metrics(fit.to_x(physical)))


ObjectiveFor = Callable[[list[str]], Objective]
"""Molecule names -> the objective over their targets, a fit to part of the molecules
(parameter entries touching none of them left out; it may have no free parameter)."""


def leave_one_out(names: list[str], objective_for: ObjectiveFor,
                  optimize: Callable[[Objective], FitResult],
                  fitted: dict[str, tuple[str, float]] | None = None) -> LeaveOneOut:
    """Leave-one-molecule-out cross-validation (module docstring) over molecules ``names``
    (those with targets): ``objective_for`` builds fresh objectives, ``optimize`` runs the
    fit's optimizer; ``fitted``: the all-molecule fit's first metrics (target -> (metric,
    value)), refitted when None. :func:`ffparam.workflows.fit.spec_leave_one_out` runs it
    for a fit spec.

    Raises InputError for fewer than 2 molecules."""
    if len(names) < 2:
        raise InputError("leave-one-molecule-out needs targets on at least 2 molecules")
    if fitted is None:
        fitted = first_metrics(optimize(objective_for(names)).metrics_after)
    out = LeaveOneOut([])
    for name in names:
        own = objective_for([name])
        start, bespoke = _own_fit(own, optimize)
        rest = objective_for([n for n in names if n != name])
        values = optimize(rest).parameters if rest.fit.size else ParameterSet()
        left_out = metrics_at(own, values)
        out.left_out_values[name] = {str(k): values.get(k.section, k.id).values[k.field]
                                     for g in rest.fit.groups for k in g}
        for target, (metric, value) in start.items():
            out.targets.append(TargetCV(target, name, metric, value, fitted[target][1],
                                        left_out[target][1], bespoke[target][1]))
    return out


def _own_fit(own: Objective, optimize: Callable[[Objective], FitResult]
             ) -> tuple[dict[str, tuple[str, float]], dict[str, tuple[str, float]]]:
    """(start, bespoke) first metrics of a one-molecule objective (bespoke = start when
    none of the molecule's parameters is free)."""
    if not own.fit.size:
        start = first_metrics(own.target_metrics(np.zeros(0)))
        return start, start
    result = optimize(own)
    return first_metrics(result.metrics_before), first_metrics(result.metrics_after)


def leave_one_out_plot(path: str | Path, cv: LeaveOneOut) -> Path:
    """Grouped bars per target: start, left out, bespoke and all-molecule fit errors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ffparam.io.atomic import savefig_atomic

    path = Path(path)
    labels = [t.molecule if t.target == t.molecule else f"{t.molecule}\n{t.target}"
              for t in cv.targets]
    bars = {"start": [t.start for t in cv.targets],
            "left out": [t.left_out for t in cv.targets],
            "bespoke": [t.bespoke for t in cv.targets],
            "all molecules": [t.fitted for t in cv.targets]}
    colours = ["tab:blue", "tab:orange", "tab:red", "tab:grey"]
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(labels) + 2), 3.8), dpi=110)
    for n, ((name, values), colour) in enumerate(zip(bars.items(), colours)):
        ax.bar(x + (n - 1.5) * 0.2, values, 0.2, label=name, color=colour)
    ax.set_xticks(x, labels, fontsize=6, rotation=45, ha="right")
    metrics = sorted({t.metric for t in cv.targets})
    ax.set_ylabel(", ".join(metrics), fontsize=8)
    ax.set_title(f"leave one molecule out (median share of bespoke gain kept "
                 f"{cv.median_kept:.2f})", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    savefig_atomic(fig, path)
    plt.close(fig)
    return path


__all__ = ["LeaveOneOut", "ObjectiveFor", "TargetCV", "apply_shared_types", "leave_one_out",
           "leave_one_out_plot", "metrics_at", "type_start_parameter", "type_torsions"]
