"""Reference layer: QM methods behind one protocol, samplers, a crash-safe Store.

Main entry points (all energies kcal/mol, lengths Angstrom, angles in degrees at the API):

* :func:`compute` — a batch of geometries of one molecule -> list of :class:`Record`.
* :func:`run_torsiondrive` — 1-D/2-D torsion drives (torsiondrive wavefront + geomeTRIC)
  -> :class:`TorsionDriveResult`; :func:`rotatable_dihedrals` picks the dihedrals.
* :func:`run_jobs` — the stored, fault-tolerant loop under both, for :class:`Job` lists.
* ``sample_conformers``, ``sample_md``, ``sample_mm_md``, ``sample_normal_modes``
  (:mod:`ffparam.reference.sampling`) -> frames with reference energies and forces.
* :class:`Store` (SQLite) records every calculation.
* :func:`get_calculator` for direct, unstored use of a method.

Where jobs run is an :class:`ffparam.runtime.Executor` (in-process by default).
"""

from __future__ import annotations

from ffparam.reference.compute import RunSummary, compute, make_jobs, run_jobs
from ffparam.reference.jobs import GEOMETRY_PRECISION, Job, execute_job, job_key
from ffparam.reference.methods import available_methods, evaluate, get_calculator
from ffparam.reference.records import Constraints, PointResult, Record, Species, Task
from ffparam.reference.spec import CompositeSpec, MethodSpec, parse_method
from ffparam.reference.store import Store
from ffparam.reference.torsiondrive import (
    TorsionDriveResult,
    rotatable_dihedrals,
    run_torsiondrive,
)

__all__ = [
    "GEOMETRY_PRECISION",
    "CompositeSpec",
    "Constraints",
    "Job",
    "MethodSpec",
    "PointResult",
    "Record",
    "RunSummary",
    "Species",
    "Store",
    "Task",
    "TorsionDriveResult",
    "available_methods",
    "compute",
    "evaluate",
    "execute_job",
    "get_calculator",
    "job_key",
    "make_jobs",
    "parse_method",
    "rotatable_dihedrals",
    "run_jobs",
    "run_torsiondrive",
]
