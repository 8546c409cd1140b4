"""ASE calculator for any ffparam ML potential (eV, Angstrom, eV/Angstrom).

``MLCalculator(potential)`` fills ASE's ``energy``, ``free_energy`` (the same number: no
electronic entropy), ``forces`` (-dE/dR, from the potential) and ``energies`` (per-atom
energies). When the potential has an uncertainty and ``uncertainty=True``, the results also
hold ``energy_sigma`` (eV) and ``forces_sigma`` (n, 3) (eV/Angstrom), which the MD driver
uses to stop a run that leaves the training data.
"""

from __future__ import annotations

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from ffparam.ml.batch import Batch
from ffparam.ml.potential import Potential


def batch_from_atoms(atoms) -> Batch:
    """A one-frame :class:`Batch` from ``ase.Atoms`` (positions in Angstrom)."""
    n = len(atoms)
    return Batch(
        numbers=torch.as_tensor(np.asarray(atoms.numbers), dtype=torch.int64),
        positions=torch.as_tensor(np.asarray(atoms.positions), dtype=torch.float64),
        frame=torch.zeros(n, dtype=torch.int64),
        n_atoms=torch.tensor([n], dtype=torch.int64),
    )


class MLCalculator(Calculator):
    """ASE calculator wrapping a :class:`~ffparam.ml.potential.Potential`."""

    implemented_properties = ["energy", "free_energy", "forces", "energies"]

    def __init__(self, potential: Potential, uncertainty: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.potential = potential
        self.uncertainty = bool(uncertainty and potential.has_uncertainty)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        pred = self.potential.predict_batch(
            batch_from_atoms(self.atoms), forces=True, uncertainty=self.uncertainty
        )
        energy = float(pred.energy[0])
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": np.asarray(pred.forces, dtype=np.float64).reshape(-1, 3),
            "energies": np.asarray(pred.atom_energies, dtype=np.float64),
        }
        if pred.energy_sigma is not None:
            self.results["energy_sigma"] = float(pred.energy_sigma[0])
        if pred.forces_sigma is not None:
            self.results["forces_sigma"] = np.asarray(pred.forces_sigma).reshape(-1, 3)
