"""MMEngine against OpenMM (independent implementation) and finite differences.

Molecules cover small ones, rings, halogens, S, P, charged species and drug-like ones of
30-60 atoms; each is evaluated on several ETKDG conformers. The force field here is the
element-typed test force field (every functional form exercised); the Sage and GAFF2 paths
are checked against OpenMM in tests/assign.
"""

import numpy as np
import pytest

from ffparam.chem import Molecule
from ffparam.mm import MMEngine, build_openmm, evaluate_openmm
from tests.mm.element_typed import element_typed_system

MOLECULES = {
    "ethane": "CC",
    "methanol": "CO",
    "cyclopropane": "C1CC1",
    "benzene": "c1ccccc1",
    "bromobenzene": "Brc1ccccc1",
    "thiophene": "c1ccsc1",
    "trimethyl_phosphate": "COP(=O)(OC)OC",
    "acetate": "CC(=O)[O-]",
    "methylammonium": "C[NH3+]",
    "ibuprofen": "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "chlorpromazine": "CN(C)CCCN1c2ccccc2Sc2ccc(Cl)cc21",
    "celecoxib": "Cc1ccc(cc1)-c1cc(nn1-c1ccc(cc1)S(N)(=O)=O)C(F)(F)F",
    "diazepam": "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21",
}

OPTIONS = {
    "ethane": {"morse": True},
    "methanol": {"urey_bradley": True, "nbfix": ("H", "H")},
    "benzene": {"harmonic_impropers": True},
    "thiophene": {"combining_rule": "geometric"},
    "acetate": {"nbfix": ("H", "O"), "urey_bradley": True},
    "chlorpromazine": {"nbfix": ("Cl", "N")},
    "ibuprofen": {"harmonic_impropers": True, "morse": True},
}


@pytest.fixture(scope="module", params=sorted(MOLECULES))
def case(request):
    name = request.param
    mol = Molecule.from_smiles(MOLECULES[name], name=name).generate_conformers(4, seed=7)
    system = element_typed_system(mol, **OPTIONS.get(name, {}))
    # random displacements so no conformer sits at a minimum of every term
    rng = np.random.default_rng(11)
    coords = mol.conformers + rng.normal(0, 0.05, mol.conformers.shape)
    return name, system, coords


def test_drug_like_sizes_present():
    sizes = [Molecule.from_smiles(s).n_atoms for s in MOLECULES.values()]
    assert sum(30 <= n <= 60 for n in sizes) >= 3


def test_energy_forces_terms_match_openmm(case):
    name, system, coords = case
    if name in ("methanol", "acetate", "chlorpromazine"):
        assert len(system.nonbonded.nbfix_rows) > 0
    result = MMEngine(system).compute(coords)
    export = build_openmm(system)
    e_ref, f_ref, groups = evaluate_openmm(export.system, coords, export.group_names)
    np.testing.assert_allclose(result.energy.numpy(), e_ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(result.forces.numpy(), f_ref, atol=1e-4)
    terms = result.terms_numpy()
    for group_name, values in groups.items():
        ours = terms["vdW"] + terms["Electrostatics"] if group_name == "Nonbonded" \
            else terms[group_name]
        np.testing.assert_allclose(ours, values, rtol=1e-6, atol=1e-6, err_msg=group_name)
    total = sum(terms.values())
    np.testing.assert_allclose(total, result.energy.numpy(), rtol=1e-12)


def test_forces_match_finite_differences(case):
    _, system, coords = case
    engine = MMEngine(system)
    x = coords[:1]
    forces = engine.compute(x).forces.numpy()[0]
    h = 1e-5
    rng = np.random.default_rng(3)
    for atom in rng.choice(system.n_atoms, size=min(6, system.n_atoms), replace=False):
        for dim in range(3):
            plus, minus = x.copy(), x.copy()
            plus[0, atom, dim] += h
            minus[0, atom, dim] -= h
            fd = -(engine.energy(plus) - engine.energy(minus)).item() / (2 * h)
            assert forces[atom, dim] == pytest.approx(fd, abs=2e-5, rel=1e-6)


def test_batched_equals_one_by_one(case):
    _, system, coords = case
    engine = MMEngine(system)
    batched = engine.energy(coords).numpy()
    single = np.array([engine.energy(c).item() for c in coords])
    np.testing.assert_allclose(batched, single, rtol=1e-13)
