"""Parity plots for validation data: held-out conformer energies and forces, and torsion
profile energies of all rotors (PNG files through :func:`ffparam.report.plots.parity_plot`).

Inputs are plain arrays or the JSON form of the results (``ConformerValidation.to_json()``
with its ``parity`` block, the rotors of ``metrics.json`` with their ``profile`` block), so
a report can be redrawn from ``metrics.json`` alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ffparam.report.plots import STYLES, parity_plot

ENERGY_PARITY = "conformer_energy_parity.png"
FORCE_PARITY = "conformer_force_parity.png"
TORSION_PARITY = "torsion_parity.png"


def conformer_energy_parity_plot(path: str | Path, reference: np.ndarray,
                                 predictions: Mapping[str, np.ndarray]) -> Path:
    """Relative energies (kcal/mol, mean removed) of held-out conformers: model vs
    reference, one series per system."""
    return parity_plot(path, reference, styled(predictions),
                       "held-out conformers: relative energy", unit="kcal/mol")


def conformer_force_parity_plot(path: str | Path, reference: np.ndarray,
                                predictions: Mapping[str, np.ndarray]) -> Path:
    """Force components (kcal/mol/A) on held-out conformers: model vs reference."""
    return parity_plot(path, reference, styled(predictions),
                       "held-out conformers: force components", unit="kcal/mol/A")


def conformer_parity_plots(validation: Any, plots_dir: str | Path) -> dict[str, Path]:
    """Energy and force parity PNGs of a conformer validation.

    Args:
        validation: a ``ConformerValidation`` or its ``to_json()`` dict (needs ``parity``).
        plots_dir: folder for ``conformer_energy_parity.png`` / ``conformer_force_parity.png``.

    Returns:
        ``{"energy": path, "force": path}`` for the plots that had data (possibly empty).
    """
    data = validation.to_json() if hasattr(validation, "to_json") else validation
    parity = (data or {}).get("parity") or {}
    plots_dir = Path(plots_dir)
    out: dict[str, Path] = {}
    ref_e = _array(parity.get("reference_energy_kcal_mol"))
    series_e = _series(parity.get("energy_kcal_mol"), len(ref_e))
    if len(ref_e) >= 2 and series_e:
        plots_dir.mkdir(parents=True, exist_ok=True)
        out["energy"] = conformer_energy_parity_plot(plots_dir / ENERGY_PARITY, ref_e, series_e)
    ref_f = _array(parity.get("reference_force_kcal_mol_a"))
    series_f = _series(parity.get("force_kcal_mol_a"), len(ref_f))
    if len(ref_f) and series_f:
        plots_dir.mkdir(parents=True, exist_ok=True)
        out["force"] = conformer_force_parity_plot(plots_dir / FORCE_PARITY, ref_f, series_f)
    return out


def torsion_parity_plot(path: str | Path, rotors: Sequence[Mapping[str, Any]]) -> Path | None:
    """Torsion-scan relative energies (kcal/mol) of every rotor, start and fitted models vs
    the reference, from each rotor's ``profile`` block (``reference``, ``start``, ``fitted``
    lists of equal length). Returns None when no rotor has a profile."""
    reference: list[float] = []
    series: dict[str, list[float]] = {"start": [], "fitted": []}
    for rotor in rotors:
        profile = rotor.get("profile") or {}
        ref = _array(profile.get("reference"))
        rows = {name: _array(profile.get(name)) for name in series}
        if not len(ref) or any(len(v) != len(ref) for v in rows.values()):
            continue
        reference.extend(ref.tolist())
        for name, values in rows.items():
            series[name].extend(values.tolist())
    if not reference:
        return None
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return parity_plot(path, np.array(reference), {k: np.array(v) for k, v in series.items()},
                       "torsion scans (all rotors)", unit="kcal/mol")


def styled(series: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Series renamed so each gets its own colour from ``plots.STYLES`` (keyed by the first
    word of the name): a name without a style, e.g. ``bespoke``, becomes ``fitted
    (bespoke)`` while no series is called ``fitted``."""
    out: dict[str, np.ndarray] = {}
    fitted_free = not any(name.split(" ")[0] == "fitted" for name in series)
    for name, values in series.items():
        if name.split(" ")[0] not in STYLES and fitted_free:
            out[f"fitted ({name})"] = values
            fitted_free = False
        else:
            out[name] = values
    return out


def _array(values: Any) -> np.ndarray:
    """A float array with None (JSON for NaN) dropped to NaN."""
    if values is None:
        return np.zeros(0)
    return np.array([np.nan if v is None else v for v in np.ravel(values).tolist()], dtype=float)


def _series(data: Any, n: int) -> dict[str, np.ndarray]:
    if not isinstance(data, Mapping):
        return {}
    out = {str(k): _array(v) for k, v in data.items()}
    return {k: v for k, v in out.items() if len(v) == n and n and np.all(np.isfinite(v))}
