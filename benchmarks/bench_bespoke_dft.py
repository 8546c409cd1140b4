"""Bespoke torsions fitted to an imported DFT torsion scan, scored on scan points left out
of the fit.

The scan (extended XYZ with ``dihedral_atoms`` and ``energy_hartree``, or QCFractal JSON)
is split by grid point: every other point is fitted (relaxed-MM torsion target, Sage start,
AM1-BCC), the others are only scored. Prints the RMSE (kcal/mol, vs the DFT scan) on the
fitted and on the held-out points, before and after the fit.

Usage: .venv/bin/python benchmarks/bench_bespoke_dft.py SCAN.xyz --smiles SMILES
(the scan's atom order must be that of ``Molecule.from_smiles(SMILES)``; a scan made by
``ffparam torsiondrive ... --method b3lyp-d3bj/dzvp -o scan.xyz`` qualifies).
"""

from __future__ import annotations

import argparse
import os
import time

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scan")
    parser.add_argument("--smiles", required=True)
    parser.add_argument("--charges", default="am1bcc")
    args = parser.parse_args()
    torch.set_num_threads(1)
    molecule = Molecule.from_smiles(args.smiles)
    (scan,) = read_torsion_scans(args.scan)
    check_atom_order(scan, molecule.symbols, Topology(molecule).bonds, args.scan)
    molecule = molecule.with_conformers(scan.geometries[:1])
    order = np.argsort(scan.angles[:, 0])
    profile = TorsionProfile(scan.dihedrals, scan.angles[order], scan.geometries[order],
                             scan.energies[order], "scan")
    fit_rows, held_rows = np.arange(0, len(order), 2), np.arange(1, len(order), 2)
    bond = tuple(int(a) for a in scan.dihedrals[0][1:3])
    start = assign_parameters(molecule, "sage", charges=args.charges)
    bespoke = make_bespoke_torsions(start, [bond])
    fitted_target = TorsionProfileTarget("fit", bespoke.system, subset(profile, fit_rows, "fit"))
    held_target = TorsionProfileTarget("held_out", bespoke.system,
                                       subset(profile, held_rows, "held_out"))
    fit = FitParameters.from_free(bespoke.system.parameters)
    t0 = time.perf_counter()
    result = optimize(Objective([fitted_target], fit), "least_squares")
    wall = time.perf_counter() - t0
    x0 = torch.zeros(fit.size, dtype=torch.float64)
    x1 = torch.as_tensor(result.x)
    level = scan.provenance.get("method") or "the scan's level"
    print(f"molecule {args.smiles}, bond {bond}, {len(order)} scan points ({len(fit_rows)} "
          f"fitted, {len(held_rows)} held out), reference {level}")
    for name, target in (("fitted points", fitted_target), ("held-out points", held_target)):
        before = target.metrics(fit, x0)["rmse [kcal/mol]"]
        after = target.metrics(fit, x1)["rmse [kcal/mol]"]
        print(f"{name:16s} RMSE {before:.3f} -> {after:.3f} kcal/mol (relaxed MM, "
              "energies relative to the mean)")
    print(f"fit wall time {wall:.1f} s, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
