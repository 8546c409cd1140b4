"""MMFF94 and UFF reference energy models.

Independent references: RDKit's force fields called directly on the same conformers,
the published MMFF94 functional forms evaluated by hand from RDKit's per-term parameters
(Halgren, J. Comput. Chem. 17, 490 (1996): bond stretch with cubic/quartic terms,
buffered 14-7 van der Waals, buffered Coulomb with 1-4 scaled by 0.75), the UFF
Lennard-Jones form (Rappe et al., JACS 114, 10024 (1992)), and central finite differences
for the forces.
"""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import rdForceFieldHelpers as ffh

from ffparam.assign.rdkit_models import MMFF_TERMS, RDKitEnergyModel
from ffparam.chem import Molecule
from ffparam.errors import InputError, ParameterAssignmentError


@pytest.fixture(scope="module")
def acetaminophen() -> Molecule:
    mol = Molecule.from_smiles("CC(=O)Nc1ccc(O)cc1", name="acetaminophen")
    mol = mol.generate_conformers(3, rms_threshold=0.0, optimize=None)
    return mol


def _distorted(molecule: Molecule, scale: float = 0.05, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return molecule.conformers + rng.normal(scale=scale, size=molecule.conformers.shape)


def _with_conformers(molecule: Molecule, positions: np.ndarray) -> Chem.Mol:
    return molecule.with_conformers(positions).rdmol


@pytest.mark.parametrize("variant", ["mmff94", "mmff94s"])
def test_mmff_total_and_terms_match_rdkit(acetaminophen, variant):
    positions = _distorted(acetaminophen)
    result = RDKitEnergyModel(acetaminophen, variant).compute(positions)
    mol = _with_conformers(acetaminophen, positions)
    props = ffh.MMFFGetMoleculeProperties(mol, mmffVariant=variant.upper().replace("S", "s"))
    direct = [ffh.MMFFGetMoleculeForceField(mol, props, confId=c).CalcEnergy()
              for c in range(len(positions))]
    np.testing.assert_allclose(result.energy, direct, rtol=1e-12, atol=1e-10)
    assert set(result.terms) == set(MMFF_TERMS)
    np.testing.assert_allclose(sum(result.terms.values()), result.energy, atol=1e-9)
    assert result.forces.shape == positions.shape


def test_mmff_terms_against_hand_formulas(acetaminophen):
    """Bond stretch, vdW (buffered 14-7) and electrostatics (buffered Coulomb) from the
    MMFF94 paper's formulas with RDKit's parameters equal the per-term energies."""
    positions = _distorted(acetaminophen, seed=1)
    terms = RDKitEnergyModel(acetaminophen, "mmff94").compute(positions).terms
    mol = acetaminophen.rdmol
    props = ffh.MMFFGetMoleculeProperties(mol)
    dist = Chem.GetDistanceMatrix(mol)
    n = mol.GetNumAtoms()
    charges = np.array([props.GetMMFFPartialCharge(i) for i in range(n)])
    for c, xyz in enumerate(positions):
        bonds = 0.0
        for b in mol.GetBonds():
            i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
            kb, r0 = props.GetMMFFBondStretchParams(mol, i, j)[1:]
            dr = np.linalg.norm(xyz[i] - xyz[j]) - r0
            bonds += 143.9325 * kb / 2 * dr**2 * (1 - 2 * dr + 7 / 12 * 4 * dr**2)
        vdw = elec = 0.0
        for i in range(n):
            for j in range(i + 1, n):
                if dist[i, j] < 3:
                    continue
                r = np.linalg.norm(xyz[i] - xyz[j])
                _, _, rstar, eps = props.GetMMFFVdWParams(i, j)
                vdw += eps * (1.07 * rstar / (r + 0.07 * rstar)) ** 7 * (
                    1.12 * rstar**7 / (r**7 + 0.12 * rstar**7) - 2)
                scale = 0.75 if dist[i, j] == 3 else 1.0
                elec += scale * 332.0716 * charges[i] * charges[j] / (r + 0.05)
        assert terms["Bonds"][c] == pytest.approx(bonds, rel=1e-9)
        assert terms["vdW"][c] == pytest.approx(vdw, rel=1e-9)
        assert terms["Electrostatics"][c] == pytest.approx(elec, rel=1e-9)


def test_uff_total_and_vdw_split(acetaminophen):
    positions = _distorted(acetaminophen, seed=2)
    model = RDKitEnergyModel(acetaminophen, "uff")
    result = model.compute(positions)
    mol = _with_conformers(acetaminophen, positions)
    direct = [ffh.UFFGetMoleculeForceField(mol, confId=c).CalcEnergy()
              for c in range(len(positions))]
    np.testing.assert_allclose(result.energy, direct, rtol=1e-12, atol=1e-10)
    assert set(result.terms) == {"Bonded", "vdW"} == set(model.term_names)
    np.testing.assert_allclose(result.terms["Bonded"] + result.terms["vdW"], result.energy,
                               atol=1e-9)
    # UFF van der Waals: D_ij [(x_ij/r)^12 - 2 (x_ij/r)^6] over pairs 3 or more bonds apart
    dist = Chem.GetDistanceMatrix(acetaminophen.rdmol)
    n = acetaminophen.n_atoms
    for c, xyz in enumerate(positions):
        vdw = 0.0
        for i in range(n):
            for j in range(i + 1, n):
                if dist[i, j] >= 3:
                    x, d = ffh.GetUFFVdWParams(acetaminophen.rdmol, i, j)
                    r = np.linalg.norm(xyz[i] - xyz[j])
                    vdw += d * ((x / r) ** 12 - 2 * (x / r) ** 6)
        assert result.terms["vdW"][c] == pytest.approx(vdw, rel=1e-9)


@pytest.mark.parametrize("model", ["mmff94", "uff"])
def test_forces_are_minus_the_finite_difference_gradient(acetaminophen, model):
    positions = _distorted(acetaminophen, seed=3)[:1]
    engine = RDKitEnergyModel(acetaminophen, model)
    forces = engine.compute(positions, terms=False).forces[0]
    h = 1e-5
    numeric = np.zeros_like(forces)
    for atom in range(acetaminophen.n_atoms):
        for k in range(3):
            plus, minus = positions.copy(), positions.copy()
            plus[0, atom, k] += h
            minus[0, atom, k] -= h
            numeric[atom, k] = -(engine.energy(plus)[0] - engine.energy(minus)[0]) / (2 * h)
    np.testing.assert_allclose(forces, numeric, atol=2e-5)
    assert np.abs(forces).max() > 1.0  # a distorted geometry: the check is not trivial


@pytest.mark.parametrize("model", ["mmff94", "uff"])
def test_optimize_matches_rdkit_and_reaches_a_minimum(acetaminophen, model):
    start = _distorted(acetaminophen, seed=4)
    engine = RDKitEnergyModel(acetaminophen, model)
    result = engine.optimize(start)
    assert result.positions.shape == start.shape and result.converged.all()
    assert np.all(result.energy < engine.energy(start))
    assert np.abs(engine.compute(result.positions, terms=False).forces).max() < 0.05
    mol = _with_conformers(acetaminophen, start)
    if model == "uff":
        ref = ffh.UFFOptimizeMoleculeConfs(mol, numThreads=1, maxIters=2000)
    else:
        ref = ffh.MMFFOptimizeMoleculeConfs(mol, numThreads=1, maxIters=2000)
    np.testing.assert_allclose(result.energy, [e for _, e in ref], atol=1e-6)


def test_salt_includes_interfragment_interactions():
    """Ion pairs interact (RDKit's default would drop interactions between fragments)."""
    salt = Molecule.from_smiles("CC(=O)[O-].C[NH3+]").generate_conformers(1)
    mol = salt.rdmol
    props = ffh.MMFFGetMoleculeProperties(mol)
    ours = RDKitEnergyModel(salt, "mmff94").compute(salt.conformers)
    full = ffh.MMFFGetMoleculeForceField(mol, props, ignoreInterfragInteractions=False)
    split = ffh.MMFFGetMoleculeForceField(mol, props)
    assert ours.energy[0] == pytest.approx(full.CalcEnergy(), rel=1e-12)
    assert abs(full.CalcEnergy() - split.CalcEnergy()) > 1.0


def test_typing_errors_name_the_atoms():
    with pytest.raises(ParameterAssignmentError, match=r"MMFF94 cannot type atom.* B1"):
        RDKitEnergyModel(Molecule.from_smiles("CB(C)C"), "mmff94")
    with pytest.raises(ParameterAssignmentError, match=r"UFF cannot type Xe0 \(UFF label"):
        RDKitEnergyModel(Molecule.from_smiles("[Xe]"), "uff")
    assert RDKitEnergyModel(Molecule.from_smiles("CB(C)C"), "uff").model == "uff"


def test_bad_input(acetaminophen):
    with pytest.raises(InputError, match="unknown RDKit energy model"):
        RDKitEnergyModel(acetaminophen, "mmff2000")
    engine = RDKitEnergyModel(acetaminophen, "mmff94")
    with pytest.raises(InputError, match="shape"):
        engine.compute(np.zeros((1, 3, 3)))
    bad = acetaminophen.conformers[:1].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="non-finite"):
        engine.compute(bad)
    single = engine.compute(acetaminophen.conformers[0])  # (n_atoms, 3) is one conformer
    assert single.energy.shape == (1,)
