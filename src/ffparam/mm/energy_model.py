"""A parameterized system as an :class:`~ffparam.energy.EnergyModel` (through MMEngine).

:class:`MMEnergyModel` evaluates a :class:`~ffparam.params.system.ParameterizedSystem` with
:meth:`MMEngine.compute <ffparam.mm.engine.MMEngine.compute>` (closed-form forces, float64)
and hands back numpy arrays in kcal/mol and kcal/mol/Angstrom, the engine's own units.
"""

from __future__ import annotations

import numpy as np

from ffparam.energy import ModelOutput, conformer_batch
from ffparam.mm.engine import MMEngine
from ffparam.params.system import ParameterizedSystem


class MMEnergyModel:
    """``system`` (or an existing ``MMEngine``) behind the EnergyModel protocol.

    Args:
        system: a ParameterizedSystem, or an MMEngine to reuse.
        name: label; default the system's ``source`` (e.g. ``openff-2.2.1 + am1bcc``), else
            ``"mm"``.
    """

    def __init__(self, system: ParameterizedSystem | MMEngine, name: str | None = None
                 ) -> None:
        self.engine = system if isinstance(system, MMEngine) else MMEngine(system)
        molecule = self.engine.system.molecule
        self._numbers = tuple(int(z) for z in molecule.atomic_numbers)
        self._name = name or self.engine.system.source or "mm"

    @property
    def atomic_numbers(self) -> tuple[int, ...]:
        return self._numbers

    @property
    def name(self) -> str:
        return self._name

    def evaluate(self, positions: np.ndarray, forces: bool = True) -> ModelOutput:
        """Energies (n_conf,) kcal/mol and forces (n_conf, n_atoms, 3) kcal/mol/Angstrom of
        ``positions`` (n_conf, n_atoms, 3) or (n_atoms, 3) Angstrom."""
        pos = conformer_batch(positions, len(self._numbers))
        result = self.engine.compute(pos, forces=forces, terms=False)
        energy = result.energy.detach().cpu().numpy()
        force = None if result.forces is None else result.forces.detach().cpu().numpy()
        return ModelOutput(energy_kcal_mol=energy, forces_kcal_mol_a=force)
