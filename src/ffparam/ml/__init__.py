"""Machine-learned interatomic potentials trained on the same reference data as the force
fields: datasets (eV, Angstrom), ANI and SchNet networks, Gaussian process regression with
forces, a MACE adapter, committees and calibration, an ASE calculator and MD.

Units at this edge: energies eV, lengths Angstrom, forces eV/Angstrom (as in ASE and the
extended-XYZ files); ``ffparam.units.EV_KCAL_MOL`` converts to the internal kcal/mol.
"""

from ffparam.ml.data import (
    MLDataset,
    fit_reference_energies,
    read_extxyz,
    read_isolated_atoms,
    split_indices,
)
from ffparam.ml.potential import Potential, Prediction, load_potential

__all__ = [
    "MLDataset",
    "Potential",
    "Prediction",
    "fit_reference_energies",
    "load_potential",
    "read_extxyz",
    "read_isolated_atoms",
    "split_indices",
]
