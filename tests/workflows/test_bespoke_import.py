"""`ffparam bespoke --reference`: imported torsion scans (extended XYZ and QCFractal JSON)
replace the torsion drives, go into the Store with their provenance, and are checked
against the molecule's atom order. The imported level here is MMFF94 (an independent
surface, cheap); the pipeline does not care which level produced the scan."""

import json
import lzma
import sqlite3

import numpy as np
import pytest

from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.units import BOHR_ANGSTROM, KCAL_MOL_EV
from ffparam.workflows.bespoke import BespokeSettings, run_bespoke
from tests.fit.mmff_scan import mmff_scan, write_scan_extxyz

BARE = dict(md_ps=0, validation_conformers=0, validate_geometry=False, progress=False,
            population_mc_steps=0,
            charges="gasteiger")
DIHEDRAL = (0, 1, 2, 8)  # ethanol C-C-O-H


@pytest.fixture(scope="module")
def ethanol_scan(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("import")
    mol = Molecule.from_smiles("CCO").generate_conformers(1, seed=5)
    angles, geoms, energies = mmff_scan(mol, DIHEDRAL, spacing=30)
    write_scan_extxyz(tmp / "scan.xyz", mol, DIHEDRAL, angles, geoms, energies)
    record = {
        "id": 7, "keywords": {"dihedrals": [list(DIHEDRAL)], "grid_spacing": [30]},
        "final_energies": {f"[{int(a)}]": float(e) / 627.509474 for a, e in
                           zip(angles, energies)},
        "final_molecules": {f"[{int(a)}]": {"symbols": mol.symbols,
                                            "geometry": (g / BOHR_ANGSTROM).ravel().tolist()}
                            for a, g in zip(angles, geoms)},
        "specification": {"qc_specification": {"method": "mmff94", "program": "rdkit"}},
    }
    with lzma.open(tmp / "td.json.xz", "wt") as handle:
        json.dump({"records": [record]}, handle)
    return tmp, energies


@pytest.mark.parametrize("name", ["scan.xyz", "td.json.xz"])
def test_imported_scan_is_fitted_without_qm(tmp_path, ethanol_scan, name):
    folder, energies = ethanol_scan
    out = tmp_path / "run"
    result = run_bespoke("CCO", out, BespokeSettings(references=[folder / name], **BARE))
    (rotor,) = result.rotors
    assert rotor.source.endswith(name) and rotor.n_jobs == len(energies)
    entry = result.metrics.rotors[0]
    assert entry.rmse_fitted < entry.rmse_start
    with sqlite3.connect(out / "ffparam.db") as con:
        rows = con.execute("SELECT method, status FROM records").fetchall()
    assert len(rows) == len(energies)
    assert all(status == "complete" and method.startswith("imported") for method, status in rows)
    if name.endswith(".xz"):
        assert rows[0][0] == "imported:mmff94"
    relative = result.rotors[0].profile.energies - result.rotors[0].profile.energies.min()
    np.testing.assert_allclose(np.sort(relative), np.sort(energies - energies.min()),
                               atol=1e-4)


def test_wrong_atom_order_is_refused(tmp_path, ethanol_scan):
    folder, _ = ethanol_scan
    # the same scan read for a molecule written with another atom order (OCC)
    with pytest.raises(InputError, match="atom order does not match"):
        run_bespoke("OCC", tmp_path / "x", BespokeSettings(references=[folder / "scan.xyz"],
                                                          **BARE))
    assert not (tmp_path / "x" / "ffparam.db").exists()


def test_energy_units_of_extxyz(ethanol_scan):
    from ffparam.io.torsion_scans import read_torsion_scans

    folder, energies = ethanol_scan
    (scan,) = read_torsion_scans(folder / "scan.xyz")
    np.testing.assert_allclose(scan.energies, energies, rtol=1e-9)  # eV in the file
    assert KCAL_MOL_EV < 0.05
