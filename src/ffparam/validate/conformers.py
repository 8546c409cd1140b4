"""Held-out conformer validation: relative energies and forces against the reference.

Conformers are generated independently of the fit (own ETKDG seed, see
:mod:`ffparam.validate.sampling`), the reference method computes energies and gradients on
them through the Store and Executor (:func:`held_out_reference`; failed points are skipped
and counted, never used), and every model is scored on the same points by
:func:`~ffparam.validate.models.score_models` (relative-energy and force RMSE/MAE):
:func:`held_out_conformers` for parameterized systems (through
:class:`~ffparam.mm.energy_model.MMEnergyModel`), :func:`compare_models` for any
:class:`~ffparam.energy.EnergyModel` (force fields, ML potentials, cheaper methods).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ffparam.chem import Molecule
from ffparam.energy import EnergyModel
from ffparam.errors import CalculationError
from ffparam.params.system import ParameterizedSystem
from ffparam.validate.geometry import check_systems
from ffparam.validate.models import ConformerScores, ModelComparison, score_models
from ffparam.validate.results import json_safe, summarize_failures
from ffparam.validate.sampling import VALIDATION_SEED, HeldOutGeometries, held_out_geometries

MIN_INFORMATIVE_RANGE: float = 0.5
"""Reference energy span (kcal/mol) below which relative-energy errors are flagged."""


@dataclass
class ConformerValidation:
    """Relative energies and forces of held-out conformers, per system.

    Attributes:
        method: reference method; seed: ETKDG seed; relax: how the conformers were relaxed
            (``mmff94``, ``none`` or ``reference``).
        n_requested: conformers asked for; n_generated: distinct held-out conformers;
        n_excluded: candidates dropped for lying close to an excluded (fit) geometry;
        n_high_energy: candidates dropped for lying too high in MMFF94 energy;
        n_failed: reference calculations that failed (skipped); n_used: conformers scored.
        failures: distinct failure messages.
        systems: name -> :class:`ConformerScores`.
        geometries: (n_used, n_atoms, 3) Angstrom, the geometries scored.
        reference_energy_kcal_mol: (n_used,) relative reference energies (mean removed).
        reference_forces_kcal_mol_a: (n_used, n_atoms, 3).
        mm_energy_kcal_mol: name -> (n_used,) relative MM energies (mean removed).
        mm_forces_kcal_mol_a: name -> (n_used, n_atoms, 3).
        reference_energy_range_kcal_mol: max - min of the reference energies used.
        warnings: things the report should say.
    """

    method: str
    seed: int
    relax: str
    n_requested: int
    n_generated: int
    n_excluded: int
    n_high_energy: int
    n_failed: int
    n_used: int
    failures: list[str]
    systems: dict[str, ConformerScores]
    geometries: np.ndarray
    reference_energy_kcal_mol: np.ndarray
    reference_forces_kcal_mol_a: np.ndarray
    mm_energy_kcal_mol: dict[str, np.ndarray]
    mm_forces_kcal_mol_a: dict[str, np.ndarray]
    warnings: list[str] = field(default_factory=list)

    @property
    def reference_energy_range_kcal_mol(self) -> float | None:
        e = self.reference_energy_kcal_mol
        return float(e.max() - e.min()) if len(e) else None

    def to_json(self, parity: bool = True, digits: int = 4) -> dict[str, Any]:
        """Plain data for ``metrics.json``; with ``parity`` the relative energies and the
        flattened force components (rounded to ``digits`` decimals) for parity plots."""
        out: dict[str, Any] = {
            "method": self.method, "seed": self.seed, "relax": self.relax,
            "n_requested": self.n_requested, "n_generated": self.n_generated,
            "n_excluded": self.n_excluded, "n_high_energy": self.n_high_energy,
            "n_failed": self.n_failed, "n_used": self.n_used,
            "failures": list(self.failures),
            "reference_energy_range_kcal_mol": json_safe(self.reference_energy_range_kcal_mol),
            "systems": {name: json_safe(s) for name, s in self.systems.items()},
            "warnings": list(self.warnings),
        }
        if parity:
            out["parity"] = json_safe({
                "reference_energy_kcal_mol": self.reference_energy_kcal_mol,
                "energy_kcal_mol": self.mm_energy_kcal_mol,
                "reference_force_kcal_mol_a": self.reference_forces_kcal_mol_a.reshape(-1),
                "force_kcal_mol_a": {k: v.reshape(-1)
                                     for k, v in self.mm_forces_kcal_mol_a.items()},
            }, digits)
        return out


@dataclass
class HeldOutReference:
    """Reference energies and forces on held-out conformers (failed points left out).

    Attributes:
        geometries: (n_used, n_atoms, 3) Angstrom.
        energy_kcal_mol: (n_used,) absolute reference energies.
        forces_kcal_mol_a: (n_used, n_atoms, 3).
        method, seed, relax, n_requested: as passed to :func:`held_out_reference`.
        sampled: the held-out geometries before the reference ran, with the numbers of
            candidates dropped where (:class:`~ffparam.validate.sampling.HeldOutGeometries`).
        n_failed: reference calculations that failed; failures: their distinct messages.
        warnings: things the report should say.
    """

    geometries: np.ndarray
    energy_kcal_mol: np.ndarray
    forces_kcal_mol_a: np.ndarray
    method: str
    seed: int
    relax: str
    n_requested: int
    sampled: HeldOutGeometries
    n_failed: int
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def n_used(self) -> int:
        return len(self.geometries)


def held_out_reference(molecule: Molecule, method: str = "gfn2-xtb", store=None,
                       executor=None, n_conformers: int = 10, seed: int = VALIDATION_SEED,
                       relax: str = "mmff94-torsions", rms_threshold: float = 0.25,
                       exclude_geometries: np.ndarray | None = None,
                       progress: bool = False) -> HeldOutReference:
    """Conformers that no fit used, with reference energies and gradients computed through
    the Store (arguments as in :func:`held_out_conformers`); failed points are skipped and
    counted."""
    from ffparam.reference import compute

    held = held_out_geometries(molecule, n_conformers, seed, rms_threshold, relax,
                               exclude_geometries)
    task = "optimize" if relax == "reference" else "gradient"
    records = compute(molecule, held.geometries, method, task=task, store=store,
                      executor=executor, progress=progress) if len(held.geometries) else []
    good = [r for r in records if r.ok and r.energy is not None and r.gradient is not None]
    n_failed = len(records) - len(good)
    n_atoms = molecule.n_atoms
    return HeldOutReference(
        np.array([r.result_geometry for r in good]).reshape(-1, n_atoms, 3),
        np.array([r.energy for r in good], dtype=np.float64),
        np.array([r.forces for r in good], dtype=np.float64).reshape(-1, n_atoms, 3),
        str(method), int(seed), relax, int(n_conformers), held, n_failed,
        summarize_failures([r.error or "failed" for r in records if not r.ok]),
        _reference_warnings(good, n_failed, len(records), n_conformers, held))


def _reference_warnings(good: list, n_failed: int, n_records: int, n_conformers: int,
                        held: HeldOutGeometries) -> list[str]:
    warnings: list[str] = []
    if n_failed:
        warnings.append(f"{n_failed} of {n_records} reference calculation(s) on held-out "
                        "conformers failed and were skipped")
    if len(good) < n_conformers:
        warnings.append(f"{len(good)} of {n_conformers} requested held-out conformers scored "
                        f"({held.n_pruned} pruned as duplicates, {held.n_excluded} too close "
                        f"to fit geometries, {held.n_high_energy} too high in MMFF94 energy, "
                        f"{n_failed} failed)")
    if len(good) < 2:
        warnings.append("relative energies need at least 2 conformers; energy errors left "
                        "empty")
    else:
        span = float(np.ptp([r.energy for r in good]))
        if span < MIN_INFORMATIVE_RANGE:
            warnings.append(f"held-out reference energies span only {span:.2g} kcal/mol; "
                            "their relative-energy errors carry little information")
    return warnings


def held_out_conformers(molecule: Molecule, systems: Mapping[str, ParameterizedSystem],
                        method: str = "gfn2-xtb", store=None, executor=None,
                        n_conformers: int = 10, seed: int = VALIDATION_SEED,
                        relax: str = "mmff94-torsions", rms_threshold: float = 0.25,
                        exclude_geometries: np.ndarray | None = None,
                        progress: bool = False) -> ConformerValidation:
    """Score ``systems`` on conformers that no fit used.

    Args:
        molecule: the molecule (the systems' atom order).
        systems: name -> ParameterizedSystem, e.g. ``{"start": s0, "bespoke": s1}``.
        method: reference method (``gfn2-xtb`` ...).
        store, executor: reference-layer Store and Executor (default in-memory, in-process);
            a rerun takes finished points from the Store.
        n_conformers: conformers wanted (fewer if RMSD pruning leaves fewer).
        seed: ETKDG seed; keep it different from the seeds the fit used.
        relax: ``mmff94-torsions`` (default: rotatable dihedrals at random angles, the
            rest relaxed with MMFF94, which is independent of the systems compared),
            ``mmff94`` (MMFF94 minima), ``none`` (raw ETKDG) or ``reference`` (optimized
            with ``method``; energies and gradients are then those at the reference
            minima). See :mod:`ffparam.validate.sampling`.
        rms_threshold: all-atom RMSD (Angstrom) below which conformers count as duplicates.
        exclude_geometries: (n, n_atoms, 3) Angstrom geometries used in the fit (e.g. scan
            points); held-out conformers within ``rms_threshold`` of one are dropped.
    """
    check_systems(molecule, systems)
    ref = held_out_reference(molecule, method, store, executor, n_conformers, seed, relax,
                             rms_threshold, exclude_geometries, progress)
    warnings = list(ref.warnings)
    if ref.n_used:
        models = {name: _mm_model(system, name) for name, system in systems.items()}
        comparison = score_models(models, ref.geometries, ref.energy_kcal_mol,
                                  ref.forces_kcal_mol_a)
        scores = comparison.models
        warnings += [f"conformer validation of {name}: {s.error}"
                     for name, s in scores.items() if s.error]
        ref_energy = comparison.reference_energy_kcal_mol
        energy, forces = comparison.energy_kcal_mol, comparison.forces_kcal_mol_a
    else:
        scores = {name: ConformerScores(error="no reference data") for name in systems}
        ref_energy, energy, forces = ref.energy_kcal_mol, {}, {}
    held = ref.sampled
    return ConformerValidation(
        ref.method, ref.seed, relax, ref.n_requested, len(held.geometries), held.n_excluded,
        held.n_high_energy, ref.n_failed, ref.n_used, ref.failures, scores, ref.geometries,
        ref_energy, ref.forces_kcal_mol_a, energy, forces, warnings)


def compare_models(molecule: Molecule, models: Mapping[str, EnergyModel],
                   method: str = "gfn2-xtb", store=None, executor=None,
                   n_conformers: int = 10, seed: int = VALIDATION_SEED,
                   relax: str = "mmff94-torsions", rms_threshold: float = 0.25,
                   exclude_geometries: np.ndarray | None = None,
                   progress: bool = False) -> tuple[HeldOutReference, ModelComparison]:
    """Any energy models (force fields, ML potentials, cheaper methods) scored on the same
    held-out conformers against ``method`` (arguments as in :func:`held_out_conformers`).

    Raises:
        CalculationError: fewer than 2 conformers have reference data.
    """
    ref = held_out_reference(molecule, method, store, executor, n_conformers, seed, relax,
                             rms_threshold, exclude_geometries, progress)
    if ref.n_used < 2:
        raise CalculationError(f"only {ref.n_used} held-out conformer(s) of {molecule.name} "
                               f"have {method} data; {'; '.join(ref.warnings)}")
    comparison = score_models(models, ref.geometries, ref.energy_kcal_mol,
                              ref.forces_kcal_mol_a)
    comparison.warnings[:0] = ref.warnings
    return ref, comparison


def _mm_model(system: ParameterizedSystem, name: str):
    from ffparam.mm.energy_model import MMEnergyModel

    return MMEnergyModel(system, name=name)
