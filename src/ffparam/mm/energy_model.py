"""A parameterized system as an :class:`~ffparam.energy.EnergyModel` (through MMEngine).

:class:`MMEnergyModel` evaluates a :class:`~ffparam.params.system.ParameterizedSystem` with
:meth:`MMEngine.compute <ffparam.mm.engine.MMEngine.compute>` (closed-form forces, float64)
and hands back numpy arrays in kcal/mol and kcal/mol/Angstrom, the engine's own units.
"""

from __future__ import annotations

import numpy as np

from ffparam.energy import BoundModel, ModelOutput
from ffparam.mm.engine import MMEngine
from ffparam.params.system import ParameterizedSystem


class MMEnergyModel(BoundModel):
    """``system`` (or an existing ``MMEngine``) behind the EnergyModel protocol.

    Args:
        system: a ParameterizedSystem, or an MMEngine to reuse.
        name: label; default the system's ``source`` (e.g. ``openff-2.2.1 + am1bcc``), else
            ``"mm"``.
    """

    def __init__(self, system: ParameterizedSystem | MMEngine, name: str | None = None
                 ) -> None:
        self.engine = system if isinstance(system, MMEngine) else MMEngine(system)
        super().__init__(self.engine.system.molecule.atomic_numbers,
                         name or self.engine.system.source or "mm")

    def evaluate(self, positions: np.ndarray, forces: bool = True) -> ModelOutput:
        """Energies (n_conf,) kcal/mol and forces (n_conf, n_atoms, 3) kcal/mol/Angstrom of
        ``positions`` (n_conf, n_atoms, 3) or (n_atoms, 3) Angstrom."""
        pos = self.batch(positions)
        result = self.engine.compute(pos, forces=forces, terms=False)
        energy = result.energy.detach().cpu().numpy()
        force = None if result.forces is None else result.forces.detach().cpu().numpy()
        return ModelOutput(energy_kcal_mol=energy, forces_kcal_mol_a=force)
