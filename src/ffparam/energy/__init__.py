"""One protocol for every model that maps positions to energies and forces.

* :class:`EnergyModel` — ``atomic_numbers``, ``name``, ``evaluate(positions, forces=True)``
  -> :class:`ModelOutput` (positions Angstrom, energies kcal/mol, forces kcal/mol/Angstrom,
  optional standard deviations and per-atom energies), checked for shape and finiteness.
* :class:`SumModel`, :class:`DeltaModel` — baseline + correction (Δ-learning, QM/MM).
* :class:`~ffparam.energy.ase.EnergyModelCalculator` — the one ASE calculator (eV at that
  edge), in :mod:`ffparam.energy.ase` so that importing this box does not import ASE.

Adapters live in the boxes of the models: ``Calculator.evaluate`` (reference methods),
:class:`ffparam.mm.energy_model.MMEnergyModel`, ``RDKitEnergyModel.evaluate`` (MMFF94, UFF),
:class:`ffparam.ml.energy_model.PotentialEnergyModel` (eV -> kcal/mol there). This box
imports nothing from other ffparam boxes (only ``errors`` and ``units``).
"""

from ffparam.energy.combine import DeltaModel, SumModel
from ffparam.energy.model import (
    BoundModel,
    EnergyModel,
    ModelOutput,
    check_model,
    conformer_batch,
)

__all__ = ["BoundModel", "DeltaModel", "EnergyModel", "ModelOutput", "SumModel", "check_model",
           "conformer_batch"]
