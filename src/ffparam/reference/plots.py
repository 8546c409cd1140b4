"""Torsion-profile pictures (PNG) with matplotlib's non-interactive backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ffparam.io.atomic import atomic_output, savefig_atomic
from ffparam.reference.torsiondrive import TorsionDriveResult


def plot_torsion_profile(result: TorsionDriveResult, path: str | Path) -> Path:
    """Relative energy (kcal/mol) against the grid angle (degrees): a line for a 1-D
    drive, a map for a 2-D drive. Missing grid points are left blank."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = ["-".join(map(str, d)) for d in result.dihedrals]
    fig, ax = plt.subplots(figsize=(5.5, 4.0), dpi=120)
    if len(result.dihedrals) == 1:
        ax.plot(result.angles[:, 0], result.relative_energies, "o-", color="tab:blue")
        ax.set_xlabel(f"dihedral {names[0]} (degrees)")
        ax.set_ylabel("relative energy (kcal/mol)")
        ax.set_xlim(-180, 180)
        ax.set_xticks(range(-180, 181, 60))
        ax.grid(alpha=0.3)
    else:
        axes = [np.arange(-180 + s, 181, s) for s in result.grid_spacing]
        grid = np.full((len(axes[1]), len(axes[0])), np.nan)
        for (a, b), energy in zip(result.angles, result.relative_energies):
            grid[np.searchsorted(axes[1], b), np.searchsorted(axes[0], a)] = energy
        image = ax.pcolormesh(axes[0], axes[1], grid, shading="nearest", cmap="viridis")
        fig.colorbar(image, ax=ax, label="relative energy (kcal/mol)")
        ax.set_xlabel(f"dihedral {names[0]} (degrees)")
        ax.set_ylabel(f"dihedral {names[1]} (degrees)")
    ax.set_title(f"{result.molecule.name}: {result.method}")
    fig.tight_layout()
    savefig_atomic(fig, path)
    plt.close(fig)
    return path


def write_torsiondrive_extxyz(result: TorsionDriveResult, path: str | Path) -> int:
    """Optimized grid geometries as extended XYZ (energy eV, forces eV/Angstrom), with the
    grid angles (degrees) and relative energy (kcal/mol) in each frame's info. For a
    composite ``HIGH//LOW`` drive the frames are the HIGH single points on the LOW
    geometries (``method`` is HIGH, ``geometry_method`` LOW)."""
    from ase.io import write

    from ffparam.reference.export import records_to_atoms

    frames = records_to_atoms(result.high_records if result.composite else result.records)
    for atoms, angles, relative in zip(frames, result.angles, result.relative_energies):
        atoms.info["geometry_method"] = result.geometry_method
        atoms.info["dihedrals"] = ";".join("-".join(map(str, d)) for d in result.dihedrals)
        atoms.info["angles_degrees"] = np.asarray(angles)
        # the import format of `ffparam bespoke --reference` (ffparam.io.torsion_scans)
        atoms.info["dihedral_atoms"] = " ".join(str(a) for d in result.dihedrals for a in d)
        atoms.info["dihedral_angle"] = np.asarray(angles)
        atoms.info["relative_energy_kcal_mol"] = float(relative)
    with atomic_output(path) as tmp:
        write(str(tmp), frames, format="extxyz")
    return len(frames)
