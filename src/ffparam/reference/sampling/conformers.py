"""Conformers: RDKit ETKDG + RMSD pruning, then optimization with the reference method."""

from __future__ import annotations

import numpy as np
from rich.progress import Progress

from ffparam.chem import Molecule
from ffparam.chem.molecule import prune_by_rmsd
from ffparam.reference.compute import make_jobs, run_jobs
from ffparam.reference.records import Task
from ffparam.reference.sampling.base import SampleResult, check_sampling
from ffparam.reference.spec import MethodSpec
from ffparam.reference.store import Store
from ffparam.runtime import Executor


def sample_conformers(
    molecule: Molecule,
    n_conformers: int = 10,
    method: MethodSpec | str = "gfn2-xtb",
    store: Store | None = None,
    executor: Executor | None = None,
    *,
    rms_threshold: float = 0.5,
    energy_window: float | None = None,
    seed: int = 0xF00D,
    retry_failed: bool = False,
    progress: Progress | bool = False,
) -> SampleResult:
    """Up to ``n_conformers`` distinct minima of ``molecule`` with the reference method.

    ETKDG embeds (MMFF-relaxed, pruned at ``rms_threshold`` Angstrom heavy-atom RMSD),
    each is optimized with ``method``; optimized duplicates (same RMSD criterion) are
    removed, keeping the lower energy, and ``energy_window`` (kcal/mol above the lowest)
    drops high-energy ones. Records come back sorted by energy; failed optimizations are
    kept as failed records at the end.
    """
    check_sampling({"n_conformers": n_conformers}, {"rms_threshold": rms_threshold}, seed)
    start = molecule.generate_conformers(n_conformers, seed=seed, rms_threshold=rms_threshold)
    jobs = make_jobs(molecule, start.conformers, method, Task("optimize"))
    store_ = store if store is not None else Store(":memory:")
    try:
        records, summary = run_jobs(
            jobs, store_, executor, retry_failed, progress, f"conformers {molecule.name}"
        )
    finally:
        if store is None:
            store_.close()
    ok = sorted((r for r in records if r.ok), key=lambda r: r.energy)
    failed = [r for r in records if not r.ok]
    if ok:
        if energy_window is not None:
            ok = [r for r in ok if r.energy - ok[0].energy <= energy_window]
        geometries = np.array([r.final_geometry for r in ok])
        kept = prune_by_rmsd(molecule.rdmol, geometries, rms_threshold)  # keeps the lowest
        index = [next(i for i, g in enumerate(geometries) if np.array_equal(g, k)) for k in kept]
        ok = [ok[i] for i in index]
    return SampleResult(molecule, ok + failed, summary, {"n_embedded": start.n_conformers})
