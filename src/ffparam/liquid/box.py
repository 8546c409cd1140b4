"""A periodic box of N copies of one molecule, packed by packmol (the pip ``packmol``).

The cubic box edge follows from a density guess: L = (N M / (rho N_A))^(1/3). Packmol
places rigid copies of the molecule's first conformer (or of several conformers) with
its periodic-boundary option (``pbc``), keeping every pair of atoms of different
molecules at least ``tolerance`` apart across the box faces too. Atom order of the
result: molecule 0's atoms in the molecule's order, then molecule 1's, ... (each
molecule whole, not wrapped).
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ffparam.assign.programs import find_program, run_guarded
from ffparam.chem import Molecule
from ffparam.errors import ExternalProgramError, InputError
from ffparam.units import AVOGADRO

CM3_PER_A3: float = 1.0e-24
"""1 Angstrom^3 in cm^3 (= mL)."""


@dataclass
class PackedBox:
    """Packmol's box.

    Attributes:
        positions: (n_molecules * n_atoms, 3) Angstrom, molecules whole.
        box_length_a: cubic edge, Angstrom.
        n_molecules: copies of the molecule.
    """

    positions: np.ndarray
    box_length_a: float
    n_molecules: int


def molar_mass(molecule: Molecule) -> float:
    """Molar mass, g/mol (sum of the atoms' standard atomic masses in amu)."""
    return float(np.sum(molecule.masses))


def box_density(molar_mass_g_mol: float, n_molecules: int, volume_a3: np.ndarray | float):
    """Mass density in g/mL of ``n_molecules`` of ``molar_mass_g_mol`` in ``volume_a3``
    (Angstrom^3; scalar or array): rho = N M / (N_A V)."""
    return n_molecules * molar_mass_g_mol / (AVOGADRO * np.asarray(volume_a3) * CM3_PER_A3)


def box_length_for_density(molar_mass_g_mol: float, n_molecules: int,
                           density_g_ml: float) -> float:
    """Cubic box edge in Angstrom holding ``n_molecules`` at ``density_g_ml``."""
    if not density_g_ml > 0:
        raise InputError(f"density guess must be positive, got {density_g_ml} g/mL")
    volume = n_molecules * molar_mass_g_mol / (AVOGADRO * density_g_ml * CM3_PER_A3)
    return float(volume ** (1.0 / 3.0))


def guess_density(molecule: Molecule, packing_fraction: float = 0.5) -> float:
    """A density guess in g/mL when no experiment is at hand: the RDKit van der Waals
    volume of one molecule divided by a typical liquid packing fraction (~0.5)."""
    from rdkit.Chem import AllChem

    molecule.require_conformers()
    volume = AllChem.ComputeMolVolume(molecule.rdmol, confId=0)  # Angstrom^3
    return float(molar_mass(molecule) * packing_fraction / (AVOGADRO * volume * CM3_PER_A3))


def conformer_counts(n_molecules: int, n_conformers: int) -> list[int]:
    """How many copies of each of ``n_conformers`` conformers fill ``n_molecules`` (as
    even as possible, the first ones get the remainder)."""
    base, extra = divmod(n_molecules, n_conformers)
    return [base + (1 if k < extra else 0) for k in range(n_conformers) if base or k < extra]


def pack_box(molecule: Molecule, n_molecules: int, density_g_ml: float,
             tolerance_a: float = 2.0, seed: int = 2024, timeout_s: float = 600.0,
             workdir: str | Path | None = None,
             conformers: np.ndarray | None = None) -> PackedBox:
    """Pack ``n_molecules`` copies of ``molecule`` at ``density_g_ml``: of its first
    conformer, or, with ``conformers`` (M, n_atoms, 3) Angstrom, about n/M copies of each
    (:func:`conformer_counts`; packmol writes them conformer by conformer).

    Raises :class:`ExternalProgramError` when packmol fails or does not report a
    perfect packing (lower the density guess).
    """
    molecule.require_conformers()
    if conformers is None:
        conformers = molecule.conformers[:1]
    conformers = np.asarray(conformers, dtype=float).reshape(-1, molecule.n_atoms, 3)
    length = box_length_for_density(molar_mass(molecule), n_molecules, density_g_ml)
    exe = find_program("packmol")
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        tmpdir = Path(tmp)
        blocks = []
        for k, count in enumerate(conformer_counts(n_molecules, len(conformers))):
            _write_xyz(tmpdir / f"molecule_{k}.xyz", molecule.symbols, conformers[k])
            blocks.append(f"structure molecule_{k}.xyz\n  number {count}\nend structure\n")
        (tmpdir / "pack.inp").write_text(
            f"tolerance {tolerance_a:.4f}\n"
            "filetype xyz\n"
            "output box.xyz\n"
            f"seed {int(seed)}\n"
            f"pbc 0. 0. 0. {length:.6f} {length:.6f} {length:.6f}\n"
            + "".join(blocks)
        )
        try:
            with (tmpdir / "pack.inp").open() as stdin:
                proc = run_guarded([str(exe)], stdin=stdin, cwd=tmpdir, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise ExternalProgramError(
                f"packmol did not pack {n_molecules} {molecule.name} at {density_g_ml:.3f} g/mL "
                f"within {timeout_s:.0f} s; lower the density guess") from None
        out = tmpdir / "box.xyz"
        if proc.returncode != 0 or "Success!" not in proc.stdout or not out.exists():
            tail = " | ".join((proc.stderr.strip() or proc.stdout.strip()).splitlines()[-2:])
            raise ExternalProgramError(
                f"packmol could not pack {n_molecules} {molecule.name} at {density_g_ml:.3f} "
                f"g/mL (exit {proc.returncode}): {tail}")
        positions = _read_xyz(out, molecule.n_atoms * n_molecules)
    return PackedBox(positions, length, n_molecules)


def _write_xyz(path: Path, symbols: list[str], xyz: np.ndarray) -> None:
    lines = [str(len(symbols)), "molecule"]
    lines += [f"{s} {x:.6f} {y:.6f} {z:.6f}" for s, (x, y, z) in zip(symbols, xyz)]
    path.write_text("\n".join(lines) + "\n")


def _read_xyz(path: Path, n_atoms: int) -> np.ndarray:
    lines = path.read_text().splitlines()
    if len(lines) < n_atoms + 2 or int(lines[0].split()[0]) != n_atoms:
        raise ExternalProgramError(f"packmol wrote {lines[0].strip() if lines else 'no'} atoms, "
                                   f"expected {n_atoms}")
    return np.array([[float(v) for v in line.split()[1:4]] for line in lines[2:2 + n_atoms]])
