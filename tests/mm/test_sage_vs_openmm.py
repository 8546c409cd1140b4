"""Sage-parameterized molecules (13: small, rings, halogens, S, P, charged, drug-like with
30-60 atoms): MMEngine energies, forces and per-term energies against OpenMM's Reference
platform running the exported System."""

import numpy as np
import pytest

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.mm import MMEngine, build_openmm, evaluate_openmm
from tests.mm.test_engine_vs_openmm import MOLECULES


@pytest.mark.parametrize("name", sorted(MOLECULES))
def test_sage_matches_openmm(name):
    mol = Molecule.from_smiles(MOLECULES[name], name=name).generate_conformers(3, seed=5)
    system = assign_parameters(mol, "sage", charges="gasteiger")
    result = MMEngine(system).compute(mol.conformers)
    export = build_openmm(system)
    energy, forces, groups = evaluate_openmm(export.system, mol.conformers, export.group_names)
    np.testing.assert_allclose(result.energy.numpy(), energy, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(result.forces.numpy(), forces, atol=1e-4)
    terms = result.terms_numpy()
    for group, values in groups.items():
        ours = terms["vdW"] + terms["Electrostatics"] if group == "Nonbonded" else terms[group]
        np.testing.assert_allclose(ours, values, rtol=1e-6, atol=1e-6, err_msg=group)
