"""Error metrics of predictions against reference data, and parity plots.

Energies are compared as totals per frame (meV) and per atom (meV/atom); forces per
Cartesian component (meV/Angstrom). MAE = mean |pred - ref|, RMSE = sqrt(mean (pred - ref)^2).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ffparam.io.atomic import savefig_atomic
from ffparam.ml.calibration import calibration_report
from ffparam.ml.data import MLDataset
from ffparam.ml.potential import Prediction


def error_metrics(pred: Prediction, data: MLDataset) -> dict:
    """MAE/RMSE of energies (meV, meV/atom) and forces (meV/Angstrom); calibration if the
    prediction carries sigmas."""
    out: dict = {"n_frames": len(data)}
    if data.energies is not None:
        err = pred.energy - data.energies
        out["energy_mae_mev"] = 1000 * float(np.mean(np.abs(err)))
        out["energy_rmse_mev"] = 1000 * float(np.sqrt(np.mean(err**2)))
        out["energy_mae_mev_per_atom"] = 1000 * float(np.mean(np.abs(err) / data.n_atoms))
        if pred.energy_sigma is not None:
            out["energy_calibration"] = calibration_report(err, pred.energy_sigma)
    if data.forces is not None and pred.forces is not None:
        err = pred.forces - data.forces
        out["forces_mae_mev_a"] = 1000 * float(np.mean(np.abs(err)))
        out["forces_rmse_mev_a"] = 1000 * float(np.sqrt(np.mean(err**2)))
        if pred.forces_sigma is not None:
            out["forces_calibration"] = calibration_report(err, pred.forces_sigma,
                                                           data.atom_frame_index(),
                                                           pred.frame_sigma)
    return out


def parity_plot(pred: Prediction, data: MLDataset, path: str | Path, title: str = "") -> Path:
    """Two-panel parity plot (energies relative to the reference mean, force components)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    if data.energies is not None:
        shift = data.energies.mean()
        ref, got = data.energies - shift, pred.energy - shift
        axes[0].scatter(ref, got, s=6, alpha=0.6)
        lim = [min(ref.min(), got.min()), max(ref.max(), got.max())]
        axes[0].plot(lim, lim, "k--", lw=0.8)
        axes[0].set_xlabel("reference E - mean (eV)")
        axes[0].set_ylabel("predicted E - mean (eV)")
    if data.forces is not None and pred.forces is not None:
        ref, got = data.forces.ravel(), pred.forces.ravel()
        axes[1].scatter(ref, got, s=3, alpha=0.4)
        lim = [min(ref.min(), got.min()), max(ref.max(), got.max())]
        axes[1].plot(lim, lim, "k--", lw=0.8)
        axes[1].set_xlabel("reference F (eV/A)")
        axes[1].set_ylabel("predicted F (eV/A)")
    metrics = error_metrics(pred, data)
    text = []
    if "energy_mae_mev" in metrics:
        text.append(f"E MAE {metrics['energy_mae_mev']:.2f} meV")
    if "forces_mae_mev_a" in metrics:
        text.append(f"F MAE {metrics['forces_mae_mev_a']:.1f} meV/A")
    fig.suptitle(" | ".join(filter(None, [title, *text])))
    fig.tight_layout()
    path = savefig_atomic(fig, path, dpi=120)
    plt.close(fig)
    return path
