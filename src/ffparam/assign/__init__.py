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
            ``.offxml``, or ``gaff2``.
        charges: ``am1bcc`` (default), ``gasteiger`` or ``mmff94``.
    """
    name = forcefield.strip()
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


__all__ = ["assign_parameters"]
