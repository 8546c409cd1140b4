"""MD sampling: Langevin dynamics with the reference method through ASE.

The reference :class:`~ffparam.reference.methods.base.Calculator` drives ASE through the
one ASE calculator, :class:`~ffparam.energy.ase.EnergyModelCalculator` (eV and
eV/Angstrom at that edge); successive steps restart the SCF from the previous one.
:func:`sample_md` runs the dynamics in this process, keeps every ``stride``-th frame, and
records energies and gradients of the kept frames through the Store (a rerun with the
same seed reproduces the trajectory and finds the frames there). The MM-MD path (OpenMM
dynamics, then reference single points) is left for when a force field is at hand.
"""

from __future__ import annotations

import numpy as np
from rich.progress import Progress

from ffparam.chem import Molecule
from ffparam.energy.ase import EnergyModelCalculator, langevin, thermalize
from ffparam.errors import InputError
from ffparam.reference.compute import make_jobs, run_jobs
from ffparam.reference.methods import get_calculator
from ffparam.reference.records import Species, Task
from ffparam.reference.sampling.base import SampleResult, check_sampling
from ffparam.reference.spec import MethodSpec
from ffparam.reference.store import Store
from ffparam.runtime import Executor, progress_task


def sample_md(
    molecule: Molecule,
    temperature_k: float = 300.0,
    n_frames: int = 10,
    method: MethodSpec | str = "gfn2-xtb",
    store: Store | None = None,
    executor: Executor | None = None,
    *,
    stride: int = 20,
    timestep_fs: float = 0.5,
    friction_per_fs: float = 0.01,
    equilibration_steps: int = 100,
    seed: int = 0,
    retry_failed: bool = False,
    progress: Progress | bool = False,
) -> SampleResult:
    """Frames from Langevin MD at ``temperature_k`` (K) with the reference ``method``.

    Args:
        molecule: starting geometry = its first conformer (one is generated if none).
        n_frames: frames kept, one every ``stride`` steps after ``equilibration_steps``.
        timestep_fs: fs. friction_per_fs: Langevin friction in 1/fs.
        seed: seeds the initial velocities and the Langevin noise.

    Returns:
        A SampleResult with one gradient record per kept frame.
    """
    check_sampling(
        {"n_frames": n_frames, "stride": stride},
        {"temperature_k": temperature_k, "timestep_fs": timestep_fs,
         "friction_per_fs": friction_per_fs},
        seed,
    )
    if equilibration_steps < 0:
        raise InputError(f"equilibration_steps must not be negative, got {equilibration_steps}")
    from ase import Atoms

    if not molecule.n_conformers:
        molecule = molecule.generate_conformers(1, seed=seed)
    species = Species.from_molecule(molecule)
    spec = MethodSpec.parse(method)
    atoms = Atoms(numbers=list(species.numbers), positions=molecule.conformers[0].copy())
    atoms.set_masses(molecule.masses)
    atoms.calc = EnergyModelCalculator(get_calculator(spec, species))
    rng = np.random.default_rng(seed)
    thermalize(atoms, temperature_k, rng)
    dynamics = langevin(atoms, temperature_k, timestep_fs, friction_per_fs, rng)
    frames = []
    total = equilibration_steps + n_frames * stride
    with progress_task(progress, f"MD {molecule.name} {temperature_k:g} K", total) as (bar, task):
        for step in range(1, total + 1):
            dynamics.run(1)
            bar.advance(task)
            if step > equilibration_steps and (step - equilibration_steps) % stride == 0:
                frames.append(atoms.positions.copy())
    jobs = make_jobs(species, np.array(frames), spec, Task("gradient"))
    store_ = store if store is not None else Store(":memory:")
    try:
        records, summary = run_jobs(jobs, store_, executor, retry_failed, progress, "MD frames")
    finally:
        if store is None:
            store_.close()
    info = {"temperature_k": temperature_k, "stride": stride, "timestep_fs": timestep_fs,
            "seed": seed}
    return SampleResult(molecule, records, summary, info)
