"""H-bond Thole screening of Drude dipoles (``hbond_thole`` of params.drude) in the MM
engine, against OpenMM (CustomNonbondedForce next to the DrudeForce), on H-bonded methanol
dimers: Sage with AM1-BCC-like fixed charges replaced by the element-typed test force
field, a Drude on C and O, the O type screened."""

import numpy as np
import pytest
import torch
from rdkit import Chem
from scipy.spatial.transform import Rotation

from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.mm import evaluate_openmm
from ffparam.mm.drude import DrudeEngine, build_openmm_drude, evaluate_openmm_drude_scf
from ffparam.params.drude import (
    DRUDE_SECTION,
    HBOND_THOLE_FIELD,
    add_drude,
    check_drude_parameters,
    starting_drude_parameters,
    with_hbond_thole,
)
from tests.mm.element_typed import element_typed_system

HBOND_THOLE = 0.8


def _hbonded_dimers(distances_a=(1.6, 1.8, 2.1), seed: int = 3) -> tuple:
    """Methanol dimers (``CO.CO``) whose second hydroxyl H points at the first O at the
    given O...H distances (Angstrom), each turned about the H-bond axis at random."""
    mol = Molecule.from_smiles("CO.CO").generate_conformers(1, seed=7)
    frags = [np.array(f) for f in Chem.GetMolFrags(mol.rdmol)]
    xyz0 = mol.conformers[0]
    symbols = mol.symbols

    def atoms(frag):
        c = next(i for i in frag if symbols[i] == "C")
        o = next(i for i in frag if symbols[i] == "O")
        h = next(i for i in frag if symbols[i] == "H" and mol.rdmol.GetBondBetweenAtoms(
            int(i), int(o)) is not None)
        return c, o, h

    c1, o1, h1 = atoms(frags[0])
    _, o2, h2 = atoms(frags[1])
    lone = 2 * xyz0[o1] - xyz0[c1] - xyz0[h1]
    lone /= np.linalg.norm(lone)
    rng = np.random.default_rng(seed)
    coords = []
    for r in distances_a:
        part = xyz0[frags[1]] - xyz0[h2]
        oh = xyz0[h2] - xyz0[o2]
        turn, _ = Rotation.align_vectors([-lone], [oh])
        spin = Rotation.from_rotvec(lone * rng.uniform(0, 2 * np.pi))
        xyz = xyz0.copy()
        xyz[frags[1]] = (spin * turn).apply(part) + xyz0[o1] + r * lone
        coords.append(xyz)
    return mol, np.array(coords)


@pytest.fixture(scope="module")
def dimers():
    mol, coords = _hbonded_dimers()
    plain = add_drude(element_typed_system(mol))
    screened = with_hbond_thole(plain, {"O3": HBOND_THOLE})
    return plain, screened, coords


def test_hbond_pairs_are_the_intermolecular_o_drude_donor_pairs(dimers):
    plain, screened, _ = dimers
    drude = screened.drude
    assert len(plain.drude.hbond_pairs) == 0 and (plain.drude.hbond_index < 0).all()
    symbols = screened.molecule.symbols
    assert [symbols[i] for i in drude.donors] == ["H", "H"]
    parents = drude.parents[drude.hbond_pairs[:, 0]]
    assert [symbols[i] for i in parents] == ["O", "O"]
    frags = Chem.GetMolFrags(screened.molecule.rdmol)
    for parent, donor in zip(parents, drude.hbond_pairs[:, 1]):  # other molecule only
        assert (parent in frags[0]) != (donor in frags[0])
    assert screened.parameters.get(DRUDE_SECTION, "O3").values[HBOND_THOLE_FIELD] == 0.8


def test_energy_forces_and_scf_equal_openmm(dimers):
    _, system, coords = dimers
    engine = DrudeEngine(system)
    result = engine.compute(coords)
    export = build_openmm_drude(system)
    drudes = engine.drude_positions(coords)
    energy, forces, groups = evaluate_openmm(export.system,
                                             np.concatenate([coords, drudes], 1),
                                             export.group_names)
    assert np.allclose(energy, result.energy.numpy(), rtol=1e-6, atol=0)
    assert np.allclose(groups["HBondThole"], result.terms["HBondThole"].numpy(),
                       rtol=1e-6, atol=1e-9)
    n = system.n_atoms
    scale = np.abs(forces[:, :n]).max()
    assert np.abs(forces[:, :n] - result.forces.numpy()).max() <= 1e-6 * scale + 1e-7
    assert np.abs(forces[:, n:]).max() < 1e-5  # relaxed: no force left on the Drudes
    scf, scf_drudes = evaluate_openmm_drude_scf(export.system, coords, n)
    assert np.allclose(scf, result.energy.numpy(), rtol=1e-6, atol=0)
    assert np.abs(scf_drudes - drudes).max() < 1e-3


def test_screening_weakens_the_hbond_polarization_and_leaves_fixed_charges(dimers):
    plain, screened, coords = dimers
    p_eng, s_eng = DrudeEngine(plain), DrudeEngine(screened)
    p = s_eng.parameter_vector()
    zero = torch.zeros((len(coords), len(screened.drude), 3), dtype=torch.float64)
    at_rest = s_eng.polarization_terms(torch.as_tensor(coords), zero, p)
    assert float(at_rest["HBondThole"].abs().max()) == 0.0  # d = 0: permanent charges
    frag0 = Chem.GetMolFrags(screened.molecule.rdmol)[0]
    acceptor, donor = next((k, h) for k, h in screened.drude.hbond_pairs.tolist()
                           if h not in frag0)
    axis = coords[:, donor] - coords[:, screened.drude.parents[acceptor]]
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)

    def toward_donor(engine: DrudeEngine) -> np.ndarray:
        return np.einsum("ck,ck->c", engine.relax(coords).numpy()[:, acceptor], axis)

    # the donor H's pull on the acceptor O's Drude is screened (Thole: its field
    # vanishes at short range), so the Drude moves less toward it (or away)
    assert (toward_donor(s_eng) < toward_donor(p_eng) - 1e-3).all()
    assert (toward_donor(p_eng) > 0).all()
    fixed = s_eng.core.energy(coords).numpy()
    induction = s_eng.energy(coords).numpy() - fixed
    assert (induction < 0).all()
    # a large Thole factor screens nothing
    weak = DrudeEngine(with_hbond_thole(plain, {"O3": 60.0}))
    assert np.allclose(weak.energy(coords).numpy(), p_eng.energy(coords).numpy(), atol=1e-9)


def test_forces_and_parameter_gradient_are_finite_differences(dimers):
    _, system, coords = dimers
    engine = DrudeEngine(system)
    xyz = coords[:1]
    forces = engine.compute(xyz).forces.numpy()[0]
    h = 1e-4
    donor = int(system.drude.hbond_pairs[0, 1])
    for atom, axis in ((donor, 0), (donor, 2), (int(system.drude.parents[0]), 1)):
        plus, minus = xyz.copy(), xyz.copy()
        plus[0, atom, axis] += h
        minus[0, atom, axis] -= h
        fd = -(float(engine.energy(plus)[0]) - float(engine.energy(minus)[0])) / (2 * h)
        assert fd == pytest.approx(forces[atom, axis], rel=1e-6, abs=2e-6)
    index = system.drude.hbond_index[system.drude.hbond_index >= 0][0]
    p = engine.parameter_vector().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(engine.energy(xyz, p).sum(), p)
    step = torch.zeros_like(p)
    step[index] = 1e-5
    fd = (float(engine.energy(xyz, p.detach() + step)[0])
          - float(engine.energy(xyz, p.detach() - step)[0])) / 2e-5
    assert float(grad[index]) == pytest.approx(fd, rel=1e-5, abs=1e-9)


def test_bad_hbond_thole_is_one_line():
    mol = Molecule.from_smiles("CO").generate_conformers(1, seed=7)
    system = element_typed_system(mol)
    types = ["C3", "O3", None, None, None, None]
    source = starting_drude_parameters(system, types)
    source.get(DRUDE_SECTION, "O3").values[HBOND_THOLE_FIELD] = -1.0
    with pytest.raises(InputError, match="hbond_thole must be positive"):
        check_drude_parameters(source, types)
    with pytest.raises(InputError, match="no Drude type N3"):
        with_hbond_thole(add_drude(system), {"N3": 1.0})
