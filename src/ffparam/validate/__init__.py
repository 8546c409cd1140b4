"""Validation of fitted systems on data not used in the fit.

* :func:`held_out_conformers` — relative energies and forces on separately generated
  conformers against the reference method (RMSE/MAE per system) -> :class:`ConformerValidation`.
* :func:`score_models` — any :class:`~ffparam.energy.EnergyModel` (force field, ML
  potential, MMFF94, a cheaper method, :class:`ReferenceModel`) side by side on the same
  conformers -> :class:`ModelComparison`; :func:`compare_models` does it on held-out
  conformers with reference data from the Store (:func:`held_out_reference`).
* :func:`optimized_geometry_rmsd` — heavy-atom RMSD of MM minima from reference minima
  (Kabsch superposition) -> :class:`GeometryValidation`.
* :func:`md_stability` — gas-phase Langevin MD in OpenMM, blow-ups reported as
  ``stable=False`` with a reason -> :class:`MDValidation`.

Every result has ``to_json()`` (plain data, NaN never passed off as a number); units are in
the field names (``_kcal_mol``, ``_kcal_mol_a`` = kcal/mol/Angstrom, ``_a`` = Angstrom).
"""

from ffparam.validate.alignment import heavy_atoms, kabsch_rmsd, superpose
from ffparam.validate.conformers import (
    ConformerValidation,
    HeldOutReference,
    compare_models,
    held_out_conformers,
    held_out_reference,
)
from ffparam.validate.geometry import GeometryScores, GeometryValidation, optimized_geometry_rmsd
from ffparam.validate.md import MDLimitSettings, MDValidation, md_stability
from ffparam.validate.minimize import Minimized, mm_minimize
from ffparam.validate.models import ConformerScores, ModelComparison, ReferenceModel, score_models
from ffparam.validate.sampling import VALIDATION_SEED, held_out_geometries

__all__ = [
    "VALIDATION_SEED",
    "ConformerScores",
    "ConformerValidation",
    "GeometryScores",
    "GeometryValidation",
    "HeldOutReference",
    "MDLimitSettings",
    "MDValidation",
    "Minimized",
    "ModelComparison",
    "ReferenceModel",
    "compare_models",
    "heavy_atoms",
    "held_out_conformers",
    "held_out_geometries",
    "held_out_reference",
    "kabsch_rmsd",
    "md_stability",
    "mm_minimize",
    "optimized_geometry_rmsd",
    "score_models",
    "superpose",
]
