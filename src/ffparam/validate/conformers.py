"""Held-out conformer validation: relative energies and forces against the reference.

Conformers are generated independently of the fit (own ETKDG seed, see
:mod:`ffparam.validate.sampling`), the reference method computes energies and gradients on
them through the Store and Executor (failed points are skipped and counted, never used),
and every system is scored on the same points:

* relative energy error: (E_MM,i - <E_MM>) - (E_ref,i - <E_ref>), means over the conformers
  used, kcal/mol -> RMSE and MAE (the RMSE is the standard deviation of E_MM - E_ref);
* force error: F_MM - F_ref per Cartesian component of every atom of every conformer,
  kcal/mol/A -> RMSE and MAE. Both models' forces are internal (zero net force and torque),
  so no projection is applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ffparam.chem import Molecule
from ffparam.errors import FFParamError
from ffparam.params.system import ParameterizedSystem
from ffparam.validate.geometry import check_systems
from ffparam.validate.results import json_safe, mae, rmse, summarize_failures
from ffparam.validate.sampling import VALIDATION_SEED, held_out_geometries

MIN_INFORMATIVE_RANGE: float = 0.5
"""Reference energy span (kcal/mol) below which relative-energy errors are flagged."""


@dataclass
class ConformerScores:
    """One system's errors on the held-out conformers (None where there is no data).

    Attributes:
        energy_rmse_kcal_mol, energy_mae_kcal_mol: relative (mean-subtracted) energies.
        energy_max_abs_error_kcal_mol: largest |relative energy error|.
        force_rmse_kcal_mol_a, force_mae_kcal_mol_a: over all force components.
        error: one-line message if the system could not be evaluated.
    """

    energy_rmse_kcal_mol: float | None = None
    energy_mae_kcal_mol: float | None = None
    energy_max_abs_error_kcal_mol: float | None = None
    force_rmse_kcal_mol_a: float | None = None
    force_mae_kcal_mol_a: float | None = None
    error: str | None = None


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
    from ffparam.reference import compute

    check_systems(molecule, systems)
    held = held_out_geometries(molecule, n_conformers, seed, rms_threshold, relax,
                               exclude_geometries)
    task = "optimize" if relax == "reference" else "gradient"
    records = compute(molecule, held.geometries, method, task=task, store=store,
                      executor=executor, progress=progress) if len(held.geometries) else []
    good = [r for r in records if r.ok and r.energy is not None and r.gradient is not None]
    n_failed = len(records) - len(good)
    warnings: list[str] = []
    if n_failed:
        warnings.append(f"{n_failed} of {len(records)} reference calculation(s) on held-out "
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
    n_atoms = molecule.n_atoms
    geometries = np.array([r.result_geometry for r in good]).reshape(-1, n_atoms, 3)
    ref_energy = np.array([r.energy for r in good], dtype=np.float64)
    ref_energy = ref_energy - ref_energy.mean() if len(ref_energy) else ref_energy
    ref_forces = np.array([r.forces for r in good], dtype=np.float64).reshape(-1, n_atoms, 3)
    scores: dict[str, ConformerScores] = {}
    mm_energy: dict[str, np.ndarray] = {}
    mm_forces: dict[str, np.ndarray] = {}
    for name, system in systems.items():
        if not len(good):
            scores[name] = ConformerScores(error="no reference data")
            continue
        try:
            energy, forces = _mm_energies_forces(system, geometries)
        except FFParamError as exc:
            scores[name] = ConformerScores(error=str(exc))
            warnings.append(f"conformer validation of {name}: {exc}")
            continue
        energy = energy - energy.mean()
        mm_energy[name], mm_forces[name] = energy, forces
        scores[name] = score(energy, forces, ref_energy, ref_forces)
    return ConformerValidation(
        str(method), int(seed), relax, int(n_conformers), len(held.geometries),
        held.n_excluded, held.n_high_energy, n_failed, len(good),
        summarize_failures([r.error or "failed" for r in records if not r.ok]),
        scores, geometries, ref_energy, ref_forces, mm_energy, mm_forces, warnings)


def score(energy: np.ndarray, forces: np.ndarray, ref_energy: np.ndarray,
          ref_forces: np.ndarray) -> ConformerScores:
    """Errors of relative energies (n,) kcal/mol and forces (n, N, 3) kcal/mol/A against the
    reference; energies are mean-subtracted here, so absolute offsets do not matter."""
    scores = ConformerScores()
    if len(energy) >= 2:
        error = (energy - energy.mean()) - (ref_energy - ref_energy.mean())
        scores.energy_rmse_kcal_mol = rmse(error)
        scores.energy_mae_kcal_mol = mae(error)
        scores.energy_max_abs_error_kcal_mol = float(np.abs(error).max())
    if forces.size:
        scores.force_rmse_kcal_mol_a = rmse(forces - ref_forces)
        scores.force_mae_kcal_mol_a = mae(forces - ref_forces)
    return scores


def _mm_energies_forces(system: ParameterizedSystem, geometries: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    from ffparam.mm.engine import MMEngine

    result = MMEngine(system).compute(geometries, terms=False)
    return result.energy.numpy().copy(), result.forces.numpy().copy()
