"""GFN2-xTB and GFN1-xTB through tblite's Python API (``tblite.interface.Calculator``).

tblite works in Hartree and Bohr; this module converts to kcal/mol and Angstrom. Charge and
multiplicity come from the species (``uhf`` = number of unpaired electrons), implicit
solvent from ``MethodSpec.solvent`` (tblite's parametrized ALPB model, e.g. ``water``).
Hessians are central finite differences of analytic gradients (tblite has no analytic
Hessian); ESP on points is not offered (a tight-binding density has no continuous ESP).
Every result carries tblite's Wiberg bond orders, W_AB = sum_{mu in A} sum_{nu in B}
(PS)_{mu nu} (PS)_{nu mu} (P density, S overlap; spin channels summed, symmetrized),
dimensionless: about 1 for a single bond, more when it is conjugated.
"""

from __future__ import annotations

import numpy as np

from ffparam.errors import (
    CalculationError,
    DependencyError,
    InputError,
    SCFConvergenceError,
    UnsupportedChemistryError,
)
from ffparam.reference.methods.base import Calculator
from ffparam.reference.records import PointResult, Species
from ffparam.reference.spec import XTB_METHODS, MethodSpec
from ffparam.units import BOHR_ANGSTROM, HARTREE_BOHR_TO_KCAL_MOL_A, HARTREE_KCAL_MOL

TBLITE_ENERGY_CONVERGENCE = 1e-6
"""tblite's SCC energy convergence at ``accuracy`` 1, Hartree (it scales linearly)."""
MAX_ATOMIC_NUMBER = 86
"""GFN1/GFN2-xTB are parametrized for H-Rn."""


class XTBCalculator(Calculator):
    """tblite calculator for one species; keeps the last result as restart guess."""

    def __init__(self, spec: MethodSpec, species: Species) -> None:
        super().__init__(spec, species)
        bad = [
            f"{s}{i}"
            for i, (s, z) in enumerate(zip(species.symbols, species.numbers))
            if z > MAX_ATOMIC_NUMBER
        ]
        if bad:
            raise UnsupportedChemistryError(f"{spec.name} covers H-Rn; unsupported atom(s) {bad}")
        if (species.n_electrons - (species.multiplicity - 1)) % 2:
            raise InputError(
                f"charge {species.charge} and multiplicity {species.multiplicity} are "
                f"inconsistent for {species.name}"
            )
        self._calc = None
        self._restart = None

    def _calculator(self, positions_bohr: np.ndarray):
        try:
            from tblite.interface import Calculator as TBCalculator
        except ImportError as exc:  # pragma: no cover - tblite is a hard dependency
            raise DependencyError("tblite is required for xtb methods") from exc
        if self._calc is None:
            calc = TBCalculator(
                XTB_METHODS[self.spec.name],
                np.asarray(self.species.numbers),
                positions_bohr,
                charge=float(self.species.charge),
                uhf=self.species.multiplicity - 1,
            )
            calc.set("verbosity", 0)
            if self.spec.max_scf_cycles is not None:
                calc.set("max-iter", int(self.spec.max_scf_cycles))
            if self.spec.scf_tolerance is not None:
                calc.set("accuracy", float(self.spec.scf_tolerance) / TBLITE_ENERGY_CONVERGENCE)
            if self.spec.solvent:
                try:
                    calc.add("alpb-solvation", self.spec.solvent)
                except Exception as exc:
                    raise InputError(f"tblite does not know solvent {self.spec.solvent!r}") from exc
            self._calc = calc
        else:
            self._calc.update(positions_bohr)
        return self._calc

    def compute(
        self,
        geometry: np.ndarray,
        gradient: bool = False,
        hessian: bool = False,
        esp_points: np.ndarray | None = None,
    ) -> PointResult:
        if esp_points is not None:
            raise InputError(f"{self.spec.name} gives no ESP on points; use a PySCF method")
        from tblite.exceptions import TBLiteRuntimeError

        positions = np.asarray(geometry, dtype=np.float64).reshape(-1, 3) / BOHR_ANGSTROM
        calc = self._calculator(positions)
        try:
            res = calc.singlepoint(self._restart, copy=True)
        except TBLiteRuntimeError as exc:
            self._restart = None
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else "tblite failed"
            if "not converged" in message.lower():
                raise SCFConvergenceError(f"{self.spec.name}: {message}") from None
            raise CalculationError(f"{self.spec.name}: {message}") from None
        self._restart = res
        result = PointResult(
            energy=float(res.get("energy")) * HARTREE_KCAL_MOL,
            gradient=np.array(res.get("gradient")) * HARTREE_BOHR_TO_KCAL_MOL_A,
            dipole=np.array(res.get("dipole")) * BOHR_ANGSTROM,
            charges=np.array(res.get("charges")),
            bond_orders=wiberg_bond_orders(res.get("bond-orders"), len(self.species.numbers)),
            details={"charges": "xtb-mulliken"},
        )
        result.check_finite()
        if hessian:
            result.hessian = self.finite_difference_hessian(geometry)
            result.details["hessian"] = "central finite differences of analytic gradients"
        if not gradient and not hessian:
            result.gradient = None
        return result


def wiberg_bond_orders(orders: np.ndarray, n_atoms: int) -> np.ndarray:
    """tblite's ``bond-orders`` result, (n, n) or (n, n, spin channels), as one symmetric
    (n_atoms, n_atoms) float64 matrix (channels summed). CalculationError if not finite."""
    orders = np.asarray(orders, dtype=np.float64)
    if orders.ndim == 3:
        orders = orders.sum(axis=2)
    if orders.shape != (n_atoms, n_atoms) or not np.all(np.isfinite(orders)):
        raise CalculationError("tblite returned no finite bond orders")
    return 0.5 * (orders + orders.T)
