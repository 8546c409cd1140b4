"""Does the predicted uncertainty rank and size the errors? (issue 16): per-frame Spearman
between the predicted frame sigma (:func:`ffparam.ml.potential.frame_sigma`: the GP's
scaled energy sigma, the committee's RMS force spread; the RMS force sigma's own figure as
``frame_spearman_rms_sigma``) and the RMS force error, and the miscalibration area of the
force components, on the test frames of rMD17 ethanol, acac and 3BPA, for the GP and for a
5-member ANI committee.

    OMP_NUM_THREADS=1 nice python benchmarks/bench_calibration.py --data ../shared/data/ml \
        --out /tmp/bench_calibration --datasets ethanol,acac,3bpa --models gpr,committee \
        [--json results.json]

Splits (seed 0, :func:`ffparam.ml.data.split_indices`: test frames held out first, then
validation, then training): ethanol 1000 frames -> ``--test`` (default 300) test, 50
validation, ``--train`` (default 200) training; 3BPA 500 frames -> 200 test, 50
validation, ``--train`` training; acac 450 training + 50 validation from ``acac_train_300K.xyz``,
test = the first ``--test`` frames of ``acac_test_MD_300K.xyz``. More test frames than
bench_mlp's 50 because a Spearman on 50 frames has a standard error of ~0.13. The sigma
scale of both models is fitted on the validation frames by the miscalibration area
(GP: ``calibration="area"``; committee: :meth:`ffparam.ml.committee.Committee.calibrate`).
Models are saved in ``OUT/<dataset>_<model>`` and reused on reruns (delete one to fit it
again).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ffparam.io.atomic import write_json_atomic
from ffparam.ml.calibration import calibration_report, frame_rms
from ffparam.ml.data import read_extxyz, read_isolated_atoms, split_indices
from ffparam.ml.potential import frame_sigma, load_potential

GP_SETTINGS = {
    "ethanol": {"max_exact": 200, "n_inducing": 200},
    "acac": {"n_inducing": 100, "n_select": 60, "length_scales": (0.8, 1.6, 3.2, 6.4)},
    "3bpa": {"n_inducing": 60, "n_select": 40, "length_scales": (0.8, 1.6, 3.2, 6.4)},
}
"""bench_mlp.py's GP settings per dataset (the sigma scale fitted by the area here)."""

GP_FIXED = {
    "ethanol": {"max_exact": 200, "length_scale": 12.8, "force_noise": 1e-5},
    "acac": {"n_inducing": 100, "length_scale": 6.4, "force_noise": 1e-4},
    "3bpa": {"n_inducing": 60, "length_scale": 3.2, "force_noise": 1e-4},
}
"""``--fixed``: length scale and lambda_G fixed, no descriptor weights (a fit of a few CPU
s instead of minutes of hyperparameter search, for a loaded machine)."""

FILES = {
    "ethanol": ("ethanol_rmd17_train.xyz", "ethanol_isolated_atoms.xyz"),
    "acac": ("acac_train_300K.xyz", "acac_isolated_atoms.xyz"),
    "3bpa": ("3bpa_train_300K.xyz", "3bpa_isolated_atoms.xyz"),
}


def load(data: Path, name: str, n_train: int, n_test: int):
    """(train, valid, test, reference energies) of one dataset (see the module docstring)."""
    frames_file, atoms_file = FILES[name]
    frames = read_extxyz(data / frames_file)
    refs = read_isolated_atoms(data / atoms_file)
    if name == "acac":
        split = split_indices(len(frames), 450, 50, 0, seed=0)
        test = read_extxyz(data / "acac_test_MD_300K.xyz")
        test = test.subset(np.arange(min(n_test, len(test))))
    else:
        n_test = min(n_test, len(frames) - 50 - 1)
        split = split_indices(len(frames), min(n_train, len(frames) - 50 - n_test), 50,
                              n_test, seed=0)
        test = frames.subset(split.test)
    return frames.subset(split.train), frames.subset(split.valid), test, refs


def train(model: str, name: str, datasets, out: Path, args):
    """Fit (or, when ``out`` holds one, load) the model: the GP with bench_mlp's settings
    (``--fixed``: :data:`GP_FIXED`) and area calibration, or a 5-member ANI committee with
    ``--budget`` CPU s per member. ``--rebase``: a saved GP gets the current variance basis
    and the area calibration on the validation frames (:func:`refresh_uncertainty`)."""
    train_set, valid, _, refs = datasets
    if (out / "model.json").exists():
        loaded = load_potential(out)
        if model == "gpr" and args.rebase:
            from ffparam.ml.models.gp.fit import refresh_uncertainty

            refresh_uncertainty(loaded, valid, variance_selection="greedy",
                                calibration="area", **_variance_frames(args))
        return loaded
    if model == "gpr":
        from ffparam.ml.models.gp import GPSettings, fit_gp

        settings = {**GP_FIXED[name], "learn_weights": False} if args.fixed \
            else GP_SETTINGS[name]
        gp = fit_gp(train_set, refs, valid, GPSettings(**settings, calibration="area",
                                                       **_variance_frames(args)))
        gp.save(out)
        return gp
    from ffparam.ml.committee import train_committee
    from ffparam.ml.registry import TrainingJob

    return train_committee(TrainingJob("ani", train_set, valid, out, refs,
                                       time_budget_s=args.budget, options={"lr_patience": 5},
                                       committee=5))


def _variance_frames(args) -> dict:
    """``--variance-frames`` as a GPSettings field (empty: the default)."""
    return {} if args.variance_frames is None else {"variance_frames": args.variance_frames}


def score(model, test) -> dict:
    """Force MAE (meV/A) and the calibration figures of the force sigmas on ``test``."""
    t0, c0 = time.perf_counter(), time.process_time()
    pred = model.predict(test, uncertainty=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    err = pred.forces - test.forces
    index = test.atom_frame_index()
    report = calibration_report(err, pred.forces_sigma, index, pred.frame_sigma)
    report["force_mae_mev_a"] = 1000 * float(np.abs(err).mean())
    report["n_frames"] = len(test)
    report["predict_wall_s"], report["predict_cpu_s"] = wall, cpu
    # half of the test frames with the larger predicted sigma: their share of the error
    sigma, error = frame_sigma(pred, index), frame_rms(err, index)
    top = sigma >= np.median(sigma)
    report["error_ratio_high_vs_low_sigma"] = float(error[top].mean() / error[~top].mean())
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data/ml")
    parser.add_argument("--out", default="/tmp/bench_calibration")
    parser.add_argument("--datasets", default="ethanol,acac,3bpa")
    parser.add_argument("--models", default="gpr,committee")
    parser.add_argument("--train", type=int, default=200, help="training frames (not acac)")
    parser.add_argument("--test", type=int, default=300, help="test frames (3BPA: <= 449)")
    parser.add_argument("--budget", type=float, default=30.0,
                        help="training CPU s per committee member")
    parser.add_argument("--fixed", action="store_true", help="GP: fixed hyperparameters")
    parser.add_argument("--rebase", action="store_true",
                        help="GP: new variance basis and calibration for a saved model")
    parser.add_argument("--variance-frames", type=int, default=None,
                        help="GP: variance basis frames (default: GPSettings')")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    for name in args.datasets.split(","):
        n_test = min(args.test, 200) if name == "3bpa" else args.test
        datasets = load(Path(args.data), name, args.train, n_test)
        for model in args.models.split(","):
            out = Path(args.out) / f"{name}_{model}"
            t0, c0 = time.perf_counter(), time.process_time()
            fitted = train(model, name, datasets, out, args)
            row = {"dataset": name, "model": model, "n_train": len(datasets[0]),
                   "train_wall_s": time.perf_counter() - t0,
                   "train_cpu_s": time.process_time() - c0, **score(fitted, datasets[2])}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        write_json_atomic(args.json, rows)


if __name__ == "__main__":
    main()
