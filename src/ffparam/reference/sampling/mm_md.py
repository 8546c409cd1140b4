"""MM-MD sampling: Langevin dynamics in OpenMM with an assigned force field, then
reference single points (energy and gradient) on the kept frames.

Cheap dynamics explore conformations; the reference method only labels the frames. The
force field comes from :func:`ffparam.assign.assign_parameters` (OpenFF Sage by default),
exported with :func:`ffparam.mm.openmm_export.to_openmm`; OpenMM works in nm and kJ/mol,
converted at this edge (positions only: the MM energies are not kept).
"""

from __future__ import annotations

import numpy as np
from rich.progress import Progress

from ffparam.chem import Molecule
from ffparam.reference.sampling.base import SampleResult, check_sampling, label_frames
from ffparam.reference.spec import MethodSpec
from ffparam.reference.store import Store
from ffparam.runtime import Executor, progress_task
from ffparam.units import ANGSTROM_PER_NM, NM_PER_ANGSTROM


def mm_trajectory(
    molecule: Molecule,
    temperature_k: float,
    n_frames: int,
    forcefield: str = "sage",
    charges: str | None = None,
    stride: int = 500,
    timestep_fs: float = 1.0,
    friction_per_ps: float = 1.0,
    equilibration_steps: int = 1000,
    seed: int = 0,
    progress: Progress | bool = False,
) -> np.ndarray:
    """Frames (n_frames, n_atoms, 3) Angstrom from OpenMM Langevin dynamics.

    Args:
        temperature_k: K. timestep_fs: fs. friction_per_ps: 1/ps.
        stride, equilibration_steps: steps.
        forcefield, charges: as for :func:`ffparam.assign.assign_parameters`.
    """
    import openmm
    from openmm import unit

    from ffparam.assign import assign_parameters
    from ffparam.mm.openmm_export import to_openmm

    if not molecule.n_conformers:
        molecule = molecule.generate_conformers(1, seed=seed)
    system = to_openmm(assign_parameters(molecule, forcefield, charges))
    integrator = openmm.LangevinMiddleIntegrator(
        temperature_k * unit.kelvin, friction_per_ps / unit.picosecond,
        timestep_fs * unit.femtosecond)
    integrator.setRandomNumberSeed(seed + 1)  # OpenMM: 0 means "pick one at random"
    platform = openmm.Platform.getPlatformByName("Reference")
    context = openmm.Context(system, integrator, platform)
    context.setPositions(molecule.conformers[0] * NM_PER_ANGSTROM)
    openmm.LocalEnergyMinimizer.minimize(context)
    context.setVelocitiesToTemperature(temperature_k * unit.kelvin, seed + 1)
    integrator.step(equilibration_steps)
    frames = []
    with progress_task(progress, f"MM MD {molecule.name} {temperature_k:g} K", n_frames) as (
        bar,
        task,
    ):
        for _ in range(n_frames):
            integrator.step(stride)
            state = context.getState(getPositions=True)
            positions = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
            frames.append(np.asarray(positions) * ANGSTROM_PER_NM)
            bar.advance(task)
    return np.array(frames)


def sample_mm_md(
    molecule: Molecule,
    temperature_k: float = 300.0,
    n_frames: int = 10,
    method: MethodSpec | str = "gfn2-xtb",
    store: Store | None = None,
    executor: Executor | None = None,
    *,
    forcefield: str = "sage",
    charges: str | None = None,
    stride: int = 500,
    timestep_fs: float = 1.0,
    equilibration_steps: int = 1000,
    seed: int = 0,
    retry_failed: bool = False,
    progress: Progress | bool = False,
) -> SampleResult:
    """Frames from OpenMM Langevin MD with ``forcefield``, labelled with the reference
    ``method`` (energy and gradient records in the Store)."""
    check_sampling(
        {"n_frames": n_frames, "stride": stride},
        {"temperature_k": temperature_k, "timestep_fs": timestep_fs},
        seed,
    )
    if not molecule.n_conformers:
        molecule = molecule.generate_conformers(1, seed=seed)
    frames = mm_trajectory(
        molecule,
        temperature_k,
        n_frames,
        forcefield,
        charges,
        stride,
        timestep_fs,
        equilibration_steps=equilibration_steps,
        seed=seed,
        progress=progress,
    )
    records, summary = label_frames(molecule, frames, method, store, executor, retry_failed,
                                    progress, "MM frames")
    info = {
        "temperature_k": temperature_k,
        "forcefield": forcefield,
        "stride": stride,
        "timestep_fs": timestep_fs,
        "seed": seed,
    }
    return SampleResult(molecule, records, summary, info)
