"""Reference layer: QM methods behind one protocol, samplers, a crash-safe Store, executors.

Main entry points (all energies kcal/mol, lengths Angstrom, angles in degrees at the API):

* :func:`compute` — a batch of geometries of one molecule -> list of :class:`Record`.
* :func:`run_torsiondrive` — 1-D/2-D torsion drives (torsiondrive wavefront + geomeTRIC)
  -> :class:`TorsionDriveResult`.
* :func:`sample_conformers`, :func:`sample_md`, :func:`sample_normal_modes` -> frames with
  reference energies and forces.
* :class:`Store` (SQLite), :class:`SerialExecutor`, :class:`LocalExecutor`,
  ``DaskExecutor`` (``ffparam.reference.dask_executor``), :func:`make_executor`.
* :func:`get_calculator` for direct, unstored use of a method.
"""

from __future__ import annotations

from ffparam.reference.compute import RunSummary, compute, make_jobs, run_jobs
from ffparam.reference.executor import Executor, LocalExecutor, SerialExecutor, make_executor
from ffparam.reference.jobs import GEOMETRY_PRECISION, Job, execute_job, job_key
from ffparam.reference.methods import available_methods, evaluate, get_calculator
from ffparam.reference.records import Constraints, PointResult, Record, Species, Task
from ffparam.reference.spec import MethodSpec
from ffparam.reference.store import Store

__all__ = [
    "GEOMETRY_PRECISION",
    "Constraints",
    "Executor",
    "Job",
    "LocalExecutor",
    "MethodSpec",
    "PointResult",
    "Record",
    "RunSummary",
    "SerialExecutor",
    "Species",
    "Store",
    "Task",
    "available_methods",
    "compute",
    "evaluate",
    "execute_job",
    "get_calculator",
    "job_key",
    "make_executor",
    "make_jobs",
    "run_jobs",
]
