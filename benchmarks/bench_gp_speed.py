"""GP load and prediction speed (issue 16): fit a sparse GP on acac, save it, then time
loading it and predicting energies + forces with uncertainty.

    OMP_NUM_THREADS=1 nice python benchmarks/bench_gp_speed.py --data ../shared/data/ml \
        --out /tmp/gp_speed [--frames 200] [--refit] [--threads 1,2]

The model (450 training frames of ``acac_train_300K.xyz``, 50 validation frames, 100
inducing frames, the bench_mlp acac settings) is fitted once into ``OUT/model`` and reused on
reruns (``--refit`` fits again). Reported: load wall s, the wall s of the first prediction
of 15 frames (the fixed cost per call of ``ffparam mlp eval``), then frames/s of a batch
prediction with uncertainty on ``--frames`` test frames (per wall second and per CPU second
of this process, which is the figure that holds on a shared machine) for each of
``--threads`` torch thread counts, with the 1-minute load average before and after and the
ratio of the wall figure to the 59.5 frames per CPU s of issue 16's first session, and
without uncertainty, and the calibration of the force sigmas on those frames (per
component, and per frame).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from ffparam.ml.calibration import calibration_report
from ffparam.ml.data import read_extxyz, read_isolated_atoms, split_indices
from ffparam.ml.models.gp import GPSettings, fit_gp
from ffparam.ml.potential import load_potential

ACAC = {"n_inducing": 100, "n_select": 60, "length_scales": (0.8, 1.6, 3.2, 6.4)}


def _fit(data: Path, model_dir: Path) -> float:
    frames = read_extxyz(data / "acac_train_300K.xyz")
    split = split_indices(len(frames), 450, 50, 0, seed=0)
    refs = read_isolated_atoms(data / "acac_isolated_atoms.xyz")
    t0 = time.perf_counter()
    gp = fit_gp(frames.subset(split.train), refs, frames.subset(split.valid),
                GPSettings(**ACAC))
    gp.save(model_dir)
    return time.perf_counter() - t0


def _timed(fn):
    """(result, wall s, CPU s of this process)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def _throughput(gp, batch, threads: int) -> dict:
    """Frames/s of the batch prediction with and without uncertainty on ``threads`` torch
    threads, per wall second and per CPU second of this process, with the load average."""
    torch.set_num_threads(threads)
    gp.predict(batch.subset(np.arange(min(len(batch), 8))), uncertainty=True)  # warm-up
    out = {"torch_threads": torch.get_num_threads(), "load_average_before": os.getloadavg()[0]}
    pred, wall, cpu = _timed(lambda: gp.predict(batch, uncertainty=True))
    out["frames_per_wall_s_with_uncertainty"] = len(batch) / wall
    out["frames_per_cpu_s_with_uncertainty"] = len(batch) / cpu
    out["ratio_to_59.5_frames_per_cpu_s"] = out["frames_per_wall_s_with_uncertainty"] / 59.5
    out["load_average_after"] = os.getloadavg()[0]
    _, wall, cpu = _timed(lambda: gp.predict(batch, uncertainty=False))
    out["frames_per_wall_s_without_uncertainty"] = len(batch) / wall
    out["frames_per_cpu_s_without_uncertainty"] = len(batch) / cpu
    return out, pred


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data/ml")
    parser.add_argument("--out", default="/tmp/gp_speed")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--refit", action="store_true")
    parser.add_argument("--threads", default="1", help="comma-separated thread counts")
    args = parser.parse_args()
    data, model_dir = Path(args.data), Path(args.out) / "model"
    threads = [int(t) for t in args.threads.split(",")]
    torch.set_num_threads(threads[0])
    result = {}
    if args.refit or not (model_dir / "model.json").exists():
        result["fit_wall_s"] = _fit(data, model_dir)
    test = read_extxyz(data / "acac_test_MD_300K.xyz")
    gp, result["load_wall_s"], result["load_cpu_s"] = _timed(lambda: load_potential(model_dir))
    first = test.subset(np.arange(15))
    _, result["first_15_frames_wall_s"], result["first_15_frames_cpu_s"] = _timed(
        lambda: gp.predict(first, uncertainty=True))
    batch = test.subset(np.arange(15, 15 + args.frames))
    for n in threads:
        result[f"threads_{n}"], pred = _throughput(gp, batch, n)
    err = pred.forces - batch.forces
    result["force_mae_mev_a"] = 1000 * float(np.abs(err).mean())
    if pred.forces_sigma is not None:
        result["forces_calibration"] = calibration_report(err, pred.forces_sigma,
                                                          batch.atom_frame_index(),
                                                          pred.frame_sigma)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
