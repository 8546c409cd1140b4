"""kill -9, measured: SIGKILL ffparam commands at random moments, rerun, check what survives.

For each command (``bespoke`` with 2 workers, ``liquid run``, ``mlp train``,
``torsiondrive``) the benchmark

1. runs it once uninterrupted in ``WORKDIR/<command>/reference`` and times it (T);
2. draws ``--kills`` moments uniformly in [0, T] (sorted, one seeded generator), runs the
   same command in ``WORKDIR/<command>/chaos`` and sends SIGKILL to its whole process group
   (the command, its worker processes and their child programs) when the cumulative run
   time of the chaos runs reaches the next moment; the command is rerun after every kill
   until it exits by itself;
3. after every kill checks ``PRAGMA integrity_check`` of every SQLite file, parses every
   output file present under its final name (a file that does not parse completely, or an
   extended XYZ with another frame count than the reference's, is a half-written file), and
   records what is finished at that moment:

   * Store records: key -> ``updated`` time of each ``complete`` row (a recomputed job is
     written again with a new time);
   * liquid checkpoints: SHA-256 of each production chunk that ``progress.json`` counts;
   * ML epochs: the training history of ``checkpoint.pt`` (each epoch's losses and
     cumulative CPU time, which a recomputed epoch cannot reproduce);

4. at the end counts the finished jobs / chunks / epochs that were recomputed (changed
   after the snapshot) and compares the result with the uninterrupted run's: bit-identical
   torsion profile (extxyz energies, forces, geometries), bespoke exports (but for the
   prmtop's time stamp) and fitted parameters, ML weights, and the liquid result (density,
   Hvap, their errors, energies, frame counts; OpenMM's CPU platform with one thread and
   the gas phase's Reference platform are deterministic, and every run restarts from each
   checkpoint as a resumed run does, see ``ffparam.liquid.simulate``).

Unless ``--no-dask``, each of ``torsiondrive`` and ``liquid`` also runs once on a Dask
LocalCluster of 2 workers (``ffparam.runtime``'s ``DaskExecutor``, under the reference
layer and under ``ffparam.liquid.job.run_liquid_jobs``), and one worker process is
SIGKILLed while it computes, after some work is stored: the run must complete with the
result of an uninterrupted run on the same cluster and without recomputing finished work.

Usage: ``python benchmarks/chaos.py --kills 10 --seed 1 --workdir tmp/chaos`` (prints a
markdown table). Inputs are small (butane, ethanol) so a run fits a laptop.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BUTANE_DIHEDRAL = "0,1,2,3"


def ffparam_argv() -> list[str]:
    """The ``ffparam`` command of this interpreter (the worktree's sources first)."""
    return [sys.executable, "-c", "from ffparam.cli.main import main; main()"]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["COLUMNS"] = "120"
    return env


# ------------------------------------------------------------------ commands
@dataclass
class Command:
    """One command under test: its argv in a run directory and how to compare results."""

    name: str
    argv: Callable[[Path], list[str]]
    compare: Callable[[Path, Path], tuple[bool, str]]
    prepare: Callable[[Path], None] = lambda d: None


def torsiondrive_argv(d: Path, extra: tuple[str, ...] = ()) -> list[str]:
    return [*ffparam_argv(), "torsiondrive", "CCCC", "--dihedral", BUTANE_DIHEDRAL,
            "--spacing", "30", "--store", str(d / "td.db"), "-o", str(d / "scan.xyz"), *extra]


def bespoke_argv(d: Path) -> list[str]:
    return [*ffparam_argv(), "bespoke", "CCCC", "--spacing", "15", "--workers", "2",
            "--charges", "gasteiger", "--md-ps", "1", "--validation-conformers", "2",
            "-o", str(d / "out"), "--quiet"]


def liquid_argv(d: Path) -> list[str]:
    return [*ffparam_argv(), "liquid", "run", "CCO", "--charges", "gasteiger", "--n", "32",
            "--ns", "0.04", "--equil-ps", "4", "--gas-ns", "0.04", "--gas-replicas", "2",
            "--box-conformers", "0", "--save-ps", "0.1", "--checkpoint-ps", "1",
            "--threads", "1", "--cutoff", "7", "--switch", "6", "-o", str(d / "out"),
            "--quiet"]


def mlp_prepare(d: Path) -> None:
    """Training frames of ethanol (normal-mode sampling, GFN2-xTB), shared by both runs."""
    data = d.parent / "train.xyz"
    if not data.exists():
        subprocess.run([*ffparam_argv(), "sample", "CCO", "--normal-modes", "40", "--store",
                        str(d.parent / "sample.db"), "-o", str(data)], check=True,
                       env=child_env(), stdout=subprocess.DEVNULL)


def mlp_argv(d: Path) -> list[str]:
    # 2000 epochs: long enough that each of 10 kills on the cumulative time axis lands after
    # a rerun's start-up (imports), so epochs finish between kills (300 left none)
    return [*ffparam_argv(), "mlp", "train", "--model", "ani", "--train",
            str(d.parent / "train.xyz"), "--out", str(d / "model"), "--max-epochs", "2000"]


def read_extxyz(path: Path) -> list:
    from ase.io import read

    return read(str(path), index=":", format="extxyz")


def compare_torsiondrive(ref: Path, run: Path) -> tuple[bool, str]:
    a, b = read_extxyz(ref / "scan.xyz"), read_extxyz(run / "scan.xyz")
    if len(a) != len(b):
        return False, f"{len(b)} grid points vs {len(a)}"
    same = all(
        np.array_equal(x.positions, y.positions)
        and x.get_potential_energy() == y.get_potential_energy()
        and np.array_equal(x.get_forces(), y.get_forces())
        for x, y in zip(a, b))
    return same, "bit-identical" if same else "profile differs"


def _unstamped(path: Path) -> list[str]:
    """Lines of a text file without a prmtop's write time (``%VERSION ... DATE = ...``)."""
    return [line for line in path.read_text().splitlines() if not line.startswith("%VERSION")]


def compare_bespoke(ref: Path, run: Path) -> tuple[bool, str]:
    different = []
    for name in ("C4H10.forcefield.xml", "C4H10.offxml", "C4H10.prmtop", "C4H10.top"):
        if _unstamped(ref / "out" / name) != _unstamped(run / "out" / name):
            different.append(name)
    fitted = [json.loads((d / "out" / "metrics.json").read_text())["changed_parameters"]
              for d in (ref, run)]
    if fitted[0] != fitted[1]:
        different.append("fitted parameters")
    return not different, "bit-identical" if not different else f"differ: {different}"


def compare_mlp(ref: Path, run: Path) -> tuple[bool, str]:
    import torch

    a, b = (torch.load(d / "model" / "weights.pt", weights_only=True) for d in (ref, run))
    same = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    return same, "bit-identical weights" if same else "weights differ"


def compare_liquid(ref: Path, run: Path) -> tuple[bool, str]:
    """Bit-identical density, Hvap, their errors and frame counts (a resumed run restarts
    from each checkpoint as the uninterrupted run does); the distance in combined
    standard errors is reported as well."""
    a, b = (json.loads((d / "out" / "result.json").read_text()) for d in (ref, run))
    keys = ("density_g_ml", "hvap_kcal_mol", "liquid_energy_per_molecule_kcal_mol",
            "gas_energy_kcal_mol", "frames")
    same = all(a[k] == b[k] for k in keys)
    notes = []
    for key in ("density_g_ml", "hvap_kcal_mol"):
        sigma = float(np.hypot(a[key]["error"], b[key]["error"]))
        notes.append(f"{key.split('_')[0]} {abs(a[key]['value'] - b[key]['value']) / sigma:.2f}"
                     " sigma")
    return same, ("bit-identical" if same else "differs") + f" ({', '.join(notes)})"


COMMANDS = {
    "bespoke": Command("bespoke", bespoke_argv, compare_bespoke),
    "liquid": Command("liquid", liquid_argv, compare_liquid),
    "mlp": Command("mlp", mlp_argv, compare_mlp, mlp_prepare),
    "torsiondrive": Command("torsiondrive", torsiondrive_argv, compare_torsiondrive),
}


# ------------------------------------------------------------------ observations
def is_temporary(path: Path, root: Path) -> bool:
    """Files that are not under a final name: hidden staging files/folders, ``*.tmp*``,
    SQLite's journal files."""
    parts = path.relative_to(root).parts
    return (any(p.startswith(".") or ".tmp" in p for p in parts)
            or path.name.endswith(("-wal", "-shm", "-journal")))


def sqlite_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.db") if not is_temporary(p, root))


def integrity(path: Path) -> str:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


def store_stamps(path: Path) -> dict[str, float]:
    """key -> update time of every complete record of a Store file."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "records" not in tables:
            return {}
        return dict(db.execute("SELECT key, updated FROM records WHERE status='complete'"))
    finally:
        db.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def liquid_chunks(root: Path) -> dict[str, str]:
    """Path -> hash of every production chunk counted by a ``progress.json``."""
    chunks = {}
    for progress in root.rglob("progress.json"):
        state = json.loads(progress.read_text())
        for k in range(state.get("chunks", 0)):
            chunk = progress.parent / f"frames_{k:05d}.npz"
            chunks[str(chunk.relative_to(root))] = sha256(chunk)
    return chunks


def ml_history(root: Path) -> dict[str, list]:
    """Checkpoint path -> the epochs it holds (history entries)."""
    import torch

    out = {}
    for path in root.rglob("checkpoint.pt"):
        saved = torch.load(path, map_location="cpu", weights_only=True)
        out[str(path.relative_to(root))] = saved["history"]
    return out


def snapshot(root: Path) -> dict:
    return {"store": {str(p.relative_to(root)): store_stamps(p) for p in sqlite_files(root)},
            "chunks": liquid_chunks(root), "epochs": ml_history(root)}


def check_file(path: Path, reference: Path | None) -> str | None:
    """None if ``path`` is a complete file of its kind, else what is wrong."""
    suffix, data = path.suffix.lower(), path.read_bytes()
    try:
        if not data:
            return "empty"
        if suffix == ".json":
            json.loads(data)
        elif suffix == ".xyz":
            frames = read_extxyz(path)
            if reference is not None and reference.exists():
                expected = len(read_extxyz(reference))
                if len(frames) != expected:
                    return f"{len(frames)} frames, the finished file has {expected}"
        elif suffix == ".png":
            if not (data.startswith(b"\x89PNG") and data.endswith(b"IEND\xaeB`\x82")):
                return "truncated PNG"
        elif suffix == ".npz":
            with np.load(path) as npz:
                for name in npz.files:
                    npz[name]
        elif suffix == ".pt":
            import torch

            torch.load(path, map_location="cpu", weights_only=True)
        elif suffix in (".xml", ".offxml"):
            # replicas.xml of a tempering run is a JSON list of OpenMM State XML texts
            for text in json.loads(data) if data.startswith(b"[") else [data]:
                ET.fromstring(text)
        elif suffix == ".html":
            if not data.rstrip().endswith(b"</html>"):
                return "truncated HTML"
        elif suffix == ".pdb":
            if not data.rstrip().endswith(b"END"):
                return "truncated PDB"
    except Exception as exc:  # any parse failure is a half-written file
        return f"{type(exc).__name__}: {str(exc)[:80]}"
    return None


def check_outputs(root: Path, reference_root: Path) -> list[str]:
    bad = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if is_temporary(path, root) or path.suffix == ".db":
            continue
        problem = check_file(path, reference_root / path.relative_to(root))
        if problem:
            bad.append(f"{path.relative_to(root)}: {problem}")
    for db in sqlite_files(root):
        result = integrity(db)
        if result != "ok":
            bad.append(f"{db.relative_to(root)}: integrity_check {result}")
    return bad


def recomputed(snapshots: list[dict], final: dict) -> dict[str, int]:
    """Finished items of any snapshot that were computed again (or lost) by the end."""
    counts = {"store": 0, "chunks": 0, "epochs": 0}
    seen: dict[tuple, object] = {}
    for snap in snapshots:
        for db, stamps in snap["store"].items():
            for key, stamp in stamps.items():
                seen.setdefault(("store", db, key), stamp)
        for chunk, digest in snap["chunks"].items():
            seen.setdefault(("chunks", chunk), digest)
        for ckpt, history in snap["epochs"].items():
            for entry in history:
                seen.setdefault(("epochs", ckpt, entry["epoch"]), entry)
    final_history = {ckpt: {e["epoch"]: e for e in h} for ckpt, h in final["epochs"].items()}
    for item, value in seen.items():
        kind = item[0]
        if kind == "store":
            now = final["store"].get(item[1], {}).get(item[2])
        elif kind == "chunks":
            now = final["chunks"].get(item[1])
        else:
            now = final_history.get(item[1], {}).get(item[2])
        counts[kind] += now != value
    counts["finished"] = len(seen)
    return counts


# ------------------------------------------------------------------ running
@dataclass
class Outcome:
    """What the chaos runs of one command showed."""

    name: str
    reference_s: float
    kills: int = 0
    runs: int = 0
    completed: bool = False
    finished_items: int = 0
    recomputed: dict = field(default_factory=dict)
    integrity_failures: int = 0
    half_written: list[str] = field(default_factory=list)
    result_ok: bool = False
    result_note: str = ""


def launch(argv: list[str], log: Path) -> subprocess.Popen:
    handle = open(log, "ab")
    return subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=child_env(),
                            start_new_session=True)


def _log(directory: Path) -> Path:
    """The output of the runs in ``directory`` (kept beside it, not among its outputs)."""
    return directory.with_name(directory.name + ".log")


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the run's process group; wait until every member is gone."""
    import psutil

    from ffparam.assign.programs import kill_group as kill_and_reap

    kill_and_reap(proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        alive = [p for p in psutil.process_iter(["pid"]) if _group(p) == proc.pid]
        if not alive:
            return
        for p in alive:
            try:
                p.kill()
            except psutil.Error:
                pass
        time.sleep(0.1)


def _group(process) -> int | None:
    try:
        return os.getpgid(process.pid)
    except (ProcessLookupError, PermissionError):
        return None


def run_reference(command: Command, directory: Path) -> float:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    command.prepare(directory)
    start = time.perf_counter()
    rc = launch(command.argv(directory), _log(directory)).wait()
    if rc != 0:
        raise SystemExit(f"{command.name}: the uninterrupted run failed (exit {rc}); "
                         f"see {_log(directory)}")
    return time.perf_counter() - start


def run_chaos(command: Command, base: Path, kills: int, rng: np.random.Generator,
              max_runs: int = 100) -> Outcome:
    reference = base / "reference"
    elapsed_ref = run_reference(command, reference)
    directory = base / "chaos"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    command.prepare(directory)
    outcome = Outcome(command.name, elapsed_ref)
    moments = sorted(rng.uniform(0.0, elapsed_ref, size=kills))
    cumulative, snapshots, rc = 0.0, [], None
    while outcome.runs < max_runs:
        proc = launch(command.argv(directory), _log(directory))
        outcome.runs += 1
        start = time.perf_counter()
        deadline = moments[outcome.kills] - cumulative if outcome.kills < kills else None
        try:
            rc = proc.wait(timeout=max(deadline, 0.0) if deadline is not None else None)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            outcome.kills += 1
            cumulative += time.perf_counter() - start
            problems = check_outputs(directory, reference)
            outcome.integrity_failures += sum("integrity_check" in p for p in problems)
            outcome.half_written += [p for p in problems if "integrity_check" not in p]
            snapshots.append(snapshot(directory))
            continue
        cumulative += time.perf_counter() - start
        break
    outcome.completed = rc == 0
    if outcome.completed:
        final = snapshot(directory)
        outcome.recomputed = recomputed(snapshots, final)
        outcome.finished_items = outcome.recomputed.pop("finished")
        outcome.result_ok, outcome.result_note = command.compare(reference, directory)
        problems = check_outputs(directory, reference)
        outcome.half_written += problems
    return outcome


# ------------------------------------------------------------------ Dask worker kill
def dask_workers(parent: int) -> list:
    """Worker processes of the LocalCluster started by ``parent`` (spawned children)."""
    import psutil

    try:
        children = psutil.Process(parent).children(recursive=True)
    except psutil.Error:
        return []
    out = []
    for child in children:
        try:
            cmdline = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "spawn_main" in cmdline or "forkserver" in cmdline:
            out.append(child)
    return out


def busy_worker(parent: int, interval: float = 0.5):
    """A worker that used CPU in the last ``interval`` seconds (it is computing a job)."""
    import psutil

    workers = dask_workers(parent)
    before = {}
    for w in workers:
        try:
            before[w.pid] = sum(w.cpu_times()[:2])
        except psutil.Error:
            pass
    time.sleep(interval)
    for w in workers:
        try:
            if sum(w.cpu_times()[:2]) - before.get(w.pid, 1e9) > 0.6 * interval:
                return w
        except psutil.Error:
            continue
    return None


def _stored(directory: Path) -> int:
    """Complete records in the Store of ``directory`` (0 while it is being created)."""
    try:
        return sum(len(store_stamps(p)) for p in sqlite_files(directory))
    except sqlite3.Error:
        return 0


LIQUID_ON_DASK = """
import json, sys
from pathlib import Path
from ffparam.liquid.job import LiquidJob, run_liquid_jobs
from ffparam.liquid.prepare import prepare_system
from ffparam.runtime import make_executor
out = Path(sys.argv[1])
# the settings `liquid_argv` gives `ffparam liquid run`
from ffparam.liquid.settings import LiquidSettings
settings = LiquidSettings(n_molecules=32, production_ps=40.0, equilibration_ps=4.0,
                          gas_production_ps=40.0, gas_replicas=2, box_conformers=0,
                          save_interval_ps=0.1, gas_save_interval_ps=0.1,
                          checkpoint_interval_ps=1.0, threads=1, cutoff_a=7.0, switch_a=6.0)
job = LiquidJob("CCO", prepare_system("CCO", "sage", "gasteiger", name="CCO"), 298.15, 1.0,
                out, settings)
with make_executor(2, dask="local") as executor:
    for _, result, error in run_liquid_jobs([job], executor):
        if error:
            sys.exit(f"error: {error}")
        (out / "result.json").write_text(json.dumps(result.to_json(), indent=1))
"""


@dataclass
class DaskScenario:
    """A run on a Dask LocalCluster of 2 workers, one of which is killed mid-job."""

    name: str
    argv: Callable[[Path], list[str]]
    ready: Callable[[Path], bool]  # enough finished work to kill now
    compare: Callable[[Path, Path], tuple[bool, str]]
    command: str  # the command this scenario runs on Dask


DASK_SCENARIOS = [
    DaskScenario("torsiondrive, Dask worker",
                 lambda d: torsiondrive_argv(d, ("--dask", "local", "--workers", "2")),
                 lambda d: _stored(d) >= 6, compare_torsiondrive, "torsiondrive"),
    DaskScenario("liquid, Dask worker",
                 lambda d: [sys.executable, "-c", LIQUID_ON_DASK, str(d / "out")],
                 lambda d: sum(k.startswith("out/liquid/") for k in _chunks(d)) >= 3,
                 compare_liquid, "liquid"),
]


def _chunks(directory: Path) -> dict[str, str]:
    try:
        return liquid_chunks(directory)
    except (OSError, ValueError):  # a progress file being replaced
        return {}


def run_dask_kill(scenario: DaskScenario, base: Path) -> Outcome:
    """Run ``scenario`` once uninterrupted (the reference: a liquid simulated in a Dask
    worker thread is not bitwise the in-process one), then again and SIGKILL one busy
    Dask worker once ``scenario.ready``."""
    reference = base / "dask-reference"
    elapsed = run_reference(Command(scenario.name, scenario.argv, scenario.compare), reference)
    directory = base / "dask"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    outcome = Outcome(scenario.name, elapsed)
    proc = launch(scenario.argv(directory), _log(directory))
    outcome.runs = 1
    snapshots = []
    while proc.poll() is None and outcome.kills == 0:
        if not scenario.ready(directory):
            time.sleep(0.3)
            continue
        worker = busy_worker(proc.pid)
        if worker is None:
            continue
        snapshots.append(snapshot(directory))  # finished work before the kill
        worker.kill()
        outcome.kills = 1
    rc = proc.wait()
    outcome.completed = rc == 0
    if outcome.completed:
        outcome.recomputed = recomputed(snapshots, snapshot(directory))
        outcome.finished_items = outcome.recomputed.pop("finished")
        outcome.result_ok, outcome.result_note = scenario.compare(reference, directory)
        outcome.half_written = check_outputs(directory, reference)
    return outcome


# ------------------------------------------------------------------ report
def table(outcomes: list[Outcome], kills: int, seed: int) -> str:
    lines = [
        f"kill -9 benchmark (`benchmarks/chaos.py --kills {kills} --seed {seed}`): SIGKILL of "
        "the process group at moments uniform in the uninterrupted run time, rerun until done.",
        "",
        "| command | uninterrupted (s) | kills | runs | completed | finished before a kill "
        "| recomputed | integrity_check failures | half-written files | result vs "
        "uninterrupted |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        redo = sum(o.recomputed.values()) if o.recomputed else "n/a"
        kinds = ", ".join(f"{k} {v}" for k, v in o.recomputed.items() if v)
        ref = f"{o.reference_s:.0f}"
        lines.append(
            f"| {o.name} | {ref} | {o.kills} | {o.runs} | {'yes' if o.completed else 'NO'} "
            f"| {o.finished_items} | {redo}{f' ({kinds})' if kinds else ''} "
            f"| {o.integrity_failures} | {len(o.half_written)} "
            f"| {'ok' if o.result_ok else 'DIFFERENT'}: {o.result_note} |")
    problems = [f"- {o.name}: {p}" for o in outcomes for p in o.half_written]
    if problems:
        lines += ["", "Half-written files:", *problems[:20]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=10, help="kills per command")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=ROOT / "tmp" / "chaos")
    parser.add_argument("--commands", default=",".join(COMMANDS),
                        help=f"comma-separated subset of {','.join(COMMANDS)}")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask worker kill")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    outcomes = []
    for name in args.commands.split(","):
        outcome = run_chaos(COMMANDS[name], args.workdir / name, args.kills, rng)
        outcomes.append(outcome)
        print(f"{name}: {outcome}", file=sys.stderr, flush=True)
    for scenario in DASK_SCENARIOS if not args.no_dask else []:
        if scenario.command in args.commands.split(","):
            outcomes.append(run_dask_kill(scenario, args.workdir / scenario.command))
        print(f"dask: {outcomes[-1]}", file=sys.stderr, flush=True)
    print(table(outcomes, args.kills, args.seed))
    good = all(o.completed and o.result_ok and not o.half_written and not o.integrity_failures
               and not any(o.recomputed.values()) for o in outcomes)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
