"""Torsion-scan import from extended XYZ and QCFractal-style JSON."""

import json
import lzma

import numpy as np
import pytest
from ase import Atoms
from ase.io import write

from ffparam.chem import Molecule, Topology
from ffparam.errors import InputError, MissingFileError
from ffparam.io.torsion_scans import check_atom_order, measure_dihedrals, read_torsion_scans
from ffparam.units import BOHR_ANGSTROM, EV_KCAL_MOL, HARTREE_KCAL_MOL


@pytest.fixture(scope="module")
def butane():
    mol = Molecule.from_smiles("CCCC").generate_conformers(1, seed=1)
    rng = np.random.default_rng(0)
    return mol.with_conformers(mol.conformers[0] + rng.normal(0, 0.05, (3, mol.n_atoms, 3)))


def _frames(mol, energy_key="energy"):
    frames = []
    for n, xyz in enumerate(mol.conformers):
        atoms = Atoms(mol.symbols, positions=xyz)
        atoms.info["dihedral_atoms"] = "0 1 2 3"
        atoms.info[energy_key] = -100.0 + 0.01 * n
        frames.append(atoms)
    return frames


@pytest.mark.parametrize("energy_key,factor", [("energy", EV_KCAL_MOL),
                                               ("energy_hartree", HARTREE_KCAL_MOL)])
def test_extxyz_round_trip(tmp_path, butane, energy_key, factor):
    path = tmp_path / "scan.xyz"
    write(str(path), _frames(butane, energy_key), format="extxyz")
    (scan,) = read_torsion_scans(path)
    assert scan.dihedrals.tolist() == [[0, 1, 2, 3]]
    np.testing.assert_allclose(scan.geometries, butane.conformers, atol=1e-6)
    np.testing.assert_allclose(np.diff(scan.energies), 0.01 * factor, rtol=1e-6)
    np.testing.assert_allclose(scan.angles[:, 0],
                               measure_dihedrals(butane.conformers, np.array([[0, 1, 2, 3]]))[:, 0])
    check_atom_order(scan, butane.symbols, Topology(butane).bonds)


def test_extxyz_errors(tmp_path, butane):
    frames = _frames(butane)
    del frames[1].info["dihedral_atoms"]
    write(str(tmp_path / "a.xyz"), frames, format="extxyz")
    with pytest.raises(InputError, match="frame 1: no dihedral_atoms"):
        read_torsion_scans(tmp_path / "a.xyz")
    frames = _frames(butane)
    del frames[2].info["energy"]
    write(str(tmp_path / "b.xyz"), frames, format="extxyz")
    with pytest.raises(InputError, match="frame 2: no energy"):
        read_torsion_scans(tmp_path / "b.xyz")
    with pytest.raises(MissingFileError):
        read_torsion_scans(tmp_path / "none.xyz")
    (tmp_path / "c.csv").write_text("x")
    with pytest.raises(InputError, match="unknown torsion-scan file type"):
        read_torsion_scans(tmp_path / "c.csv")


def test_atom_order_mismatch_detected(tmp_path, butane):
    frames = _frames(butane)
    for atoms in frames:  # swap a carbon and a hydrogen position-and-symbol-wise
        order = list(range(len(atoms)))
        order[0], order[4] = order[4], order[0]
        atoms.set_chemical_symbols([atoms.get_chemical_symbols()[i] for i in order])
        atoms.set_positions(atoms.get_positions()[order])
    write(str(tmp_path / "swapped.xyz"), frames, format="extxyz")
    (scan,) = read_torsion_scans(tmp_path / "swapped.xyz")
    with pytest.raises(InputError, match="atom order does not match"):
        check_atom_order(scan, butane.symbols, Topology(butane).bonds)
    # same elements, permuted hydrogens of different carbons: caught by bond lengths
    frames = _frames(butane)
    for atoms in frames:
        pos = atoms.get_positions()
        pos[[4, 13]] = pos[[13, 4]]
        atoms.set_positions(pos)
    write(str(tmp_path / "h.xyz"), frames, format="extxyz")
    (scan,) = read_torsion_scans(tmp_path / "h.xyz")
    with pytest.raises(InputError, match="apart in scan frame"):
        check_atom_order(scan, butane.symbols, Topology(butane).bonds)


@pytest.mark.parametrize("compress", [False, True])
def test_qcfractal_json(tmp_path, butane, compress):
    record = {
        "id": 123,
        "keywords": {"dihedrals": [[0, 1, 2, 3]], "grid_spacing": [15]},
        "final_energies": {f"[{a}]": -158.1 + 0.001 * i
                           for i, a in enumerate((-60, 60, 180))},
        "final_molecules": {f"[{a}]": {"symbols": butane.symbols,
                                       "geometry": (xyz / BOHR_ANGSTROM).ravel().tolist()}
                            for a, xyz in zip((-60, 60, 180), butane.conformers)},
        "specification": {"qc_specification": {"method": "b3lyp-d3bj", "basis": "dzvp",
                                                "program": "psi4"}},
        "initial_molecule": {"identifiers": {
            "canonical_isomeric_explicit_hydrogen_mapped_smiles": butane.to_smiles(mapped=True)}},
    }
    text = json.dumps({"records": [record]})
    path = tmp_path / ("td.json.xz" if compress else "td.json")
    if compress:
        with lzma.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    (scan,) = read_torsion_scans(path)
    assert scan.angles[:, 0].tolist() == [-60.0, 60.0, 180.0]
    np.testing.assert_allclose(scan.geometries, butane.conformers, atol=1e-9)
    np.testing.assert_allclose(scan.energies - scan.energies[0],
                               [0, 0.001 * HARTREE_KCAL_MOL, 0.002 * HARTREE_KCAL_MOL])
    assert scan.provenance["method"] == "b3lyp-d3bj" and scan.provenance["record_id"] == 123
    assert scan.provenance["mapped_smiles"].startswith("[C:1]") or "mapped_smiles" in \
        scan.provenance
    del record["final_molecules"]["[60]"]
    path.with_suffix(".bad").write_text("")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(record))
    with pytest.raises(InputError, match="no geometry"):
        read_torsion_scans(bad)
