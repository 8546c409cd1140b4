"""The fast no-gradient paths of MMEngine.compute against the autograd reference.

Three evaluations of the same conformers must agree to 1e-10 (energies, per-term energies,
forces): the compiled kernel (:mod:`ffparam.mm.kernel`, where a C compiler is available),
the pure-PyTorch closed-form path (``use_kernel=False``) and autograd of the term energies
(``values.requires_grad``), which shares no force code with either.
"""

import warnings

import numpy as np
import pytest
import torch

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.mm import MMEngine
from ffparam.mm import kernel as K
from tests.mm.element_typed import element_typed_system

TOL = {"rtol": 1e-10, "atol": 1e-10}
HALOPERIDOL = "OC1(CCN(CCCC(=O)c2ccc(F)cc2)CC1)c1ccc(Cl)cc1"
CELECOXIB = "Cc1ccc(cc1)-c1cc(nn1-c1ccc(cc1)S(N)(=O)=O)C(F)(F)F"


def _noisy_conformers(mol: Molecule, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, mol.n_conformers, n)
    return mol.conformers[picks] + rng.normal(0, 0.05, (n, mol.n_atoms, 3))


def _three_paths(system, coords):
    kernel_engine = MMEngine(system)
    pure_engine = MMEngine(system)
    pure_engine.use_kernel = False
    values = pure_engine.parameter_vector().requires_grad_(True)
    reference = pure_engine.compute(coords, values)
    return kernel_engine.compute(coords), pure_engine.compute(coords), reference


def _assert_agree(result, reference):
    np.testing.assert_allclose(result.energy.numpy(), reference.energy.detach().numpy(), **TOL)
    np.testing.assert_allclose(result.forces.numpy(), reference.forces.detach().numpy(), **TOL)
    assert result.terms.keys() == reference.terms.keys()
    for name, value in reference.terms.items():
        np.testing.assert_allclose(result.terms[name].numpy(), value.detach().numpy(),
                                   err_msg=name, **TOL)


def _require_kernel():
    if K.load() is None:
        pytest.skip("no C compiler: the compiled MM kernel is unavailable here")


@pytest.fixture(scope="module")
def haloperidol_sage():
    mol = Molecule.from_smiles(HALOPERIDOL, name="haloperidol").generate_conformers(5, seed=1)
    return assign_parameters(mol, "sage", charges="gasteiger"), _noisy_conformers(mol, 12, 0)


def test_sage_drug_like_paths_agree(haloperidol_sage):
    system, coords = haloperidol_sage
    kernel_result, pure, reference = _three_paths(system, coords)
    _assert_agree(pure, reference)
    _require_kernel()
    _assert_agree(kernel_result, reference)
    _assert_agree(kernel_result, pure)


@pytest.mark.parametrize("options", [
    {"morse": True, "urey_bradley": True},
    {"harmonic_impropers": True, "nbfix": ("C", "O"), "combining_rule": "geometric"},
])
def test_every_term_form_paths_agree(options):
    mol = Molecule.from_smiles(CELECOXIB).generate_conformers(3, seed=2)
    system = element_typed_system(mol, **options)
    kernel_result, pure, reference = _three_paths(system, _noisy_conformers(mol, 6, 1))
    _assert_agree(pure, reference)
    _require_kernel()
    _assert_agree(kernel_result, reference)


def test_non_integer_periodicity_uses_the_general_torsion_form(haloperidol_sage):
    """The kernel's trig-free torsions cover integer periodicities only; others go through
    cos/sin of n phi - phase and must agree as well."""
    _require_kernel()
    system, coords = haloperidol_sage
    group = next(g for g in system.terms if g.form == "periodic_torsion")
    original = group.periodicity.copy()
    try:
        group.periodicity = original + 0.5
        kernel_result, _, reference = _three_paths(system, coords[:4])
    finally:
        group.periodicity = original
    _assert_agree(kernel_result, reference)


def test_threads_split_conformers_without_changing_results(haloperidol_sage):
    _require_kernel()
    system, coords = haloperidol_sage
    engine = MMEngine(system)
    flat, _ = engine._kernel_terms(engine.parameter_vector())
    pos = torch.as_tensor(coords[np.arange(200) % len(coords)])  # > 3 x MIN_PER_THREAD
    one = K.evaluate(K.load(), flat, pos, threads=1)
    three = K.evaluate(K.load(), flat, pos, threads=3)
    for a, b in zip(one, three):
        assert torch.equal(a, b)


def test_pure_path_threads_split_chunks_without_changing_results(haloperidol_sage):
    """The pure-PyTorch path runs its chunks in threads with single-threaded tensor ops:
    results equal the one-thread run exactly, and the caller's thread count is restored."""
    system, coords = haloperidol_sage
    engine = MMEngine(system)
    engine.use_kernel = False
    engine.chunk_bytes = 24 * 8 * 3155  # haloperidol's slots: chunks of about 8 conformers
    pos = coords[np.arange(80) % len(coords)]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = engine.compute(pos)
        torch.set_num_threads(3)
        three = engine.compute(pos)
        assert torch.get_num_threads() == 3
        chunks = engine._chunks(80, 3155)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one.energy, three.energy) and torch.equal(one.forces, three.forces)
    assert len(chunks) % 3 == 0 and len(chunks) > 3
    assert sorted(i for c in chunks for i in range(80)[c]) == list(range(80))


def test_parameter_change_is_seen(haloperidol_sage):
    """The kernel's parameter tables are cached on the parameter vector, not stale."""
    system, coords = haloperidol_sage
    engine = MMEngine(system)
    values = engine.parameter_vector()
    first = engine.compute(coords[:3], values.clone())
    changed = values * 1.01
    second = engine.compute(coords[:3], changed)
    pure = MMEngine(system)
    pure.use_kernel = False
    np.testing.assert_allclose(second.energy.numpy(),
                               pure.compute(coords[:3], changed).energy.numpy(), **TOL)
    assert not torch.allclose(first.energy, second.energy)


def test_missing_compiler_falls_back_to_pure_path(haloperidol_sage, monkeypatch, tmp_path):
    system, coords = haloperidol_sage
    monkeypatch.setenv("FFPARAM_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setattr(K, "_state", {})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert K.load() is None
        result = MMEngine(system).compute(coords[:3])
    assert sum("pure-PyTorch path" in str(w.message) for w in caught) == 1
    pure = MMEngine(system)
    pure.use_kernel = False
    np.testing.assert_array_equal(result.forces.numpy(),
                                  pure.compute(coords[:3]).forces.numpy())


def test_dihedral_gradients_match_autograd(haloperidol_sage):
    """analytic.dihedrals_with_gradients (used by the relaxation restraints) against
    autograd of terms.dihedrals."""
    from ffparam.mm import analytic
    from ffparam.mm import terms as F

    system, coords = haloperidol_sage
    quads = MMEngine(system)._dihedral_layout()[0]
    pos = torch.as_tensor(coords[:3]).requires_grad_(True)
    weights = torch.linspace(-1.0, 1.0, len(quads), dtype=torch.float64)
    (expected,) = torch.autograd.grad((F.dihedrals(pos, quads) * weights).sum(), pos)
    x = tuple(pos.detach()[..., c].contiguous() for c in range(3))
    phi, dphi_dx = analytic.dihedrals_with_gradients(x, quads)
    grad = torch.zeros_like(expected)
    for atoms, g in analytic.dihedral_gradients(quads, weights.expand_as(phi), dphi_dx):
        grad.index_add_(1, atoms, torch.stack(g, dim=-1))
    np.testing.assert_allclose(phi.numpy(), F.dihedrals(pos.detach(), quads).numpy(), **TOL)
    np.testing.assert_allclose(grad.numpy(), expected.numpy(), **TOL)


def test_exactly_linear_angle_gets_no_force_in_both_paths():
    """C-C#N of acetonitrile on one line: |u x v| = 0, both paths drop the angle's force."""
    _require_kernel()
    mol = Molecule.from_smiles("CC#N").generate_conformers(1, seed=1)
    coords = mol.conformers[:1].copy()
    heavy = [a for a, s in enumerate(mol.symbols) if s != "H"]
    coords[0, heavy] = [[0.0, 0.0, 0.0], [1.46, 0.0, 0.0], [2.62, 0.0, 0.0]]
    system = element_typed_system(mol)
    pure = MMEngine(system)
    pure.use_kernel = False
    expected = pure.compute(coords)
    result = MMEngine(system).compute(coords)
    assert np.isfinite(expected.forces.numpy()).all()
    np.testing.assert_allclose(result.forces.numpy(), expected.forces.numpy(), **TOL)
    np.testing.assert_allclose(result.energy.numpy(), expected.energy.numpy(), **TOL)
