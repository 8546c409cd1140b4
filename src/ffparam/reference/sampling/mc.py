"""MC sampling: Metropolis Monte Carlo chains with an assigned force field
(:mod:`ffparam.sample`), then reference single points (energy and gradient) on frames
spread over the chains and the production run.

Like :mod:`ffparam.reference.sampling.mm_md`, cheap MM sampling explores the conformers and
the reference method only labels the kept frames; MC crosses torsion barriers with
rotamer jumps instead of waiting for them, and reports its acceptance rates (``info``).
"""

from __future__ import annotations

import math

import numpy as np
from rich.progress import Progress

from ffparam.chem import Molecule
from ffparam.reference.sampling.base import SampleResult, check_sampling, label_frames
from ffparam.reference.spec import MethodSpec
from ffparam.reference.store import Store
from ffparam.runtime import Executor
from ffparam.sample import MCResult, MCSettings, run_mc


def mc_frames(molecule: Molecule, n_steps: int, n_frames: int, temperature_k: float = 300.0,
              forcefield: str = "sage", charges: str | None = None,
              settings: MCSettings | None = None, seed: int = 0,
              progress: Progress | bool = False) -> tuple[np.ndarray, MCResult]:
    """Up to ``n_frames`` geometries (n, n_atoms, 3) Angstrom from MC chains of
    ``n_steps`` production steps each at ``temperature_k`` K (other settings from
    ``settings``, default :class:`MCSettings`), spread evenly over chains and time (fewer
    when the chains have fewer steps in all: no frame twice)."""
    from ffparam.assign import assign_parameters

    if not molecule.n_conformers:
        molecule = molecule.generate_conformers(1, seed=seed)
    base = settings or MCSettings()
    per_chain = math.ceil(n_frames / base.n_chains)
    settings = base.replace(temperature_k=temperature_k, n_steps=n_steps, seed=seed,
                            stride=max(1, n_steps // per_chain))
    system = assign_parameters(molecule, forcefield, charges)
    result = run_mc(system, molecule.conformers, settings, progress=progress)
    frames = result.flat_frames()
    pick = np.unique(np.linspace(0, len(frames) - 1, n_frames).round().astype(int))
    return frames[pick], result


def sample_mc(
    molecule: Molecule,
    n_steps: int = 2000,
    n_frames: int = 10,
    method: MethodSpec | str = "gfn2-xtb",
    store: Store | None = None,
    executor: Executor | None = None,
    *,
    temperature_k: float = 300.0,
    forcefield: str = "sage",
    charges: str | None = None,
    settings: MCSettings | None = None,
    seed: int = 0,
    retry_failed: bool = False,
    progress: Progress | bool = False,
) -> SampleResult:
    """Frames from Monte Carlo with ``forcefield`` (``n_steps`` production steps per chain,
    K ``temperature_k``), labelled with the reference ``method`` (energy and gradient
    records in the Store). ``info`` holds the acceptance rates (``mc_summary`` as text)."""
    check_sampling({"n_steps": n_steps, "n_frames": n_frames},
                   {"temperature_k": temperature_k}, seed)
    if not molecule.n_conformers:
        molecule = molecule.generate_conformers(1, seed=seed)
    frames, mc = mc_frames(molecule, n_steps, n_frames, temperature_k, forcefield, charges,
                           settings, seed, progress)
    records, summary = label_frames(molecule, frames, method, store, executor, retry_failed,
                                    progress, "MC frames")
    info = {
        "temperature_k": temperature_k,
        "forcefield": forcefield,
        "seed": seed,
        "mc_settings": mc.settings.to_dict(),
        "acceptance": {move: float(rate[0]) for move, rate in mc.acceptance.items()},
        "step_sizes": {move: float(step[0]) for move, step in mc.step_sizes.items()},
        "mc_summary": mc.summary(),
    }
    return SampleResult(molecule, records, summary, info)
