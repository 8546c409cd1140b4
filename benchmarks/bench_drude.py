"""Drude polarizabilities fitted to QM polarizability tensors: 10 fit molecules, 5 held out.

QM reference: HF/aug-cc-pVDZ static polarizability tensors (analytic CPHF,
:mod:`ffparam.reference.polarizability`) at one MMFF94-optimized ETKDG conformer per
molecule, stored in a Store (task ``polarizability``; a rerun takes them from the Store).
HF without correlation underestimates polarizabilities by several percent; it is the
level affordable for 15 molecules on 2 shared cores (benzene: ~3 min); the molecules are
small (<= 6 heavy atoms) for the same reason, and the held-out set has no aromatic ring.

MM model: Sage + AM1-BCC charges, a Drude on every heavy atom typed by element,
hybridization and number of attached hydrogens (``C3H3``, ``CarH1``, ``O2H0``...), so the
hydrogens' polarizability is lumped onto their parent; alpha and Thole per type fitted
(``ffparam fit`` machinery: FitParameters + PolarizabilityTarget + least squares) to the
six tensor components of the 10 fit molecules together. The 5 held-out molecules use only
types present in the fit set (transferred, not refitted).

Prints and writes (``--out``/drude_benchmark.json) per molecule: QM and MM isotropic alpha
(A^3), relative error, and the tensor RMSE (A^3); then, for every molecule with a published
experimental mean polarizability (``benchmarks/data/experimental_polarizabilities.csv``,
sources named in its header), the column "exp" and the QM and fitted-MM errors against it.

Usage: .venv/bin/python benchmarks/bench_drude.py [--out /tmp/ffparam_bench_drude]
       [--qm-only]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

METHOD = "hf/aug-cc-pvdz"
FIT = {
    "water": "O", "methanol": "CO", "propane": "CCC", "formaldehyde": "C=O",
    "acetaldehyde": "CC=O", "acetone": "CC(C)=O", "methylamine": "CN",
    "chloromethane": "CCl", "dimethyl_ether": "COC", "benzene": "c1ccccc1",
}
DENOMINATOR_A3 = 0.05
"""Residual scale of each tensor component (A^3): against it the Gaussian priors (alpha
1 A^3, Thole 1 wide, ffparam's defaults) only regularize."""
EXPERIMENT_FILE = Path(__file__).parent / "data" / "experimental_polarizabilities.csv"
HELD_OUT = {
    "ethanol": "CCO", "ethylamine": "CCN", "propanal": "CCC=O", "methoxyethane": "CCOC",
    "dichloromethane": "ClCCl",
}


def molecule(name: str, smiles: str):
    from ffparam.chem import Molecule

    return Molecule.from_smiles(smiles, name=name).generate_conformers(1, seed=7)


def qm_records(molecules: dict, store_path: Path) -> dict:
    """name -> complete ``polarizability`` record (computed or from the Store)."""
    from ffparam.reference.compute import compute
    from ffparam.reference.store import Store

    out = {}
    with Store(store_path) as store:
        for name, mol in molecules.items():
            start = time.perf_counter()
            (record,) = compute(mol, mol.conformers[:1], METHOD, "polarizability", store)
            if not record.ok:
                raise SystemExit(f"{name}: {record.error}")
            iso = np.trace(record.polarizability) / 3
            print(f"QM {name:15s} alpha_iso {iso:7.3f} A^3 "
                  f"({'stored' if record.cached else f'{time.perf_counter() - start:.0f} s'})",
                  flush=True)
            out[name] = record
    return out


def drude_systems(molecules: dict) -> dict:
    """name -> Sage + AM1-BCC system with element/hybridization/hydrogen Drude types."""
    from ffparam.assign import assign_parameters
    from ffparam.params.drude import add_drude, element_drude_types

    systems = {name: assign_parameters(mol, "sage", charges="am1bcc")
               for name, mol in molecules.items()}
    return {name: add_drude(s, element_drude_types(s, hydrogens=True))
            for name, s in systems.items()}


def fit_drude(systems: dict, records: dict):
    """Fit alpha and Thole of every Drude type of ``systems`` to the QM tensors."""
    from ffparam.fit.objective import Objective
    from ffparam.fit.optimizers import optimize
    from ffparam.fit.parameters import FitParameters
    from ffparam.fit.spec import ParameterSettings
    from ffparam.fit.targets.polarizability import polarizability_target_from_records
    from ffparam.workflows.fit import master_parameters

    master = master_parameters(systems, [ParameterSettings(section="Drude",
                                                           fields=["alpha", "thole"])])
    targets = [polarizability_target_from_records(name, system, [records[name]],
                                                  denominator=DENOMINATOR_A3)
               for name, system in systems.items()]
    objective = Objective(targets, FitParameters.from_free(master), use_priors=True)
    return optimize(objective, "least_squares", max_iterations=100)


def tensor_row(system, record, source=None) -> dict:
    """QM vs MM isotropic alpha (A^3), relative error and tensor RMSE (A^3) of one
    molecule, its Drude parameters taken from ``source`` (default: its own)."""
    from ffparam.fit.targets.polarizability import unique_components
    from ffparam.mm.drude import DrudeEngine
    from ffparam.params.drude import add_drude

    if source is not None:
        types: list[str | None] = [None] * system.n_atoms
        for parent, tid in zip(system.drude.parents.tolist(), system.drude.type_ids):
            types[parent] = tid
        system = add_drude(system, types, source=source)
    mm = DrudeEngine(system).polarizability(record.result_geometry[None])[0].numpy()
    qm = record.polarizability
    iso_mm, iso_qm = np.trace(mm) / 3, np.trace(qm) / 3
    diff = unique_components(torch.as_tensor(mm - qm)[None]).numpy()
    return {"qm_iso_a3": iso_qm, "mm_iso_a3": iso_mm, "rel_error": (iso_mm - iso_qm) / iso_qm,
            "tensor_rmse_a3": float(np.sqrt(np.mean(diff**2))),
            "qm_anisotropy_a3": float(np.ptp(np.linalg.eigvalsh(qm))),
            "mm_anisotropy_a3": float(np.ptp(np.linalg.eigvalsh(mm)))}


def fit_and_report(molecules: dict, records: dict, fit: dict, held_out: dict) -> dict:
    """Fit on ``fit``, transfer the fitted types to ``held_out``; print and return rows."""
    systems = drude_systems(molecules)
    start = {name: tensor_row(systems[name], records[name]) for name in molecules}
    t0 = time.perf_counter()
    result = fit_drude({n: systems[n] for n in fit}, records)
    fit_time = time.perf_counter() - t0
    rows = {}
    for name in molecules:
        row = tensor_row(systems[name], records[name], source=result.parameters)
        row["start_mm_iso_a3"] = start[name]["mm_iso_a3"]
        row["set"] = "fit" if name in fit else "held-out"
        rows[name] = row
        print(f"{row['set']:8s} {name:15s} QM {row['qm_iso_a3']:6.3f}  MM start "
              f"{row['start_mm_iso_a3']:6.3f} fitted {row['mm_iso_a3']:6.3f} A^3  "
              f"({100 * row['rel_error']:+5.1f} %)  tensor RMSE "
              f"{row['tensor_rmse_a3']:.3f} A^3", flush=True)
    summary = {}
    for label in ("fit", "held-out"):
        errors = np.array([r["rel_error"] for r in rows.values() if r["set"] == label])
        rmse = np.array([r["tensor_rmse_a3"] for r in rows.values() if r["set"] == label])
        summary[label] = {"mean_abs_rel_error": float(np.mean(np.abs(errors))),
                          "max_abs_rel_error": float(np.max(np.abs(errors))),
                          "mean_tensor_rmse_a3": float(np.mean(rmse))}
        print(f"{label}: mean |rel. error| {100 * summary[label]['mean_abs_rel_error']:.1f} %"
              f", max {100 * summary[label]['max_abs_rel_error']:.1f} %, mean tensor RMSE "
              f"{summary[label]['mean_tensor_rmse_a3']:.3f} A^3")
    drude = {p.id: dict(p.values) for s, p in result.parameters if s == "Drude"}
    return {"molecules": rows, "summary": summary, "drude_parameters": drude,
            "fit_wall_time_s": fit_time, "objective_after": result.objective_after}


def experimental_alphas(path: Path = EXPERIMENT_FILE) -> dict[str, tuple[float, str]]:
    """name -> (experimental mean polarizability in A^3, source key) from the CSV data file
    (``#`` lines are its header with the sources)."""
    import csv

    with path.open() as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        return {row["name"]: (float(row["alpha_exp_a3"]), row["source"]) for row in rows}


def compare_to_experiment(rows: dict, experiment: dict) -> dict:
    """Add the experimental alpha (A^3) and the QM and fitted-MM relative errors against it
    to ``rows`` (in place) for the molecules in ``experiment``; print the table and return
    the mean absolute relative errors of QM and MM over those molecules."""
    print(f"{'set':8s} {'molecule':15s} {'exp':>6s} {'QM':>6s} {'(vs exp)':>9s} "
          f"{'MM fit':>6s} {'(vs exp)':>9s}  source  [A^3]")
    for name, row in rows.items():
        if name not in experiment:
            continue
        exp_a3, source = experiment[name]
        row["exp_iso_a3"], row["exp_source"] = exp_a3, source
        row["qm_vs_exp"] = (row["qm_iso_a3"] - exp_a3) / exp_a3
        row["mm_vs_exp"] = (row["mm_iso_a3"] - exp_a3) / exp_a3
        print(f"{row['set']:8s} {name:15s} {exp_a3:6.2f} {row['qm_iso_a3']:6.3f} "
              f"({100 * row['qm_vs_exp']:+6.1f} %) {row['mm_iso_a3']:6.3f} "
              f"({100 * row['mm_vs_exp']:+6.1f} %)  {source}")
    compared = [row for row in rows.values() if "exp_iso_a3" in row]
    summary = {"n_molecules": len(compared),
               "qm_mean_abs_rel_error": float(np.mean([abs(r["qm_vs_exp"]) for r in compared])),
               "mm_mean_abs_rel_error": float(np.mean([abs(r["mm_vs_exp"]) for r in compared]))}
    print(f"vs experiment ({summary['n_molecules']} molecules): mean |rel. error| QM "
          f"{100 * summary['qm_mean_abs_rel_error']:.1f} %, fitted MM "
          f"{100 * summary['mm_mean_abs_rel_error']:.1f} %")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/ffparam_bench_drude"))
    parser.add_argument("--qm-only", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    molecules = {name: molecule(name, smi) for name, smi in {**FIT, **HELD_OUT}.items()}
    records = qm_records(molecules, args.out / "polarizability.db")
    if args.qm_only:
        return
    result = fit_and_report(molecules, records, FIT, HELD_OUT)
    result["summary"]["experiment"] = compare_to_experiment(result["molecules"],
                                                            experimental_alphas())
    result["machine"] = f"{platform.node()} {platform.processor() or platform.machine()}"
    result["method"] = METHOD
    from ffparam.io.atomic import write_json_atomic

    write_json_atomic(args.out / "drude_benchmark.json", result)


if __name__ == "__main__":
    main()
