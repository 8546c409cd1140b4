"""Drude oscillators in the MM engine against OpenMM's DrudeForce and finite differences.

The element-typed test force field (tests/mm/element_typed.py) gives the fixed-charge part;
every heavy atom gets a Drude particle with the starting polarizabilities of
:mod:`ffparam.params.drude`, Thole 1.3 per atom.
"""

import numpy as np
import pytest
import torch
from rdkit import Chem
from scipy.spatial.transform import Rotation

from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.mm import evaluate_openmm
from ffparam.mm.drude import DrudeEngine, build_openmm_drude, evaluate_openmm_drude_scf
from ffparam.params import Parameter, ParameterSet
from ffparam.params.drude import DRUDE_SECTION, add_drude, drude_charge
from tests.mm.element_typed import element_typed_system

MOLECULES = {
    "water": "O",
    "methanol": "CO",
    "benzene": "c1ccccc1",
    "ccl4": "ClC(Cl)(Cl)Cl",
    "acetone": "CC(C)=O",
    "acetamide": "CC(N)=O",
    "pyridine": "c1ccncc1",
    "chlorobenzene": "Clc1ccccc1",
}


def _drude_system(smiles: str, n_conformers: int = 2, seed: int = 5):
    mol = Molecule.from_smiles(smiles).generate_conformers(1, seed=7)
    rng = np.random.default_rng(seed)
    coords = mol.conformers[:1] + rng.normal(0, 0.04, (n_conformers, mol.n_atoms, 3))
    return add_drude(element_typed_system(mol)), coords


def _dimer_system(smiles: str, n_conformers: int = 2, seed: int = 5):
    """Two molecules (``smiles.smiles``) 2.5 A apart beyond their extents, the second one
    randomly rotated: intermolecular fields polarize every Drude (in a small molecule
    whose atom pairs are all 1-2/1-3, such as water or CCl4, nothing polarizes)."""
    mol = Molecule.from_smiles(f"{smiles}.{smiles}").generate_conformers(1, seed=7)
    frags = [np.array(f) for f in Chem.GetMolFrags(mol.rdmol)]
    rng = np.random.default_rng(seed)
    coords = []
    for _ in range(n_conformers):
        xyz = mol.conformers[0].copy()
        parts = [xyz[f] - xyz[f].mean(0) for f in frags]
        rotation = Rotation.random(random_state=rng).as_matrix()
        parts[1] = parts[1] @ rotation.T
        gap = sum(np.linalg.norm(part, axis=1).max() for part in parts) + 2.5
        xyz[frags[0]], xyz[frags[1]] = parts[0], parts[1] + [gap, 0.0, 0.0]
        coords.append(xyz + rng.normal(0, 0.02, xyz.shape))
    return add_drude(element_typed_system(mol)), np.array(coords)


@pytest.fixture(scope="module", params=sorted(MOLECULES))
def case(request):
    system, coords = _dimer_system(MOLECULES[request.param])
    engine = DrudeEngine(system)
    return request.param, system, engine, coords, engine.compute(coords)


def test_energy_and_forces_equal_openmm_drudeforce(case):
    """At ffparam's relaxed Drude positions OpenMM's System (NonbondedForce + DrudeForce)
    gives the same energy (1e-6 relative), the same core forces, and ~zero Drude forces."""
    name, system, engine, coords, result = case
    export = build_openmm_drude(system)
    drudes = engine.drude_positions(coords)
    energy, forces, _ = evaluate_openmm(export.system, np.concatenate([coords, drudes], 1))
    ours = result.energy.numpy()
    assert np.allclose(energy, ours, rtol=1e-6, atol=0), (name, energy, ours)
    n = system.n_atoms
    scale = np.abs(forces[:, :n]).max()
    assert np.abs(forces[:, :n] - result.forces.numpy()).max() <= 1e-6 * scale + 1e-7, name
    assert np.abs(forces[:, n:]).max() < 1e-5, name  # SCF: no force left on the Drudes


def test_energy_equals_openmm_drude_scf_integrator(case):
    """OpenMM's own relaxation (DrudeSCFIntegrator, cores fixed by mass 0) reaches the same
    energy (1e-6 relative). OpenMM's L-BFGS stops with up to ~0.03 kcal/mol/A left on the
    Drudes (benzene, pyridine), so ffparam's Newton minimum is lower or equal and the
    induction energies (E_SCF - E with Drudes on their parents) agree to 0.2 %."""
    name, system, engine, coords, result = case
    export = build_openmm_drude(system)
    scf_energy, scf_drudes = evaluate_openmm_drude_scf(export.system, coords, system.n_atoms)
    ours = result.energy.numpy()
    assert np.allclose(scf_energy, ours, rtol=1e-6, atol=0), name
    assert np.abs(scf_drudes - engine.drude_positions(coords)).max() < 1e-3
    unrelaxed, _, _ = evaluate_openmm(
        export.system, np.concatenate([coords, coords[:, system.drude.parents]], 1))
    fixed = engine.core.energy(coords).numpy()  # fixed charges == Drudes on their parents
    assert np.allclose(unrelaxed, fixed, rtol=1e-7)
    induction_openmm, induction = scf_energy - unrelaxed, ours - fixed
    assert np.all(induction < -1e-4), name
    assert np.all(induction <= induction_openmm + 1e-7), name
    assert np.allclose(induction, induction_openmm, rtol=2e-3, atol=0), name


def test_swm4_ndp_drude_charge_from_k_and_alpha():
    """SWM4-NDP water (Lamoureux et al., Chem. Phys. Lett. 418, 245 (2006)): alpha 0.97825
    A^3, K_D = 500 kcal/mol/A^2 in CHARMM's E = K d^2, q_D = -1.71636 e; ffparam's k = 1000
    in E = k/2 d^2 reproduces it (k = 500 would be the sqrt(2) trap); the last digit
    differs by CHARMM's Coulomb constant 332.0716 against ffparam's 332.0637."""
    assert drude_charge(0.97825) == pytest.approx(-1.71636, abs=5e-5)
    assert drude_charge(0.97825, 500.0) == pytest.approx(-1.71636 / np.sqrt(2), abs=2e-5)


def test_total_charge_unchanged_and_batch_equals_single():
    system, coords = _drude_system("CC(C)=O", n_conformers=3)
    engine = DrudeEngine(system)
    q, _, _ = engine._site_charges(engine.parameter_vector())
    assert float(q.sum()) == pytest.approx(float(system.charges().sum()), abs=1e-12)
    batch = engine.compute(coords).energy.numpy()
    single = [engine.compute(c).energy.item() for c in coords]
    assert np.allclose(batch, single, rtol=1e-12)


def test_forces_are_finite_differences_of_relaxed_energy():
    system, coords = _drude_system("CC(N)=O", n_conformers=1)
    engine = DrudeEngine(system)
    forces = engine.compute(coords).forces.numpy()[0]
    h, rng = 1e-4, np.random.default_rng(0)
    for atom, axis in zip(rng.integers(0, system.n_atoms, 5), rng.integers(0, 3, 5)):
        plus, minus = coords.copy(), coords.copy()
        plus[0, atom, axis] += h
        minus[0, atom, axis] -= h
        fd = -(engine.energy(plus) - engine.energy(minus)).item() / (2 * h)
        assert fd == pytest.approx(forces[atom, axis], abs=2e-6, rel=1e-6)


def test_parameter_gradients_include_the_drude_response():
    """dE/d(alpha, thole, charge) and d(forces)/d(alpha) by autograd through the implicit
    derivative equal central finite differences of the re-relaxed energy and forces."""
    system, coords = _drude_system("c1ccncc1", n_conformers=1)
    engine = DrudeEngine(system)
    p0 = engine.parameter_vector()
    keys = system.parameters.keys()
    picks = [k for k, key in enumerate(keys) if key.section == DRUDE_SECTION][:4]
    picks.append(next(k for k, key in enumerate(keys) if key.section == "Charges"))
    p = p0.clone().requires_grad_(True)
    result = engine.compute(coords, p)
    (grad_e,) = torch.autograd.grad(result.energy.sum(), p, retain_graph=True)
    (grad_f,) = torch.autograd.grad(result.forces[0, 0, 0], p)
    h = 1e-5
    for k in picks:
        step = torch.zeros_like(p0)
        step[k] = h
        plus, minus = engine.compute(coords, p0 + step), engine.compute(coords, p0 - step)
        fd_e = (plus.energy - minus.energy).item() / (2 * h)
        fd_f = (plus.forces[0, 0, 0] - minus.forces[0, 0, 0]).item() / (2 * h)
        assert fd_e == pytest.approx(grad_e[k].item(), rel=1e-5, abs=1e-6), keys[k]
        assert fd_f == pytest.approx(grad_f[k].item(), rel=1e-4, abs=1e-5), keys[k]


def test_bad_drude_input_is_one_line_before_any_calculation():
    mol = Molecule.from_smiles("CO").generate_conformers(1, seed=1)
    system = element_typed_system(mol)
    types = ["X", "Y"] + [None] * (mol.n_atoms - 2)
    source = ParameterSet()
    source.add(DRUDE_SECTION, Parameter("X", {"alpha": 1.5, "thole": 1.3}))
    with pytest.raises(InputError, match="'Y' has no polarizability"):
        add_drude(system, types, source)
    source.add(DRUDE_SECTION, Parameter("Y", {"thole": 1.3}))
    with pytest.raises(InputError, match="'Y' has no polarizability"):
        add_drude(system, types, source)
    source.add(DRUDE_SECTION, Parameter("Y", {"alpha": -0.5}))
    with pytest.raises(InputError, match="alpha must be positive") as err:
        add_drude(system, types, source)
    assert "\n" not in str(err.value)
