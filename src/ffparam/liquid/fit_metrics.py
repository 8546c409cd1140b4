"""How a liquid fit did: per liquid before/after with errors, MAE/RMSE per set, the
liquids that got worse by more than their combined error bar, and the torsions whose
populations drift in the runs the verdict rests on (``metrics.json`` of
:mod:`ffparam.workflows.liquid_fit`). Units: density g/mL, Hvap kcal/mol."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ffparam.chem import Molecule
from ffparam.liquid.conformers import stored_drift
from ffparam.liquid.data import LiquidReference
from ffparam.liquid.fit_state import LiquidFitState
from ffparam.liquid.properties import LiquidResult

PROPERTIES = (("density", "density_exp"), ("hvap", "hvap_exp_kcal_mol"))
"""(property, experiment column) of the rows of :func:`liquid_rows`."""


def _value_column(prop: str, tag: str) -> str:
    return f"density_{tag}" if prop == "density" else f"hvap_{tag}_kcal_mol"


def liquid_rows(state: LiquidFitState, best: int, training: Sequence[LiquidReference],
                holdout: Sequence[LiquidReference]) -> list[dict[str, Any]]:
    """One row per liquid: experiment, value and error at the start (``before``) and at
    round ``best`` (``after``; for held-out liquids their validation run, or the start
    when ``best`` is 0). A value is left out where the liquid was not simulated."""
    start = state.rounds[0].results
    after_train = state.rounds[best].results
    after_holdout: Mapping[str, LiquidResult] = start if best == 0 else (
        state.validation.results if state.validation is not None else {})
    rows = []
    for ref, after_set, role in ([(r, after_train, "train") for r in training]
                                 + [(r, after_holdout, "holdout") for r in holdout]):
        row: dict[str, Any] = {"name": ref.name, "role": role,
                               "density_exp": ref.density_g_ml,
                               "hvap_exp_kcal_mol": ref.hvap_kcal_mol}
        for tag, source in (("before", start), ("after", after_set)):
            result = source.get(ref.slug)
            if result is None:
                continue
            row[f"density_{tag}"] = result.density.value
            row[f"density_{tag}_error"] = result.density.error
            row[f"hvap_{tag}_kcal_mol"] = result.hvap.value
            row[f"hvap_{tag}_error"] = result.hvap.error
        rows.append(row)
    return rows


def error_summary(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """``{role}_{property}_{before|after}_{mae|rmse}`` over the rows that have a value."""
    summary = {}
    for role in ("train", "holdout"):
        chosen = [r for r in rows if r["role"] == role]
        for tag in ("before", "after"):
            for prop, exp in PROPERTIES:
                name = _value_column(prop, tag)
                errs = np.array([r[name] - r[exp] for r in chosen if name in r])
                if errs.size:
                    summary[f"{role}_{prop}_{tag}_mae"] = float(np.abs(errs).mean())
                    summary[f"{role}_{prop}_{tag}_rmse"] = float(np.sqrt((errs**2).mean()))
    return summary


def worse_than_error_bar(rows: Sequence[dict[str, Any]]) -> list[str]:
    """``"NAME property"`` for every row whose |after - exp| exceeds |before - exp| by
    more than the combined standard error of the two runs."""
    worse = []
    for row in rows:
        for prop, exp in PROPERTIES:
            before, after = _value_column(prop, "before"), _value_column(prop, "after")
            if before in row and after in row:
                bar = math.hypot(row[f"{prop}_before_error"], row[f"{prop}_after_error"])
                if abs(row[after] - row[exp]) - abs(row[before] - row[exp]) > bar:
                    worse.append(f"{row['name']} {prop}")
    return worse


def drifting_torsions(state: LiquidFitState, best: int, outdir: str | Path,
                      names: dict[str, str], molecules: dict[str, Molecule],
                      save_interval_ps: float) -> list[dict[str, Any]]:
    """Every torsion whose trans fraction drifts (:mod:`ffparam.liquid.conformers`) in the
    start round, the ``best`` round and its held-out validation of the fit stored in
    ``outdir``: dicts with ``liquid`` (from ``names``, by slug), ``round`` ("start" or
    "fitted") and :meth:`TorsionDrift.to_json`'s fields. Results stored before they
    carried the check are checked from their frames (``molecules``, by slug)."""
    outdir = Path(outdir)
    runs = [("start", state.rounds[0].results, outdir / "round_000")]
    if best:
        runs.append(("fitted", state.rounds[best].results, outdir / f"round_{best:03d}"))
        if state.validation is not None and state.validation.round == best:
            runs.append(("fitted", state.validation.results,
                         outdir / f"validation_round_{best:03d}"))
    details = []
    for label, results, root in runs:
        for slug, result in results.items():
            details.extend({"liquid": names[slug], "round": label, **d.to_json()}
                           for d in stored_drift(result.torsion_drift, root / slug,
                                                 molecules[slug], save_interval_ps)
                           if d.drifting)
    return details


def fit_metrics(state: LiquidFitState, best: int, training: Sequence[LiquidReference],
                holdout: Sequence[LiquidReference], outdir: str | Path,
                molecules: dict[str, Molecule], save_interval_ps: float) -> dict[str, Any]:
    """``metrics.json``: the rows, their error summary, the liquids worse by more than
    their error bar and the drifting torsions (fractions of molecules in the trans well)
    of the fit in ``outdir`` whose best round is ``best``."""
    rows = liquid_rows(state, best, training, holdout)
    details = drifting_torsions(state, best, outdir,
                                {r.slug: r.name for r in [*training, *holdout]}, molecules,
                                save_interval_ps)
    return {"best_round": best, "rounds": len(state.rounds), "summary": error_summary(rows),
            "worse_by_more_than_error_bar": worse_than_error_bar(rows), "liquids": rows,
            "conformers_not_equilibrated": sorted({f"{d['liquid']} ({d['round']})"
                                                   for d in details}),
            "torsion_drift": details,
            "units": {"density": "g/mL", "hvap": "kcal/mol"}}
