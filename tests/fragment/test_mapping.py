"""Torsion groups map from parent to fragment, and bespoke torsion values fitted on a
fragment transfer to the parent: start values round-trip exactly, and changed values give
the parent the same torsion energy change as the fragment on the shared coordinates."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from rdkit import Chem

from ffparam.assign import assign_parameters
from ffparam.chem import Topology
from ffparam.errors import InputError
from ffparam.fit.bespoke_torsions import make_bespoke_torsions
from ffparam.fit.smirks import torsion_groups
from ffparam.fragment import DEFAULT_WBO_THRESHOLD
from ffparam.fragment.mapping import (
    apply_torsion_parameters,
    map_torsion_groups,
    merge_periodic_terms,
    transfer_fitted_torsions,
)
from ffparam.mm import MMEngine
from ffparam.params.parameter_set import Parameter
from ffparam.reference.store import Store
from tests.fragment.test_fragmenter import CASES, fragment_case


def canonical(rows):
    return {tuple(r) if r[0] < r[3] else tuple(r[::-1]) for r in np.asarray(rows).tolist()}


@pytest.mark.parametrize("name, smarts", CASES)
def test_every_parent_torsion_maps_into_the_fragment(name, smarts):
    mol, bond, frag = fragment_case(name, smarts)
    mapping = map_torsion_groups(frag, mol, bond)
    assert set(mapping) == {frozenset(g) for g in torsion_groups(Topology(mol), bond)}
    to_frag = frag.parent_to_fragment
    around = canonical(Topology(mol).torsions_around(bond))
    mapped = set()
    for parent_group, fragment_group in mapping.items():
        for t in parent_group & around:
            image = canonical([[to_frag[a] for a in t]]).pop()
            assert image in fragment_group
            mapped.add(image)
    assert len(mapped) == len(around)  # one-to-one on the torsions around the bond
    assert mapped == canonical(Topology(frag.molecule).torsions_around(frag.bond))


def _systems(name, smarts, fragment_periodicity=4):
    mol, bond, frag = fragment_case(name, smarts)
    parent = make_bespoke_torsions(assign_parameters(mol, "sage", charges="gasteiger"), [bond])
    fragment = make_bespoke_torsions(
        assign_parameters(frag.molecule, "sage", charges="gasteiger"), [frag.bond],
        max_periodicity=fragment_periodicity)
    return mol, bond, frag, parent, fragment


@pytest.mark.parametrize("name, smarts", [CASES[0], CASES[2], CASES[4], CASES[7]])
def test_start_values_round_trip(name, smarts):
    mol, bond, frag, parent, fragment = _systems(name, smarts)
    mapping = map_torsion_groups(frag, mol, bond)
    extra = transfer_fitted_torsions(fragment.system, parent.system, mapping)
    assert len(extra) == len(mapping)
    assert {p.id for _, p in extra} == {p.id for _, p in parent.parameters}
    for section, par in extra:
        own = parent.parameters.get(section, par.id)
        assert par.values == own.values and par.fixed == own.fixed


@pytest.mark.parametrize("name, smarts", [CASES[0], CASES[3]])
def test_fitted_values_give_the_parent_the_fragments_torsion_energy(name, smarts):
    # the fragment carries periodicities 1-6, the parent's bespoke layout 1-4: the transfer
    # appends terms 5 and 6 to the parent's parameters
    mol, bond, frag, parent, fragment = _systems(name, smarts, fragment_periodicity=6)
    mapping = map_torsion_groups(frag, mol, bond)
    for fragment_group in mapping.values():  # no other bond shares these groups
        assert all(set(t[1:3]) == set(frag.bond) for t in fragment_group)
    values = fragment.system.parameters.vector()
    rng = np.random.default_rng(5)
    for key in fragment.free_keys():
        values[fragment.system.parameters.index(key)] += rng.normal(0.0, 0.5)
    fitted = fragment.system.with_parameters(fragment.system.parameters.with_vector(values))
    extra = transfer_fitted_torsions(fitted, parent.system, mapping)
    assert all(p.n_terms() == 6 for _, p in extra)
    new_parent = apply_torsion_parameters(parent.system, extra)
    d_parent = (MMEngine(new_parent).energy(mol.conformers)
                - MMEngine(parent.system).energy(mol.conformers)).numpy()
    d_fragment = (MMEngine(fitted).energy(frag.molecule.conformers)
                  - MMEngine(fragment.system).energy(frag.molecule.conformers)).numpy()
    assert abs(d_fragment[0]) > 1e-3
    np.testing.assert_allclose(d_parent, d_fragment, atol=1e-10)


def test_merge_matches_terms_by_periodicity():
    target = Parameter("parent", {"k1": 0.1, "phase1": 0.0, "k2": 0.2, "phase2": np.pi},
                       {"periodicity1": 1, "idivf1": 1.0, "periodicity2": 3, "idivf2": 2.0})
    source = Parameter("fragment", {"k1": 1.5, "phase1": np.pi, "k2": -0.7, "phase2": 0.0},
                       {"periodicity1": 2, "idivf1": 1.0, "periodicity2": 1, "idivf2": 1.0})
    merged = merge_periodic_terms(target, source)
    assert merged.id == "parent"
    assert merged.values == {"k1": -0.7, "phase1": 0.0, "k2": 0.0, "phase2": 0.0,
                             "k3": 1.5, "phase3": np.pi}
    assert merged.fixed["periodicity2"] == 3 and merged.fixed["idivf2"] == 2.0
    assert merged.fixed["periodicity3"] == 2 and merged.fixed["idivf3"] == 1.0


def test_wrong_bond_is_refused():
    mol, _, frag = fragment_case(*CASES[0])
    other = tuple(Topology(mol).rotatable_bonds[-1].tolist())
    assert set(other) != set(frag.parent_bond)
    with pytest.raises(InputError, match="built around"):
        map_torsion_groups(frag, mol, other)


def _bench_fragment():
    """``benchmarks/bench_fragment.py`` as a module (its drugs and row builder)."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_fragment.py"
    spec = importlib.util.spec_from_file_location("bench_fragment", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_rotatable_bond_of_example_drugs():
    """All 48 rotatable bonds of the seven drugs of benchmarks/bench_fragment.py: fragments
    converge, keep rings whole, and Sage's start values transfer back unchanged."""
    bench = _bench_fragment()
    for name, smiles in bench.EXAMPLE_DRUGS.items():
        with Store(":memory:") as store:
            mol, fragments = bench.fragment_rows(smiles, name, DEFAULT_WBO_THRESHOLD, store)
        start = assign_parameters(mol, "sage", charges="gasteiger")
        for frag in fragments:
            assert frag.converged, (name, frag.parent_bond)
            Chem.SanitizeMol(Chem.Mol(frag.molecule.rdmol))
            kept = frag.parent_to_fragment
            for ring in mol.rdmol.GetRingInfo().AtomRings():
                assert sum(a in kept for a in ring) in (0, len(ring))
            mapping = map_torsion_groups(frag, mol, frag.parent_bond)
            parent = make_bespoke_torsions(start, [frag.parent_bond])
            fragment = make_bespoke_torsions(
                assign_parameters(frag.molecule, "sage", charges="gasteiger"), [frag.bond])
            extra = transfer_fitted_torsions(fragment.system, parent.system, mapping)
            for section, par in extra:
                assert par.values == parent.parameters.get(section, par.id).values, \
                    (name, frag.parent_bond, par.id)
