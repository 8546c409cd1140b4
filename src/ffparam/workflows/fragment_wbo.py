"""Wiberg bond orders from GFN2-xTB (tblite) for fragmentation.

The Wiberg bond order of atoms A and B is W_AB = sum_{mu in A} sum_{nu in B} (P S)_{mu nu}
(P S)_{nu mu} (Mayer/Wiberg form for a non-orthogonal basis; P density, S overlap), a
dimensionless measure of the electron population shared by the two atoms: about 1 for a
single bond, more when the bond is conjugated. tblite computes it as its ``bond-orders``
result; this module only calls tblite and sums the spin channels.

The reference layer's xtb backend (:mod:`ffparam.reference.methods.xtb`) returns energies,
gradients, dipoles and charges but not bond orders, and its tblite calculator is private,
so this module calls ``tblite.interface.Calculator`` directly (same method names, charge
and spin conventions, Bohr conversion from :mod:`ffparam.units`).
"""

from __future__ import annotations

import numpy as np

from ffparam.chem.molecule import Molecule
from ffparam.errors import CalculationError, DependencyError, InputError, UnsupportedChemistryError
from ffparam.units import BOHR_ANGSTROM

WBO_METHODS: dict[str, str] = {"gfn2-xtb": "GFN2-xTB", "gfn1-xtb": "GFN1-xTB"}
"""ffparam method name -> tblite method name for bond orders."""

MAX_ATOMIC_NUMBER = 86
"""GFN-xTB covers H-Rn."""


def wiberg_bond_orders(molecule: Molecule, conformer: int = 0,
                       method: str = "gfn2-xtb") -> np.ndarray:
    """Wiberg bond orders of every atom pair, float64 (n_atoms, n_atoms), dimensionless,
    symmetric, from one single point of ``method`` on conformer ``conformer`` (Angstrom).

    Charge is the molecule's net formal charge, the number of unpaired electrons its radical
    count. Raises InputError without coordinates, CalculationError if tblite fails.
    """
    if method not in WBO_METHODS:
        raise InputError(f"bond orders need an xtb method ({', '.join(WBO_METHODS)}), "
                         f"got {method!r}")
    molecule.require_conformers()
    if not 0 <= conformer < molecule.n_conformers:
        raise InputError(f"{molecule.name} has {molecule.n_conformers} conformer(s); "
                         f"no conformer {conformer}")
    numbers = molecule.atomic_numbers
    if numbers.max() > MAX_ATOMIC_NUMBER:
        raise UnsupportedChemistryError(f"{method} covers H-Rn only ({molecule.name})")
    try:
        from tblite.exceptions import TBLiteRuntimeError
        from tblite.interface import Calculator
    except ImportError as exc:  # pragma: no cover - tblite is a hard dependency
        raise DependencyError("tblite is required for Wiberg bond orders") from exc
    positions = molecule.conformers[conformer] / BOHR_ANGSTROM
    try:
        calc = Calculator(WBO_METHODS[method], numbers, positions,
                          charge=float(molecule.total_charge),
                          uhf=molecule.n_radical_electrons)
        calc.set("verbosity", 0)
        result = calc.singlepoint()
    except TBLiteRuntimeError as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else "tblite failed"
        raise CalculationError(f"{method} bond orders of {molecule.name}: {message}") from None
    orders = np.asarray(result.get("bond-orders"), dtype=np.float64)
    if orders.ndim == 3:  # (n, n, spin channels)
        orders = orders.sum(axis=2)
    if orders.shape != (molecule.n_atoms, molecule.n_atoms) or not np.all(np.isfinite(orders)):
        raise CalculationError(f"{method} returned no finite bond orders for {molecule.name}")
    return 0.5 * (orders + orders.T)
