"""Methanol liquid density and Hvap with IPolQ vs AM1-BCC charges (issue 17, QM/MM point 3).

Charges: AM1-BCC (sqm, Sage 2.2.1's start charges) and IPolQ (:mod:`ffparam.workflows.ipolq`:
HF/6-31G* RESP to the mean of the gas-phase ESP and the mean QM/MM ESP in 300 TIP3P waters,
4 snapshots, the solute frozen at its HF/6-31G* minimum: the protocol of
``benchmarks/bench_qmmm.py``; calculations through a Store in OUTDIR, reused on a rerun).
Both liquids run through the public liquid API (:class:`ffparam.liquid.LiquidJob` +
:func:`ffparam.liquid.simulate_liquid`, what ``run_liquid`` / ``ffparam liquid run`` call)
with the same Sage 2.2.1 valence and LJ parameters and the same settings: N molecules,
298.15 K, 1 atm, 9 A PME/LJ cutoff (switch 8 A), H bonds constrained, 2 fs; the gas phase
one molecule, plain Langevin. Errors: s/sqrt(n/g) (statistical inefficiency).

Experiment (298.15 K): density 0.787 g/mL, Hvap 8.95 kcal/mol (CRC Handbook).

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_ipolq_liquid.py OUTDIR \
        [--molecules 128] [--equilibration-ps 50] [--production-ps 250] [--gas-production-ps 1000]

Rerunning with the same OUTDIR resumes (finished runs return at once). Writes
OUTDIR/summary.json.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.io.atomic import write_json_atomic
from ffparam.liquid import LiquidJob, LiquidSettings, simulate_liquid
from ffparam.reference import Store
from ffparam.workflows.bespoke_charges import optimized_geometry
from ffparam.workflows.ipolq import ipolq_charges
from ffparam.workflows.qmmm import QMMMSettings

SMILES = "CO"
EXPERIMENT = {"density": 0.787, "hvap": 8.95}
TEMPERATURE_K = 298.15
QM_METHOD = "hf/6-31g*"


def charged_systems(outdir: Path) -> dict:
    """{"am1bcc": system, "ipolq": system}: Sage 2.2.1 methanol with each charge set."""
    molecule = Molecule.from_smiles(SMILES, name="methanol").generate_conformers(1, seed=7)
    bcc = assign_parameters(molecule, "sage", charges="am1bcc")
    work = outdir / "ipolq"
    start = time.perf_counter()
    with Store(work / "qmmm.sqlite") as store:
        geometry = optimized_geometry(bcc, QM_METHOD, store, None, "IPolQ")
        result = ipolq_charges(bcc, work, QMMMSettings(method=QM_METHOD), store, None, geometry)
    print(f"IPolQ charges ({time.perf_counter() - start:.0f} s): "
          + " ".join(f"{s}{q:+.4f}" for s, q in zip(molecule.symbols, result.charges)))
    print("AM1-BCC charges: " + " ".join(f"{s}{q:+.4f}" for s, q in
                                         zip(molecule.symbols, bcc.charges())))
    ipolq = assign_parameters(molecule, "sage", charges=np.asarray(result.charges))
    return {"am1bcc": bcc, "ipolq": ipolq}


def liquid_settings(args: argparse.Namespace) -> LiquidSettings:
    return LiquidSettings(
        n_molecules=args.molecules, cutoff_a=9.0, switch_a=8.0, timestep_fs=2.0,
        equilibration_ps=args.equilibration_ps, production_ps=args.production_ps,
        save_interval_ps=0.5, checkpoint_interval_ps=10.0, gas_equilibration_ps=10.0,
        gas_production_ps=args.gas_production_ps, gas_save_interval_ps=0.5, gas_replicas=1,
        box_conformers=0, threads=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    for flag, default in (("--molecules", 128), ("--equilibration-ps", 50.0),
                          ("--production-ps", 250.0), ("--gas-production-ps", 1000.0)):
        parser.add_argument(flag, type=type(default), default=default)
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    settings = liquid_settings(args)
    summary = {"experiment": EXPERIMENT, "settings": settings.to_dict(), "runs": {}}
    for label, system in charged_systems(args.outdir).items():
        began = time.perf_counter()
        job = LiquidJob(f"methanol-{label}", system, TEMPERATURE_K, 1.0,
                        args.outdir / label, settings, density_guess_g_ml=0.79)
        job.directory.mkdir(parents=True, exist_ok=True)
        result = simulate_liquid(job)
        summary["runs"][label] = {"charges": system.charges().tolist(), **result.to_json()}
        print(f"{label:7s} density {result.density.value:.4f} +- {result.density.error:.4f} "
              f"g/mL (exp {EXPERIMENT['density']}), Hvap {result.hvap.value:.3f} +- "
              f"{result.hvap.error:.3f} kcal/mol (exp {EXPERIMENT['hvap']}); frames "
              f"{result.frames}, {result.ns_per_day:.1f} ns/day, "
              f"{time.perf_counter() - began:.0f} s")
        write_json_atomic(args.outdir / "summary.json", summary)


if __name__ == "__main__":
    main()
