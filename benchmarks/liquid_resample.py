"""Re-simulate some liquids of a finished ``bench_liquid.py`` fit at the parameters of
chosen rounds with other sampling settings (tempered gas phase, box packed from gas-phase
conformers, longer equilibration, other seeds), and print how the fit's before/after
verdict changes when their results are replaced.

Why: 1,2-dichloroethane's trans/gauche torsion crosses every few ns, so the plain 25-ns
gas run and a 250-ps liquid started from one conformer do not sample its conformers (see
:mod:`ffparam.liquid.tempering`); its Hvap in the fit is a sampling artefact. Usage::

    python benchmarks/liquid_resample.py tmp/bench_liquid_v3 --liquids 1,2-Dichloroethane \\
        --rounds 0 1 --gas-replicas 6 --gas-max-k 1000 --box-conformers 16 \\
        --equil-ps 250 --seeds 2024 7 --out tmp/liquid_resample_dce

The fit's own options (box size, production, cutoff...) are kept; only the named sampling
settings and the seed change. Each (liquid, round, seed) runs in its own directory and
resumes if killed.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_liquid as bl


def gauche_fraction(positions: np.ndarray, n_atoms: int, quartet: list[int]) -> np.ndarray:
    """Per frame, the fraction of molecules whose dihedral ``quartet`` is within 120 degrees
    of cis (gauche or cis). positions (F, n_mol * n_atoms, 3)."""
    from ffparam.liquid.conformers import dihedral_deg

    p = positions.reshape(positions.shape[0], -1, n_atoms, 3)
    return (np.abs(dihedral_deg(p, tuple(quartet))) < 120.0).mean(axis=1)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fit_out", type=Path, help="bench_liquid.py --out directory")
    parser.add_argument("--liquids", nargs="+", required=True)
    parser.add_argument("--rounds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--seeds", nargs="+", type=int, default=[2024])
    parser.add_argument("--gas-replicas", type=int, default=6)
    parser.add_argument("--gas-max-k", type=float, default=1000.0)
    parser.add_argument("--gas-ns", type=float, default=10.0)
    parser.add_argument("--box-conformers", type=int, default=16)
    parser.add_argument("--equil-ps", type=float, default=250.0)
    parser.add_argument("--dihedral", nargs=4, type=int, default=None,
                        help="atom indices of a slow torsion to report (gauche fraction)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    return parser.parse_args()


def make_jobs(args, fit, references) -> list[tuple]:
    """(liquid, round, seed, job) for every chosen liquid, round and seed: the fit's job at
    that round's parameters with the requested sampling settings and seed."""
    rounds = fit.state.rounds
    wanted = {name.lower() for name in args.liquids}
    chosen = [r for r in references if r.name.lower() in wanted]
    if len(chosen) != len(wanted):
        sys.exit(f"unknown liquid(s): {sorted(wanted - {r.name.lower() for r in chosen})}")
    jobs = []
    for ref in chosen:
        for k in args.rounds:
            for seed in args.seeds:
                job = fit.job(ref, np.array(rounds[k].x),
                              args.out / f"{ref.slug}_round{k}_seed{seed}")
                settings = job.settings.replace(
                    gas_replicas=args.gas_replicas, gas_max_temperature_k=args.gas_max_k,
                    gas_production_ps=args.gas_ns * 1000.0,
                    box_conformers=args.box_conformers, equilibration_ps=args.equil_ps,
                    seed=seed, threads=1)
                jobs.append((ref, k, seed, dataclasses.replace(job, settings=settings)))
    return jobs


def run_jobs(jobs: list[tuple], workers: int) -> dict:
    """The results of the jobs by (slug, round, seed), printed as they finish."""
    from ffparam.liquid.job import run_liquid_jobs
    from ffparam.runtime import make_executor

    start = time.time()
    results = {}
    with make_executor(workers, threads_per_worker=1) as executor:
        for job, result, error in run_liquid_jobs([j for *_, j in jobs], executor):
            key = next((r.slug, k, s) for r, k, s, j in jobs if j.directory == job.directory)
            if result is None:
                print(f"{key}: FAILED {error}", flush=True)
                continue
            results[key] = result
            print(f"[{time.time() - start:6.0f} s] {key}: density {result.density.value:.4f} "
                  f"+/- {result.density.error:.4f}, Hvap {result.hvap.value:.3f} +/- "
                  f"{result.hvap.error:.3f}", flush=True)
    return results


def _pair(estimate) -> list[float]:
    return [estimate.value, estimate.error]


def gauche_summary(job, dihedral: list[int]) -> dict:
    """Gauche fraction of torsion ``dihedral`` in the job's gas run and in the halves of
    its liquid run."""
    from ffparam.liquid.simulate import load_trajectory

    n_atoms = job.system.molecule.n_atoms
    liquid = load_trajectory(Path(job.directory) / "liquid", job.settings.save_interval_ps)
    gas = load_trajectory(Path(job.directory) / "gas", job.settings.gas_save_interval_ps)
    lg = gauche_fraction(liquid.positions, n_atoms, dihedral)
    gg = gauche_fraction(gas.positions, n_atoms, dihedral)
    half = len(lg) // 2
    return {"gas": float(gg.mean()),
            "gas_halves": [float(gg[:len(gg) // 2].mean()), float(gg[len(gg) // 2:].mean())],
            "liquid_halves": [float(lg[:half].mean()), float(lg[half:].mean())]}


def summary_rows(args, fit, jobs: list[tuple], results: dict) -> list[dict]:
    """One row per finished job, next to what the fit's own run of it gave."""
    summary = []
    for ref, k, seed, job in jobs:
        res = results.get((ref.slug, k, seed))
        if res is None:
            continue
        row = {"liquid": ref.name, "round": k, "seed": seed,
               "density": _pair(res.density), "hvap": _pair(res.hvap),
               "gas_energy": _pair(res.gas_energy),
               "liquid_energy_per_molecule": _pair(res.liquid_energy_per_molecule),
               "exp": [ref.density_g_ml, ref.hvap_kcal_mol]}
        old = fit.state.rounds[k].results.get(ref.slug)
        if old is not None:
            row["fit_run"] = {"density": _pair(old.density), "hvap": _pair(old.hvap),
                              "gas_energy": _pair(old.gas_energy)}
        if args.dihedral:
            row["gauche"] = gauche_summary(job, args.dihedral)
        summary.append(row)
    return summary


def print_table(summary: list[dict]) -> None:
    print("\n| liquid | round | seed | density | Hvap | fit run Hvap | gas E | gauche gas / "
          "liquid (1st, 2nd half) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in summary:
        fr = row.get("fit_run", {})
        g = row.get("gauche")
        gtext = (f"{g['gas']:.2f} / {g['liquid_halves'][0]:.2f}, {g['liquid_halves'][1]:.2f}"
                 if g else "-")
        print(f"| {row['liquid']} | {row['round']} | {row['seed']} | "
              f"{row['density'][0]:.4f} ± {row['density'][1]:.4f} | "
              f"{row['hvap'][0]:.3f} ± {row['hvap'][1]:.3f} | "
              + (f"{fr['hvap'][0]:.3f} ± {fr['hvap'][1]:.3f}" if fr else "-")
              + f" | {row['gas_energy'][0]:.3f} ± {row['gas_energy'][1]:.3f} | {gtext} |")


def training_rows(fit, summary: list[dict], k: int) -> dict:
    """Per training liquid, (density, error, Hvap, error, reference) before (round 0) and
    after (round ``k``): the seed average of the re-runs where there are any, else the
    fit's own result."""
    rows = {}
    for tag, rk in (("before", 0), ("after", k)):
        for ref in fit.training:
            mine = [r for r in summary if r["liquid"] == ref.name and r["round"] == rk]
            if mine:
                d = np.mean([r["density"][0] for r in mine])
                h = np.mean([r["hvap"][0] for r in mine])
                de = math.sqrt(sum(r["density"][1] ** 2 for r in mine)) / len(mine)
                he = math.sqrt(sum(r["hvap"][1] ** 2 for r in mine)) / len(mine)
            else:
                data = fit.state.rounds[rk].results[ref.slug]
                (d, de), (h, he) = _pair(data.density), _pair(data.hvap)
            rows.setdefault(ref.name, {})[tag] = (d, de, h, he, ref)
    return rows


def print_verdict(fit, summary: list[dict], k: int) -> None:
    """The fit's before/after verdict of round ``k`` with the re-sampled rows."""
    train_rows = training_rows(fit, summary, k)
    mae = {}
    for tag in ("before", "after"):
        dev_d = [v[tag][0] - v[tag][4].density_g_ml for v in train_rows.values()]
        dev_h = [v[tag][2] - v[tag][4].hvap_kcal_mol for v in train_rows.values()]
        mae[tag] = (float(np.mean(np.abs(dev_d))), float(np.mean(np.abs(dev_h))))
    worse = []
    for name, v in train_rows.items():
        (db, dbe, hb, hbe, ref), (da, dae, ha, hae, _) = v["before"], v["after"]
        if abs(da - ref.density_g_ml) - abs(db - ref.density_g_ml) > math.hypot(dbe, dae):
            worse.append(f"{name} density")
        if abs(ha - ref.hvap_kcal_mol) - abs(hb - ref.hvap_kcal_mol) > math.hypot(hbe, hae):
            worse.append(f"{name} Hvap")
    print(f"\nround {k} vs round 0 (fit centre: round {fit.state.centre}), training set with "
          f"the re-sampled rows: density MAE {mae['before'][0]:.4f} -> {mae['after'][0]:.4f} "
          f"g/mL, Hvap MAE {mae['before'][1]:.3f} -> {mae['after'][1]:.3f} kcal/mol; "
          f"worse beyond the combined error bar: {worse or 'none'}")


def main() -> None:
    from ffparam.io.atomic import write_json_atomic

    args = parse_args()
    fit, _, references = bl.open_fit(args.fit_out)
    jobs = make_jobs(args, fit, references)
    results = run_jobs(jobs, args.workers)
    summary = summary_rows(args, fit, jobs, results)
    write_json_atomic(args.out / "summary.json", summary)
    print_table(summary)
    # the fit's verdict with these liquids' rows replaced by the seed-averaged re-runs
    if {0} <= set(args.rounds) and len(args.rounds) > 1:
        for k in args.rounds:
            if k != 0:
                print_verdict(fit, summary, k)


if __name__ == "__main__":
    main()
