"""Composite HIGH//LOW references: grammar, bad input, torsion drives of ethane with
HF/STO-3G single points on GFN2-xTB geometries (Store records, reruns)."""

from __future__ import annotations

import numpy as np
import pytest

from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.reference import Store, compute
from ffparam.reference.spec import CompositeSpec, MethodSpec, parse_method
from ffparam.reference.torsiondrive import run_torsiondrive

ETHANE_DIHEDRAL = (2, 0, 1, 5)  # H-C-C-H
COMPOSITE = "hf/sto-3g//gfn2-xtb"


@pytest.mark.parametrize("text, high, low", [
    ("hf/sto-3g//gfn2-xtb", "hf/sto-3g", "gfn2-xtb"),
    (" B3LYP-D3BJ/DZVP // GFN2-xTB ", "b3lyp-d3bj/dzvp", "gfn2-xtb"),
    ("hf/sto-3g[max_scf_cycles=50]//gfn2-xtb[solvent=water]",
     "hf/sto-3g[max_scf_cycles=50]", "gfn2-xtb[solvent=water]"),
])
def test_composite_parses_and_round_trips(text, high, low):
    spec = parse_method(text)
    assert isinstance(spec, CompositeSpec)
    assert (spec.high.canonical(), spec.low.canonical()) == (high, low)
    assert spec.canonical() == f"{high}//{low}"
    assert parse_method(spec.canonical()) == spec
    assert isinstance(parse_method("gfn2-xtb"), MethodSpec)


@pytest.mark.parametrize("text, words", [
    ("nosuch/sto-3g/x//gfn2-xtb", "unknown method"),
    ("hf/sto-3g//gfn3-xtb", "unknown method 'gfn3-xtb'"),
    ("hf/sto-3g//gfn2-xtb//gfn1-xtb", "do not nest"),
    ("hf/sto-3g//", "a method on each side"),
    ("//gfn2-xtb", "a method on each side"),
    ("hf/sto-3g[colour=red]//gfn2-xtb", "unknown method option"),
])
def test_bad_composite_is_one_input_error(text, words):
    with pytest.raises(InputError, match=words):
        parse_method(text)


def test_composites_do_not_nest_and_single_method_calls_refuse_them():
    inner = parse_method(COMPOSITE)
    with pytest.raises(InputError, match="do not nest"):
        CompositeSpec(inner, MethodSpec("gfn2-xtb"))
    with pytest.raises(InputError, match="single method"):
        MethodSpec.parse(COMPOSITE)
    with pytest.raises(InputError, match="ambiguous"):
        parse_method(COMPOSITE, solvent="water")


def test_high_method_that_cannot_treat_the_molecule_fails_before_low_work(tmp_path):
    """6-31G has no iodine: refused before a single GFN2-xTB optimization is stored."""
    iodoethane = Molecule.from_smiles("CCI", name="iodoethane").generate_conformers(1, seed=7)
    store = Store(tmp_path / "s.db")
    with pytest.raises(InputError, match="Basis set not found for I"):
        run_torsiondrive(iodoethane, [(2, 1, 0, 4)], "hf/6-31g//gfn2-xtb", spacing_deg=90,
                         store=store)
    assert len(store) == 0
    store.close()


@pytest.fixture(scope="module")
def composite_drive(ethane, tmp_path_factory):
    path = tmp_path_factory.mktemp("composite") / "store.db"
    with Store(path) as store:
        first = run_torsiondrive(ethane, [ETHANE_DIHEDRAL], COMPOSITE, spacing_deg=60,
                                 store=store)
        second = run_torsiondrive(ethane, [ETHANE_DIHEDRAL], COMPOSITE, spacing_deg=60,
                                  store=store)
        records = list(store.records())
    return first, second, records


def test_composite_energies_are_high_single_points_on_low_geometries(ethane, composite_drive):
    result = composite_drive[0]
    assert result.complete and len(result.energies) == 6 and result.composite
    assert (result.method, result.geometry_method, result.energy_method) == (
        COMPOSITE, "gfn2-xtb", "hf/sto-3g")
    independent = compute(ethane, result.geometries, method="hf/sto-3g", task="energy")
    np.testing.assert_allclose(result.energies, [r.energy for r in independent],
                               rtol=0, atol=1e-8)
    low = [r.energy for r in result.records]
    np.testing.assert_allclose(result.low_energies, low, rtol=0, atol=0)
    assert all(r.method == "gfn2-xtb" and r.task_kind == "optimize" for r in result.records)
    assert all(r.method == "hf/sto-3g" and r.task_kind == "energy"
               for r in result.high_records)
    # HF/STO-3G eclipsed - staggered on GFN2 geometries: near the 2.9 kcal/mol experiment
    assert result.energy_at(0) - result.energy_at(60) == pytest.approx(2.9, abs=0.6)


def test_composite_store_holds_normal_records_and_rerun_computes_nothing(composite_drive):
    first, second, records = composite_drive
    kinds = {(r.method, r.task_kind) for r in records}
    assert kinds == {("gfn2-xtb", "optimize"), ("hf/sto-3g", "energy")}
    assert sum(r.task_kind == "energy" for r in records) == 6
    assert first.summary.n_computed == first.summary.n_jobs > 6
    assert second.summary.n_computed == 0
    assert second.summary.n_cached == first.summary.n_jobs
    np.testing.assert_array_equal(second.energies, first.energies)


def test_composite_high_gradient_on_request(ethane):
    result = run_torsiondrive(ethane, [ETHANE_DIHEDRAL], COMPOSITE, spacing_deg=90,
                              high_task="gradient")
    assert all(r.task_kind == "gradient" and r.gradient is not None
               for r in result.high_records)
    with pytest.raises(InputError, match="high_task"):
        run_torsiondrive(ethane, [ETHANE_DIHEDRAL], COMPOSITE, spacing_deg=90,
                         high_task="hessian")


def test_composite_reuses_a_stored_low_drive_and_computes_only_high_points(ethane, tmp_path):
    """The LOW optimizations are the same Store records as a plain LOW drive's."""
    with Store(tmp_path / "s.db") as store:
        low = run_torsiondrive(ethane, [ETHANE_DIHEDRAL], "gfn2-xtb", spacing_deg=90,
                               store=store)
        both = run_torsiondrive(ethane, [ETHANE_DIHEDRAL], COMPOSITE, spacing_deg=90,
                                store=store)
    assert both.summary.n_cached == low.summary.n_jobs
    assert both.summary.n_computed == len(both.energies) == 4
    np.testing.assert_array_equal(both.low_energies, low.energies)
    np.testing.assert_array_equal(both.geometries, low.geometries)
