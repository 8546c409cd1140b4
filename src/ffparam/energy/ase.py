"""The one ASE calculator: any :class:`~ffparam.energy.model.EnergyModel` in ASE's units.

:class:`EnergyModelCalculator` converts at this edge from kcal/mol to eV (and
kcal/mol/Angstrom to eV/Angstrom) and fills ``energy``, ``free_energy`` (the same number:
no electronic entropy) and ``forces``; when the model decomposes its energy, ``energies``
(per atom, eV); when it has an uncertainty, ``energy_sigma`` (eV) and ``forces_sigma``
(n_atoms, 3) (eV/Angstrom), which MD drivers use to stop a run that leaves the model's
training data. :func:`thermalize` and :func:`langevin` are the MD set-up every ASE driver
shares. ASE is imported here only, so the rest of the box does not need it.
"""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from ffparam.energy.model import EnergyModel, check_model
from ffparam.errors import InputError
from ffparam.units import KCAL_MOL_EV


class EnergyModelCalculator(Calculator):
    """ASE calculator wrapping ``model`` (the Atoms must have the model's atomic numbers,
    in its order)."""

    implemented_properties = ["energy", "free_energy", "forces", "energies"]

    def __init__(self, model: EnergyModel, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = check_model(model)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        numbers = tuple(int(z) for z in self.atoms.numbers)
        if numbers != tuple(self.model.atomic_numbers):
            raise InputError(f"the Atoms' atomic numbers {numbers} differ from those of "
                             f"model {self.model.name!r}")
        out = self.model.evaluate(self.atoms.positions[None], forces=True)
        energy = float(out.energy_kcal_mol[0]) * KCAL_MOL_EV
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": out.forces_kcal_mol_a[0] * KCAL_MOL_EV,
        }
        if out.atom_energies_kcal_mol is not None:
            self.results["energies"] = out.atom_energies_kcal_mol[0] * KCAL_MOL_EV
        if out.energy_sigma_kcal_mol is not None:
            self.results["energy_sigma"] = float(out.energy_sigma_kcal_mol[0]) * KCAL_MOL_EV
        if out.forces_sigma_kcal_mol_a is not None:
            self.results["forces_sigma"] = np.asarray(out.forces_sigma_kcal_mol_a[0]
                                                      * KCAL_MOL_EV)


def thermalize(atoms, temperature_k: float, rng: np.random.Generator) -> None:
    """Maxwell-Boltzmann velocities at ``temperature_k`` (K) from ``rng``, with zero total
    linear and angular momentum."""
    from ase.md.velocitydistribution import (
        MaxwellBoltzmannDistribution,
        Stationary,
        ZeroRotation,
    )

    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_k, rng=rng)
    Stationary(atoms)
    ZeroRotation(atoms)


def langevin(atoms, temperature_k: float, timestep_fs: float, friction_per_fs: float,
             rng: np.random.Generator):
    """ASE Langevin dynamics of ``atoms`` at ``temperature_k`` (K), step ``timestep_fs``
    (fs), friction ``friction_per_fs`` (1/fs), noise from ``rng``; the centre of mass is
    held fixed (an isolated molecule must not drift)."""
    from ase import units
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin

    atoms.set_constraint(FixCom())
    return Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature_k,
                    friction=friction_per_fs / units.fs, fixcm=False, rng=rng)
