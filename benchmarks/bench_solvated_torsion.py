"""Solvated vs gas-phase torsion profile of 2-fluoroethanol (O-C-C-F) and torsion fits to
each (issue 17, QM/MM point 2).

Protocol: Sage 2.2.1 + AM1-BCC; MM-relaxed drive of the O-C-C-F dihedral
(:func:`ffparam.workflows.solvated_torsion.mm_drive_geometries`, SPACING deg); per drive
point the geometry frozen in its own TIP3P box (N_SOLVENT waters, 9 A QM/MM and MD cutoff,
EQUILIBRATION ps NPT, FRAMES snapshots INTERVAL ps apart) and one QM/MM single point per
snapshot plus the gas-phase QM energy at the same geometry (METHOD). Fits (least squares,
no priors) of the bespoke torsion parameters of the C-C bond
(:func:`ffparam.fit.bespoke_torsions.make_bespoke_torsions`) to the solvated profile
(``solvated_torsion`` target: MM solute + mean solute-solvent Coulomb + LJ in the same
snapshots) and, for comparison, to the gas profile (``torsion_profile`` target, single
points on the same geometries); each fitted model is scored on both profiles.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_solvated_torsion.py OUTDIR \
        [--method hf/6-31g*] [--spacing 30] [--frames 3] [--solvent 250]

Rerunning with the same OUTDIR recomputes nothing (Store + MD checkpoints).
Writes OUTDIR/summary.json.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.fit.bespoke_torsions import make_bespoke_torsions
from ffparam.fit.objective import Objective
from ffparam.fit.optimizers import least_squares
from ffparam.fit.parameters import FitParameters
from ffparam.fit.targets.solvated_torsion import SolvatedTorsionTarget
from ffparam.fit.targets.torsion import TorsionProfile, TorsionProfileTarget
from ffparam.io.atomic import write_json_atomic
from ffparam.workflows.qmmm import QMMMSettings
from ffparam.workflows.solvated_torsion import solvated_torsion_profile

QUAD = (0, 1, 2, 3)  # O-C-C-F of OCCF


def occf_fit(parameters) -> FitParameters:
    """k1, k2, k3 of the bespoke O-C-C-F type free (3 parameters for 12 drive points)."""
    keys = [k for k in parameters.free_keys() if k.field in ("k1", "k2", "k3")
            and k.id.startswith("[$([#8") and k.id.endswith("[$([#9X1H0+0;A]):4]")]
    return FitParameters(parameters, [[k] for k in keys])


def fitted_scores(system, profile) -> dict:
    """Fit the bespoke torsion to each profile; RMSE (kcal/mol) of every model on both."""
    bespoke = make_bespoke_torsions(system, [(1, 2)])
    fit = occf_fit(bespoke.system.parameters)
    targets = {
        "solvated": SolvatedTorsionTarget("solvated", bespoke.system, profile),
        "gas": TorsionProfileTarget("gas", bespoke.system, TorsionProfile(
            np.array([QUAD]), profile.angles[:, None], profile.geometries,
            profile.gas_energies), mode="single_point"),
    }
    x0 = torch.zeros(fit.size, dtype=torch.float64)
    models = {"start (Sage)": x0}
    for name, target in targets.items():
        result = least_squares(Objective([target], fit, use_priors=False))
        models[f"fitted to {name}"] = torch.as_tensor(result.x, dtype=torch.float64)
    scores = {model: {name: target.metrics(fit, x)["rmse [kcal/mol]"]
                      for name, target in targets.items()} for model, x in models.items()}
    tables = {model: targets["solvated"].profile_table(fit, x)["mm"].tolist()
              for model, x in models.items()}
    return {"rmse_kcal_mol": scores, "mm_solvated_profiles": tables}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--method", default="hf/6-31g*")
    parser.add_argument("--spacing", type=float, default=30.0)
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--solvent", type=int, default=250)
    args = parser.parse_args()
    start = time.perf_counter()
    molecule = Molecule.from_smiles("OCCF", name="2-fluoroethanol").generate_conformers(
        1, seed=7)
    system = assign_parameters(molecule, "sage", charges="am1bcc")
    settings = QMMMSettings(method=args.method, n_frames=args.frames, n_solvent=args.solvent,
                            equilibration_ps=5.0, interval_ps=1.0, threads=1)
    angles = np.arange(0.0, 360.0, args.spacing)
    profile = solvated_torsion_profile(system, QUAD, angles, args.outdir, settings)
    wall = time.perf_counter() - start
    target = SolvatedTorsionTarget("solvated", system, profile)
    fit = occf_fit(make_bespoke_torsions(system, [(1, 2)]).system.parameters)
    table = target.profile_table(fit, torch.zeros(fit.size, dtype=torch.float64))
    print(f"{'angle':>6s} {'gas QM':>8s} {'solv QM':>8s} {'+- SE':>6s} {'paired SE':>9s} "
          f"(kcal/mol; {args.method}, {args.frames} snapshots per angle)")
    for row in zip(table["angles"], table["gas"], table["qm"], table["qm_error"],
                   table["paired_error"]):
        print(f"{row[0]:6.0f} {row[1]:8.3f} {row[2]:8.3f} {row[3]:6.3f} {row[4]:9.3f}")
    scores = fitted_scores(system, profile)
    for model, values in scores["rmse_kcal_mol"].items():
        print(f"{model:22s} RMSE solvated {values['solvated']:.3f}  gas {values['gas']:.3f}")
    print(f"profile wall time {wall:.0f} s")
    write_json_atomic(args.outdir / "summary.json", {
        "method": args.method, "frames": args.frames, "n_solvent": args.solvent,
        "angles_deg": table["angles"].tolist(), "gas_kcal_mol": table["gas"].tolist(),
        "solvated_kcal_mol": table["qm"].tolist(),
        "solvated_standard_error_kcal_mol": table["qm_error"].tolist(),
        "paired_standard_error_kcal_mol": table["paired_error"].tolist(),
        **scores, "profile_wall_s": wall})


if __name__ == "__main__":
    main()
