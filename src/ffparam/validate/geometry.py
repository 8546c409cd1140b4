"""Optimized-geometry validation: how far each MM minimum lies from the reference minimum.

Protocol (as in OpenFF's conformer benchmarks): held-out ETKDG conformers are optimized with
the reference method (task ``optimize`` through the Store), then every system is
MM-minimized starting from that same reference-optimized geometry, and the MM minimum is
compared with the reference one by the heavy-atom RMSD after Kabsch superposition
(Angstrom); the all-atom RMSD and the MM relaxation energy E_MM(reference geometry) -
E_MM(MM minimum) (kcal/mol) are reported beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ffparam.chem import Molecule
from ffparam.errors import FFParamError, InputError
from ffparam.params.system import ParameterizedSystem
from ffparam.validate.alignment import heavy_atoms, kabsch_rmsd
from ffparam.validate.minimize import mm_minimize
from ffparam.validate.results import json_safe, summarize_failures
from ffparam.validate.sampling import VALIDATION_SEED, held_out_geometries


@dataclass
class GeometryScores:
    """One system's MM minima against the reference minima.

    Attributes:
        heavy_atom_rmsd_a: per conformer, heavy-atom RMSD after superposition, Angstrom.
        all_atom_rmsd_a: per conformer, all-atom RMSD after superposition, Angstrom.
        relaxation_energy_kcal_mol: per conformer, E_MM(reference minimum) - E_MM(MM
            minimum), kcal/mol (>= 0 up to the minimizer tolerance).
        max_residual_force_kcal_mol_a: largest MM force component left after minimization.
        converged: whether the minimizer reported convergence.
        error: one-line message when this system could not be minimized (numbers empty).
    """

    heavy_atom_rmsd_a: list[float] = field(default_factory=list)
    all_atom_rmsd_a: list[float] = field(default_factory=list)
    relaxation_energy_kcal_mol: list[float] = field(default_factory=list)
    max_residual_force_kcal_mol_a: float | None = None
    converged: bool | None = None
    error: str | None = None

    @property
    def mean_heavy_atom_rmsd_a(self) -> float | None:
        """Mean heavy-atom RMSD over the conformers, Angstrom (None without data)."""
        return float(np.mean(self.heavy_atom_rmsd_a)) if self.heavy_atom_rmsd_a else None

    @property
    def max_heavy_atom_rmsd_a(self) -> float | None:
        return float(np.max(self.heavy_atom_rmsd_a)) if self.heavy_atom_rmsd_a else None

    def to_json(self) -> dict[str, Any]:
        out = json_safe(self)
        out["mean_heavy_atom_rmsd_a"] = json_safe(self.mean_heavy_atom_rmsd_a)
        out["max_heavy_atom_rmsd_a"] = json_safe(self.max_heavy_atom_rmsd_a)
        return out


@dataclass
class GeometryValidation:
    """Reference-optimized vs MM-minimized geometries for several systems.

    Attributes:
        method: reference method.
        seed: ETKDG seed of the start conformers.
        n_requested: conformers asked for; n_failed: reference optimizations that failed
            (skipped); n_used: conformers compared.
        failures: distinct failure messages.
        protocol: one sentence saying what was compared.
        systems: system name -> :class:`GeometryScores`.
        reference_geometries: (n_used, n_atoms, 3) Angstrom reference minima (not in JSON).
        mm_geometries: name -> (n_used, n_atoms, 3) Angstrom MM minima (not in JSON).
        warnings: things the report should say.
    """

    method: str
    seed: int
    n_requested: int
    n_failed: int
    n_used: int
    failures: list[str]
    protocol: str
    systems: dict[str, GeometryScores]
    reference_geometries: np.ndarray
    mm_geometries: dict[str, np.ndarray]
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``metrics.json`` (geometries left out)."""
        return {
            "method": self.method, "seed": self.seed, "n_requested": self.n_requested,
            "n_failed": self.n_failed, "n_used": self.n_used, "failures": self.failures,
            "protocol": self.protocol,
            "systems": {name: scores.to_json() for name, scores in self.systems.items()},
            "warnings": list(self.warnings),
        }


PROTOCOL = ("MM minimum (L-BFGS-B from the reference-optimized geometry) vs reference "
            "minimum; RMSD after Kabsch superposition")


def optimized_geometry_rmsd(molecule: Molecule, systems: Mapping[str, ParameterizedSystem],
                            method: str = "gfn2-xtb", store=None, executor=None,
                            n_conformers: int = 1, seed: int = VALIDATION_SEED + 1,
                            progress: bool = False) -> GeometryValidation:
    """Heavy-atom RMSD (Angstrom) between reference-optimized and MM-minimized geometries.

    Args:
        molecule: the molecule (its atom order is the systems').
        systems: name -> ParameterizedSystem (e.g. ``{"start": ..., "bespoke": ...}``).
        method: reference method (e.g. ``gfn2-xtb``).
        store, executor: Store and Executor of the reference layer (defaults: in-memory,
            in-process); results are reused from the Store on a rerun.
        n_conformers: held-out ETKDG/MMFF94 start conformers (generated with ``seed``).
    """
    from ffparam.reference import compute

    check_systems(molecule, systems)
    starts = held_out_geometries(molecule, n_conformers, seed).geometries
    records = compute(molecule, starts, method, task="optimize", store=store,
                      executor=executor, progress=progress)
    good = [r for r in records if r.ok and r.final_geometry is not None]
    failures = summarize_failures([r.error or "failed" for r in records if not r.ok])
    warnings: list[str] = []
    if len(good) < len(records):
        warnings.append(f"{len(records) - len(good)} of {len(records)} reference "
                        "optimization(s) failed and were skipped")
    reference = np.array([r.final_geometry for r in good]).reshape(-1, molecule.n_atoms, 3)
    heavy = heavy_atoms(molecule.atomic_numbers)
    scores: dict[str, GeometryScores] = {}
    minima: dict[str, np.ndarray] = {}
    for name, system in systems.items():
        if not len(reference):
            scores[name] = GeometryScores(error="no reference-optimized geometry")
            continue
        try:
            minimized = mm_minimize(system, reference)
        except FFParamError as exc:
            scores[name] = GeometryScores(error=str(exc))
            warnings.append(f"geometry validation of {name}: {exc}")
            continue
        from ffparam.mm.engine import MMEngine

        at_reference = MMEngine(system).compute(reference, forces=False, terms=False,
                                                check_finite=False).energy.numpy()
        minima[name] = minimized.positions
        scores[name] = GeometryScores(
            heavy_atom_rmsd_a=np.atleast_1d(
                kabsch_rmsd(minimized.positions, reference, heavy)).tolist(),
            all_atom_rmsd_a=np.atleast_1d(kabsch_rmsd(minimized.positions, reference)).tolist(),
            relaxation_energy_kcal_mol=(at_reference - minimized.energy).tolist(),
            max_residual_force_kcal_mol_a=minimized.max_force,
            converged=minimized.converged,
        )
        if not minimized.converged:
            warnings.append(f"MM minimization of {name} stopped before convergence (largest "
                            f"force component {minimized.max_force:.2g} kcal/mol/A)")
    return GeometryValidation(str(method), int(seed), int(n_conformers),
                              len(records) - len(good), len(good), failures, PROTOCOL,
                              scores, reference, minima, warnings)


def check_systems(molecule: Molecule, systems: Mapping[str, ParameterizedSystem]) -> None:
    if not systems:
        raise InputError("validation needs at least one system")
    for name, system in systems.items():
        if system.n_atoms != molecule.n_atoms or not np.array_equal(
                system.molecule.atomic_numbers, molecule.atomic_numbers):
            raise InputError(f"system {name!r} ({system.n_atoms} atoms) does not match the "
                             f"atoms of {molecule.name} ({molecule.n_atoms} atoms) in order")
