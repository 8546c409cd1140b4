"""Bespoke SMIRKS isolate one bond; bespoke torsion parameters start at Sage's energy and
survive an offxml round trip (re-typed by SMIRNOFF matching, independent of the rebinding)."""

import numpy as np
import pytest

from ffparam.assign import assign_parameters
from ffparam.assign.smirnoff import SmirnoffForceField
from ffparam.chem import Molecule, Topology
from ffparam.fit.bespoke_torsions import make_bespoke_torsions
from ffparam.fit.smirks import (
    bespoke_torsion_smirks,
    bespoke_torsion_type_smirks,
    equivalent_bonds,
    matched_central_bonds,
)
from ffparam.mm import MMEngine

MOLECULES = ["CCCC(=O)OC", "Clc1cccc(c1)-c1ccccc1", "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
             "CC(=O)Nc1ccc(O)cc1", "OCCO", "CCOP(=O)(OCC)OCC"]


@pytest.mark.parametrize("smiles", MOLECULES)
def test_smirks_match_exactly_the_symmetry_class(smiles):
    mol = Molecule.from_smiles(smiles)
    topo = Topology(mol)
    for bond in topo.find_rotatable_bonds(include_terminal_rotors=True).tolist():
        bond = tuple(bond)
        smirks = bespoke_torsion_smirks(mol, bond)
        assert matched_central_bonds(mol, smirks) == equivalent_bonds(topo, bond)
        groups = bespoke_torsion_type_smirks(mol, bond)
        covered = set().union(*(g for _, g in groups))
        expected = {tuple(r) if r[0] < r[3] else tuple(r[::-1])
                    for b in equivalent_bonds(topo, bond) for r in topo.torsions_around(b).tolist()}
        assert covered == expected
        assert sum(len(g) for _, g in groups) == len(expected)  # groups are disjoint


def test_triethyl_phosphate_equivalent_bonds_share_smirks():
    mol = Molecule.from_smiles("CCOP(=O)(OCC)OCC")
    topo = Topology(mol)
    bond = tuple(topo.rotatable_bonds[0].tolist())
    assert len(equivalent_bonds(topo, bond)) == 3  # the three P-O (or O-C) bonds


@pytest.mark.parametrize("smiles", ["CC(=O)Nc1ccc(O)cc1", "Clc1cccc(c1)-c1ccccc1"])
def test_bespoke_parameters_start_at_sage_and_round_trip_offxml(tmp_path, smiles):
    mol = Molecule.from_smiles(smiles).generate_conformers(3, seed=4)
    start = assign_parameters(mol, "sage", charges="gasteiger")
    bespoke = make_bespoke_torsions(start, Topology(mol).rotatable_bonds.tolist())
    assert bespoke.free_keys()
    e_start = MMEngine(start).energy(mol.conformers).numpy()
    e_bespoke = MMEngine(bespoke.system).energy(mol.conformers).numpy()
    np.testing.assert_allclose(e_bespoke, e_start, atol=1e-9)
    # change the bespoke barriers, write offxml, re-type from the file: same energies
    values = bespoke.system.parameters.vector()
    for key in bespoke.free_keys():
        values[bespoke.system.parameters.index(key)] += 0.37
    changed = bespoke.system.with_parameters(bespoke.system.parameters.with_vector(values))
    extra = bespoke.parameters.copy()
    for section, par in extra:
        par.values.update(changed.parameters.get(section, par.id).values)
    path = SmirnoffForceField.load("sage").to_offxml(tmp_path / "bespoke.offxml", extra=extra)
    retyped = SmirnoffForceField.load(path).parameterize(mol, charges=start.charges())
    np.testing.assert_allclose(MMEngine(retyped).energy(mol.conformers).numpy(),
                               MMEngine(changed).energy(mol.conformers).numpy(), atol=1e-9)
    assert not np.allclose(MMEngine(changed).energy(mol.conformers).numpy(), e_start)
