"""Models built from other models: the sum of a baseline and a correction.

:class:`SumModel` adds the energies, forces and per-atom energies of its parts and their
variances (parts without an uncertainty contribute zero; the parts are taken as
independent), so sigma = sqrt(sum of sigma_i^2). :class:`DeltaModel` is the two-part case
that Δ-learning uses: a cheap baseline (a force field, GFN2-xTB) plus a learned correction.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ffparam.energy.model import BoundModel, EnergyModel, ModelOutput, check_model
from ffparam.errors import InputError


class SumModel(BoundModel):
    """E = sum_i E_i and F = sum_i F_i of ``models`` (all of the same molecule).

    Args:
        models: at least one :class:`EnergyModel`; all must have the same atomic numbers.
        name: label; default the parts' names joined with ``+``.

    Raises:
        InputError: no models, an object that is not a model, or different atoms.
    """

    def __init__(self, models: Sequence[EnergyModel], name: str | None = None) -> None:
        if not models:
            raise InputError("a sum of energy models needs at least one model")
        self.models = tuple(check_model(m) for m in models)
        numbers = tuple(int(z) for z in self.models[0].atomic_numbers)
        for model in self.models[1:]:
            if tuple(int(z) for z in model.atomic_numbers) != numbers:
                raise InputError(f"cannot add {model.name!r} to {self.models[0].name!r}: "
                                 "their atomic numbers differ (another molecule or atom "
                                 "order)")
        super().__init__(numbers, name or "+".join(m.name for m in self.models))

    def evaluate(self, positions: np.ndarray, forces: bool = True) -> ModelOutput:
        """Sum of the parts' outputs for ``positions`` (n_conf, n_atoms, 3) Angstrom;
        energies kcal/mol, forces kcal/mol/Angstrom."""
        pos = self.batch(positions)
        parts = [m.evaluate(pos, forces=forces) for m in self.models]
        return ModelOutput(
            energy_kcal_mol=np.sum([p.energy_kcal_mol for p in parts], axis=0),
            forces_kcal_mol_a=_sum(p.forces_kcal_mol_a for p in parts),
            energy_sigma_kcal_mol=_quadrature(p.energy_sigma_kcal_mol for p in parts),
            forces_sigma_kcal_mol_a=_quadrature(p.forces_sigma_kcal_mol_a for p in parts),
            atom_energies_kcal_mol=_sum(p.atom_energies_kcal_mol for p in parts),
        )


class DeltaModel(SumModel):
    """``baseline`` + ``correction`` (Δ-learning: E = E_baseline + ΔE)."""

    def __init__(self, baseline: EnergyModel, correction: EnergyModel,
                 name: str | None = None) -> None:
        super().__init__([baseline, correction], name)
        self.baseline, self.correction = self.models


def _sum(arrays) -> np.ndarray | None:
    """Sum of the arrays, None if any is None (a partial sum would be wrong)."""
    arrays = list(arrays)
    if any(a is None for a in arrays):
        return None
    return np.sum(arrays, axis=0)


def _quadrature(sigmas) -> np.ndarray | None:
    """sqrt(sum sigma_i^2) over the parts that have a sigma; None if none has one."""
    present = [s for s in sigmas if s is not None]
    if not present:
        return None
    return np.sqrt(np.sum([s**2 for s in present], axis=0))
