"""Valence-parameter figures: modified Seminario vs QM frequencies, and frequency fits to
experiment.

1. Seminario: for water, methanol and ethane, optimize with the reference method, take its
   Hessian, derive bonds/angles with the modified Seminario method (Sage for everything
   else), minimize the MM energy and compare MM harmonic wavenumbers with the QM Hessian's
   (modes matched by eigenvector overlap). Sage alone is the baseline. Reference methods:
   GFN2-xTB (default) and, with ``--dft``, B3LYP-D3BJ/6-31G* (PySCF analytic Hessian).
2. Experiment: for every molecule of ``vib_frequencies_train.csv``, start from Sage and
   fit bond and angle force constants (``--all-valence``: also torsion/improper k) to the
   experimental fundamentals (degenerate modes expanded, matched in ascending order), at
   the relaxed MM geometry, scale factor 1.0 on the MM harmonic wavenumbers (the MM model is
   fitted to reproduce fundamentals directly). RMS before/after in cm^-1.

Usage: ``python benchmarks/bench_valence.py [--dft] [--csv PATH] [--json OUT]``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.fit.normal_modes import match_modes, minimize_mm, mm_hessian, normal_modes
from ffparam.fit.objective import Objective
from ffparam.fit.optimizers import least_squares
from ffparam.fit.parameters import FitParameters
from ffparam.fit.seminario import apply_seminario, modified_seminario
from ffparam.fit.targets.vibrations import FrequencyTarget, read_experimental_frequencies
from ffparam.io.atomic import write_json_atomic
from ffparam.mm import MMEngine
from ffparam.params import FreeSpec
from ffparam.reference.methods import get_calculator
from ffparam.reference.optimize import optimize_geometry
from ffparam.reference.records import Species

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "experiment" / "vib_frequencies_train.csv"
LINEAR_START = {
    "C#N": [[0.0, 0, 0], [1.156, 0, 0], [-1.065, 0, 0]],
    "O=C=O": [[-1.16, 0, 0], [0.0, 0, 0], [1.16, 0, 0]],
}


def mm_modes(system, start):
    engine = MMEngine(system)
    minimum = minimize_mm(engine, start)
    hess = mm_hessian(engine, torch.as_tensor(minimum)).detach()
    return normal_modes(hess, minimum, system.molecule.masses)


def errors(qm, mm) -> dict:
    order = match_modes(qm.modes, mm.modes)
    diff = mm.frequencies.numpy()[order] - qm.frequencies.numpy()
    return {
        "rms": float(np.sqrt(np.mean(diff**2))),
        "mae": float(np.mean(np.abs(diff))),
        "max": float(np.abs(diff).max()),
    }


def seminario_figures(method: str) -> list[dict]:
    rows = []
    for name, smiles in (("water", "O"), ("methanol", "CO"), ("ethane", "CC")):
        mol = Molecule.from_smiles(smiles).generate_conformers(1, seed=5)
        calc = get_calculator(method, Species.from_molecule(mol))
        start = time.perf_counter()
        minimum = optimize_geometry(calc, mol.conformers[0]).geometry
        hess = calc.compute(minimum, hessian=True).hessian
        qm_time = time.perf_counter() - start
        qm = normal_modes(hess, minimum, mol.masses)
        sage = assign_parameters(mol, "sage", charges="am1bcc")
        start = time.perf_counter()
        result = modified_seminario(sage.topology, minimum, hess)
        bespoke = apply_seminario(sage, result)
        seminario_time = time.perf_counter() - start
        rows.append(
            {
                "molecule": name,
                "method": method,
                "qm_s": qm_time,
                "seminario_s": seminario_time,
                "seminario": errors(qm, mm_modes(bespoke, minimum)),
                "sage": errors(qm, mm_modes(sage, minimum)),
                "bond_k": result.bond_k.round(1).tolist(),
                "angle_k": result.angle_k.round(1).tolist(),
            }
        )
    return rows


def experiment_fits(csv: Path, all_valence: bool) -> list[dict]:
    table = read_experimental_frequencies(csv)
    rows = []
    for smiles, frequencies in table.items():
        mol = Molecule.from_smiles(smiles)
        mol = (
            mol.with_conformers(np.array([LINEAR_START[smiles]]))
            if smiles in LINEAR_START
            else mol.generate_conformers(1, seed=1)
        )
        system = assign_parameters(mol, "sage", charges="am1bcc")
        params = system.parameters
        for section in ("Bonds", "Angles"):
            params.set_free(section, "*", "k", FreeSpec(lower=0.0, transform="log"))
        if all_valence:
            for section in ("ProperTorsions", "ImproperTorsions"):
                if params.sections.get(section):
                    params.set_free(section, "*", "k*", FreeSpec())
        fit = FitParameters.from_free(params)
        target = FrequencyTarget.from_experiment(
            smiles, system, mol.conformers[0], frequencies, scale=1.0
        )
        result = least_squares(Objective([target], fit, use_priors=False))
        fitted = target.residuals(fit, torch.as_tensor(result.x)) + target.reference
        rows.append(
            {
                "smiles": smiles,
                "n_modes": len(frequencies),
                "n_free": fit.size,
                "rms_before": result.metrics_before[smiles]["rmse [cm^-1]"],
                "rms_after": result.metrics_after[smiles]["rmse [cm^-1]"],
                "wall_s": result.wall_time,
                "experiment": frequencies.tolist(),
                "fitted": fitted.detach().numpy().round(1).tolist(),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dft", action="store_true", help="also B3LYP-D3BJ/6-31G* Hessians")
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"load: {os.getloadavg()}")
    out: dict = {"seminario": seminario_figures("gfn2-xtb")}
    if args.dft:
        out["seminario"] += seminario_figures("b3lyp-d3bj/6-31g*")
    print("\n## Modified Seminario: MM vs QM harmonic wavenumbers (cm^-1, relaxed MM geometry)")
    print("| molecule | QM | Seminario RMS / MAE / max | Sage RMS / MAE / max |")
    print("| --- | --- | --- | --- |")
    for row in out["seminario"]:
        s, b = row["seminario"], row["sage"]
        print(
            f"| {row['molecule']} | {row['method']} | {s['rms']:.1f} / {s['mae']:.1f} / "
            f"{s['max']:.1f} | {b['rms']:.1f} / {b['mae']:.1f} / {b['max']:.1f} |"
        )
    for all_valence in (False, True):
        key = "experiment_all_valence" if all_valence else "experiment_bonds_angles"
        out[key] = experiment_fits(args.csv, all_valence)
        label = "bonds, angles, torsions, impropers" if all_valence else "bonds and angles"
        print(f"\n## Fit of {label} (k) to experimental fundamentals, scale 1.0 (cm^-1 RMS)")
        print("| molecule | modes | free | before | after | wall s |")
        print("| --- | --- | --- | --- | --- | --- |")
        for row in out[key]:
            print(
                f"| {row['smiles']} | {row['n_modes']} | {row['n_free']} | "
                f"{row['rms_before']:.1f} | {row['rms_after']:.1f} | {row['wall_s']:.1f} |"
            )
        before = np.sqrt(
            np.mean(np.concatenate([np.full(r["n_modes"], r["rms_before"] ** 2) for r in out[key]]))
        )
        after = np.sqrt(
            np.mean(np.concatenate([np.full(r["n_modes"], r["rms_after"] ** 2) for r in out[key]]))
        )
        print(
            f"| all ({sum(r['n_modes'] for r in out[key])} modes) | | | {before:.1f} | "
            f"{after:.1f} | |"
        )
    if args.json:
        write_json_atomic(args.json, out)


if __name__ == "__main__":
    main()
