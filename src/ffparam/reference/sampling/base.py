"""The result type shared by the samplers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.reference.compute import RunSummary, make_jobs, run_jobs
from ffparam.reference.records import Record, Task


@dataclass
class SampleResult:
    """Sampled frames of one molecule with their reference records.

    Attributes:
        molecule: the molecule (atom order of all frames).
        records: one Record per sampled frame (failed ones included, ``ok`` False).
        summary: jobs run, taken from the Store, failed.
        info: sampler facts (temperature, frequencies, ...).
    """

    molecule: Molecule
    records: list[Record]
    summary: RunSummary = field(default_factory=RunSummary)
    info: dict = field(default_factory=dict)

    @property
    def complete_records(self) -> list[Record]:
        """Records usable as data (complete ones only)."""
        return [r for r in self.records if r.ok]

    @property
    def geometries(self) -> np.ndarray:
        """(n_ok, n_atoms, 3) Angstrom: the geometries of complete records."""
        ok = self.complete_records
        return np.array([r.result_geometry for r in ok]).reshape(-1, self.molecule.n_atoms, 3)

    @property
    def energies(self) -> np.ndarray:
        """(n_ok,) kcal/mol."""
        return np.array([r.energy for r in self.complete_records], dtype=np.float64)

    @property
    def forces(self) -> np.ndarray:
        """(n_ok, n_atoms, 3) kcal/mol/Angstrom (complete records with gradients)."""
        return np.array([r.forces for r in self.complete_records if r.gradient is not None])

    @property
    def complete(self) -> bool:
        return self.summary.complete

    def to_molecule(self) -> Molecule:
        return self.molecule.with_conformers(self.geometries)

    def write_extxyz(self, path) -> int:
        """Complete frames to extended XYZ (eV, Angstrom); returns the frame count."""
        from ffparam.reference.export import write_extxyz

        return write_extxyz(self.complete_records, path)


def check_sampling(counts: dict[str, int], positive: dict[str, float], seed: int) -> None:
    """Refuse options no sampler can use: each of ``counts`` must be at least 1, each of
    ``positive`` (temperatures K, time steps fs...) above 0, the seed not negative."""
    for name, value in counts.items():
        if value < 1:
            raise InputError(f"{name} must be at least 1, got {value}")
    for name, value in positive.items():
        if not value > 0:
            raise InputError(f"{name} must be positive, got {value}")
    if seed < 0:
        raise InputError(f"seed must not be negative, got {seed}")


def label_frames(molecule: Molecule, frames: np.ndarray, method, store, executor,
                 retry_failed: bool, progress, label: str) -> tuple[list[Record], RunSummary]:
    """Reference energy and gradient records of ``frames`` (n, n_atoms, 3) Angstrom, run
    through ``executor`` and kept in ``store`` (a private in-memory Store when None)."""
    from ffparam.reference.store import Store

    jobs = make_jobs(molecule, frames, method, Task("gradient"))
    own = store is None
    store = store if store is not None else Store(":memory:")
    try:
        return run_jobs(jobs, store, executor, retry_failed, progress, label)
    finally:
        if own:
            store.close()
