"""Reference-layer benchmarks (issue 3).

1. GFN2-xTB 1-D torsion drive (15-degree grid) of a drug-like one-rotor molecule
   (4-phenylpyridine, the biaryl bond) with 1 and 2 local worker processes: wall time and
   speed-up (peer: the same drive in-process).
2. Time per B3LYP-D3BJ/DZVP gradient of ethanol through ffparam, next to PySCF called
   directly in the same run (peer), and with density fitting.
3. Store overhead per record (key hashing, lookup, running mark, put, commit) against the
   time of one GFN2-xTB single point (ethanol and the drive molecule), measured in this run.

Usage: python benchmarks/bench_reference.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from ffparam.chem import Molecule, Topology
from ffparam.reference import (
    LocalExecutor,
    SerialExecutor,
    Species,
    Store,
    get_calculator,
    make_jobs,
)
from ffparam.reference.jobs import execute_job
from ffparam.reference.torsiondrive import run_torsiondrive


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def drive_benchmark(spacing: int) -> list[tuple[str, float, float]]:
    molecule = Molecule.from_smiles("c1ccc(cc1)-c1ccncc1", name="4-phenylpyridine")
    molecule = molecule.generate_conformers(1, seed=7)
    dihedral = Topology(molecule).dihedral_for_bond(tuple(Topology(molecule).rotatable_bonds[0]))
    rows = []
    reference = None
    for label, make in (
        ("in-process", SerialExecutor),
        ("1 worker", lambda: LocalExecutor(1)),
        ("2 workers", lambda: LocalExecutor(2)),
    ):
        with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "b.db") as store:
            with make() as executor:
                start = time.perf_counter()
                result = run_torsiondrive(
                    molecule, [dihedral], "gfn2-xtb", spacing, store, executor
                )
                wall = time.perf_counter() - start
        assert result.complete, result.summary.text()
        if reference is None:
            reference = result
        deviation = float(np.abs(result.energies - reference.energies).max())
        rows.append((label, wall, deviation))
        low = result.energies.min()
        print(
            f"  {label}: {wall:.1f} s, {result.summary.n_jobs} optimizations, "
            f"{result.n_iterations} iterations, E(0)-Emin={result.energy_at(0) - low:.2f}, "
            f"E(90)-Emin={result.energy_at(90) - low:.2f} kcal/mol, "
            f"max |dE| vs in-process {deviation:.1e}, load {load()}",
            flush=True,
        )
    return rows


def dft_gradient_benchmark(n: int) -> dict[str, float]:
    from pyscf import dft

    from ffparam.units import HARTREE_BOHR_TO_KCAL_MOL_A

    ethanol = Molecule.from_smiles("CCO", name="ethanol").generate_conformers(1, seed=7)
    species = Species.from_molecule(ethanol)
    rng = np.random.default_rng(0)
    geometries = ethanol.conformers[0][None] + rng.normal(scale=0.01, size=(n, 9, 3))
    timings: dict[str, float] = {}
    for label, spec in (
        ("ffparam b3lyp-d3bj/dzvp", "b3lyp-d3bj/dzvp"),
        ("ffparam b3lyp-d3bj/dzvp, density fit", "b3lyp-d3bj/dzvp[density_fit]"),
    ):
        start = time.perf_counter()
        for geometry in geometries:  # a fresh calculator per job, as workers do
            get_calculator(spec, species).compute(geometry, gradient=True)
        timings[label] = (time.perf_counter() - start) / n
    from pyscf import gto

    start = time.perf_counter()
    for geometry in geometries:
        atoms = [(int(z), tuple(p)) for z, p in zip(species.numbers, geometry)]
        mol = gto.M(atom=atoms, basis="dzvp", verbose=0)
        mf = dft.RKS(mol, xc="b3lyp-d3bj")
        mf.kernel()
        grad = mf.nuc_grad_method().kernel() * HARTREE_BOHR_TO_KCAL_MOL_A
        assert np.isfinite(grad).all()
    timings["PySCF directly (peer)"] = (time.perf_counter() - start) / n
    return timings


def store_benchmark(n_records: int) -> list[tuple[str, float, float, float]]:
    rows = []
    for smiles, name in (("CCO", "ethanol"), ("c1ccc(cc1)-c1ccncc1", "4-phenylpyridine")):
        molecule = Molecule.from_smiles(smiles, name=name).generate_conformers(1, seed=7)
        species = Species.from_molecule(molecule)
        calc = get_calculator("gfn2-xtb", species)
        rng = np.random.default_rng(1)
        geometries = molecule.conformers[0][None] + rng.normal(
            scale=0.01, size=(n_records, molecule.n_atoms, 3)
        )
        start = time.perf_counter()
        for geometry in geometries[: min(200, n_records)]:
            get_calculator("gfn2-xtb", species).compute(geometry, gradient=True)
        single_point = (time.perf_counter() - start) / min(200, n_records)
        records = [
            execute_job(job) for job in make_jobs(molecule, geometries, "gfn2-xtb", "gradient")
        ]
        del calc
        for interval in (0.0, 0.5):
            with (
                tempfile.TemporaryDirectory() as tmp,
                Store(Path(tmp) / "s.db", commit_interval=interval) as store,
            ):
                start = time.perf_counter()
                jobs = make_jobs(molecule, geometries, "gfn2-xtb", "gradient")  # keys
                store.get_many(job.key for job in jobs)
                store.mark_running(jobs)
                for record in records:
                    store.put(record)
                store.flush()
                per_record = (time.perf_counter() - start) / n_records
            rows.append(
                (
                    f"{name} ({molecule.n_atoms} atoms), commit every {interval:g} s",
                    per_record,
                    single_point,
                    per_record / single_point,
                )
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30-degree grid, fewer repeats")
    args = parser.parse_args()
    print(
        f"# bench_reference  {time.strftime('%Y-%m-%d %H:%M')}  {platform.node()}  "
        f"{os.cpu_count()} CPUs  OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}  load {load()}"
    )

    print("\n## 1. GFN2-xTB torsion drive, 4-phenylpyridine biaryl bond")
    rows = drive_benchmark(30 if args.quick else 15)
    base = rows[1][1]
    print("| executor | wall (s) | speed-up vs 1 worker | max dE vs in-process (kcal/mol) |")
    print("| --- | --- | --- | --- |")
    for label, wall, dev in rows:
        print(f"| {label} | {wall:.1f} | {base / wall:.2f} | {dev:.1e} |")

    print("\n## 2. B3LYP-D3BJ/DZVP gradient, ethanol (9 atoms)")
    timings = dft_gradient_benchmark(2 if args.quick else 4)
    peer = timings["PySCF directly (peer)"]
    print("| route | s per gradient | ratio to PySCF directly |")
    print("| --- | --- | --- |")
    for label, seconds in timings.items():
        print(f"| {label} | {seconds:.2f} | {seconds / peer:.2f} |")

    print("\n## 3. Store overhead per record vs a GFN2-xTB single point (gradient)")
    print("| molecule, commit policy | store per record (ms) | GFN2 gradient (ms) | overhead |")
    print("| --- | --- | --- | --- |")
    for label, per_record, single, ratio in store_benchmark(200 if args.quick else 1000):
        print(f"| {label} | {per_record * 1e3:.3f} | {single * 1e3:.2f} | {100 * ratio:.1f} % |")
    print(f"\nload at end: {load()}")


if __name__ == "__main__":
    main()
