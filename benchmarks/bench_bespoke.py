"""Bespoke torsion fits for 10 drug-like molecules with 1-3 rotatable bonds (GFN2-xTB scans).

Molecules (1-3 scannable rotatable bonds once symmetric rotors such as methyl and NH2 are
skipped; structures as in DrugBank/ChEMBL): WHO Model List of Essential Medicines:
paracetamol, isoniazid, ethosuximide, propylthiouracil, nicotine (replacement therapy);
approved drugs in DrugBank: antipyrine (phenazone), benzocaine, salicylamide; historical
drug in DrugBank: acetanilide (Antifebrin); ChEMBL tool compound: 3-methoxybenzamide (PARP
inhibitor, the `make demo` molecule). For each molecule the whole `ffparam bespoke`
pipeline runs (Sage start, AM1-BCC, 15-degree GFN2-xTB torsion drives, relaxed-MM torsion
fit, held-out conformer validation, 100 ps MD, exports); results are resumable (each
molecule has its own Store under the output directory).

Prints per molecule: torsion RMSE before/after (kcal/mol vs GFN2-xTB, per rotor and median),
held-out conformer relative-energy and force RMSE before/after, and wall time.

Usage: .venv/bin/python benchmarks/bench_bespoke.py [--out /tmp/ffparam_bench_bespoke]
       [--workers 2] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from ffparam.io.atomic import write_json_atomic

MOLECULES = {
    "nicotine": "CN1CCC[C@H]1c1cccnc1",
    "antipyrine": "CC1=CC(=O)N(N1C)c1ccccc1",
    "ethosuximide": "CCC1(C)CC(=O)NC1=O",
    "acetanilide": "CC(=O)Nc1ccccc1",
    "3-methoxybenzamide": "COc1cccc(c1)C(N)=O",
    "salicylamide": "NC(=O)c1ccccc1O",
    "isoniazid": "NNC(=O)c1ccncc1",
    "propylthiouracil": "CCCc1cc(=O)[nH]c(=S)[nH]1",
    "paracetamol": "CC(=O)Nc1ccc(O)cc1",
    "benzocaine": "CCOC(=O)c1ccc(N)cc1",
}


def run(name: str, smiles: str, out: Path, workers: int) -> dict:
    from ffparam.chem import Molecule
    from ffparam.workflows.bespoke import BespokeSettings, run_bespoke

    molecule = Molecule.from_smiles(smiles, name=name)
    start = time.perf_counter()
    result = run_bespoke(
        molecule, out / name, BespokeSettings(workers=workers, spacing_deg=15, progress=False)
    )
    wall = time.perf_counter() - start
    metrics = result.metrics
    rotors = [r for r in metrics.rotors if r.rmse_fitted is not None]
    conf = metrics.validation.get("conformers", {})
    return {
        "name": name,
        "smiles": smiles,
        "n_atoms": molecule.n_atoms,
        "rotors": [
            {
                "bond": r.bond,
                "start": r.rmse_start,
                "fitted": r.rmse_fitted,
                "n_points": r.n_points,
            }
            for r in rotors
        ],
        "validation": conf,
        "geometry": metrics.validation.get("geometry", {}),
        "md": metrics.validation.get("md", {}),
        "warnings": metrics.warnings,
        "wall_s": wall,
        "timings": metrics.provenance.timings,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("/tmp/ffparam_bench_bespoke"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", nargs="*")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, smiles in MOLECULES.items():
        if args.only and name not in args.only:
            continue
        row = run(name, smiles, args.out, args.workers)
        rows.append(row)
        write_json_atomic(args.out / "results.json", rows)
        print(
            json.dumps({k: row[k] for k in ("name", "rotors", "wall_s")}, default=float), flush=True
        )
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, load "
        f"{os.getloadavg()[0]:.2f}; reference GFN2-xTB (tblite), Sage 2.2.1 start, AM1-BCC"
    )
    print(
        f"{'molecule':20s} {'rotor':>7s} {'RMSE start':>10s} {'fitted':>7s} "
        f"{'val E start':>11s} {'val E fit':>9s} {'val F start':>11s} {'val F fit':>9s} "
        f"{'wall s':>7s}"
    )
    medians_fit, improved = [], 0
    for row in rows:
        scores = row["validation"].get("systems", {})
        e0 = scores.get("start", {}).get("energy_rmse_kcal_mol")
        e1 = scores.get("bespoke", {}).get("energy_rmse_kcal_mol")
        f0 = scores.get("start", {}).get("force_rmse_kcal_mol_a")
        f1 = scores.get("bespoke", {}).get("force_rmse_kcal_mol_a")
        if e0 is not None and e1 is not None and e1 < e0:
            improved += 1
        for n, rotor in enumerate(row["rotors"]):
            medians_fit.append(rotor["fitted"])
            print(
                f"{row['name'] if n == 0 else '':20s} {'-'.join(map(str, rotor['bond'])):>7s} "
                f"{rotor['start']:10.3f} {rotor['fitted']:7.3f} "
                + (
                    f"{e0:11.3f} {e1:9.3f} {f0:11.3f} {f1:9.3f} {row['wall_s']:7.0f}"
                    if n == 0 and e0 is not None
                    else ""
                )
            )
    if medians_fit:
        starts = [r["start"] for row in rows for r in row["rotors"]]
        print(
            f"\nmedian torsion RMSE vs GFN2-xTB over {len(medians_fit)} rotors: "
            f"{np.median(starts):.3f} -> {np.median(medians_fit):.3f} kcal/mol "
            "(goal <= 0.3)"
        )
        print(
            f"held-out conformer energies improved on {improved} of {len(rows)} molecules "
            "(goal >= 8 of 10)"
        )


if __name__ == "__main__":
    main()
