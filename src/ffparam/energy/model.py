"""The one protocol of every model that maps positions to energies and forces.

An :class:`EnergyModel` is bound to one molecule (its :attr:`~EnergyModel.atomic_numbers`,
atom order fixed) and evaluates batches of conformers in ffparam's internal units:

* positions: (n_conformers, n_atoms, 3) or (n_atoms, 3) Angstrom (numpy or anything
  ``np.asarray`` reads);
* energies: kcal/mol; forces: kcal/mol/Angstrom (= -dE/dx).

Every model (a force field's MM engine, MMFF94/UFF through RDKit, an ML potential, a
reference quantum-chemistry method) implements it through a small adapter in its own box,
which converts from the backend's units at that edge. :class:`ModelOutput` checks what an
adapter returns: shapes (:class:`~ffparam.errors.InputError`) and finiteness
(:class:`~ffparam.errors.NonFiniteError`), so every consumer can rely on both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ffparam.errors import InputError, NonFiniteError


@dataclass
class ModelOutput:
    """Energies and forces of a batch of conformers (float64 numpy arrays).

    Attributes:
        energy_kcal_mol: (n_conformers,) kcal/mol.
        forces_kcal_mol_a: (n_conformers, n_atoms, 3) kcal/mol/Angstrom, or None when
            forces were not asked for.
        energy_sigma_kcal_mol: (n_conformers,) predicted standard deviation of the
            energy, kcal/mol, for models with an uncertainty (GP, committee), else None.
        forces_sigma_kcal_mol_a: (n_conformers, n_atoms, 3) predicted standard deviation
            of each force component, kcal/mol/Angstrom, or None.
        atom_energies_kcal_mol: (n_conformers, n_atoms) per-atom energies summing to
            ``energy_kcal_mol`` for models that decompose the energy (ML), else None.

    Raises:
        InputError: an array of the wrong shape.
        NonFiniteError: a NaN or infinite value.
    """

    energy_kcal_mol: np.ndarray
    forces_kcal_mol_a: np.ndarray | None = None
    energy_sigma_kcal_mol: np.ndarray | None = None
    forces_sigma_kcal_mol_a: np.ndarray | None = None
    atom_energies_kcal_mol: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.energy_kcal_mol = _checked(self.energy_kcal_mol, "energy_kcal_mol", 1)
        n = len(self.energy_kcal_mol)
        self.forces_kcal_mol_a = _checked(self.forces_kcal_mol_a, "forces_kcal_mol_a", 3, n)
        self.energy_sigma_kcal_mol = _checked(self.energy_sigma_kcal_mol,
                                              "energy_sigma_kcal_mol", 1, n)
        self.forces_sigma_kcal_mol_a = _checked(self.forces_sigma_kcal_mol_a,
                                                "forces_sigma_kcal_mol_a", 3, n)
        self.atom_energies_kcal_mol = _checked(self.atom_energies_kcal_mol,
                                               "atom_energies_kcal_mol", 2, n)
        shapes = {a.shape[1] for a in (self.forces_kcal_mol_a, self.forces_sigma_kcal_mol_a,
                                       self.atom_energies_kcal_mol) if a is not None}
        if len(shapes) > 1:
            raise InputError(f"model output arrays disagree on the number of atoms: "
                             f"{sorted(shapes)}")
        for name in ("forces_kcal_mol_a", "forces_sigma_kcal_mol_a"):
            value = getattr(self, name)
            if value is not None and value.shape[2] != 3:
                raise InputError(f"{name} must be (n_conformers, n_atoms, 3), got "
                                 f"{value.shape}")

    @property
    def n_conformers(self) -> int:
        return len(self.energy_kcal_mol)


def _checked(value, name: str, ndim: int, n_conformers: int | None = None
             ) -> np.ndarray | None:
    if value is None:
        return None
    array = np.array(value, dtype=np.float64)
    if array.ndim != ndim or (n_conformers is not None and len(array) != n_conformers):
        want = "n_conformers" if n_conformers is None else str(n_conformers)
        raise InputError(f"{name} must have {ndim} dimension(s) with {want} conformers, "
                         f"got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        bad = np.nonzero(~np.isfinite(array.reshape(len(array), -1)).all(axis=1))[0]
        raise NonFiniteError(f"non-finite {name} for conformer(s) {bad[:10].tolist()}")
    return array


@runtime_checkable
class EnergyModel(Protocol):
    """A model of one molecule: positions (Angstrom) -> energies (kcal/mol) and forces
    (kcal/mol/Angstrom).

    Attributes:
        atomic_numbers: atomic number of each atom, in the model's atom order.
        name: a short label for reports (``"sage"``, ``"mmff94"``, ``"gfn2-xtb"``...).
    """

    @property
    def atomic_numbers(self) -> tuple[int, ...]: ...

    @property
    def name(self) -> str: ...

    def evaluate(self, positions: np.ndarray, forces: bool = True) -> ModelOutput:
        """Energies and, with ``forces``, forces of ``positions`` (n_conformers, n_atoms, 3)
        or (n_atoms, 3) Angstrom; a single geometry gives a batch of one."""
        ...


class BoundModel:
    """Base of adapters bound to one molecule: holds :attr:`atomic_numbers` and :attr:`name`
    and checks positions; a subclass implements ``evaluate`` (the EnergyModel protocol)."""

    def __init__(self, atomic_numbers, name: str) -> None:
        self._numbers = tuple(int(z) for z in atomic_numbers)
        self._name = str(name)

    @property
    def atomic_numbers(self) -> tuple[int, ...]:
        return self._numbers

    @property
    def name(self) -> str:
        return self._name

    def batch(self, positions) -> np.ndarray:
        """``positions`` as (n_conformers, n_atoms, 3) Angstrom for this molecule."""
        return conformer_batch(positions, len(self._numbers))


def conformer_batch(positions, n_atoms: int) -> np.ndarray:
    """``positions`` as a float64 (n_conformers, n_atoms, 3) Angstrom array.

    Raises:
        InputError: wrong shape, no conformers, or non-finite coordinates.
    """
    try:
        pos = np.array(positions, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"positions are not a numeric array: {exc}") from None
    if pos.ndim == 2:
        pos = pos[None]
    if pos.ndim != 3 or pos.shape[1:] != (n_atoms, 3) or not len(pos):
        raise InputError(f"positions must have shape (n_conformers, {n_atoms}, 3) or "
                         f"({n_atoms}, 3) Angstrom, got {pos.shape}")
    if not np.all(np.isfinite(pos)):
        raise InputError("non-finite coordinates")
    return pos


def check_model(model: object) -> EnergyModel:
    """``model`` if it implements :class:`EnergyModel`, else an :class:`InputError`."""
    if not isinstance(model, EnergyModel):
        raise InputError(f"{type(model).__name__} is not an EnergyModel (needs "
                         "atomic_numbers, name and evaluate(positions, forces))")
    return model
