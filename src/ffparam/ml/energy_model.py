"""An ML potential of one molecule as an :class:`~ffparam.energy.EnergyModel`.

A :class:`~ffparam.ml.potential.Potential` works in eV on :class:`~ffparam.ml.batch.Batch`
objects of any molecules; :class:`PotentialEnergyModel` binds it to one molecule's atomic
numbers, evaluates numpy conformer batches and converts eV -> kcal/mol here, so eV never
leaves ``ml``. Uncertainties (GP sigma, committee spread) are passed through as standard
deviations when the potential has them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ffparam.energy import BoundModel, ModelOutput
from ffparam.errors import UnsupportedChemistryError
from ffparam.ml.batch import Batch
from ffparam.ml.potential import Potential, Prediction
from ffparam.units import EV_KCAL_MOL


def conformers_batch(numbers: Sequence[int], positions: np.ndarray) -> Batch:
    """A :class:`Batch` of conformers of one molecule: ``numbers`` (n_atoms,) atomic
    numbers and ``positions`` (n_conf, n_atoms, 3) Angstrom."""
    n_conf, n_atoms = positions.shape[:2]
    return Batch(
        numbers=torch.as_tensor(np.tile(np.asarray(numbers, dtype=np.int64), n_conf)),
        positions=torch.as_tensor(positions.reshape(-1, 3), dtype=torch.float64),
        frame=torch.repeat_interleave(torch.arange(n_conf, dtype=torch.int64), n_atoms),
        n_atoms=torch.full((n_conf,), n_atoms, dtype=torch.int64),
    )


class PotentialEnergyModel(BoundModel):
    """``potential`` for the molecule with ``atomic_numbers``.

    Args:
        potential: any trained :class:`Potential` (network, GP, committee, MACE).
        atomic_numbers: the molecule's atoms, in order.
        uncertainty: ask for standard deviations when the potential has them.
        name: label; default the potential's model type.
        batch_size: conformers per :meth:`Potential.predict_batch` call.
        atom_energies: ask for per-atom energies (False for MD: the GP's cost several
            times its energy and forces).

    Raises:
        UnsupportedChemistryError: an element the potential was not trained on.
    """

    def __init__(self, potential: Potential, atomic_numbers: Sequence[int],
                 uncertainty: bool = True, name: str | None = None,
                 batch_size: int = 64, atom_energies: bool = True) -> None:
        super().__init__(atomic_numbers, name or potential.model_type or "ml")
        self.potential = potential
        unknown = sorted(set(self.atomic_numbers) - {int(z) for z in potential.elements})
        if unknown:
            raise UnsupportedChemistryError(
                f"the {potential.model_type or 'ML'} potential was not trained on atomic "
                f"number(s) {unknown} (it knows {sorted(potential.elements)})")
        self.uncertainty = bool(uncertainty and potential.has_uncertainty)
        self.atom_energies = bool(atom_energies)
        self.batch_size = max(1, int(batch_size))

    def predict(self, positions: np.ndarray, forces: bool = True) -> Prediction:
        """The potential's own :class:`Prediction` (eV, eV/Angstrom) for ``positions``
        (n_conf, n_atoms, 3) or (n_atoms, 3) Angstrom, in batches of ``batch_size``."""
        pos = self.batch(positions)
        parts = [self.potential.predict_batch(conformers_batch(self.atomic_numbers, chunk),
                                              forces=forces, uncertainty=self.uncertainty,
                                              atom_energies=self.atom_energies)
                 for chunk in np.array_split(pos, -(-len(pos) // self.batch_size))]
        return Prediction.concatenate(parts)

    def evaluate(self, positions: np.ndarray, forces: bool = True) -> ModelOutput:
        """Energies (n_conf,) kcal/mol, forces (n_conf, n_atoms, 3) kcal/mol/Angstrom,
        per-atom energies and, where the potential has them, standard deviations."""
        pos = self.batch(positions)
        pred = self.predict(pos, forces=forces)
        shape = pos.shape

        def kcal(values: np.ndarray | None, like: tuple[int, ...]) -> np.ndarray | None:
            return None if values is None else np.asarray(values).reshape(like) * EV_KCAL_MOL

        return ModelOutput(
            energy_kcal_mol=kcal(pred.energy, shape[:1]),
            forces_kcal_mol_a=kcal(pred.forces, shape),
            energy_sigma_kcal_mol=kcal(pred.energy_sigma, shape[:1]),
            forces_sigma_kcal_mol_a=kcal(pred.forces_sigma, shape),
            atom_energies_kcal_mol=kcal(pred.atom_energies, shape[:2]),
        )
