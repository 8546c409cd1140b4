"""Bespoke torsions fitted to an imported DFT torsion scan, scored on scan points left out
of the fit.

The scan (extended XYZ with ``dihedral_atoms`` and ``energy_hartree``, or QCFractal JSON)
is split by grid point into ``--folds`` interleaved folds (default 2: every other point):
each fold in turn is held out while the others are fitted (relaxed-MM torsion target, Sage
start, AM1-BCC), so every point is scored once as a held-out point. Prints the RMSE
(kcal/mol, vs the DFT scan) on the fitted and on the held-out points, before and after the
fit, per fold and averaged.

Usage: .venv/bin/python benchmarks/bench_bespoke_dft.py SCAN.xyz --smiles SMILES
(the scan's atom order must be that of ``Molecule.from_smiles(SMILES)``; a scan made by
``ffparam torsiondrive ... --method b3lyp-d3bj/dzvp -o scan.xyz`` qualifies). Without a
scan it takes the first neutral public B3LYP-D3BJ/DZVP drive listed in
``../shared/data/qm/torsions/index.csv`` (mapped SMILES in the file's atom order).
"""

from __future__ import annotations

import argparse
import csv
import os
import time
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
from ffparam.io.torsion_scans import check_atom_order, read_torsion_scans


def subset(profile: TorsionProfile, rows: np.ndarray, label: str) -> TorsionProfile:
    return TorsionProfile(profile.dihedrals, profile.angles[rows], profile.geometries[rows],
                          profile.energies[rows], label)


SHARED_SCANS = Path(__file__).resolve().parents[2] / "shared" / "data" / "qm" / "torsions"


def default_scan() -> tuple[str, str]:
    """(scan file, mapped SMILES) of the first neutral public DFT drive in the shared index."""
    index = SHARED_SCANS / "index.csv"
    if not index.exists():
        raise SystemExit(f"no scan given and {index} not found: pass SCAN --smiles SMILES")
    with open(index, newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if int(r["formal_charge"]) == 0)
    return str(SHARED_SCANS / row["file"]), row["smiles"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scan", nargs="?", help="default: a public DFT drive (see above)")
    parser.add_argument("--smiles", help="required with SCAN")
    parser.add_argument("--charges", default="am1bcc")
    parser.add_argument("--folds", type=int, default=2,
                        help="interleaved cross-validation folds (2 = fit even, score odd "
                        "points, and the reverse)")
    args = parser.parse_args()
    if args.scan is None:
        args.scan, args.smiles = default_scan()
    elif args.smiles is None:
        parser.error("--smiles is required with SCAN")
    torch.set_num_threads(1)
    molecule = Molecule.from_smiles(args.smiles)
    (scan,) = read_torsion_scans(args.scan)
    check_atom_order(scan, molecule.symbols, Topology(molecule).bonds, args.scan)
    molecule = molecule.with_conformers(scan.geometries[:1])
    order = np.argsort(scan.angles[:, 0])
    profile = TorsionProfile(scan.dihedrals, scan.angles[order], scan.geometries[order],
                             scan.energies[order], "scan")
    bond = tuple(int(a) for a in scan.dihedrals[0][1:3])
    start = assign_parameters(molecule, "sage", charges=args.charges)
    bespoke = make_bespoke_torsions(start, [bond])
    level = scan.provenance.get("method") or "the scan's level"
    print(f"molecule {args.smiles}, bond {bond}, {len(order)} scan points, {args.folds} "
          f"interleaved folds, reference {level}; RMSE kcal/mol, relaxed MM, energies "
          "relative to the mean of the scored points")
    rows = np.arange(len(order))
    scores = {"fitted": ([], []), "held-out": ([], [])}
    wall = 0.0
    for fold in range(args.folds):
        held_rows, fit_rows = rows[rows % args.folds == fold], rows[rows % args.folds != fold]
        targets = {
            "fitted": TorsionProfileTarget("fit", bespoke.system,
                                           subset(profile, fit_rows, "fit")),
            "held-out": TorsionProfileTarget("held_out", bespoke.system,
                                             subset(profile, held_rows, "held_out")),
        }
        fit = FitParameters.from_free(bespoke.system.parameters)
        t0 = time.perf_counter()
        result = optimize(Objective([targets["fitted"]], fit), "least_squares")
        wall += time.perf_counter() - t0
        x0 = torch.zeros(fit.size, dtype=torch.float64)
        x1 = torch.as_tensor(result.x)
        sizes = {"fitted": len(fit_rows), "held-out": len(held_rows)}
        for name, target in targets.items():
            before = target.metrics(fit, x0)["rmse [kcal/mol]"]
            after = target.metrics(fit, x1)["rmse [kcal/mol]"]
            scores[name][0].append(before)
            scores[name][1].append(after)
            print(f"fold {fold}: {name:8s} {sizes[name]:2d} points, RMSE {before:.3f} -> "
                  f"{after:.3f}")
    for name, (before, after) in scores.items():
        print(f"{name:8s} points, mean over folds: RMSE {np.mean(before):.3f} -> "
              f"{np.mean(after):.3f} kcal/mol")
    print(f"fit wall time {wall:.1f} s for {args.folds} fits, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
