"""Machine-learned interatomic potentials trained on the same reference data as the force
fields: datasets (eV, Angstrom), ANI and SchNet networks, Gaussian process regression with
forces, a MACE adapter, committees and calibration, an ASE calculator and MD.

Units at this edge: energies eV, lengths Angstrom, forces eV/Angstrom (as in ASE and the
extended-XYZ files); ``ffparam.units.EV_KCAL_MOL`` converts to the internal kcal/mol.

What a user calls: the datasets (:class:`MLDataset`, :func:`read_extxyz`, ...), the model
registry (:data:`MODELS`, :class:`TrainingJob`, :func:`train_job`), the trainers and their
settings (:func:`train_network` with :class:`TrainingSettings`, :func:`fit_gp` with
:class:`GPSettings`, :func:`train_mace` with :class:`MaceSettings`), the potentials
(:class:`Potential`, :func:`load_potential`, :class:`Committee`) and the error metrics.
The files-in, files-out workflow behind ``ffparam mlp`` is :mod:`ffparam.workflows.mlp`.
"""

from ffparam.ml.committee import Committee
from ffparam.ml.data import (
    MLDataset,
    fit_reference_energies,
    read_extxyz,
    read_isolated_atoms,
    split_indices,
)
from ffparam.ml.descriptors import AEVSettings
from ffparam.ml.metrics import error_metrics
from ffparam.ml.models.gp import GaussianProcessPotential, GPSettings, fit_gp
from ffparam.ml.models.mace import MacePotential, MaceSettings, train_mace
from ffparam.ml.potential import NetworkPotential, Potential, Prediction, load_potential
from ffparam.ml.registry import MODELS, ModelType, TrainingJob, train_job
from ffparam.ml.training import TrainingSettings, train_network

__all__ = [
    "MODELS",
    "AEVSettings",
    "Committee",
    "GPSettings",
    "GaussianProcessPotential",
    "MLDataset",
    "MacePotential",
    "MaceSettings",
    "ModelType",
    "NetworkPotential",
    "Potential",
    "Prediction",
    "TrainingJob",
    "TrainingSettings",
    "error_metrics",
    "fit_gp",
    "fit_reference_energies",
    "load_potential",
    "read_extxyz",
    "read_isolated_atoms",
    "split_indices",
    "train_job",
    "train_mace",
    "train_network",
]
