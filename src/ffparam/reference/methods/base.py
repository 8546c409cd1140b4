"""The protocol every reference method implements, and the finite-difference helper.

A :class:`Calculator` is bound to one method and one species (elements, charge, spin). It
maps a geometry in Angstrom to a :class:`PointResult` in kcal/mol and Angstrom, converting
from the backend's Hartree and Bohr at this edge. Successive calls reuse the previous
converged SCF as the starting guess (like PySCF's ``as_scanner``), so an optimization or a
batch of nearby geometries costs fewer SCF cycles; a new Calculator starts from scratch.

Every Calculator is also an :class:`~ffparam.energy.EnergyModel` (:meth:`Calculator.evaluate`:
a batch of conformers, one geometry at a time), so a reference method can be scored, driven
by ASE or combined with other models like any force field or ML potential; :meth:`compute`
stays the way to ask for Hessians and ESP.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ffparam.energy import ModelOutput, conformer_batch
from ffparam.reference.records import PointResult, Species
from ffparam.reference.spec import MethodSpec


class Calculator(ABC):
    """One method for one species; call :meth:`compute` with geometries in Angstrom."""

    has_analytic_hessian: bool = False
    supports_esp: bool = False

    def __init__(self, spec: MethodSpec, species: Species) -> None:
        self.spec = spec
        self.species = species

    @abstractmethod
    def compute(
        self,
        geometry: np.ndarray,
        gradient: bool = False,
        hessian: bool = False,
        esp_points: np.ndarray | None = None,
    ) -> PointResult:
        """Energy (kcal/mol) and, on request, gradient (n_atoms, 3) kcal/mol/Angstrom,
        Hessian (3n, 3n) kcal/mol/Angstrom^2 and ESP on ``esp_points`` (m, 3) Angstrom
        (kcal/mol/e), for ``geometry`` (n_atoms, 3) Angstrom."""

    @property
    def atomic_numbers(self) -> tuple[int, ...]:
        """Atomic numbers of the species, in its atom order."""
        return tuple(int(z) for z in self.species.numbers)

    @property
    def name(self) -> str:
        """The method's canonical spec string (e.g. ``gfn2-xtb``)."""
        return str(self.spec)

    def evaluate(self, positions: np.ndarray, forces: bool = True) -> ModelOutput:
        """:class:`~ffparam.energy.EnergyModel` protocol: energies (n_conf,) kcal/mol and,
        with ``forces``, forces = -gradient (n_conf, n_atoms, 3) kcal/mol/Angstrom for
        ``positions`` (n_conf, n_atoms, 3) or (n_atoms, 3) Angstrom, one :meth:`compute`
        per conformer (in order, so each SCF starts from the previous one)."""
        pos = conformer_batch(positions, len(self.species.numbers))
        results = [self.compute(xyz, gradient=forces) for xyz in pos]
        return ModelOutput(
            energy_kcal_mol=np.array([r.energy for r in results]),
            forces_kcal_mol_a=-np.array([r.gradient for r in results]) if forces else None,
        )

    def energy_and_gradient(self, geometry: np.ndarray) -> tuple[float, np.ndarray]:
        """(kcal/mol, (n_atoms, 3) kcal/mol/Angstrom) — what optimizers and MD need."""
        result = self.compute(geometry, gradient=True)
        assert result.gradient is not None
        return result.energy, result.gradient

    def finite_difference_hessian(self, geometry: np.ndarray, step: float = 0.005) -> np.ndarray:
        """Hessian (3n, 3n) kcal/mol/Angstrom^2 by central differences of analytic
        gradients, H[:, a] = (g(x + h e_a) - g(x - h e_a)) / 2h, symmetrized; ``step`` in
        Angstrom. Costs 6 n gradient calls."""
        x0 = np.asarray(geometry, dtype=np.float64)
        n3 = x0.size
        columns = np.empty((n3, n3))
        for a in range(n3):
            displaced = x0.reshape(-1).copy()
            displaced[a] += step
            g_plus = self.energy_and_gradient(displaced.reshape(x0.shape))[1].reshape(-1)
            displaced[a] -= 2.0 * step
            g_minus = self.energy_and_gradient(displaced.reshape(x0.shape))[1].reshape(-1)
            columns[:, a] = (g_plus - g_minus) / (2.0 * step)
        return 0.5 * (columns + columns.T)
