"""How often a start geometry read from a file trips torsiondrive's geometry key (issue 14).

torsiondrive recognises a finished optimization by its start geometry truncated to 0.001
Angstrom, computed before and after its own Angstrom -> Bohr -> Angstrom round trip. A
geometry whose key changes in that trip is asked for again forever ("torsiondrive asked again
for N finished optimization(s)"). This script takes every frame of the public DFT torsion
drives in ``../shared/data/qm/torsions`` (11 drives x 24 grid points), writes its coordinates
as each common file format does (SDF/MOL: 4 decimals, PDB: 3, XYZ as written by many codes: 6,
full precision), and counts the geometries whose key is unstable, as torsiondrive got them
before the fix (plain division by the Bohr radius) and after it
(:func:`ffparam.reference.torsiondrive.torsiondrive_coordinates`). Pure arithmetic, seconds.

Usage: .venv/bin/python benchmarks/torsiondrive_geometry_keys.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.io import read
from geometric.nifty import ang2bohr, bohr2ang

from ffparam.reference.torsiondrive import torsiondrive_coordinates
from ffparam.units import BOHR_ANGSTROM

SCANS = Path(__file__).resolve().parents[2] / "shared" / "data" / "qm" / "torsions"
FORMATS = {"SDF/MOL (4 decimals)": 4, "PDB (3 decimals)": 3, "XYZ (6 decimals)": 6,
           "full precision": None}


def unstable(bohr: np.ndarray) -> bool:
    """torsiondrive's key (trunc(1000 x), x in Angstrom) differs after its round trip."""
    held = bohr * bohr2ang
    return bool(np.any((held * 1000).astype(int) != ((held * ang2bohr) * bohr2ang * 1000)
                       .astype(int)))


def written(positions: np.ndarray, decimals: int | None) -> np.ndarray:
    """Coordinates as a file with ``decimals`` places stores and a reader parses them."""
    if decimals is None:
        return positions
    return np.array([float(f"{x:.{decimals}f}") for x in positions.ravel()]).reshape(-1, 3)


def main() -> None:
    frames = [atoms.positions for path in sorted(SCANS.glob("*.xyz"))
              for atoms in read(path, index=":")]
    if not frames:
        raise SystemExit(f"no torsion drives (*.xyz) in {SCANS}")
    print(f"{len(frames)} geometries from {len(list(SCANS.glob('*.xyz')))} public DFT drives")
    print("| written as | key unstable before the fix | after the fix | largest move, A |")
    print("| --- | --- | --- | --- |")
    for label, decimals in FORMATS.items():
        before = after = 0
        moved = 0.0
        for positions in frames:
            geometry = written(positions, decimals)
            before += unstable(geometry.ravel() / BOHR_ANGSTROM)
            fixed = np.array(torsiondrive_coordinates(geometry))
            after += unstable(fixed)
            moved = max(moved, float(np.abs(fixed * BOHR_ANGSTROM - geometry.ravel()).max()))
        n = len(frames)
        print(f"| {label} | {before} of {n} ({100 * before / n:.0f} %) | {after} of {n} | "
              f"{moved:.1e} |")


if __name__ == "__main__":
    main()
