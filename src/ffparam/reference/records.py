"""Typed inputs and outputs of reference calculations, in internal units.

* :class:`Species` — what a calculation needs to know about a molecule (elements, charge,
  multiplicity, bonds, identity key); small and picklable, it travels to workers.
* :class:`Task` — what to compute: ``energy``, ``gradient``, ``hessian``, ``esp``,
  ``bond_orders`` or ``optimize`` (optionally with fixed dihedrals and frozen atoms).
* :class:`Record` — one calculation's result and status, as stored in the :class:`Store`.

Units: energies kcal/mol, lengths Angstrom, gradients kcal/mol/Angstrom, Hessians
kcal/mol/Angstrom^2, electrostatic potential kcal/mol/e, dipole e*Angstrom, charges e,
Wiberg bond orders dimensionless.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ffparam.errors import InputError

if TYPE_CHECKING:
    from ffparam.chem import Molecule

TASK_KINDS: tuple[str, ...] = ("energy", "gradient", "hessian", "esp", "bond_orders", "optimize",
                               "polarizability", "esp_field")
STATUSES: tuple[str, ...] = ("complete", "failed", "running")


@dataclass(frozen=True)
class Species:
    """Elements, charge, spin and connectivity of one molecule (atom order preserved).

    Attributes:
        numbers: atomic numbers, tuple of n_atoms ints.
        charge: net charge in e.
        multiplicity: spin multiplicity 2S+1.
        bonds: bonded pairs (i, j), i < j, from the chemical graph (used by geomeTRIC).
        key: order-dependent identity (mapped SMILES, :meth:`Molecule.canonical_key`).
        name: label for messages.
    """

    numbers: tuple[int, ...]
    charge: int
    multiplicity: int
    bonds: tuple[tuple[int, int], ...]
    key: str
    name: str = "molecule"

    @classmethod
    def from_molecule(cls, molecule: Molecule) -> Species:
        return cls(
            numbers=tuple(int(z) for z in molecule.atomic_numbers),
            charge=molecule.total_charge,
            multiplicity=molecule.multiplicity,
            bonds=tuple((int(i), int(j)) for i, j in molecule.bonds),
            key=molecule.canonical_key(),
            name=molecule.name,
        )

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    @property
    def symbols(self) -> list[str]:
        from ffparam.chem.molecule import PERIODIC_SYMBOLS

        return [PERIODIC_SYMBOLS[z] for z in self.numbers]

    @property
    def n_electrons(self) -> int:
        return int(sum(self.numbers)) - self.charge


@dataclass(frozen=True)
class Constraints:
    """Constraints of an optimization.

    Attributes:
        dihedrals: ((i, j, k, l, value_degrees), ...) dihedrals held at a value.
        frozen_atoms: atom indices whose Cartesian positions stay fixed.
    """

    dihedrals: tuple[tuple[int, int, int, int, float], ...] = ()
    frozen_atoms: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.dihedrals or self.frozen_atoms)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dihedrals": [[*map(int, d[:4]), round(float(d[4]), 6)] for d in self.dihedrals],
            "frozen_atoms": sorted(int(i) for i in self.frozen_atoms),
        }


@dataclass(frozen=True)
class Task:
    """What to compute for one geometry.

    Attributes:
        kind: one of ``energy``, ``gradient``, ``hessian``, ``esp``, ``bond_orders``
            (energy plus the Wiberg bond-order matrix; xtb methods), ``optimize``.
        constraints: for ``optimize`` only.
        max_steps: optimizer step limit (``optimize``).
        esp_density: Merz-Kollman shell point density, points per Angstrom^2 (``esp``,
            ``esp_field``).
        field_kcal_mol_e_a: uniform external electric field (3,) in kcal/mol/(e Angstrom)
            of an ``esp_field`` task (the ESP of the molecule polarized by it;
            :mod:`ffparam.reference.esp_field`); part of the key.
    """

    kind: str
    constraints: Constraints = field(default_factory=Constraints)
    max_steps: int = 300
    esp_density: float = 1.0
    field_kcal_mol_e_a: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise InputError(f"unknown task {self.kind!r} (known: {', '.join(TASK_KINDS)})")
        if self.constraints and self.kind != "optimize":
            raise InputError("constraints apply to the optimize task only")
        self._check_field()

    def _check_field(self) -> None:
        field_ = tuple(float(f) for f in self.field_kcal_mol_e_a)
        if len(field_) != 3 or not all(np.isfinite(field_)):
            raise InputError(f"field_kcal_mol_e_a must be 3 finite numbers, got "
                             f"{self.field_kcal_mol_e_a!r}")
        if any(field_) and self.kind != "esp_field":
            raise InputError("an external field applies to the esp_field task only")
        object.__setattr__(self, "field_kcal_mol_e_a", field_)

    @classmethod
    def parse(cls, task: str | Task) -> Task:
        return task if isinstance(task, Task) else cls(kind=str(task).strip().lower())

    def canonical(self) -> str:
        """Unique string of the task (part of Store keys); defaults are left out."""
        cached = self.__dict__.get("_canonical")
        if cached is None:
            cached = self._canonical_text()
            object.__setattr__(self, "_canonical", cached)  # memo on a frozen instance
        return cached

    def _canonical_text(self) -> str:
        data: dict[str, Any] = {"kind": self.kind}
        if self.kind == "optimize":
            data["max_steps"] = self.max_steps
            if self.constraints:
                data["constraints"] = self.constraints.as_dict()
        if self.kind == "esp":
            data["esp_density"] = self.esp_density
        if self.kind == "esp_field":
            data["esp_density"] = self.esp_density
            data["field_kcal_mol_e_a"] = [round(f, 8) for f in self.field_kcal_mol_e_a]
        return json.dumps(data, sort_keys=True, separators=(",", ":"))


@dataclass
class PointResult:
    """What a backend returns for one geometry (internal units; None = not computed).

    Attributes:
        energy: kcal/mol.
        gradient: (n_atoms, 3) kcal/mol/Angstrom.
        hessian: (3 n_atoms, 3 n_atoms) kcal/mol/Angstrom^2, atom-major (x0, y0, z0, x1...).
        esp_points: (n_points, 3) Angstrom; esp: (n_points,) kcal/mol/e.
        dipole: (3,) e*Angstrom, about the origin of the input frame.
        charges: (n_atoms,) e (Mulliken for PySCF, the method's own for xtb).
        bond_orders: (n_atoms, n_atoms) Wiberg bond orders, dimensionless, symmetric (xtb
            only; None where the backend gives none).
        details: small JSON-able facts (SCF cycles, Hessian method, ...).
        mm_gradient: (n_charges, 3) kcal/mol/Angstrom, gradient of the QM/MM energy with
            respect to the MM point charges' positions (QM/MM calculations only).
    """

    energy: float
    gradient: np.ndarray | None = None
    hessian: np.ndarray | None = None
    esp_points: np.ndarray | None = None
    esp: np.ndarray | None = None
    dipole: np.ndarray | None = None
    charges: np.ndarray | None = None
    bond_orders: np.ndarray | None = None
    details: dict[str, Any] = field(default_factory=dict)
    mm_gradient: np.ndarray | None = None

    def check_finite(self) -> None:
        from ffparam.errors import NonFiniteError

        for name in ("energy", "gradient", "hessian", "esp", "mm_gradient"):
            value = getattr(self, name)
            if value is not None and not np.all(np.isfinite(value)):
                raise NonFiniteError(f"non-finite {name} from the reference method")


ARRAY_FIELDS: tuple[str, ...] = (
    "gradient",
    "hessian",
    "esp_points",
    "esp",
    "dipole",
    "charges",
    "bond_orders",
    "final_geometry",
    "trajectory_energies",
    "polarizability",
    "mm_positions",
    "mm_charges",
    "mm_gradient",
)


@dataclass
class Record:
    """One calculation: its identity, status and results in internal units.

    Attributes:
        key: Store key (hash of method, molecule, rounded geometry and task).
        status: ``complete``, ``failed`` or ``running``.
        method: canonical method spec string.
        task: canonical task string (JSON).
        species: the molecule the calculation was for.
        geometry: input geometry (n_atoms, 3) Angstrom.
        energy: kcal/mol (of ``final_geometry`` for ``optimize``).
        gradient: (n_atoms, 3) kcal/mol/Angstrom (at ``final_geometry`` for ``optimize``).
        hessian: (3 n_atoms, 3 n_atoms) kcal/mol/Angstrom^2.
        esp_points, esp: (n_points, 3) Angstrom and (n_points,) kcal/mol/e.
        dipole: (3,) e*Angstrom; charges: (n_atoms,) e.
        bond_orders: (n_atoms, n_atoms) Wiberg bond orders, dimensionless (``bond_orders``).
        final_geometry: optimized geometry (n_atoms, 3) Angstrom (``optimize``).
        trajectory_energies: energies along the optimization, kcal/mol.
        polarizability: (3, 3) static dipole polarizability tensor, Angstrom^3, in the
            geometry's frame (``polarizability``; :mod:`ffparam.reference.polarizability`).
        mm_positions, mm_charges, mm_gradient: QM/MM calculations only: the MM point
            charges' positions (n_charges, 3) Angstrom and charges (n_charges,) e (part of the
            key), and the gradient on them (n_charges, 3) kcal/mol/Angstrom.
        error: one-line message for failed records.
        provenance: package versions, wall time (s), host, details.
        cached: True if this record came from the Store instead of being computed now
            (not stored).
    """

    key: str
    status: str
    method: str
    task: str
    species: Species
    geometry: np.ndarray
    energy: float | None = None
    gradient: np.ndarray | None = None
    hessian: np.ndarray | None = None
    esp_points: np.ndarray | None = None
    esp: np.ndarray | None = None
    dipole: np.ndarray | None = None
    charges: np.ndarray | None = None
    bond_orders: np.ndarray | None = None
    final_geometry: np.ndarray | None = None
    trajectory_energies: np.ndarray | None = None
    polarizability: np.ndarray | None = None
    mm_positions: np.ndarray | None = None
    mm_charges: np.ndarray | None = None
    mm_gradient: np.ndarray | None = None
    error: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    cached: bool = False

    @property
    def ok(self) -> bool:
        """True for a complete record (the only kind ever used as data)."""
        return self.status == "complete"

    @property
    def task_kind(self) -> str:
        return json.loads(self.task)["kind"]

    @property
    def forces(self) -> np.ndarray | None:
        """Forces = -gradient, (n_atoms, 3) kcal/mol/Angstrom."""
        return None if self.gradient is None else -self.gradient

    @property
    def result_geometry(self) -> np.ndarray:
        """The geometry the energy belongs to: ``final_geometry`` if optimized, else input."""
        return self.final_geometry if self.final_geometry is not None else self.geometry

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            name: np.asarray(getattr(self, name))
            for name in ARRAY_FIELDS
            if getattr(self, name) is not None
        }
