"""The ``bespoke --polarizable`` Drude fit on small molecules: alpha/Thole to the QM
polarizability tensor, then charges + alpha to the QM ESP in uniform fields
(:func:`ffparam.workflows.bespoke_drude.fit_drude`).

Start: Sage + Gasteiger charges, a Drude on every heavy atom (element/hybridization types,
starting alpha, Thole 1.3), one ETKDG conformer (seed 7). Prints per molecule the QM,
start and fitted isotropic polarizability (A^3), the field-ESP RMSE and the RMSE of the
field-induced ESP change before/after (kcal/mol/e), the total-charge deviation (e) and the
CPU time; writes ``--out``/drude_field_benchmark.json.

Usage: .venv/bin/python benchmarks/bench_drude_field.py [--method hf/6-31+g*]
       [--out /tmp/ffparam_bench_drude_field] [water formaldehyde ...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

MOLECULES = {"water": "O", "formaldehyde": "C=O", "methanol": "CO", "acetone": "CC(C)=O"}


def run(name: str, smiles: str, method: str, store) -> dict:
    from ffparam.assign import assign_parameters
    from ffparam.chem import Molecule
    from ffparam.reference.esp_field import DEFAULT_FIELD_KCAL_MOL_E_A
    from ffparam.runtime import SerialExecutor
    from ffparam.workflows.bespoke_drude import fit_drude

    mol = Molecule.from_smiles(smiles, name=name).generate_conformers(1, seed=7)
    system = assign_parameters(mol, "sage", charges="gasteiger")
    start = time.process_time()
    _, summary = fit_drude(system, method, DEFAULT_FIELD_KCAL_MOL_E_A, store,
                           SerialExecutor())
    return {**summary.to_json(), "cpu_s": time.process_time() - start}


def main() -> None:
    from ffparam.io.atomic import write_json_atomic
    from ffparam.reference.store import Store

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("molecules", nargs="*", default=["water", "formaldehyde"],
                        choices=sorted(MOLECULES))
    parser.add_argument("--method", default="hf/6-31+g*")
    parser.add_argument("--out", type=Path, default=Path("/tmp/ffparam_bench_drude_field"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    print("| molecule | QM iso | start iso | fitted iso | ESP RMSE start -> fitted | "
          "induced RMSE start -> fitted | sum q - Q | CPU s |")
    print("|---|---|---|---|---|---|---|---|")
    with Store(args.out / "qm.db") as store:
        for name in args.molecules:
            r = results[name] = run(name, MOLECULES[name], args.method, store)
            pol, esp = r["polarizability"], r["esp_field"]
            print(f"| {name} | {pol['qm_isotropic_a3']:.3f} | {pol['start_isotropic_a3']:.3f} "
                  f"| {pol['fitted_isotropic_a3']:.3f} | {esp['start_rmse_kcal_mol_e']:.2f} -> "
                  f"{esp['fitted_rmse_kcal_mol_e']:.2f} | "
                  f"{esp['start_induced_rmse_kcal_mol_e']:.3f} -> "
                  f"{esp['fitted_induced_rmse_kcal_mol_e']:.3f} | "
                  f"{esp['fitted_total_charge_deviation_e']:.1e} | {r['cpu_s']:.0f} |",
                  flush=True)
    write_json_atomic(args.out / "drude_field_benchmark.json",
                      {"method": args.method, "molecules": results})


if __name__ == "__main__":
    main()
