"""Drude vs fixed-charge liquids: dielectric constant, density and Hvap with errors.

For each liquid (CCl4, benzene; Sage 2.2.1 with AM1-BCC charges) two runs in one box size:
the fixed-charge force field (Langevin middle, 2 fs) and the same force field with Drude
oscillators on every heavy atom (starting alphas of :mod:`ffparam.params.drude`, Thole
1.3, k = 1000 kcal/mol/A^2; DrudeLangevinIntegrator, 1 fs, Drudes at 1 K, hard wall
0.2 A). The dielectric constant of the fixed-charge run has eps_inf = 1; the Drude run's
eps_inf is Clausius-Mossotti of the molecule's Drude polarizability. Errors: blocked
jackknife (dielectric), s/sqrt(n/g) (density, Hvap).

Experiment (298 K): CCl4 eps 2.24, density 1.584 g/mL, Hvap 7.75 kcal/mol; benzene eps
2.27, density 0.874 g/mL, Hvap 8.09 kcal/mol (CRC Handbook).

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_drude_liquid.py OUTDIR \
        [--molecules 64] [--equilibration-ps 20] [--production-ps 40] [--liquids ccl4,benzene]

Rerunning with the same OUTDIR resumes (finished runs return at once). Writes
OUTDIR/summary.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ffparam.io.atomic import write_json_atomic
from ffparam.liquid.box import box_density, molar_mass
from ffparam.liquid.drude import (
    DrudeDynamicsSettings,
    simulate_drude_liquid,
    site_charges,
    trajectory_dielectric,
)
from ffparam.liquid.job import LiquidJob, simulate_liquid
from ffparam.liquid.openmm_system import build_gas_system
from ffparam.liquid.prepare import prepare_system
from ffparam.liquid.properties import production_start
from ffparam.liquid.settings import LiquidSettings
from ffparam.liquid.simulate import load_trajectory
from ffparam.params.drude import add_drude

LIQUIDS = {
    "ccl4": {"smiles": "ClC(Cl)(Cl)Cl", "density": 1.584, "hvap": 7.75, "eps": 2.24},
    "benzene": {"smiles": "c1ccccc1", "density": 0.874, "hvap": 8.09, "eps": 2.27},
}
TEMPERATURE_K = 298.15


def _settings(args: argparse.Namespace, timestep_fs: float) -> LiquidSettings:
    return LiquidSettings(
        n_molecules=args.molecules, cutoff_a=9.0, switch_a=8.0, timestep_fs=timestep_fs,
        equilibration_ps=args.equilibration_ps, production_ps=args.production_ps,
        save_interval_ps=0.2, checkpoint_interval_ps=5.0, gas_equilibration_ps=5.0,
        gas_production_ps=args.gas_production_ps, gas_save_interval_ps=0.2,
        gas_replicas=1, box_conformers=0, threads=1)


def fixed_charge_run(name: str, system, args, outdir: Path) -> dict:
    settings = _settings(args, 2.0)
    directory = outdir / name / "fixed"
    job = LiquidJob(name, system, TEMPERATURE_K, 1.0, directory, settings,
                    density_guess_g_ml=LIQUIDS[name]["density"])
    start = time.perf_counter()
    result = simulate_liquid(job)
    wall = time.perf_counter() - start
    liquid = load_trajectory(directory / "liquid", settings.save_interval_ps)
    densities = box_density(molar_mass(system.molecule), settings.n_molecules, liquid.volumes)
    t0 = production_start(liquid.energies, densities)
    charges = np.tile(site_charges(build_gas_system(system, settings)), settings.n_molecules)
    eps = trajectory_dielectric(liquid, charges, t0, TEMPERATURE_K)
    return {"density": result.density.to_json(), "hvap": result.hvap.to_json(),
            "dielectric": eps.to_json(), "frames": result.frames, "wall_s": wall,
            "ns_per_day": result.ns_per_day}


def drude_run(name: str, system, args, outdir: Path) -> dict:
    settings = _settings(args, 1.0)
    job = LiquidJob(name, add_drude(system), TEMPERATURE_K, 1.0, outdir / name / "drude",
                    settings, density_guess_g_ml=LIQUIDS[name]["density"])
    start = time.perf_counter()
    result = simulate_drude_liquid(job, DrudeDynamicsSettings())
    wall = time.perf_counter() - start
    return {"density": result.liquid.density.to_json(), "hvap": result.liquid.hvap.to_json(),
            "dielectric": result.dielectric.to_json(), "alpha_a3": result.alpha_a3,
            "max_drude_displacement_a": result.max_drude_displacement_a,
            "frames": result.liquid.frames, "wall_s": wall,
            "ns_per_day": result.liquid.ns_per_day}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--molecules", type=int, default=64)
    parser.add_argument("--equilibration-ps", type=float, default=20.0)
    parser.add_argument("--production-ps", type=float, default=40.0)
    parser.add_argument("--gas-production-ps", type=float, default=100.0)
    parser.add_argument("--liquids", default="ccl4,benzene")
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    summary: dict = {"args": {k: str(v) for k, v in vars(args).items()}}
    for name in args.liquids.split(","):
        system = prepare_system(LIQUIDS[name]["smiles"], "sage", "am1bcc", name=name)
        summary[name] = {"experiment": LIQUIDS[name],
                         "fixed": fixed_charge_run(name, system, args, args.outdir),
                         "drude": drude_run(name, system, args, args.outdir)}
        write_json_atomic(args.outdir / "summary.json", summary)
        print(json.dumps({name: summary[name]}, indent=1), flush=True)


if __name__ == "__main__":
    main()
