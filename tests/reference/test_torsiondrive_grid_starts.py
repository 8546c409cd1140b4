"""Torsion drives whose start geometry sits on a grid angle, as geometries read from files of
earlier scans do (issue 14): torsiondrive must find every finished optimization again.

torsiondrive keys a finished optimization by its start geometry truncated to 0.001 Angstrom,
once before and once after an Angstrom -> Bohr -> Angstrom round trip; coordinates written
with 4 decimals sit on those bin edges. Before the fix these drives stopped at iteration 2
with "torsiondrive asked again for 1 finished optimization(s)".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import rdMolTransforms

from ffparam.chem import Molecule
from ffparam.cli.main import main
from ffparam.reference.torsiondrive import (
    GEO_KEY_NUDGE_ANGSTROM,
    run_torsiondrive,
    torsiondrive_coordinates,
)

DATA = Path(__file__).parents[1] / "data" / "reference"
ETHANE_DIHEDRAL = (2, 0, 1, 5)
SPACING = 60


def _geo_key(angstrom: np.ndarray) -> bytes:
    """torsiondrive's own key (dihedral_scanner.get_geo_key), imported independently."""
    from torsiondrive.dihedral_scanner import get_geo_key

    return get_geo_key(np.asarray(angstrom).reshape(-1, 3))


def test_coordinates_survive_torsiondrives_round_trip():
    """Every 0.001 Angstrom multiple in [-20, 20] (the values most likely to flip): the key of
    what torsiondrive holds equals the key of what it reads back, and no coordinate moved
    more than the stated nudge."""
    from geometric.nifty import ang2bohr, bohr2ang

    grid = np.round(np.arange(-20000, 20001) / 1000.0, 3)
    geometry = grid[: len(grid) // 3 * 3].reshape(-1, 3)
    held = np.array(torsiondrive_coordinates(geometry)) * bohr2ang
    read_back = (held * ang2bohr) * bohr2ang
    naive = (geometry.reshape(-1) / 0.529177210903) * bohr2ang
    assert _geo_key(naive) != _geo_key((naive * ang2bohr) * bohr2ang)  # the bug is real here
    assert _geo_key(held) == _geo_key(read_back)
    assert np.abs(held - geometry.reshape(-1)).max() <= 1.01 * GEO_KEY_NUDGE_ANGSTROM


def _on_grid_ethane(angle: float) -> Molecule:
    """Ethane with H-C-C-H set to ``angle`` degrees, written to an SDF block (4 decimals,
    like a file from an earlier scan) and read back."""
    ethane = Molecule.from_smiles("CC", name="ethane").generate_conformers(1, seed=7)
    mol = Chem.Mol(ethane.rdmol)
    rdMolTransforms.SetDihedralDeg(mol.GetConformer(), *ETHANE_DIHEDRAL, angle)
    block = Chem.MolToMolBlock(mol)
    read = Molecule.from_rdkit(Chem.MolFromMolBlock(block, removeHs=False), name="ethane")
    measured = rdMolTransforms.GetDihedralDeg(read.rdmol.GetConformer(), *ETHANE_DIHEDRAL)
    assert abs((measured - angle + 180) % 360 - 180) < 0.01
    return read


@pytest.mark.parametrize("offset", [-0.001, 0.0, 0.001])
@pytest.mark.parametrize("grid_angle", range(-120, 181, SPACING))
def test_drive_from_every_grid_angle(grid_angle, offset):
    molecule = _on_grid_ethane(grid_angle + offset)
    result = run_torsiondrive(molecule, [ETHANE_DIHEDRAL], "gfn2-xtb", spacing_deg=SPACING)
    assert result.complete and len(result.energies) == 360 // SPACING
    # a staggered ethane is the minimum wherever the drive started (three-fold profile)
    assert result.relative_energies[np.isin(result.angles[:, 0], (-120, 0, 120))].min() > 2.0


def test_imidazolylpyridine_from_its_scan_geometry_completes(tmp_path, capsys):
    """The reported command, on a 60-degree grid (the start, 0.003 degrees, is on it)."""
    out = tmp_path / "scan.xyz"
    code = main(["torsiondrive", str(DATA / "imidazolylpyridine.sdf"), "--dihedral", "1,4,7,9",
                 "--spacing", str(SPACING), "--store", str(tmp_path / "td.db"), "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    frames = out.read_text().count("Properties=")
    assert frames == 360 // SPACING


def test_acetamidoimidazole_bespoke_fits_both_rotors(tmp_path):
    """Both rotors were dropped (and the command exited 0); now both are scanned and fitted."""
    from ffparam.workflows.bespoke import BespokeSettings, run_bespoke

    settings = BespokeSettings(spacing_deg=SPACING, md_ps=0, validation_conformers=0,
                               validate_geometry=False, progress=False, charges="gasteiger")
    result = run_bespoke(str(DATA / "acetamidoimidazole.sdf"), tmp_path / "out", settings)
    assert len(result.rotors) == 2
    assert all(r.usable and not r.missing and not r.error for r in result.rotors)
    assert not any("not fitted" in w for w in result.metrics.warnings)
