"""Energies + forces for 1000 conformers of a drug-like molecule: ffparam's batched engine
(compiled kernel and pure-PyTorch path) vs OpenMM's CPU platform (setPositions/getState
loop), measured in the same run.

Usage: .venv/bin/python benchmarks/bench_energy.py [--conformers 1000] [--smiles SMILES]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import openmm
import torch
from openmm import unit

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.mm import MMEngine, to_openmm

HALOPERIDOL = "OC1(CCN(CCCC(=O)c2ccc(F)cc2)CC1)c1ccc(Cl)cc1"


def best_of(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def time_ffparam(engine: MMEngine, coords: np.ndarray) -> tuple[bool, float, float, float]:
    """(kernel available, seconds with the default path, seconds with the pure-PyTorch
    path, largest energy/force difference between the two in kcal/mol(/Angstrom))."""
    engine.compute(coords[:10])  # warm-up (compiles the kernel on first use)
    ours = best_of(lambda: engine.compute(coords, terms=False))
    pure_engine = MMEngine(engine.system)
    pure_engine.use_kernel = False
    pure_engine.compute(coords[:10])
    pure = best_of(lambda: pure_engine.compute(coords, terms=False))
    check, fast = pure_engine.compute(coords[:50]), engine.compute(coords[:50])
    agreement = max(float((fast.energy - check.energy).abs().max()),
                    float((fast.forces - check.forces).abs().max()))
    return engine._kernel() is not None, ours, pure, agreement


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conformers", type=int, default=1000)
    parser.add_argument("--smiles", default=HALOPERIDOL)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time torch.compile of the pure-PyTorch path (compile time "
        "reported separately; minutes on this CPU)",
    )
    return parser.parse_args()


def make_problem(smiles: str, n_conformers: int):
    """(system, positions (n_conformers, n_atoms, 3) Angstrom): Sage + Gasteiger charges,
    ETKDG conformers drawn with replacement and displaced by 0.02 Angstrom noise."""
    mol = Molecule.from_smiles(smiles, name="haloperidol").generate_conformers(
        50, seed=1, rms_threshold=0.3
    )
    rng = np.random.default_rng(0)
    picks = rng.integers(0, mol.n_conformers, n_conformers)
    coords = mol.conformers[picks] + rng.normal(0, 0.02, (n_conformers, mol.n_atoms, 3))
    system = assign_parameters(mol, "sage", charges="gasteiger")
    print(
        f"molecule: {mol.formula}, {mol.n_atoms} atoms, {n_conformers} conformers, "
        f"Sage (openff-2.2.1), gas phase, no cutoff"
    )
    return system, coords


def time_openmm(system, coords: np.ndarray, threads: int) -> tuple[float, float]:
    """(seconds of OpenMM's CPU-platform setPositions/getState loop over ``coords``,
    conformer 0's energy in kcal/mol)."""
    context = openmm.Context(
        to_openmm(system),
        openmm.VerletIntegrator(1.0 * unit.femtoseconds),
        openmm.Platform.getPlatformByName("CPU"),
        {"Threads": str(threads)},
    )
    nm = coords * 0.1

    def openmm_loop() -> None:
        for xyz in nm:
            context.setPositions(xyz)
            context.getState(getEnergy=True, getForces=True)

    openmm_loop()  # warm-up
    seconds = best_of(openmm_loop)
    context.setPositions(nm[0])
    energy = context.getState(getEnergy=True).getPotentialEnergy()
    return seconds, energy.value_in_unit(unit.kilocalorie_per_mole)


def time_compiled(engine: MMEngine, coords: np.ndarray) -> tuple[float, float]:
    """(compile seconds, run seconds) of the pure-PyTorch closed-form path of the whole
    batch under torch.compile."""
    from ffparam.mm import analytic

    packed, names = engine._tables(engine.parameter_vector(), "packed")

    def whole_batch(pos: torch.Tensor):
        energies, grad = analytic.evaluate(packed, pos.permute(1, 2, 0).contiguous(),
                                           len(names))
        return energies.sum(0), -grad.permute(2, 0, 1)

    positions = torch.as_tensor(coords)
    fast = torch.compile(whole_batch, dynamic=False)
    start = time.perf_counter()
    fast(positions)
    return time.perf_counter() - start, best_of(lambda: fast(positions))


def report(n: int, threads: int, kernel_used: bool, ours: float, pure: float,
           agreement: float, theirs: float) -> None:
    """Both ffparam paths, OpenMM, and the speed-up ratios."""
    def per(seconds: float) -> str:
        return f"{seconds:.3f} s = {1e3 * seconds / n:.3f} ms/conformer"

    if kernel_used:
        print(f"ffparam batched, compiled kernel ({threads} threads): {per(ours)}")
    else:
        print("ffparam batched, compiled kernel: unavailable (no C compiler or "
              "FFPARAM_MM_KERNEL=0)")
    print(f"ffparam batched, pure PyTorch (torch {torch.__version__}, {threads} threads): "
          f"{per(pure)}; largest energy/force difference from the default path "
          f"{agreement:.1e}")
    print(f"OpenMM {openmm.__version__} CPU platform loop ({threads} threads): {per(theirs)}")
    kernel = f"{theirs / ours:.2f}x (compiled kernel), " if kernel_used else ""
    print(f"speed-up ffparam / OpenMM: {kernel}{theirs / pure:.2f}x (pure PyTorch)"
          + (f"; kernel / pure PyTorch {pure / ours:.1f}x" if kernel_used else ""))


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    system, coords = make_problem(args.smiles, args.conformers)
    engine = MMEngine(system)
    kernel_used, ours, pure, agreement = time_ffparam(engine, coords)
    theirs, e_omm = time_openmm(system, coords, args.threads)
    result = engine.compute(coords[:5])
    print(
        f"check: conformer 0 energy ffparam {result.energy[0]:.6f} vs OpenMM CPU {e_omm:.6f} "
        "kcal/mol (CPU platform is mixed precision)"
    )
    report(args.conformers, args.threads, kernel_used, ours, pure, agreement, theirs)
    if args.compile:
        compile_time, compiled = time_compiled(engine, coords)
        print(
            f"ffparam analytic path under torch.compile: {compiled:.3f} s (compile "
            f"{compile_time:.0f} s once); speed-up vs OpenMM {theirs / compiled:.2f}x"
        )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {load_start:.2f} at start, {os.getloadavg()[0]:.2f} at end"
    )


if __name__ == "__main__":
    main()
