"""Any energy models scored side by side on the same conformers against reference data.

:func:`score_models` takes ``name -> EnergyModel`` (a force field's
:class:`~ffparam.mm.energy_model.MMEnergyModel`, an ML
:class:`~ffparam.ml.energy_model.PotentialEnergyModel`, MMFF94 or UFF through
:class:`~ffparam.assign.rdkit_models.RDKitEnergyModel`, a cheaper reference method's
:class:`~ffparam.reference.methods.base.Calculator`, a :class:`ReferenceModel`...) and the
reference energies and forces of the conformers, and returns per model:

* relative energy error: (E_i - <E>) - (E_ref,i - <E_ref>), means over the conformers,
  kcal/mol -> RMSE, MAE and max |error| (the RMSE is the standard deviation of E - E_ref);
* force error: F - F_ref per Cartesian component of every atom of every conformer,
  kcal/mol/Angstrom -> RMSE and MAE (no projection: every model's forces are internal).

A model that cannot be evaluated (it cannot type the molecule, a calculation fails) gets
scores with an ``error`` message instead of numbers; the others are still scored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ffparam.chem import Molecule
from ffparam.energy import BoundModel, EnergyModel, ModelOutput, check_model, conformer_batch
from ffparam.errors import CalculationError, FFParamError, InputError
from ffparam.validate.results import json_safe, mae, rmse


@dataclass
class ConformerScores:
    """One model's errors on the scored conformers (None where there is no data).

    Attributes:
        energy_rmse_kcal_mol, energy_mae_kcal_mol: relative (mean-subtracted) energies.
        energy_max_abs_error_kcal_mol: largest |relative energy error|.
        force_rmse_kcal_mol_a, force_mae_kcal_mol_a: over all force components.
        error: one-line message if the model could not be evaluated.
    """

    energy_rmse_kcal_mol: float | None = None
    energy_mae_kcal_mol: float | None = None
    energy_max_abs_error_kcal_mol: float | None = None
    force_rmse_kcal_mol_a: float | None = None
    force_mae_kcal_mol_a: float | None = None
    error: str | None = None


@dataclass
class ModelComparison:
    """Models scored on the same conformers.

    Attributes:
        n_conformers: conformers scored.
        models: name -> :class:`ConformerScores`.
        reference_energy_kcal_mol: (n,) relative reference energies (mean removed).
        reference_forces_kcal_mol_a: (n, n_atoms, 3), or None without reference forces.
        energy_kcal_mol: name -> (n,) relative model energies (mean removed).
        forces_kcal_mol_a: name -> (n, n_atoms, 3) model forces.
        warnings: one line per model that could not be evaluated.
    """

    n_conformers: int
    models: dict[str, ConformerScores]
    reference_energy_kcal_mol: np.ndarray
    reference_forces_kcal_mol_a: np.ndarray | None
    energy_kcal_mol: dict[str, np.ndarray] = field(default_factory=dict)
    forces_kcal_mol_a: dict[str, np.ndarray] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_json(self, parity: bool = True, digits: int = 4) -> dict[str, Any]:
        """Plain data; with ``parity`` the relative energies and flattened force components
        (rounded to ``digits`` decimals) for parity plots."""
        out: dict[str, Any] = {
            "n_conformers": self.n_conformers,
            "models": {name: json_safe(s) for name, s in self.models.items()},
            "warnings": list(self.warnings),
        }
        if parity:
            ref_f = self.reference_forces_kcal_mol_a
            out["parity"] = json_safe({
                "reference_energy_kcal_mol": self.reference_energy_kcal_mol,
                "energy_kcal_mol": self.energy_kcal_mol,
                "reference_force_kcal_mol_a": None if ref_f is None else ref_f.reshape(-1),
                "force_kcal_mol_a": {k: v.reshape(-1)
                                     for k, v in self.forces_kcal_mol_a.items()},
            }, digits)
        return out


def score_models(models: Mapping[str, EnergyModel], geometries: np.ndarray,
                 reference_energy_kcal_mol: np.ndarray,
                 reference_forces_kcal_mol_a: np.ndarray | None = None) -> ModelComparison:
    """Score every model of ``models`` on ``geometries`` (n, n_atoms, 3) Angstrom against
    reference energies (n,) kcal/mol (any offset) and forces (n, n_atoms, 3)
    kcal/mol/Angstrom (None: energies only).

    Raises:
        InputError: arrays of mismatched shapes, or a model of another number of atoms.
    """
    n_atoms = np.shape(geometries)[-2] if np.ndim(geometries) >= 2 else 0
    geometries = conformer_batch(geometries, n_atoms)
    ref = ModelOutput(reference_energy_kcal_mol, reference_forces_kcal_mol_a)
    if ref.n_conformers != len(geometries) or (
            ref.forces_kcal_mol_a is not None
            and ref.forces_kcal_mol_a.shape != geometries.shape):
        raise InputError(f"reference data for {ref.n_conformers} conformers do not match "
                         f"geometries of shape {geometries.shape}")
    for name, model in models.items():
        if len(check_model(model).atomic_numbers) != n_atoms:
            raise InputError(f"model {name!r} has {len(model.atomic_numbers)} atoms, the "
                             f"geometries {n_atoms}")
    ref_energy = ref.energy_kcal_mol - ref.energy_kcal_mol.mean()
    comparison = ModelComparison(len(geometries), {}, ref_energy, ref.forces_kcal_mol_a)
    want_forces = ref.forces_kcal_mol_a is not None
    for name, model in models.items():
        try:
            out = model.evaluate(geometries, forces=want_forces)
        except FFParamError as exc:
            comparison.models[name] = ConformerScores(error=str(exc))
            comparison.warnings.append(f"scoring {name}: {exc}")
            continue
        energy = out.energy_kcal_mol - out.energy_kcal_mol.mean()
        comparison.energy_kcal_mol[name] = energy
        forces = out.forces_kcal_mol_a if want_forces else np.zeros((0,))
        if want_forces:
            comparison.forces_kcal_mol_a[name] = forces
        comparison.models[name] = score(energy, forces, ref_energy, ref.forces_kcal_mol_a)
    return comparison


def score(energy: np.ndarray, forces: np.ndarray, ref_energy: np.ndarray,
          ref_forces: np.ndarray | None) -> ConformerScores:
    """Errors of relative energies (n,) kcal/mol and forces (n, N, 3) kcal/mol/A against the
    reference; energies are mean-subtracted here, so absolute offsets do not matter. An
    empty ``forces`` array leaves the force errors empty."""
    scores = ConformerScores()
    if len(energy) >= 2:
        error = (energy - energy.mean()) - (ref_energy - ref_energy.mean())
        scores.energy_rmse_kcal_mol = rmse(error)
        scores.energy_mae_kcal_mol = mae(error)
        scores.energy_max_abs_error_kcal_mol = float(np.abs(error).max())
    if forces.size and ref_forces is not None:
        scores.force_rmse_kcal_mol_a = rmse(forces - ref_forces)
        scores.force_mae_kcal_mol_a = mae(forces - ref_forces)
    return scores


class ReferenceModel(BoundModel):
    """A reference method through the Store (cached) and Executor, as an EnergyModel.

    Unlike the in-process :class:`~ffparam.reference.methods.base.Calculator`, every point
    is a stored gradient record: a rerun, or scoring the reference against its own stored
    data, takes the same numbers from the Store.

    Args:
        molecule: the molecule (atom order, charge, spin).
        method: reference method spec (``gfn2-xtb`` ...).
        store, executor: reference-layer Store and Executor (default in-memory,
            in-process).

    Raises:
        CalculationError (from :meth:`evaluate`): a point failed (its message).
    """

    def __init__(self, molecule: Molecule, method: str = "gfn2-xtb", store=None,
                 executor=None) -> None:
        super().__init__(molecule.atomic_numbers, str(method))
        self.molecule, self.method = molecule, str(method)
        self.store, self.executor = store, executor

    def evaluate(self, positions: np.ndarray, forces: bool = True) -> ModelOutput:
        """Energies kcal/mol and forces kcal/mol/Angstrom of ``positions`` (n, n_atoms, 3)
        Angstrom, from the Store or computed into it (``gradient`` tasks)."""
        from ffparam.reference import compute

        pos = self.batch(positions)
        records = compute(self.molecule, pos, self.method, task="gradient",
                          store=self.store, executor=self.executor)
        failed = [r for r in records if not r.ok]
        if failed:
            raise CalculationError(f"{len(failed)} of {len(records)} {self.method} "
                                   f"point(s) failed: {failed[0].error or 'failed'}")
        return ModelOutput(np.array([r.energy for r in records]),
                           np.array([r.forces for r in records]) if forces else None)
