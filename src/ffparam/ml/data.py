"""Datasets of molecular frames with energies and forces (the ML edge: eV and Angstrom).

The ML box works in the units of its data files and of ASE, like MACE and SchNetPack:
energies in eV, lengths in Angstrom, forces in eV/Angstrom. Conversion to ffparam's internal
kcal/mol happens only where ML results leave this box (``ffparam.units.EV_KCAL_MOL``).

A :class:`MLDataset` stores frames column-wise (flat atom arrays plus per-frame offsets) so
that any subset turns into one batch of tensors without Python loops over atoms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ffparam.errors import InputError, MissingFileError

_SYMBOLS = (
    "X H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge "
    "As Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe"
).split()


def element_symbol(z: int) -> str:
    """Chemical symbol of atomic number ``z`` (``"Z=120"`` beyond xenon)."""
    return _SYMBOLS[z] if 0 < z < len(_SYMBOLS) else f"Z={z}"


@dataclass(frozen=True)
class MLDataset:
    """Frames of one or more molecules, column-wise.

    Attributes:
        numbers: (n_atoms_total,) int64 atomic numbers, frames concatenated.
        positions: (n_atoms_total, 3) float64 Angstrom.
        n_atoms: (n_frames,) int64 atoms per frame.
        energies: (n_frames,) float64 total energies in eV, or None.
        forces: (n_atoms_total, 3) float64 eV/Angstrom, or None.
        source: where the frames came from (file path or description).
    """

    numbers: np.ndarray
    positions: np.ndarray
    n_atoms: np.ndarray
    energies: np.ndarray | None = None
    forces: np.ndarray | None = None
    source: str = ""
    offsets: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        offsets = np.zeros(len(self.n_atoms) + 1, dtype=np.int64)
        np.cumsum(self.n_atoms, out=offsets[1:])
        object.__setattr__(self, "offsets", offsets)
        if offsets[-1] != len(self.numbers) or self.positions.shape != (len(self.numbers), 3):
            raise InputError("dataset arrays disagree on the number of atoms")

    def __len__(self) -> int:
        return len(self.n_atoms)

    @property
    def has_energies(self) -> bool:
        return self.energies is not None

    @property
    def has_forces(self) -> bool:
        return self.forces is not None

    @property
    def elements(self) -> tuple[int, ...]:
        """Sorted atomic numbers present in the dataset."""
        return tuple(int(z) for z in np.unique(self.numbers))

    def frame_numbers(self, index: int) -> np.ndarray:
        """(n,) atomic numbers of frame ``index``."""
        return self.numbers[self.offsets[index] : self.offsets[index + 1]]

    def frame_positions(self, index: int) -> np.ndarray:
        """(n, 3) positions of frame ``index`` in Angstrom."""
        return self.positions[self.offsets[index] : self.offsets[index + 1]]

    def frame_forces(self, index: int) -> np.ndarray:
        """(n, 3) reference forces of frame ``index`` in eV/Angstrom."""
        if self.forces is None:
            raise InputError(f"{self.source or 'dataset'} has no forces")
        return self.forces[self.offsets[index] : self.offsets[index + 1]]

    def atom_frame_index(self) -> np.ndarray:
        """(n_atoms_total,) index of the frame each atom belongs to."""
        return np.repeat(np.arange(len(self)), self.n_atoms)

    def subset(self, indices: Sequence[int] | np.ndarray) -> MLDataset:
        """A new dataset of the frames ``indices`` (in that order)."""
        idx = np.asarray(indices, dtype=np.int64)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self)):
            raise InputError(f"frame index out of range 0..{len(self) - 1}")
        atom_idx = _atom_indices(self.offsets, idx)
        return MLDataset(
            numbers=self.numbers[atom_idx],
            positions=self.positions[atom_idx],
            n_atoms=self.n_atoms[idx],
            energies=None if self.energies is None else self.energies[idx],
            forces=None if self.forces is None else self.forces[atom_idx],
            source=self.source,
        )

    def require_forces(self) -> None:
        """Raise :class:`InputError` unless every frame has forces."""
        if self.forces is None:
            raise InputError(
                f"{self.source or 'dataset'} has frames without forces; forces are required"
            )

    def require_energies(self) -> None:
        """Raise :class:`InputError` unless every frame has an energy."""
        if self.energies is None:
            raise InputError(
                f"{self.source or 'dataset'} has frames without energies; energies are required"
            )

    def to_atoms(self) -> list:
        """Frames as ``ase.Atoms`` with energies/forces attached as single-point results."""
        from ase import Atoms
        from ase.calculators.singlepoint import SinglePointCalculator

        frames = []
        for i in range(len(self)):
            atoms = Atoms(numbers=self.frame_numbers(i), positions=self.frame_positions(i))
            results = {}
            if self.energies is not None:
                results["energy"] = float(self.energies[i])
            if self.forces is not None:
                results["forces"] = self.frame_forces(i).copy()
            if results:
                atoms.calc = SinglePointCalculator(atoms, **results)
            frames.append(atoms)
        return frames

    def write_extxyz(
        self, path: str | Path, energy_key: str = "energy", forces_key: str = "forces"
    ) -> None:
        """Write the frames as extended XYZ (eV, Angstrom) under the given property keys
        (atomically: never a half-written file under ``path``)."""
        from ase import Atoms
        from ase.io import write

        from ffparam.io.atomic import atomic_output

        frames = []
        for i in range(len(self)):
            atoms = Atoms(numbers=self.frame_numbers(i), positions=self.frame_positions(i))
            if self.energies is not None:
                atoms.info[energy_key] = float(self.energies[i])
            if self.forces is not None:
                atoms.arrays[forces_key] = self.frame_forces(i).copy()
            frames.append(atoms)
        with atomic_output(path) as tmp:
            write(str(tmp), frames, format="extxyz")


def _atom_indices(offsets: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Flat atom indices of ``frames`` (vectorized: no loop over atoms)."""
    counts = offsets[frames + 1] - offsets[frames]
    if counts.sum() == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(offsets[frames], counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return starts + within


def dataset_from_atoms(
    frames: Sequence,
    source: str = "",
    energy_key: str = "energy",
    forces_key: str = "forces",
) -> MLDataset:
    """Build a dataset from ``ase.Atoms`` objects, validating every number.

    Energies and forces are taken from ``atoms.info[energy_key]`` /
    ``atoms.arrays[forces_key]`` or from an attached calculator's results. Energies (or
    forces) are kept only if every frame has them. Periodic frames are rejected (the models
    here are for molecules). Non-finite values raise :class:`InputError` naming the frame.
    """
    if len(frames) == 0:
        raise InputError(f"{source or 'input'} contains no frames")
    numbers, positions, n_atoms, energies, forces = [], [], [], [], []
    for i, atoms in enumerate(frames):
        if any(atoms.pbc):
            raise InputError(f"{source}: frame {i} is periodic; only molecules are supported")
        pos = np.asarray(atoms.get_positions(), dtype=np.float64)
        if not np.all(np.isfinite(pos)):
            raise InputError(f"{source}: frame {i} has non-finite positions")
        numbers.append(np.asarray(atoms.numbers, dtype=np.int64))
        positions.append(pos)
        n_atoms.append(len(atoms))
        energies.append(_frame_energy(atoms, energy_key))
        forces.append(_frame_forces(atoms, forces_key))
    energy_array = None
    if all(e is not None for e in energies):
        energy_array = np.asarray(energies, dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(energy_array))
        if len(bad):
            raise InputError(f"{source}: frame {bad[0]} has a non-finite energy")
    force_array = None
    if all(f is not None for f in forces):
        force_array = np.concatenate(forces).astype(np.float64)
        for i, f in enumerate(forces):
            if not np.all(np.isfinite(f)):
                raise InputError(f"{source}: frame {i} has non-finite forces")
    return MLDataset(
        numbers=np.concatenate(numbers),
        positions=np.concatenate(positions),
        n_atoms=np.asarray(n_atoms, dtype=np.int64),
        energies=energy_array,
        forces=force_array,
        source=source,
    )


def _frame_energy(atoms, key: str) -> float | None:
    if key in atoms.info:
        return float(atoms.info[key])
    calc = atoms.calc
    if calc is not None and key == "energy" and "energy" in getattr(calc, "results", {}):
        return float(calc.results["energy"])
    return None


def _frame_forces(atoms, key: str) -> np.ndarray | None:
    if key in atoms.arrays:
        return np.asarray(atoms.arrays[key], dtype=np.float64)
    calc = atoms.calc
    if calc is not None and key == "forces" and "forces" in getattr(calc, "results", {}):
        return np.asarray(calc.results["forces"], dtype=np.float64)
    return None


def read_extxyz(
    path: str | Path,
    index: str | slice = ":",
    energy_key: str = "energy",
    forces_key: str = "forces",
) -> MLDataset:
    """Read an extended XYZ file (eV, Angstrom, eV/Angstrom) into a :class:`MLDataset`."""
    from ffparam.io.xyz import read_extxyz_frames

    path = Path(path)
    frames = read_extxyz_frames(path, index)
    return dataset_from_atoms(
        frames, source=str(path), energy_key=energy_key, forces_key=forces_key
    )


def read_store(
    path: str | Path,
    method: str | None = None,
    molecule_key: str | None = None,
    task_kind: str | None = None,
) -> MLDataset:
    """Complete records of an ffparam reference Store (issue 3) as a dataset (eV, Angstrom).

    The Store keeps kcal/mol internally; its extended-XYZ exporter converts to eV and
    eV/Angstrom (forces = -gradient), which is the conversion used here. Failed records are
    never read as data.
    """
    from ffparam.reference.export import records_to_atoms
    from ffparam.reference.store import Store

    if not Path(path).is_file():
        raise MissingFileError(f"no such store: {path}")
    with Store(path, readonly=True) as store:
        frames = records_to_atoms(
            store.records(
                status="complete", method=method, molecule_key=molecule_key, task_kind=task_kind
            )
        )
    return dataset_from_atoms(frames, source=str(path))


def read_frames(path: str | Path) -> MLDataset:
    """Frames from an extended XYZ file or, for ``.db``/``.sqlite`` files, a Store."""
    if Path(path).suffix.lower() in (".db", ".sqlite", ".sqlite3"):
        return read_store(path)
    return read_extxyz(path)


# --- per-element reference energies -------------------------------------------------------


def read_isolated_atoms(path: str | Path, energy_key: str = "energy") -> dict[int, float]:
    """Per-element reference energies (eV) from a file of single-atom frames."""
    data = read_extxyz(path, energy_key=energy_key)
    data.require_energies()
    if np.any(data.n_atoms != 1):
        raise InputError(f"{path}: isolated-atom file has frames with more than one atom")
    refs: dict[int, float] = {}
    for z, e in zip(data.numbers.tolist(), data.energies.tolist()):
        if z in refs and not math.isclose(refs[z], e, abs_tol=1e-6):
            raise InputError(f"{path}: two different energies for {element_symbol(z)}")
        refs[int(z)] = float(e)
    return refs


def element_counts(data: MLDataset, elements: Sequence[int]) -> np.ndarray:
    """(n_frames, n_elements) count of each element in each frame."""
    col = np.searchsorted(np.asarray(elements), data.numbers)
    counts = np.zeros((len(data), len(elements)), dtype=np.float64)
    np.add.at(counts, (data.atom_frame_index(), col), 1.0)
    return counts


def fit_reference_energies(data: MLDataset) -> dict[int, float]:
    """Per-element energies (eV) by least squares: E_frame ~ sum_Z count_Z(frame) * e_Z.

    With a single composition the system is rank deficient; the minimum-norm solution is
    returned (any split gives the same total per frame, which is all the models need).
    """
    data.require_energies()
    elements = data.elements
    counts = element_counts(data, elements)
    coef, *_ = np.linalg.lstsq(counts, data.energies, rcond=None)
    return {int(z): float(c) for z, c in zip(elements, coef)}


def reference_energy_per_frame(data: MLDataset, refs: dict[int, float]) -> np.ndarray:
    """(n_frames,) sum of per-element reference energies (eV) of each frame."""
    check_elements(data.numbers, refs.keys(), what="the reference energies")
    per_atom = np.array([refs[int(z)] for z in np.unique(data.numbers)])
    atom_ref = per_atom[np.searchsorted(np.unique(data.numbers), data.numbers)]
    return np.bincount(data.atom_frame_index(), weights=atom_ref, minlength=len(data))


def check_elements(numbers: np.ndarray, known, what: str = "the model") -> None:
    """Raise :class:`InputError` naming the first element not covered by ``known``."""
    known_set = {int(z) for z in known}
    unseen = sorted(set(np.unique(numbers).tolist()) - known_set)
    if unseen:
        names = ", ".join(element_symbol(z) for z in unseen)
        seen = ", ".join(element_symbol(z) for z in sorted(known_set))
        raise InputError(f"element(s) {names} not seen by {what} (knows {seen})")


# --- splits -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """Frame indices of a train/validation/test split (disjoint)."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    seed: int


def split_indices(
    n_frames: int, n_train: int, n_valid: int, n_test: int = 0, seed: int = 0
) -> Split:
    """Disjoint random train/validation/test indices, reproducible from ``seed``.

    The test frames are drawn first, then validation, then training, from one permutation,
    so that growing ``n_train`` (a learning curve) keeps the same test and validation sets
    and the smaller training sets are subsets of the larger ones.
    """
    if min(n_train, n_valid, n_test) < 0 or n_train + n_valid + n_test > n_frames:
        raise InputError(
            f"cannot split {n_frames} frames into {n_train} train, {n_valid} valid, {n_test} test"
        )
    perm = np.random.default_rng(seed).permutation(n_frames)
    test = perm[:n_test]
    valid = perm[n_test : n_test + n_valid]
    train = perm[n_test + n_valid : n_test + n_valid + n_train]
    return Split(train=np.sort(train), valid=np.sort(valid), test=np.sort(test), seed=seed)
