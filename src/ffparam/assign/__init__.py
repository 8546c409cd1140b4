"""Starting parameters: SMIRNOFF force fields (OpenFF Sage), GAFF2, partial charges, and
MMFF94/UFF reference energy models.

Entry point: :func:`assign_parameters`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ffparam.errors import InputError

if TYPE_CHECKING:
    from ffparam.chem.molecule import Molecule
    from ffparam.params.system import ParameterizedSystem

RDKIT_MODELS = ("mmff94", "uff")


def assign_parameters(
    molecule: Molecule, forcefield: str = "sage", charges: str | None = None
) -> ParameterizedSystem:
    """Parameterize ``molecule``.

    Args:
        molecule: the molecule (conformers not needed except for AM1-BCC, which makes its
            own if missing).
        forcefield: ``sage`` (openff-2.2.1), any OpenFF file name such as
            ``openff-2.1.0`` or ``openff_unconstrained-2.2.1.offxml``, a path to an
            ``.offxml``, ``gaff2``, or an existing force field of this molecule (same
            atoms in the same order): ``X.prmtop``, ``X.top`` or
            ``X.psf,PARAMS.prm,...`` (:func:`ffparam.assign.import_files.system_for_molecule`).
        charges: ``am1bcc`` (default), ``gasteiger`` or ``mmff94``; for an existing force
            field None keeps the file's charges.
    """
    name = forcefield.strip()
    from ffparam.assign.import_files import is_force_field_files

    if is_force_field_files(name):  # an existing force field: prmtop, top, psf[,params]
        from ffparam.assign.import_files import system_for_molecule

        system = system_for_molecule(molecule, name)
        if charges is not None:
            from ffparam.assign.charges import compute_partial_charges

            system = _with_charges(system, compute_partial_charges(molecule, charges))
        return system
    molecule.require_closed_shell(f"the {name} force field")
    if name.lower() in ("gaff2", "gaff"):
        from ffparam.assign.gaff import parameterize_gaff2

        return parameterize_gaff2(molecule, charges=charges or "am1bcc")
    if name.lower() in RDKIT_MODELS:
        raise InputError(f"{name} is a reference energy model with its own functional form; "
                         "use ffparam.assign.rdkit_models (or `ffparam energy --ff "
                         f"{name.lower()}`)")
    from ffparam.assign.smirnoff import SmirnoffForceField

    return SmirnoffForceField.load(name).parameterize(molecule, charges=charges)


def _with_charges(system: ParameterizedSystem, charges) -> ParameterizedSystem:
    """``system`` with its per-atom charge parameters set to ``charges`` (e)."""
    params = system.parameters
    vector = params.vector()
    vector[system.nonbonded.charge_index] = charges
    return system.with_parameters(params.with_vector(vector))


__all__ = ["assign_parameters"]
