"""Jobs: one geometry, one method, one task — the unit a worker computes.

A :class:`Job` is small and picklable. :func:`execute_job` runs in a worker process and
never raises: a failed calculation (SCF not converged, geomeTRIC failure, NaN, a backend
error) comes back as a ``failed`` :class:`Record` carrying a one-line message. Each job
builds a fresh calculator, so its result depends only on its inputs (the store key), never
on which jobs the same worker ran before; within a job (optimization steps, finite
differences) every SCF restarts from the previous one.

Store keys: SHA-256 of the canonical method string, the molecule's order-dependent key,
charge, multiplicity, the canonical task and the geometry rounded to ``precision``
Angstrom (default 1e-6 Angstrom); for a QM/MM job (:mod:`ffparam.reference.qmmm`) also
the MM point charges and their positions (:meth:`Environment.key_bytes`).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import time
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING

import numpy as np

from ffparam.errors import FFParamError, InputError
from ffparam.reference.records import PointResult, Record, Species, Task
from ffparam.reference.spec import MethodSpec

if TYPE_CHECKING:
    from ffparam.reference.qmmm import Environment

GEOMETRY_PRECISION: float = 1e-6
"""Default rounding of geometries in Store keys, Angstrom."""


def job_key(
    species: Species,
    method: MethodSpec,
    task: Task,
    geometry: np.ndarray,
    precision: float = GEOMETRY_PRECISION,
    environment: Environment | None = None,
) -> str:
    """Hex SHA-256 identity of a calculation (see module docstring); ``environment``: the
    MM point charges of a QM/MM calculation (None: none, the key of earlier versions)."""
    rounded = np.rint(np.asarray(geometry, dtype=np.float64) / precision).astype(np.int64)
    header = _key_header(
        method.canonical(),
        species.key,
        species.charge,
        species.multiplicity,
        task.canonical(),
        precision,
        rounded.shape,
    )
    digest = hashlib.sha256(header)
    digest.update(rounded.tobytes())
    if environment is not None:
        digest.update(environment.key_bytes(precision))
    return digest.hexdigest()


@lru_cache(maxsize=256)
def _key_header(
    method: str,
    molecule: str,
    charge: int,
    multiplicity: int,
    task: str,
    precision: float,
    shape: tuple[int, ...],
) -> bytes:
    fields = {
        "method": method,
        "molecule": molecule,
        "charge": charge,
        "multiplicity": multiplicity,
        "task": task,
        "precision": precision,
        "shape": list(shape),
    }
    return json.dumps(fields, sort_keys=True).encode()


@dataclass(frozen=True, eq=False)
class Job:
    """One calculation to run: ``geometry`` (n_atoms, 3) Angstrom; ``environment``: MM
    point charges around it (QM/MM, electrostatic embedding) or None."""

    key: str
    species: Species
    method: MethodSpec
    task: Task
    geometry: np.ndarray
    environment: Environment | None = None

    @classmethod
    def create(
        cls,
        species: Species,
        method: MethodSpec | str,
        task: Task | str,
        geometry: np.ndarray,
        precision: float = GEOMETRY_PRECISION,
        environment: Environment | None = None,
    ) -> Job:
        method = MethodSpec.parse(method)
        task = Task.parse(task)
        geometry = np.array(geometry, dtype=np.float64).reshape(species.n_atoms, 3)
        return cls(
            job_key(species, method, task, geometry, precision, environment), species, method,
            task, geometry, environment,
        )

    def record(self, status: str, **fields) -> Record:
        if self.environment is not None:
            fields.update(mm_positions=self.environment.positions,
                          mm_charges=self.environment.charges)
        return Record(
            key=self.key,
            status=status,
            method=self.method.canonical(),
            task=self.task.canonical(),
            species=self.species,
            geometry=self.geometry,
            **fields,
        )


@cache
def package_versions() -> dict[str, str]:
    """Versions of the packages that shape a result (recorded in provenance)."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in ("ffparam", "tblite", "pyscf", "pyscf-dispersion", "geometric", "numpy"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def execute_job(job: Job) -> Record:
    """Compute ``job``; returns a complete or failed Record (never raises for a failed
    calculation). Runs in worker processes."""
    start = time.perf_counter()
    provenance = {"versions": package_versions(), "host": socket.gethostname(), "pid": os.getpid()}
    try:
        fields = _compute(job)
    except FFParamError as exc:
        return _failed(job, f"{type(exc).__name__}: {exc}", provenance, start)
    except Exception as exc:  # job boundary: record any backend failure, keep the run alive
        return _failed(job, f"{type(exc).__name__}: {_one_line(exc)}", provenance, start)
    details = fields.pop("details", {})
    provenance.update(wall_time=time.perf_counter() - start, details=details)
    return job.record("complete", provenance=provenance, **fields)


def _failed(job: Job, message: str, provenance: dict, start: float) -> Record:
    provenance["wall_time"] = time.perf_counter() - start
    return job.record("failed", error=_one_line(message), provenance=provenance)


def _one_line(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0][:500] if lines else "unknown error"


def _compute(job: Job) -> dict:
    from ffparam.reference.methods import get_calculator

    if getattr(job.environment, "self_consistent", False):  # QM/MM in Drude charges
        from ffparam.reference.qmmm_drude import drude_fields

        return drude_fields(job)
    calc = get_calculator(job.method, job.species)
    if job.environment is not None:
        from ffparam.reference.qmmm import embed

        embed(calc, job.environment)
    kind = job.task.kind
    if kind == "optimize":
        from ffparam.reference.optimize import optimize_geometry

        opt = optimize_geometry(calc, job.geometry, job.task.constraints, job.task.max_steps)
        return {
            "energy": opt.energy,
            "gradient": opt.gradient,
            "final_geometry": opt.geometry,
            "trajectory_energies": opt.trajectory_energies,
            "details": {"optimizer": "geomeTRIC", "steps": opt.n_steps},
        }
    if kind == "polarizability":
        from ffparam.reference.polarizability import compute_polarizability

        return compute_polarizability(calc, job.geometry)
    if kind == "esp_field":
        from ffparam.reference.esp_field import compute_esp_in_field
        from ffparam.reference.esp_grid import merz_kollman_points

        points = merz_kollman_points(np.asarray(job.species.numbers), job.geometry,
                                     density=job.task.esp_density)
        return compute_esp_in_field(calc, job.geometry, job.task.field_kcal_mol_e_a, points)
    esp_points = None
    if kind == "esp":
        from ffparam.reference.esp_grid import merz_kollman_points

        esp_points = merz_kollman_points(
            np.asarray(job.species.numbers), job.geometry, density=job.task.esp_density
        )
    result: PointResult = calc.compute(
        job.geometry,
        gradient=kind in ("gradient", "hessian"),
        hessian=kind == "hessian",
        esp_points=esp_points,
    )
    if kind == "bond_orders":
        if result.bond_orders is None:
            raise InputError(f"{job.method.name} gives no bond orders; use an xtb method")
        return {"energy": result.energy, "bond_orders": result.bond_orders,
                "charges": result.charges, "details": result.details}
    return {
        "energy": result.energy,
        "gradient": result.gradient,
        "hessian": result.hessian,
        "esp_points": result.esp_points,
        "esp": result.esp,
        "dipole": result.dipole,
        "charges": result.charges,
        "mm_gradient": result.mm_gradient,
        "details": result.details,
    }
