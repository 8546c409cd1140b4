"""Fault-tolerant, stored calculations: the client loop shared by every sampler.

:func:`run_jobs` looks every job up in the Store, runs only the missing ones (and failed
ones when ``retry_failed``) on an Executor, and records each result in the Store as it
arrives. A failed job is recorded with its message and never stops the others.
:func:`compute` is the one-call form for a batch of geometries of one molecule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from rich.progress import Progress

from ffparam.chem import Molecule
from ffparam.errors import CalculationError, InputError
from ffparam.reference.jobs import GEOMETRY_PRECISION, Job, execute_job
from ffparam.reference.methods import get_calculator
from ffparam.reference.records import Record, Species, Task
from ffparam.reference.spec import MethodSpec
from ffparam.reference.store import Store
from ffparam.runtime import Executor, Failure, SerialExecutor, bar_hook, progress_task


@dataclass
class RunSummary:
    """What a run did: jobs asked for, taken from the Store, computed now, failed."""

    n_jobs: int = 0
    n_cached: int = 0
    n_computed: int = 0
    n_failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    computed_keys: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.n_failed == 0

    def merge(self, other: RunSummary) -> None:
        self.n_jobs += other.n_jobs
        self.n_cached += other.n_cached
        self.n_computed += other.n_computed
        self.n_failed += other.n_failed
        self.failures += other.failures
        self.computed_keys += other.computed_keys

    def text(self) -> str:
        """One-paragraph summary for the CLI."""
        head = (
            f"{self.n_jobs} job(s): {self.n_cached} from the store, {self.n_computed} computed, "
            f"{self.n_failed} failed"
        )
        lines = [head]
        shown: dict[str, int] = {}
        for _, message in self.failures:
            shown[message] = shown.get(message, 0) + 1
        for message, count in list(shown.items())[:10]:
            lines.append(f"  failed x{count}: {message}")
        return "\n".join(lines)

    def raise_if_incomplete(self) -> None:
        if not self.complete:
            raise CalculationError(f"{self.n_failed} of {self.n_jobs} job(s) failed")


def run_jobs(
    jobs: Sequence[Job],
    store: Store,
    executor: Executor | None = None,
    retry_failed: bool = False,
    progress: Progress | bool = False,
    description: str = "reference",
) -> tuple[list[Record], RunSummary]:
    """Records for ``jobs`` (same order), computing only what the Store lacks.

    Duplicate keys are computed once. Complete records are reused; failed records are
    reused as failed unless ``retry_failed``; running records (from a killed run) and
    missing ones are computed. Results are written to ``store`` as they arrive.
    """
    executor = executor or SerialExecutor()
    unique: dict[str, Job] = {}
    for job in jobs:
        unique.setdefault(job.key, job)
    found = store.get_many(unique)
    summary = RunSummary(n_jobs=len(unique))
    results: dict[str, Record] = {}
    todo: list[Job] = []
    for key, job in unique.items():
        record = found.get(key)
        if record is not None and (
            record.status == "complete" or (record.status == "failed" and not retry_failed)
        ):
            results[key] = record
            summary.n_cached += 1
        else:
            todo.append(job)
    if todo:
        store.mark_running(todo)
        with progress_task(progress, description, len(todo)) as (bar, task):
            for index, outcome in executor.run(execute_job, todo, bar_hook(bar, task)):
                record = job_record(todo[index], outcome)
                store.put(record)
                results[record.key] = record
                summary.n_computed += 1
                summary.computed_keys.append(record.key)
        store.flush()
    for key, record in results.items():
        if not record.ok:
            summary.n_failed += 1
            summary.failures.append((key, record.error or "failed"))
    return [results[job.key] for job in jobs], summary


def job_record(job: Job, outcome: Record | Failure) -> Record:
    """The record of ``job`` from an executor's outcome: its record, or a failed record
    with the failure's message (a worker that kept dying, a cluster that lost the job)."""
    if isinstance(outcome, Failure):
        return job.record("failed", error=outcome.message)
    return outcome


def make_jobs(
    molecule: Molecule | Species,
    geometries: np.ndarray,
    method: MethodSpec | str,
    task: Task | str,
    precision: float = GEOMETRY_PRECISION,
) -> list[Job]:
    """Jobs for geometries (n_conf, n_atoms, 3) Angstrom of one molecule. Checks the method
    against the molecule first (unknown basis or element -> one-line InputError)."""
    species = molecule if isinstance(molecule, Species) else Species.from_molecule(molecule)
    method = MethodSpec.parse(method)
    task = Task.parse(task)
    calculator = get_calculator(method, species)  # validate before anything is submitted
    if task.kind == "esp" and not calculator.supports_esp:
        raise InputError(f"{method.name} gives no ESP on points; use a PySCF method")
    if task.kind == "polarizability" and not hasattr(calculator, "_scf"):
        raise InputError(f"{method.name} gives no polarizability; use a PySCF method "
                         "(hf/<basis> or <functional>/<basis>)")
    if task.kind == "esp_field" and not hasattr(calculator, "_scf"):
        raise InputError(f"{method.name} gives no ESP in an external field; use a PySCF "
                         "method (hf/<basis> or <functional>/<basis>)")
    geometries = np.asarray(geometries, dtype=np.float64).reshape(-1, species.n_atoms, 3)
    return [Job.create(species, method, task, g, precision) for g in geometries]


def compute(
    molecule: Molecule,
    geometries: np.ndarray | None = None,
    method: MethodSpec | str = "gfn2-xtb",
    task: Task | str = "energy",
    store: Store | None = None,
    executor: Executor | None = None,
    retry_failed: bool = False,
    progress: Progress | bool = False,
) -> list[Record]:
    """Run ``task`` with ``method`` on each geometry (n_conf, n_atoms, 3) Angstrom of
    ``molecule`` (default: its conformers); returns one Record per geometry, in order.

    Failed calculations come back as records with ``ok == False`` and an ``error``
    message; they are stored and never used as data. ``store`` defaults to an in-memory
    Store; ``executor`` to in-process execution.
    """
    if geometries is None:
        molecule.require_conformers()
        geometries = molecule.conformers
    jobs = make_jobs(molecule, geometries, method, task)
    own_store = store is None
    store = store if store is not None else Store(":memory:")
    try:
        records, _ = run_jobs(jobs, store, executor, retry_failed, progress, jobs[0].task.kind)
    finally:
        if own_store:
            store.close()
    return records
