"""A third reference backend used by ``test_new_backend.py``: ASE's EMT potential (real
code, independent of ffparam; H, C, N and O are among its elements). It shows what adding
a reference method takes: this Calculator module, one ``Backend`` entry, a test."""

from __future__ import annotations

import numpy as np

from ffparam.reference.methods.base import Calculator
from ffparam.reference.records import PointResult
from ffparam.units import EV_KCAL_MOL


class EMTCalculator(Calculator):
    """ASE EMT energies (eV -> kcal/mol at this edge) and gradients."""

    def compute(self, geometry: np.ndarray, gradient: bool = False, hessian: bool = False,
                esp_points: np.ndarray | None = None) -> PointResult:
        from ase import Atoms
        from ase.calculators.emt import EMT

        atoms = Atoms(numbers=list(self.species.numbers), positions=np.asarray(geometry))
        atoms.calc = EMT()
        energy = atoms.get_potential_energy() * EV_KCAL_MOL
        grad = -atoms.get_forces() * EV_KCAL_MOL if gradient else None
        return PointResult(energy=float(energy), gradient=grad)
