"""Perturbing point charges in the Drude field-ESP fit (CHARMM's recipe) vs uniform fields
only: does fitting to the ESP around +-0.5 e charges transfer better to other charges?

Per molecule (Sage + Gasteiger start, a Drude on every heavy atom, one ETKDG conformer,
seed 7), :func:`ffparam.workflows.bespoke_drude.fit_drude` twice at ``--method``: with
the 7 uniform fields only, and with the fields plus ``--charges`` perturbing charges
(+-0.5 e, 3.5 A from the nearest atom). Both fitted models and the start are then scored
on held-out QM ESPs in ``--test-charges`` other +-0.5 e charges 3.0 A from the molecule
(positions of :func:`ffparam.reference.esp_field.perturbing_charges` at 3.0 A): the ESP
RMSE and the RMSE of the charge-induced change V(Q) - V(0), kcal/mol/e. QM in a Store
(``--out``/qm.db): a rerun computes nothing again.

Usage: python benchmarks/bench_field_charges.py [water formaldehyde methanol]
       [--method hf/6-31+g*] [--charges 4] [--test-charges 4] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

MOLECULES = {"water": "O", "formaldehyde": "C=O", "methanol": "CO", "acetone": "CC(C)=O"}
TEST_DISTANCE_A = 3.0


def held_out_records(system, method: str, n_test: int, store) -> list:
    """The zero-field ESP record and ``n_test`` records in held-out perturbing charges."""
    from ffparam.reference.compute import compute, run_jobs
    from ffparam.reference.esp_field import charge_jobs, field_tasks, perturbing_charges
    from ffparam.reference.records import Species

    molecule = system.molecule
    geometry = molecule.conformers[0]
    (plain,) = compute(molecule, geometry[None], method, field_tasks([(0, 0, 0)])[0], store)
    environments = perturbing_charges(geometry, n_test, distance_a=TEST_DISTANCE_A)
    records, summary = run_jobs(charge_jobs(Species.from_molecule(molecule), geometry,
                                            method, environments), store)
    summary.raise_if_incomplete()
    return [plain, *records]


def score(system, records: list) -> dict[str, float]:
    """ESP and induced-ESP RMSE (kcal/mol/e) of a Drude ``system`` on ``records``."""
    import torch

    from ffparam.fit.parameters import FitParameters
    from ffparam.fit.targets.esp_field import field_esp_target_from_records

    target = field_esp_target_from_records("test", system, records)
    metrics = target.metrics(FitParameters(system.parameters, []),
                             torch.zeros(0, dtype=torch.float64))
    return {"rmse": metrics["rmse [kcal/mol/e]"],
            "induced_rmse": metrics["induced rmse [kcal/mol/e]"]}


def run(name: str, smiles: str, args, store) -> dict:
    from ffparam.assign import assign_parameters
    from ffparam.chem import Molecule
    from ffparam.params.drude import add_drude, element_drude_types
    from ffparam.reference.esp_field import DEFAULT_FIELD_KCAL_MOL_E_A
    from ffparam.runtime import SerialExecutor
    from ffparam.workflows.bespoke_drude import fit_drude

    mol = Molecule.from_smiles(smiles, name=name).generate_conformers(1, seed=7)
    system = assign_parameters(mol, "sage", charges="gasteiger")
    test = held_out_records(system, args.method, args.test_charges, store)
    out = {"start": score(add_drude(system, element_drude_types(system)), test)}
    for label, n in (("fields", 0), (f"fields+{args.charges}q", args.charges)):
        start = time.process_time()
        fitted, summary = fit_drude(system, args.method, DEFAULT_FIELD_KCAL_MOL_E_A, store,
                                    SerialExecutor(), n_field_charges=n)
        out[label] = {**score(fitted, test), "cpu_s": time.process_time() - start,
                      "train_esp": summary.esp_field,
                      "alpha": {t: v["alpha_fitted_a3"] for t, v in summary.types.items()},
                      "fitted_isotropic_a3": summary.polarizability["fitted_isotropic_a3"]}
    out["qm_isotropic_a3"] = summary.polarizability["qm_isotropic_a3"]
    return out


def print_rows(name: str, result: dict) -> None:
    """Markdown rows of one molecule: each model's held-out scores (kcal/mol/e)."""
    for label, v in result.items():
        if isinstance(v, dict):
            iso = v.get("fitted_isotropic_a3")
            fitted = f"{iso:.3f} ({result['qm_isotropic_a3']:.3f})" if iso else "-"
            print(f"| {name} | {label} | {v['rmse']:.3f} | {v['induced_rmse']:.3f} | "
                  f"{fitted} | {v.get('cpu_s', 0):.0f} |", flush=True)


def main() -> None:
    from ffparam.io.atomic import write_json_atomic
    from ffparam.reference.store import Store

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("molecules", nargs="*", default=["water", "formaldehyde", "methanol"],
                        choices=sorted(MOLECULES))
    for option, default in (("--method", "hf/6-31+g*"), ("--charges", 4),
                            ("--test-charges", 4)):
        parser.add_argument(option, type=type(default), default=default)
    parser.add_argument("--out", type=Path, default=Path("/tmp/ffparam_bench_field_charges"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print("| molecule | model | held-out ESP RMSE | held-out induced RMSE | alpha iso "
          "(QM) | CPU s |\n|---|---|---|---|---|---|")
    with Store(args.out / "qm.db") as store:
        results = {name: run(name, MOLECULES[name], args, store) for name in args.molecules}
    for name, result in results.items():
        print_rows(name, result)
    write_json_atomic(args.out / "field_charges_benchmark.json",
                      {"method": args.method, "molecules": results})


if __name__ == "__main__":
    main()
