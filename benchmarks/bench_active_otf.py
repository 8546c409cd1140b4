"""On-the-fly active learning of 3BPA with GFN2-xTB labels against random selection
(issue 16 benchmark), a test set from independent GFN2-xTB MD, and a long MD stability run.

Four steps, each resumable and run as its own process (so that they can run side by side):

    export OMP_NUM_THREADS=1
    nice python benchmarks/bench_active_otf.py testset --out /tmp/otf --ps 5
    nice python benchmarks/bench_active_otf.py learn --out /tmp/otf --strategy active
    nice python benchmarks/bench_active_otf.py learn --out /tmp/otf --strategy random
    nice python benchmarks/bench_active_otf.py stability --out /tmp/otf --strategy active
    python benchmarks/bench_active_otf.py summary --out /tmp/otf

* ``testset``: GFN2-xTB (tblite through ASE) optimizes 3BPA, then runs Langevin MD at
  ``--temperature`` (600 K, 0.5 fs steps, friction 0.01/fs) for 0.5 ps of equilibration
  and ``--ps`` ps of production, keeping a frame every ``--spacing-fs`` fs (>= 20 fs) with
  its GFN2-xTB energy and forces: OUT/test.xyz. The MD is driven by GFN2-xTB itself, not
  by any model, so the test frames are independent of both learning runs.
* ``learn``: :func:`ffparam.workflows.mlp_active.active_on_the_fly` on the 3BPA SMILES:
  ``--initial`` normal-mode samples, then per round MD at 600 K with the current model
  (``--md-steps`` steps, a candidate every ``--md-interval``), ``--per-round`` new GFN2-xTB
  labels per round up to ``--budget``; ``active`` picks the most uncertain diverse
  candidates, ``random`` picks uniformly among the same kind of MD candidates (its own
  model's MD). Every round is scored on OUT/test.xyz. Output OUT/<strategy>/ (the final
  model in it, rounds/, active.json, active.png).
* ``stability``: ``--stability-ps`` ps of Langevin MD at 600 K with the final model of a
  strategy (``--timestep-fs`` steps, default 0.5 fs, friction 0.01/fs, no uncertainty
  stop, a frame kept every 20 fs), checked frame by frame against
  :func:`ffparam.workflows.mlp_active.geometry_check` (no bond stretched beyond
  ``--max-stretch`` times its length in the molecule's RDKit conformer, no non-bonded pair closer
  than ``--min-distance`` Angstrom) and the temperature's mean against the thermostat's
  (within 3 standard errors of the expected fluctuation sqrt(2/(3N - 3)) T per sample).
* ``summary``: test force MAE against labels for both strategies, wall times, stability.

The model is the sparse GP with fixed hyperparameters (bench_active's 3BPA row,
``GP_FIXED``): on 2 shared cores, a 5-member ANI committee costs minutes of training per
round and ~5 model evaluations per MD step, the GP seconds per round.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ffparam.io.atomic import write_json_atomic

SMILES_3BPA = "Nc1ncccc1OCc1ccccc1"
"""3-(benzyloxy)pyridin-2-amine, the 3BPA of Kovacs et al. (27 atoms)."""
GP_3BPA = {"length_scale": 3.2, "force_noise": 1e-4, "learn_weights": False}
"""The fixed GP options of bench_active.py's 3BPA row."""


def _molecule():
    from ffparam.chem import Molecule

    molecule = Molecule.from_input(SMILES_3BPA)
    return molecule.generate_conformers(1, seed=0) if molecule.n_conformers == 0 else molecule


def _gfn2_atoms(molecule, positions):
    from ase import Atoms
    from tblite.ase import TBLite

    atoms = Atoms(numbers=molecule.atomic_numbers, positions=positions)
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    return atoms


def make_testset(args) -> None:
    """OUT/test.xyz: frames of GFN2-xTB Langevin MD (eV, eV/Angstrom)."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write
    from ase.optimize import BFGS

    from ffparam.energy.ase import langevin, thermalize

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "test.xyz").exists():
        print("test set exists:", out / "test.xyz")
        return
    molecule = _molecule()
    atoms = _gfn2_atoms(molecule, molecule.conformers[0])
    t0 = time.perf_counter()
    BFGS(atoms, logfile=None).run(fmax=0.01, steps=500)
    rng = np.random.default_rng(args.seed + 12345)
    thermalize(atoms, args.temperature, rng)
    dyn = langevin(atoms, args.temperature, 0.5, 0.01, rng)
    dyn.run(1000)  # 0.5 ps equilibration
    every = round(args.spacing_fs / 0.5)
    frames, temps = [], []
    for _ in range(round(args.ps * 1000 / args.spacing_fs)):
        dyn.run(every)
        frame = atoms.copy()
        frame.calc = SinglePointCalculator(frame, energy=atoms.get_potential_energy(),
                                           forces=atoms.get_forces())
        frames.append(frame)
        temps.append(atoms.get_temperature())
    write(str(out / "test.partial.xyz"), frames, format="extxyz")
    (out / "test.partial.xyz").replace(out / "test.xyz")
    write_json_atomic(out / "test.json", {
        "frames": len(frames), "spacing_fs": args.spacing_fs, "production_ps": args.ps,
        "temperature_k": args.temperature, "mean_temperature_k": float(np.mean(temps)),
        "wall_s": time.perf_counter() - t0, "timestep_fs": 0.5, "friction_per_fs": 0.01})
    print(f"{len(frames)} test frames, {time.perf_counter() - t0:.0f} s wall")


def learn(args) -> None:
    """Active or random on-the-fly learning, scored on OUT/test.xyz."""
    from ffparam.ml.active import ActiveSettings
    from ffparam.workflows.mlp_active import MlpActiveSettings, active_on_the_fly

    out = Path(args.out)
    settings = MlpActiveSettings(model="gpr", method="gfn2-xtb",
                                 temperatures_k=(args.temperature,), md_steps=args.md_steps,
                                 md_interval=args.md_interval)
    loop = ActiveSettings(budget=args.budget, initial=args.initial, per_round=args.per_round,
                          seed=args.seed)
    t0 = time.perf_counter()
    c0 = time.process_time()
    summary = active_on_the_fly(SMILES_3BPA, out / args.strategy, settings, loop,
                                store_path=out / f"reference_{args.strategy}.db",
                                options=GP_3BPA,
                                random=args.strategy == "random")
    wall = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
    timing = out / f"timing_{args.strategy}.json"
    previous = json.loads(timing.read_text()) if timing.exists() else []
    write_json_atomic(timing, [*previous, wall])
    print(args.strategy, summary["stop"], f"{wall['wall_s']:.0f} s wall")


def stability(args) -> None:
    """Long MD with a model, in segments of ``--segment-ps`` (velocities carried over),
    checked against the geometry and temperature criteria after every segment; the report
    OUT/stability_<strategy>_seed<seed>.json is rewritten after each segment, and the run
    ends at ``--stability-ps``, at ``--max-wall-s`` or at the first failed check."""
    from ase.io import read

    from ffparam.ml.potential import load_potential

    out = Path(args.out)
    molecule = _molecule()
    model = Path(args.model) if args.model else out / args.strategy
    potential = load_potential(model)
    atoms = read(str(out / args.strategy / "rounds" / "000" / "data.xyz"), index=0)
    atoms.calc = None  # the first normal-mode sample
    name = f"stability_{args.strategy}_seed{args.seed}"
    every = round(20 / args.timestep_fs)  # a frame every 20 fs; a segment ends on one
    segment = max(every, round(args.segment_ps * 1000 / args.timestep_fs / every) * every)
    total = round(args.stability_ps * 1000 / args.timestep_fs)
    state = {"steps": 0, "temps": [], "positions": [], "stop": "", "wall_s": 0.0}
    t0 = time.perf_counter()
    while state["steps"] < total and not state["stop"]:
        atoms = _segment(potential, atoms, min(segment, total - state["steps"]), args,
                         state, out / f"{name}.part.xyz")
        state["wall_s"] = time.perf_counter() - t0
        report = _stability_report(args, molecule, model, state, total)
        write_json_atomic(out / f"{name}.json", report)
        if not report["geometry"]["ok"]:
            state["stop"] = "broken geometry"
        elif state["wall_s"] > args.max_wall_s:
            state["stop"] = f"wall limit {args.max_wall_s:g} s"
    report = _stability_report(args, molecule, model, state, total)
    write_json_atomic(out / f"{name}.json", report)
    print(json.dumps(report, indent=1))


def _segment(potential, atoms, steps: int, args, state: dict, path: Path):
    """One MD segment from ``atoms`` (its momenta kept after the first); appends to
    ``state`` and returns the last frame with its momenta."""
    from ase.io import read

    from ffparam.ml.md import run_md

    first = state["steps"] == 0
    result = run_md(potential, atoms, steps, args.temperature, timestep_fs=args.timestep_fs,
                    trajectory=path, interval=round(20 / args.timestep_fs),
                    max_force_sigma=None, seed=args.seed + 777 + state["steps"],
                    initialize_velocities=first)
    frames = read(str(path), index=":")
    path.unlink()
    state["steps"] += result.steps_done
    state["temps"] += list(result.temperature_k[1:] if not first else result.temperature_k)
    state["positions"] += [f.positions.copy() for f in (frames if first else frames[1:])]
    if result.stopped:
        state["stop"] = result.reason
    return frames[-1]


def _stability_report(args, molecule, model: Path, state: dict, total: int) -> dict:
    """Geometry and temperature criteria of the MD so far (K, Angstrom, ps)."""
    from ffparam.workflows.mlp_active import geometry_check

    n = molecule.n_atoms
    check = geometry_check(np.asarray(state["positions"]), molecule.bonds,
                           molecule.conformers[0], args.max_stretch, args.min_distance)
    temps = np.asarray(state["temps"])[len(state["temps"]) // 10:]
    block = round(1000 / args.timestep_fs)  # correlated samples: SEM from 1 ps blocks
    blocks = [temps[i:i + block].mean() for i in range(0, len(temps) - block + 1, block)]
    sem = float(np.std(blocks, ddof=1) / np.sqrt(len(blocks))) if len(blocks) > 1 else None
    mean = float(temps.mean())
    temperature_ok = abs(mean - args.temperature) <= max(3 * (sem or 0.0),
                                                         0.05 * args.temperature)
    return {"strategy": args.strategy, "model": str(model), "seed": args.seed,
            "steps_requested": total, "steps_done": state["steps"],
            "simulated_ps": state["steps"] * args.timestep_fs / 1000,
            "timestep_fs": args.timestep_fs, "stop": state["stop"], "wall_s": state["wall_s"],
            "frames_checked": check["frames"], "geometry": check,
            "temperature_mean_k": mean, "temperature_sd_k": float(temps.std()),
            "temperature_expected_sd_k": args.temperature * np.sqrt(2.0 / (3 * n - 3)),
            "temperature_block_sem_k": sem, "temperature_ok": bool(temperature_ok),
            "max_stretch": args.max_stretch, "min_distance_a": args.min_distance,
            "stable_so_far": bool(check["ok"] and temperature_ok
                                  and not state["stop"].startswith(("forces", "non-finite")))}


def score_rounds(out: Path, strategy: str, calibrate: bool = False) -> list[dict]:
    """Test force MAE (meV/A) of every finished round's model of a strategy on
    OUT/test.xyz and, with ``calibrate``, the calibration (frame Spearman, miscalibration
    area) of the last round's (GP variances cost ~10x the mean on 2 cores); cached in
    OUT/scores_<strategy>.json."""
    from ffparam.ml.data import read_extxyz

    cache = out / f"scores_{strategy}.json"
    rows = {r["round"]: r for r in (json.loads(cache.read_text()) if cache.exists() else [])}
    test = read_extxyz(out / "test.xyz")
    records = [p for p in sorted((out / strategy / "rounds").glob("*/round.json"))
               if (p.parent / "model").exists()]
    for k, record in enumerate(records):
        meta = json.loads(record.read_text())
        last = calibrate and k == len(records) - 1
        row = rows.get(meta["round"])
        if row is None or (last and "frame_spearman" not in row):
            rows[meta["round"]] = _score(record.parent / "model", test, meta, last)
    result = [rows[k] for k in sorted(rows)]
    write_json_atomic(cache, result)
    return result


def _score(model_dir: Path, test, meta: dict, calibrate: bool) -> dict:
    """One round's model scored on the test frames (eV, eV/A in; meV, meV/A out)."""
    from ffparam.ml.calibration import calibration_report
    from ffparam.ml.potential import load_potential

    potential = load_potential(model_dir)
    pred = potential.predict(test, uncertainty=calibrate)
    err = pred.forces - test.forces
    row = {"round": meta["round"], "n_labels": meta["n_labels"],
           "labels_spent": meta["labels_spent"],
           "test_force_mae_mev_a": 1000 * float(np.abs(err).mean()),
           "test_energy_mae_mev": 1000 * float(np.abs(pred.energy - test.energies).mean()),
           "round_wall_s": meta.get("wall_s")}
    if calibrate:
        report = calibration_report(err, pred.forces_sigma, test.atom_frame_index(),
                                    pred.frame_sigma)
        row["frame_spearman"] = report.get("frame_spearman")
        row["frame_spearman_rms_sigma"] = report.get("frame_spearman_rms_sigma")
        row["miscalibration_area"] = report.get("miscalibration_area")
    return row


def summary(args) -> None:
    """Print and write OUT/summary.json: test MAE against labels, wall, stability."""
    out = Path(args.out)
    result: dict = {"test": json.loads((out / "test.json").read_text())}
    for strategy in ("active", "random"):
        if not (out / strategy / "rounds").exists():
            continue
        done = out / strategy / "active.json"
        data = json.loads(done.read_text()) if done.exists() else {}
        rounds = [json.loads(p.read_text())
                  for p in sorted((out / strategy / "rounds").glob("*/round.json"))]
        row = {"scores": score_rounds(out, strategy, args.calibrate), "stop": data.get("stop"),
               "failures": sum(len(r.get("failures", [])) for r in rounds),
               "rounds_wall_s": float(sum(r.get("wall_s", 0.0) for r in rounds)),
               "md_restarts": _md_events(out / strategy / "md")}
        path = out / f"timing_{strategy}.json"
        row["timing"] = json.loads(path.read_text()) if path.exists() else None
        row["stability"] = [json.loads(p.read_text())
                            for p in sorted(out.glob(f"stability_{strategy}_seed*.json"))]
        result[strategy] = row
    write_json_atomic(out / "summary.json", result)
    for strategy in ("active", "random"):
        if strategy in result:
            row = result[strategy]
            print(strategy, row["stop"], f"rounds wall {row['rounds_wall_s']:.0f} s,",
                  f"{row['failures']} failed labels, MD restarts {row['md_restarts']}")
            print("  labels:test force MAE (meV/A)",
                  " ".join(f"{r['n_labels']}:{r['test_force_mae_mev_a']:.1f}"
                           for r in row["scores"]))


def _md_events(md_dir: Path) -> int:
    """Candidate MD restarts recorded in ``md_dir`` (the labeller's .json files)."""
    return sum(len(json.loads(p.read_text())["events"]) for p in md_dir.glob("*.json"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=["testset", "learn", "stability", "summary"])
    parser.add_argument("--out", default="/tmp/bench_active_otf")
    parser.add_argument("--strategy", choices=["active", "random"], default="active")
    parser.add_argument("--temperature", type=float, default=600.0)
    parser.add_argument("--ps", type=float, default=5.0, help="test MD production (ps)")
    parser.add_argument("--spacing-fs", type=float, default=20.0)
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--initial", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--md-steps", type=int, default=400)
    parser.add_argument("--md-interval", type=int, default=4)
    parser.add_argument("--model", default=None,
                        help="stability: model directory (default OUT/STRATEGY, the final)")
    parser.add_argument("--stability-ps", type=float, default=100.0)
    parser.add_argument("--segment-ps", type=float, default=1.0)
    parser.add_argument("--max-wall-s", type=float, default=float("inf"))
    parser.add_argument("--timestep-fs", type=float, default=0.5, help="stability MD step")
    parser.add_argument("--max-stretch", type=float, default=1.5)
    parser.add_argument("--min-distance", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calibrate", action="store_true",
                        help="summary: calibration of each strategy's last round too")
    args = parser.parse_args()
    if args.spacing_fs < 20:
        parser.error("--spacing-fs must be at least 20 fs")
    {"testset": make_testset, "learn": learn, "stability": stability,
     "summary": summary}[args.step](args)


if __name__ == "__main__":
    main()
