"""Liquid densities and heats of vaporization: OpenFF Sage on the 10 liquids of
``liquids_train.csv``, then a Lennard-Jones fit to the training liquids (held-out liquids
simulated before and after, never fitted), and OpenMM speed on this CPU.

Stages (all resumable: rerun the same command after a kill; finished work is reused):

1. ``speed``: ns/day of a 256-molecule methanol box (1,536 atoms, PME, 9 A cutoff, 2 fs,
   H bonds constrained, Monte Carlo barostat) on the OpenMM CPU platform with 1 and 2
   threads, after minimization and a 2 ps warm-up.
2. ``fit``: :func:`ffparam.workflows.liquid_fit.fit_liquids` in ``OUT/fit``: round 0
   simulates every liquid with Sage (the baseline), each further round the training liquids
   at the trust-region step; held-out liquids are simulated again at the best round.
3. ``reweight``: the round-1 parameters predicted from the round-0 frames by exponential
   reweighting (effective sample size) and by the linear (gradient) model, next to what
   round 1 simulated.
4. ``report``: Markdown tables for benchmarks/RESULTS.md (works on partial results).

Usage (hours of CPU; run it in the background)::

    nohup nice python benchmarks/bench_liquid.py --stage all > tmp/bench_liquid.log 2>&1 &
    python benchmarks/bench_liquid.py --stage report      # any time, from what exists

Defaults: 128 molecules, 50 ps equilibration, 200 ps production (1 ps frames), 25 ns gas,
3 liquids held out (cyclohexane, pyridine, methyl acetate), 1 trust-region step over the
sigma and epsilon of every heavy-atom and C-H hydrogen type the training liquids use.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np

from ffparam.io.atomic import write_json_atomic, write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "experiment" / "liquids_train.csv"
DEFAULT_OUT = ROOT / "tmp" / "bench_liquid"
HOLDOUT = ("Cyclohexane", "Pyridine", "Methyl acetate")
SKIP_TYPES = ("n12",)  # hydroxyl H: epsilon ~1e-5 kcal/mol, sigma buried; not fitted
GOAL_DENSITY_MAE = 0.02  # g/mL
GOAL_HVAP_MAE = 0.6  # kcal/mol


def load() -> str:
    return open("/proc/loadavg").read().split()[0] if os.path.exists("/proc/loadavg") else "?"


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {load()}] {text}", flush=True)


# ---------------------------------------------------------------------- stage 1
def speed(out: Path) -> dict:
    path = out / "speed.json"
    if path.exists():
        return json.loads(path.read_text())
    import openmm
    from openmm import unit

    from ffparam.liquid.box import pack_box
    from ffparam.liquid.openmm_system import build_box_system
    from ffparam.liquid.prepare import prepare_system
    from ffparam.liquid.settings import LiquidSettings

    system = prepare_system("CO", "sage", "am1bcc", name="methanol")
    settings = LiquidSettings(n_molecules=256)
    packed = pack_box(system.molecule, 256, 0.7866 * 0.95)
    rows = {}
    for threads in (1, 2):
        omm = build_box_system(system, 256, packed.box_length_a, settings)
        omm.addForce(openmm.MonteCarloBarostat(1 * unit.atmosphere, 298.15 * unit.kelvin, 25))
        integrator = openmm.LangevinMiddleIntegrator(
            298.15 * unit.kelvin, 1 / unit.picosecond, 2 * unit.femtosecond
        )
        context = openmm.Context(
            omm, integrator, openmm.Platform.getPlatformByName("CPU"), {"Threads": str(threads)}
        )
        context.setPositions(packed.positions * 0.1)
        openmm.LocalEnergyMinimizer.minimize(context)
        integrator.step(1000)
        start, load_before = time.perf_counter(), load()
        integrator.step(2500)
        wall = time.perf_counter() - start
        rows[f"threads_{threads}"] = {
            "ns_per_day": 5e-3 / wall * 86400,
            "wall_s": wall,
            "load_before": load_before,
            "load_after": load(),
        }
        log(f"speed: methanol x256, {threads} thread(s): {rows[f'threads_{threads}']}")
        del context, integrator
    rows.update(atoms=omm.getNumParticles(), date=time.strftime("%Y-%m-%d %H:%M"), cpu=_cpu())
    write_json_atomic(path, rows)
    return rows


def _cpu() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(
            line.split(":", 1)[1].strip()
            for line in text.splitlines()
            if line.startswith("Model name")
        )
        return f"{model}, {os.cpu_count()} cores"
    except Exception:  # lscpu missing: report the core count only
        return f"{os.cpu_count()} cores"


# ---------------------------------------------------------------------- stage 2
def options(args):
    """The :class:`LiquidFitSettings` of this benchmark's arguments."""
    from ffparam.liquid.settings import LiquidFitSettings, LiquidSettings

    simulation = LiquidSettings(
        n_molecules=args.n,
        equilibration_ps=args.equil_ps,
        production_ps=args.prod_ps,
        save_interval_ps=1.0,
        checkpoint_interval_ps=25.0,
        gas_equilibration_ps=50.0,
        gas_production_ps=args.gas_ns * 1000.0,
        gas_save_interval_ps=0.5,
        pack_density_factor=0.9,
        threads=1,
        gas_replicas=getattr(args, "gas_replicas", 1),
        gas_max_temperature_k=getattr(args, "gas_max_k", 1000.0),
        box_conformers=getattr(args, "box_conformers", 0),
    )
    return LiquidFitSettings(
        params=tuple(args.params),
        iterations=args.iterations,
        trust_radius=args.trust_radius,
        no_worse_margin=args.no_worse if args.no_worse >= 0 else None,
        model_safety=args.model_safety,
        step=getattr(args, "step", "linear"),
        min_eff_fraction=getattr(args, "min_eff", 0.2),
        holdout=tuple(args.holdout),
        simulation=simulation,
    )


def open_fit(fit_out: Path, gas_ns: float = 25.0, gas_replicas: int = 1,
             box_conformers: int = 0):
    """(LiquidFit of a finished ``--stage fit`` run in ``fit_out``, its settings, the CSV
    references), opened with this script's defaults and the given sampling settings."""
    from ffparam.liquid.data import read_liquids_csv
    from ffparam.workflows.liquid_fit import LiquidFit

    references = read_liquids_csv(DEFAULT_CSV)
    args = argparse.Namespace(
        n=128, equil_ps=50.0, prod_ps=200.0, gas_ns=gas_ns, iterations=1, trust_radius=0.4,
        no_worse=-1.0, model_safety=1.5, holdout=list(HOLDOUT), workers=2,
        gas_replicas=gas_replicas, gas_max_k=1000.0, box_conformers=box_conformers)
    args.params = training_params(references, args.holdout)
    opts = options(args)
    return LiquidFit(references, opts, fit_out / "fit"), opts, references


def training_params(references, holdout) -> list[str]:
    from ffparam.assign.smirnoff import SmirnoffForceField
    from ffparam.liquid.parameters import vdw_ids_used
    from ffparam.liquid.prepare import prepare_system

    ff = SmirnoffForceField.load("sage")
    ids = set()
    for ref in references:
        if ref.name in holdout:
            continue
        ids |= vdw_ids_used(prepare_system(ref.smiles, "sage", "gasteiger", name=ref.slug))
    names = sorted(
        {ff.offxml_id("vdW", i) for i in ids} - set(SKIP_TYPES), key=lambda s: int(s[1:])
    )
    return [f"vdw:{n}" for n in names]


def fit(args, out: Path):
    from ffparam.liquid.data import read_liquids_csv
    from ffparam.runtime import make_executor
    from ffparam.workflows.liquid_fit import fit_liquids

    references = read_liquids_csv(args.csv)
    if not args.params:
        args.params = training_params(references, args.holdout)
    log(f"fit: {len(references)} liquids, held out {list(args.holdout)}, params {args.params}")
    with make_executor(args.workers if args.workers > 1 else 0) as executor:
        return fit_liquids(references, options(args), out / "fit", log=log, executor=executor)


# ---------------------------------------------------------------------- stage 3
def _stored_state(out: Path):
    """The fit state in ``out/fit`` (None before the fit stage wrote one)."""
    from ffparam.liquid.fit_state import STATE_FILE, read_fit_state

    path = out / "fit" / STATE_FILE
    return read_fit_state(path) if path.exists() else None


def _linear_prediction(start, new: np.ndarray, system) -> dict:
    """Density and Hvap at parameter vector ``new`` from the start result's gradients."""
    p0 = system.parameters.vector()
    dp = {str(k): new[i] - p0[i] for i, k in enumerate(system.parameters.keys())}
    return {"density": start.density.value + sum(start.density_gradient[j] * dp[k]
                                                 for j, k in enumerate(start.keys)),
            "hvap": start.hvap.value + sum(start.hvap_gradient[j] * dp[k]
                                           for j, k in enumerate(start.keys))}


def reweight(args, out: Path) -> dict:
    import torch

    from ffparam.io.atomic import write_json_atomic
    from ffparam.liquid.data import read_liquids_csv
    from ffparam.liquid.reweight import reweight_liquid
    from ffparam.workflows.liquid_fit import LiquidFit

    state = _stored_state(out)
    if state is None or len(state.rounds) < 2:
        return {}
    rounds = state.rounds
    references = read_liquids_csv(args.csv)
    if not args.params:
        args.params = training_params(references, args.holdout)
    fit = LiquidFit(references, options(args), out / "fit")
    x1 = torch.as_tensor(np.array(rounds[1].x), dtype=torch.float64)
    rows = {}
    for ref in fit.training:
        system = fit.systems[ref.slug]
        directory = out / "fit" / "round_000" / ref.slug
        if not (directory / "liquid_lj.npz").exists():
            continue
        new = fit.fit.system_values(system, x1).numpy()
        rw = reweight_liquid(directory, system, new, fit.settings.simulation, ref.temperature_k)
        start = rounds[0].results[ref.slug]
        row = {
            "reweighted": rw,
            "linear": _linear_prediction(start, new, system),
            "start": {"density": start.density.value, "hvap": start.hvap.value},
        }
        simulated = rounds[1].results.get(ref.slug)
        if simulated:
            row["simulated"] = {
                "density": simulated.density.value, "density_error": simulated.density.error,
                "hvap": simulated.hvap.value, "hvap_error": simulated.hvap.error,
            }
        rows[ref.name] = row
    write_json_atomic(out / "reweight.json", rows)
    return rows


# ---------------------------------------------------------------------- stage 4
def _drift_lines(references, state, out: Path, best: int) -> list[str]:
    """The torsions whose populations drift over a liquid run (conformers not in
    equilibrium), for the start round, the best round and the held-out validation."""
    from ffparam.chem import Molecule
    from ffparam.liquid.fit_metrics import drifting_torsions

    order = {ref.name: i for i, ref in enumerate(references)}
    details = drifting_torsions(state, best, out / "fit",
                                {ref.slug: ref.name for ref in references},
                                {ref.slug: Molecule.from_input(ref.smiles) for ref in references},
                                1.0)
    return [f"- conformers not equilibrated: {d['liquid']} ({d['round']}) torsion "
            f"{'-'.join(map(str, d['atoms']))} trans {d['trans_start']:.2f} -> "
            f"{d['trans_end']:.2f} over the production (z {d['z']:.0f})"
            for d in sorted(details, key=lambda d: order[d["liquid"]])]


def _speed_line(out: Path) -> list[str]:
    path = out / "speed.json"
    if not path.exists():
        return []
    s = json.loads(path.read_text())
    return [f"Speed ({s['date']}, {s['cpu']}): methanol x256 ({s['atoms']} atoms) "
            f"{s['threads_1']['ns_per_day']:.1f} ns/day with 1 thread (load "
            f"{s['threads_1']['load_before']}), {s['threads_2']['ns_per_day']:.1f} "
            f"ns/day with 2 threads (load {s['threads_2']['load_before']})."]


def _cell(result, prop: str, digits: int) -> str:
    if result is None:
        return "-"
    estimate = result.density if prop == "density" else result.hvap
    return f"{estimate.value:.{digits}f} ± {estimate.error:.{digits}f}"


def _liquid_table(references, holdout: set[str], state, best: int) -> tuple[list[str], dict]:
    """Per liquid: experiment, Sage (round 0) and fitted values; and the (density, Hvap)
    errors per (set, force field)."""
    start = state.rounds[0].results if state.rounds else {}
    done = any(r.status == "done" for r in state.rounds)
    after = state.rounds[best].results if done else {}
    validation = state.validation.results if state.validation is not None else {}
    lines = ["", "| liquid | set | density exp | Sage | fitted | Hvap exp | Sage | fitted |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    errors: dict = {}
    for ref in references:
        role = "held out" if ref.name.lower() in holdout else "train"
        fitted = (validation.get(ref.slug) if role == "held out"
                  else (after.get(ref.slug) if best > 0 else None))
        s0 = start.get(ref.slug)
        lines.append(f"| {ref.name} | {role} | {ref.density_g_ml:.4f} | "
                     f"{_cell(s0, 'density', 4)} | {_cell(fitted, 'density', 4)} | "
                     f"{ref.hvap_kcal_mol:.2f} | {_cell(s0, 'hvap', 2)} | "
                     f"{_cell(fitted, 'hvap', 2)} |")
        for tag, result in (("sage", s0), ("fitted", fitted)):
            if result is not None:
                errors.setdefault((role, tag), []).append(
                    (result.density.value - ref.density_g_ml,
                     result.hvap.value - ref.hvap_kcal_mol))
    return lines, errors


def _error_lines(errors: dict) -> list[str]:
    lines = [""]
    for (role, tag), values in sorted(errors.items()):
        e = np.array(values)
        lines.append(
            f"- {role}, {tag} ({len(e)} liquids): density MAE "
            f"{np.abs(e[:, 0]).mean():.4f} / RMSE {np.sqrt((e[:, 0] ** 2).mean()):.4f} "
            f"g/mL; Hvap MAE {np.abs(e[:, 1]).mean():.3f} / RMSE "
            f"{np.sqrt((e[:, 1] ** 2).mean()):.3f} kcal/mol"
        )
    return lines


def _round_lines(state) -> list[str]:
    return [f"- round {r.index}: objective {r.objective} ± {r.objective_error}, accepted "
            f"{r.accepted}, trust radius {r.trust_radius}, step {r.step_norm or 0:.3f}"
            for r in state.rounds if r.status == "done"]


def _reweight_lines(out: Path) -> list[str]:
    path = out / "reweight.json"
    if not path.exists():
        return []
    lines = ["", "| liquid | density start / linear / reweighted (n_eff) / simulated | "
                 "Hvap start / linear / reweighted / simulated |", "| --- | --- | --- |"]
    for name, row in json.loads(path.read_text()).items():
        rw, lin, st = row["reweighted"], row["linear"], row["start"]
        sim = row.get("simulated", {})
        lines.append(
            f"| {name} | {st['density']:.4f} / {lin['density']:.4f} / {rw['density']:.4f} "
            f"({rw['n_eff_liquid']:.1f} of {rw['n_frames_liquid']}) / "
            f"{sim.get('density', float('nan')):.4f} | {st['hvap']:.2f} / "
            f"{lin['hvap']:.2f} / {rw['hvap']:.2f} / {sim.get('hvap', float('nan')):.2f} |"
        )
    return lines


def report(args, out: Path) -> str:
    """Markdown for benchmarks/RESULTS.md from whatever the stages wrote so far."""
    from ffparam.liquid.data import read_liquids_csv

    lines = _speed_line(out)
    state = _stored_state(out)
    if state is None:
        return "\n".join(lines)
    references = read_liquids_csv(args.csv)
    best = state.centre if any(r.status == "done" for r in state.rounds) else 0
    table, errors = _liquid_table(references, {h.lower() for h in args.holdout}, state, best)
    lines += table + _error_lines(errors)
    lines += _drift_lines(references, state, out, best)
    lines += _round_lines(state) + _reweight_lines(out)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--stage", default="all", choices=["all", "speed", "fit", "reweight", "report"]
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--equil-ps", type=float, default=50.0)
    parser.add_argument("--prod-ps", type=float, default=200.0)
    parser.add_argument("--gas-ns", type=float, default=25.0)
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--gas-replicas", type=int, default=1,
                        help="gas-phase tempering replicas (1: plain MD, as before 11-26)")
    parser.add_argument("--gas-max-k", type=float, default=1000.0)
    parser.add_argument("--box-conformers", type=int, default=0,
                        help="pack boxes from this many gas-phase conformers (0: one)")
    parser.add_argument("--trust-radius", type=float, default=0.4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-worse", type=float, default=-1.0,
                        help="guard margin in error bars (negative: plain trust-region step)")
    parser.add_argument("--model-safety", type=float, default=1.5)
    parser.add_argument("--step", default="linear", choices=["linear", "reweighted"])
    parser.add_argument("--min-eff", type=float, default=0.2)
    parser.add_argument("--holdout", nargs="*", default=list(HOLDOUT))
    parser.add_argument("--params", nargs="*", default=[])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.stage in ("all", "speed"):
        speed(args.out)
    if args.stage in ("all", "fit"):
        fit(args, args.out)
    if args.stage in ("all", "reweight"):
        reweight(args, args.out)
    text = report(args, args.out)
    write_text_atomic(args.out / "report.md", text + "\n")
    print(text)


if __name__ == "__main__":
    main()
