"""Wiberg bond orders for fragmentation, computed and stored through the reference layer.

The Wiberg bond order of atoms A and B is W_AB = sum_{mu in A} sum_{nu in B} (P S)_{mu nu}
(P S)_{nu mu} (Mayer/Wiberg form for a non-orthogonal basis; P density, S overlap), a
dimensionless measure of the electron population shared by the two atoms: about 1 for a
single bond, more when the bond is conjugated. It is the reference task ``bond_orders`` of
an xtb method (:mod:`ffparam.reference.methods.xtb`, tblite's ``bond-orders`` result): a
Job whose Record holds the (n_atoms, n_atoms) matrix, kept in the Store like every other
calculation, so a second fragmentation of the same molecule and geometry computes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ffparam.chem.molecule import Molecule
from ffparam.errors import CalculationError, InputError
from ffparam.reference.spec import XTB_METHODS, MethodSpec

if TYPE_CHECKING:
    from ffparam.reference.store import Store

BOND_ORDER_TASK = "bond_orders"
"""The reference task that returns Wiberg bond orders."""


def wiberg_bond_orders(molecule: Molecule, conformer: int = 0, method: str = "gfn2-xtb",
                       store: Store | None = None, executor=None) -> np.ndarray:
    """Wiberg bond orders of every atom pair, float64 (n_atoms, n_atoms), dimensionless,
    symmetric, from one ``bond_orders`` calculation of ``method`` on conformer
    ``conformer`` (Angstrom), looked up in or added to ``store`` (an in-memory Store when
    None) and run on ``executor`` (in process when None).

    Charge is the molecule's net formal charge, the multiplicity its radical count's.
    Raises InputError for a method without bond orders or a missing conformer,
    UnsupportedChemistryError beyond H-Rn, CalculationError if the calculation failed.
    """
    from ffparam.reference.compute import compute

    if MethodSpec.parse(method).name not in XTB_METHODS:
        raise InputError(f"bond orders need an xtb method ({', '.join(XTB_METHODS)}), "
                         f"got {method!r}")
    molecule.require_conformers()
    if not 0 <= conformer < molecule.n_conformers:
        raise InputError(f"{molecule.name} has {molecule.n_conformers} conformer(s); "
                         f"no conformer {conformer}")
    (record,) = compute(molecule, molecule.conformers[conformer][None], method,
                        BOND_ORDER_TASK, store=store, executor=executor)
    if not record.ok or record.bond_orders is None:
        raise CalculationError(f"{method} bond orders of {molecule.name}: "
                               f"{record.error or 'no bond orders in the record'}")
    return np.array(record.bond_orders, dtype=np.float64)
