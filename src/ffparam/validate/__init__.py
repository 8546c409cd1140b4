"""Validation of fitted systems on data not used in the fit.

* :func:`held_out_conformers` — relative energies and forces on separately generated
  conformers against the reference method (RMSE/MAE per system) -> :class:`ConformerValidation`.
* :func:`optimized_geometry_rmsd` — heavy-atom RMSD of MM minima from reference minima
  (Kabsch superposition) -> :class:`GeometryValidation`.
* :func:`md_stability` — gas-phase Langevin MD in OpenMM, blow-ups reported as
  ``stable=False`` with a reason -> :class:`MDValidation`.

Every result has ``to_json()`` (plain data, NaN never passed off as a number); units are in
the field names (``_kcal_mol``, ``_kcal_mol_a`` = kcal/mol/Angstrom, ``_a`` = Angstrom).
"""

from ffparam.validate.alignment import heavy_atoms, kabsch_rmsd, superpose
from ffparam.validate.conformers import ConformerScores, ConformerValidation, held_out_conformers
from ffparam.validate.geometry import GeometryScores, GeometryValidation, optimized_geometry_rmsd
from ffparam.validate.md import MDLimits, MDValidation, md_stability
from ffparam.validate.minimize import Minimized, mm_minimize
from ffparam.validate.sampling import VALIDATION_SEED, held_out_geometries

__all__ = [
    "VALIDATION_SEED",
    "ConformerScores",
    "ConformerValidation",
    "GeometryScores",
    "GeometryValidation",
    "MDLimits",
    "MDValidation",
    "Minimized",
    "heavy_atoms",
    "held_out_conformers",
    "held_out_geometries",
    "kabsch_rmsd",
    "md_stability",
    "mm_minimize",
    "optimized_geometry_rmsd",
    "superpose",
]
