"""Delta-learned bespoke torsions (``--high-budget``) against public B3LYP-D3BJ/DZVP drives.

For each drive of ``../shared/data/qm/torsions/`` (``index.csv``; mapped SMILES in the
file's atom order, start geometry the drive's first frame), one Store per drive under
``--out`` and these bespoke torsion fits (Sage start, AM1-BCC, relaxed-MM torsion target,
the same fit parameters as ``ffparam bespoke``):

* ``sage``: no fit;
* ``gfn2``: fitted to a GFN2-xTB relaxed drive;
* ``all24``: fitted to HIGH single points on all 24 GFN2 geometries (HIGH//GFN2);
* ``delta4``/``delta6``/``delta8``: fitted to the GFN2 drive corrected by the GP of
  HIGH - GFN2 learned from at most 4/6/8 actively chosen HIGH points
  (:mod:`ffparam.workflows.bespoke_delta`, threshold ``--sigma``), sigma-weighted;
* ``dft``: fitted to the DFT drive itself (all 24 points: the ceiling of the MM form).

Every fit is scored MM-relaxed (dihedral restrained, as ``bench_bespoke_dft.py``) against
the relaxed DFT profile, all 24 points, mean offset removed: RMSE kcal/mol. Also: RMSE of
the HIGH//GFN2 single points against the relaxed DFT profile (QM vs QM), the HIGH
calculations each column used and its wall time (GFN2 drive + those HIGH single points from
their Store records + its fit; seconds). The budgets and the all-24 column share the HIGH
single points through the drive's Store (the same LOW geometries): a budget asks a prefix
of a larger budget's points, so the run computes each HIGH point once.

``--oracle`` (no HIGH calculation at all): the Delta-learning loop on the drive's own
geometries, LOW = GFN2-xTB single points on the DFT geometries, HIGH = the drive's DFT
energies read from the file when the GP asks for them. It measures how many HIGH points
the GP needs to rebuild the DFT profile from GFN2 (``gp_rmse_N``: corrected profile vs
DFT, kcal/mol, QM level) and what the fit then reaches (``sage``, ``gfn2sp``: fitted to the
GFN2 single points, ``delta4/6/8``, ``dft``), at the cost of GFN2 single points only.

``--high-relax newton|steps:N`` (default ``none``): the budgets' HIGH points are relaxed
from their GFN2 geometries (:mod:`ffparam.reference.relax_high`); the row then also has,
on the delta8 points, the HIGH single points and the relaxed estimates against the relaxed
DFT profile (``relax_sp_vs_dft``, ``relax_est_vs_dft``, kcal/mol, QM level) and per point
[single point, estimate, Newton part, HIGH gradients] (``relax_points``). ``cpu_s``: this
process's CPU time for the drive (one thread; what was computed now, not the Store's).

Usage: nice -n 10 .venv/bin/python benchmarks/bench_bespoke_delta.py [FILE ...]
    [--high b3lyp-d3bj/dzvp[density_fit=true]] [--high-relax none|newton|steps:N]
    [--no-all24] [--oracle] [--workers N] [--high-minutes M] [--out DIR]
``DIR/results.jsonl`` holds one JSON line per finished drive, rewritten as each finishes
(a rerun resumes every drive from its Store); a table is printed and written to
``DIR/table.md`` at the end.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule, Topology
from ffparam.fit.bespoke_torsions import make_bespoke_torsions
from ffparam.fit.objective import Objective
from ffparam.fit.optimizers import optimize
from ffparam.fit.parameters import FitParameters
from ffparam.fit.targets.torsion import TorsionProfile, TorsionProfileTarget
from ffparam.io.atomic import write_text_atomic
from ffparam.io.torsion_scans import check_atom_order, read_torsion_scans
from ffparam.reference.store import Store
from ffparam.reference.torsiondrive import run_torsiondrive
from ffparam.runtime.executor import make_executor
from ffparam.workflows.bespoke import BespokeSettings
from ffparam.workflows.bespoke_delta import learn_correction, weigh_by_sigma

SHARED_SCANS = next((p / "shared" / "data" / "qm" / "torsions"
                     for p in Path(__file__).resolve().parents[2:4]
                     if (p / "shared" / "data" / "qm" / "torsions").is_dir()),
                    Path("../shared/data/qm/torsions"))
"""The public drives next to the checkout (a worktree sits one level deeper)."""
BUDGETS = (8, 6, 4)  # largest first: the smaller ones are answered from the Store
COLUMNS = ("sage", "gfn2", "all24", "delta4", "delta6", "delta8", "dft")


@dataclass
class Drive:
    """One public DFT drive: file, molecule (file atom order), DFT profile, bond."""

    name: str
    molecule: Molecule
    dft: TorsionProfile
    bond: tuple[int, int]
    charge: int


def load_drive(path: Path, smiles: str, charge: int) -> Drive:
    molecule = Molecule.from_smiles(smiles)
    (scan,) = read_torsion_scans(path)
    check_atom_order(scan, molecule.symbols, Topology(molecule).bonds, path.name)
    order = np.argsort(scan.angles[:, 0])
    dft = TorsionProfile(scan.dihedrals, scan.angles[order], scan.geometries[order],
                         scan.energies[order], "dft")
    molecule = molecule.with_conformers(dft.geometries[:1])
    bond = tuple(int(a) for a in scan.dihedrals[0][1:3])
    return Drive(path.stem, molecule, dft, bond, charge)


def score(system, fit: FitParameters, dft: TorsionProfile, x) -> float:
    """RMSE (kcal/mol) of the MM-relaxed profile at parameters ``x`` vs the DFT one."""
    target = TorsionProfileTarget("score", system, dft)
    x = torch.zeros(fit.size, dtype=torch.float64) if x is None else torch.as_tensor(x)
    return target.metrics(fit, x)["rmse [kcal/mol]"]


def fit_profile(system, profile: TorsionProfile, delta=None) -> tuple[np.ndarray, float]:
    """Fitted parameter vector and fit wall time (s); ``delta`` weighs points by sigma."""
    target = TorsionProfileTarget("fit", system, profile)
    if delta is not None:
        weigh_by_sigma(target, delta)
    fit = FitParameters.from_free(system.parameters)
    t0 = time.perf_counter()
    result = optimize(Objective([target], fit), "least_squares")
    return result.x, time.perf_counter() - t0


def high_wall_s(store: Store, keys: list[str]) -> float:
    """Summed wall time (s) of the Store records ``keys`` (as computed, wherever it ran)."""
    records = store.get_many(keys)
    return float(sum(r.provenance.get("wall_time", 0.0) for r in records.values()))


def qm_rmse(a: np.ndarray, b: np.ndarray) -> float:
    d = (a - a.mean()) - (b - b.mean())
    return float(np.sqrt(np.mean(d**2)))


def run_drive(drive: Drive, high: str, out: Path, sigma: float, all24: bool,
              high_relax: str = "none", branches: bool = False, executor=None,
              high_minutes: float | None = None) -> dict:
    """Every column of one drive (module docstring); ``executor``: where the GFN2 drive
    and the HIGH points run (None: this process)."""
    row: dict = {"drive": drive.name, "n_atoms": drive.molecule.n_atoms,
                 "charge": drive.charge, "bond": list(drive.bond), "high": high}
    start = assign_parameters(drive.molecule, "sage", charges="am1bcc")
    system = make_bespoke_torsions(start, [drive.bond]).system
    fit = FitParameters.from_free(system.parameters)
    dihedral = [tuple(int(a) for a in drive.dft.dihedrals[0])]
    rmse, n_high, wall = {"sage": score(system, fit, drive.dft, None)}, {}, {}
    with Store(out / f"{drive.name}.db") as store:
        low = run_torsiondrive(drive.molecule, dihedral, "gfn2-xtb", 15, store, executor)
        low_s = _low_wall_s(store)  # the drive's optimizations, as computed (resumed too)
        gfn2 = TorsionProfile(low.dihedrals, low.angles, low.geometries, low.energies, "gfn2")
        x, fit_s = fit_profile(system, gfn2)
        rmse["gfn2"], n_high["gfn2"], wall["gfn2"] = score(system, fit, drive.dft, x), 0, \
            low_s + fit_s
        settings = BespokeSettings(method=f"{high}//gfn2-xtb", high_budget=max(BUDGETS),
                                   high_sigma_kcal_mol=sigma, progress=False,
                                   high_relax=high_relax, high_branches=branches,
                                   high_minutes=high_minutes)
        row["high_relax"], row["high_branches"] = high_relax, branches
        for budget in BUDGETS:
            delta = learn_correction(drive.molecule, gfn2, _composite(settings.method),
                                     settings.replace(high_budget=budget), store, executor)
            geometries = gfn2.geometries if delta.geometries is None else delta.geometries
            profile = TorsionProfile(gfn2.dihedrals, gfn2.angles, geometries,
                                     delta.corrected, f"delta{budget}")
            x, fit_s = fit_profile(system, profile, delta)
            name = f"delta{budget}"
            rmse[name] = score(system, fit, drive.dft, x)
            n_high[name] = delta.learned.n_asked
            keys = _high_keys(drive.molecule, high, gfn2,
                              delta.learned.computed + delta.learned.failed, delta)
            wall[name] = _low_wall_s(store) + high_wall_s(store, keys) + fit_s
            row[f"{name}_stop"] = delta.learned.stop
            row[f"{name}_high_s"] = float(sum(delta.learned.round_seconds))
            row[f"{name}_max_sigma"] = float(delta.sigma.max())
            if budget == max(BUDGETS):  # HIGH//GFN2 vs relaxed DFT on the points computed
                high_e = {i: delta.low_energies[i] + v for i, v in delta.learned.values.items()}
                row["sp_vs_dft_rmse_computed"] = _sp_vs_dft_points(gfn2, high_e, drive.dft)
                row.update(_relax_stats(gfn2, delta, drive.dft))
        if all24:
            full = run_torsiondrive(drive.molecule, dihedral, f"{high}//gfn2-xtb", 15, store,
                                    executor)
            sp = TorsionProfile(full.dihedrals, full.angles, full.geometries, full.energies,
                                "all24")
            x, fit_s = fit_profile(system, sp)
            rmse["all24"], n_high["all24"] = score(system, fit, drive.dft, x), len(full.energies)
            wall["all24"] = low_s + high_wall_s(store, [r.key for r in full.high_records]) \
                + fit_s
            row["sp_vs_dft_rmse"] = _sp_vs_dft(full, drive.dft)
    x, fit_s = fit_profile(system, drive.dft)
    rmse["dft"], wall["dft"] = score(system, fit, drive.dft, x), fit_s
    row.update(rmse=rmse, n_high=n_high, wall_s=wall, load=os.getloadavg()[0])
    return row


def run_oracle(drive: Drive, out: Path, sigma: float) -> dict:
    """The ``--oracle`` columns of one drive (module docstring)."""
    from ffparam.fit.profile_gp import active_delta
    from ffparam.reference.compute import run_jobs
    from ffparam.reference.jobs import Job
    from ffparam.reference.records import Species, Task
    from ffparam.workflows.bespoke_delta import DeltaScan

    row: dict = {"drive": drive.name, "n_atoms": drive.molecule.n_atoms,
                 "charge": drive.charge, "bond": list(drive.bond), "mode": "oracle"}
    start = assign_parameters(drive.molecule, "sage", charges="am1bcc")
    system = make_bespoke_torsions(start, [drive.bond]).system
    fit = FitParameters.from_free(system.parameters)
    dft = drive.dft
    species = Species.from_molecule(drive.molecule)
    with Store(out / f"{drive.name}.db") as store:
        records, _ = run_jobs([Job.create(species, "gfn2-xtb", Task.parse("energy"), g)
                               for g in dft.geometries], store)
    low = np.array([r.energy for r in records])
    rmse = {"sage": score(system, fit, dft, None)}
    rmse["gfn2sp"] = score(system, fit, dft, fit_profile(
        system, TorsionProfile(dft.dihedrals, dft.angles, dft.geometries, low, "gfn2sp"))[0])
    row["gfn2sp_vs_dft_qm"] = qm_rmse(low, dft.energies)
    for budget in sorted(BUDGETS):
        learned = active_delta(dft.angles, lambda idx: [dft.energies[i] - low[i] for i in idx],
                               budget, sigma, first=int(np.argmin(low)))
        delta = DeltaScan("dft", "gfn2-xtb", budget, sigma, dft.angles, low, learned)
        profile = TorsionProfile(dft.dihedrals, dft.angles, dft.geometries, delta.corrected,
                                 f"delta{budget}")
        rmse[f"delta{budget}"] = score(system, fit, dft,
                                       fit_profile(system, profile, delta)[0])
        row[f"gp_rmse_{budget}"] = qm_rmse(delta.corrected, dft.energies)
        row[f"delta{budget}_asked"] = learned.n_asked
        row[f"delta{budget}_stop"] = learned.stop
        row[f"delta{budget}_max_sigma"] = float(delta.sigma.max())
    rmse["dft"] = score(system, fit, dft, fit_profile(system, dft)[0])
    row.update(rmse=rmse, load=os.getloadavg()[0])
    return row


def oracle_table(rows: list[dict]) -> str:
    cols = ("sage", "gfn2sp", "delta4", "delta6", "delta8", "dft")
    head = ["drive", "atoms", "q", *cols, "GFN2 vs DFT (QM)", "GP vs DFT (QM) 4/6/8",
            "asked 4/6/8"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [r["drive"].replace("openff_tdsupp_", ""), str(r["n_atoms"]), str(r["charge"])]
        cells += [f"{r['rmse'][c]:.2f}" for c in cols]
        cells.append(f"{r['gfn2sp_vs_dft_qm']:.2f}")
        cells.append("/".join(f"{r[f'gp_rmse_{b}']:.2f}" for b in sorted(BUDGETS)))
        cells.append("/".join(str(r[f"delta{b}_asked"]) for b in sorted(BUDGETS)))
        lines.append("| " + " | ".join(cells) + " |")
    for c in cols:
        lines.append(f"median {c}: {np.median([r['rmse'][c] for r in rows]):.3f} kcal/mol "
                     f"over {len(rows)}")
    return "\n".join(lines)


def _composite(method: str):
    from ffparam.reference.spec import CompositeSpec

    return CompositeSpec.parse(method)


def _high_keys(molecule: Molecule, high: str, profile: TorsionProfile, indices,
               delta=None) -> list[str]:
    """Store keys of the HIGH jobs of grid points ``indices`` (with ``high_relax``: every
    HIGH gradient of their relaxation and their LOW Hessians)."""
    from ffparam.reference.jobs import Job
    from ffparam.reference.records import Species, Task

    species = Species.from_molecule(molecule)
    if delta is not None and delta.branch_result is not None:  # HIGH on any branch
        asked = delta.branch_result.computed + delta.branch_result.failed
        return [Job.create(species, high, Task.parse("energy"),
                           delta.branches.geometries[c]).key for c in asked]
    if delta is not None and delta.relaxed:
        return [key for i in indices if i in delta.relaxed for key in delta.relaxed[i].keys] \
            + [Job.create(species, delta.low_method, Task.parse("hessian"),
                          profile.geometries[i]).key for i in indices]
    return [Job.create(species, high, Task.parse("energy"), profile.geometries[i]).key
            for i in indices]


def _low_wall_s(store: Store) -> float:
    """Summed wall time (s) of every GFN2 optimization in the drive's Store (the drive and
    the conformer-branch completions), as computed."""
    return sum(r.provenance.get("wall_time", 0.0)
               for r in store.records(method="gfn2-xtb", task_kind="optimize"))


def _sp_vs_dft_points(low: TorsionProfile, high: dict[int, float], dft: TorsionProfile
                      ) -> float:
    """RMSE (kcal/mol) of HIGH single points ``high`` (grid index of ``low`` -> energy) vs
    the relaxed DFT profile at the same grid angles (mean offset removed)."""
    dft_at = {round(float(a)) % 360: e for a, e in zip(dft.angles[:, 0], dft.energies)}
    pairs = [(e, dft_at[round(float(low.angles[i, 0])) % 360]) for i, e in high.items()
             if round(float(low.angles[i, 0])) % 360 in dft_at]
    if len(pairs) < 2:  # e.g. every HIGH point on a branch the profile did not take
        return float("nan")
    a, b = np.array(pairs).T
    return qm_rmse(a, b)


def _relax_stats(low: TorsionProfile, delta, dft: TorsionProfile) -> dict:
    """With ``--high-relax``: per computed point the HIGH single point and the relaxed
    estimate vs the relaxed DFT profile (RMSE kcal/mol, mean offset removed), the Newton
    part and the HIGH gradients per point."""
    if not delta.relaxed:
        return {}
    ok = {i: p for i, p in delta.relaxed.items() if p.ok}
    return {
        "relax_sp_vs_dft": _sp_vs_dft_points(low, {i: p.energy_sp_kcal_mol
                                                   for i, p in ok.items()}, dft),
        "relax_est_vs_dft": _sp_vs_dft_points(low, {i: p.energy_kcal_mol
                                                    for i, p in ok.items()}, dft),
        "relax_points": {str(float(low.angles[i, 0])): [p.energy_sp_kcal_mol,
                                                        p.energy_kcal_mol,
                                                        p.predicted_kcal_mol, p.n_high]
                         for i, p in ok.items()},
    }


def _sp_vs_dft(full, dft: TorsionProfile) -> float:
    """RMSE (kcal/mol) of HIGH//GFN2 single points vs the relaxed DFT profile on the grid
    points both have."""
    mine = {round(float(a)) % 360: e for a, e in zip(full.angles[:, 0], full.energies)}
    pairs = [(mine[round(float(a)) % 360], e) for a, e in zip(dft.angles[:, 0], dft.energies)
             if round(float(a)) % 360 in mine]
    a, b = np.array(pairs).T
    return qm_rmse(a, b)


def index_rows(files: list[str], data: Path) -> list[tuple[Path, str, int]]:
    with open(data / "index.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if files:
        wanted = {Path(f).name for f in files}
        rows = [r for r in rows if r["file"] in wanted]
    rows.sort(key=lambda r: int(r["n_atoms"]))
    return [(data / r["file"], r["smiles"], int(r["formal_charge"])) for r in rows]


def table(rows: list[dict]) -> str:
    head = ["drive", "atoms", "q", *COLUMNS, "SP//GFN2 vs DFT (*: delta8 points)",
            "relax: SP/relaxed vs DFT (delta8 points)",
            "HIGH 4/6/8/24",
            "wall s delta8 (all24)"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [r["drive"].replace("openff_tdsupp_", ""), str(r["n_atoms"]), str(r["charge"])]
        cells += [f"{r['rmse'][c]:.2f}" if c in r["rmse"] else "-" for c in COLUMNS]
        cells.append(f"{r['sp_vs_dft_rmse']:.2f}" if "sp_vs_dft_rmse" in r else
                     f"{r['sp_vs_dft_rmse_computed']:.2f}*" if "sp_vs_dft_rmse_computed" in r
                     else "-")
        cells.append(f"{r['relax_sp_vs_dft']:.2f}/{r['relax_est_vs_dft']:.2f}"
                     if "relax_est_vs_dft" in r else "-")
        cells.append("/".join(str(r["n_high"].get(c, "-"))
                              for c in ("delta4", "delta6", "delta8", "all24")))
        largest = max((k for k in r["wall_s"] if k.startswith("delta")),
                      key=lambda k: int(k[5:]))
        cells.append(f"{r['wall_s'][largest]:.0f} ({r['wall_s'].get('all24', 0):.0f})")
        lines.append("| " + " | ".join(cells) + " |")
    for c in COLUMNS:
        values = [r["rmse"][c] for r in rows if c in r["rmse"]]
        if values:
            lines.append(f"median {c}: {np.median(values):.3f} kcal/mol over {len(values)}")
    return "\n".join(lines)


def main() -> None:
    global BUDGETS
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", help="drive files (default: all); run smallest first")
    parser.add_argument("--high", default="b3lyp-d3bj/dzvp[density_fit=true]")
    parser.add_argument("--sigma", type=float, default=0.1, help="GP threshold, kcal/mol")
    parser.add_argument("--no-all24", action="store_true", help="skip the all-24 column")
    parser.add_argument("--oracle", action="store_true",
                        help="HIGH = the drive's own DFT energies (module docstring)")
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS),
                        help="HIGH budgets (a run with smaller ones reuses the Store)")
    parser.add_argument("--high-relax", default="none",
                        help="none, newton or steps:N (ffparam.reference.relax_high)")
    parser.add_argument("--branches", action="store_true",
                        help="let HIGH choose among the LOW drive's conformer branches")
    parser.add_argument("--workers", type=int, default=1,
                        help="local worker processes for the GFN2 drive and the HIGH points "
                             "(as `ffparam bespoke --workers`; 1: this process)")
    parser.add_argument("--high-minutes", type=float, default=None,
                        help="wall-clock limit of each budget's HIGH rounds (--high-minutes)")
    parser.add_argument("--out", type=Path, default=Path("bench_delta_out"))
    parser.add_argument("--data", type=Path, default=SHARED_SCANS, help="drives + index.csv")
    args = parser.parse_args()
    BUDGETS = tuple(sorted(set(args.budgets), reverse=True))
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    executor = make_executor(args.workers) if args.workers > 1 else None
    for path, smiles, charge in index_rows(args.files, args.data):
        t0, cpu0 = time.perf_counter(), time.process_time()
        drive = load_drive(path, smiles, charge)
        row = run_oracle(drive, args.out, args.sigma) if args.oracle else \
            run_drive(drive, args.high, args.out, args.sigma, not args.no_all24,
                      args.high_relax, args.branches, executor, args.high_minutes)
        row["total_s"] = time.perf_counter() - t0
        row["cpu_s"] = time.process_time() - cpu0  # this process, one thread: load-free
        row["workers"] = args.workers
        rows.append(row)
        write_text_atomic(args.out / "results.jsonl",
                          "".join(json.dumps(r) + "\n" for r in rows))
        print(json.dumps(row), flush=True)
    if executor is not None:
        executor.close()
    text = oracle_table(rows) if args.oracle else table(rows)
    write_text_atomic(args.out / "table.md", text + "\n")
    print(text)


if __name__ == "__main__":
    main()
