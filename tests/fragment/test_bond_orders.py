"""Wiberg bond orders are a reference calculation: the ``bond_orders`` task gives a Record
holding the (n_atoms, n_atoms) matrix, the Store keeps it, and fragmenting the same molecule
again runs no new calculation."""

import sqlite3

import numpy as np
import pytest

from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.fragment import fragment_for_bond, fragment_molecule, wiberg_bond_orders
from ffparam.reference import Store, compute
from tests.fragment.test_fragmenter import tblite_wbo


@pytest.fixture(scope="module")
def ether():
    """Butyl phenyl ether; its aryl-O bond (4, 5) fragments to a smaller ether."""
    return Molecule.from_smiles("CCCCOc1ccccc1", name="ether").generate_conformers(1, seed=7)


def _rows(db):
    with sqlite3.connect(db) as con:
        return dict(con.execute("SELECT key, provenance FROM records"))


def test_bond_order_record_is_stored_and_matches_tblite(tmp_path, ether):
    with Store(tmp_path / "s.db") as store:
        (record,) = compute(ether, ether.conformers, "gfn2-xtb", "bond_orders", store=store)
    assert record.ok and record.task_kind == "bond_orders"
    orders = record.bond_orders
    assert orders.shape == (ether.n_atoms, ether.n_atoms)
    np.testing.assert_allclose(orders, orders.T, atol=0)
    np.testing.assert_allclose(orders, tblite_wbo(ether), atol=1e-8)
    with Store(tmp_path / "s.db", readonly=True) as store:
        (stored,) = store.records(task_kind="bond_orders")
    assert stored.cached
    np.testing.assert_array_equal(stored.bond_orders, orders)


def test_second_fragmentation_runs_no_new_calculation(tmp_path, ether):
    db = tmp_path / "frag.db"
    with Store(db) as store:
        first = fragment_molecule(ether, [(4, 5)], store=store)
    rows = _rows(db)
    (fragment,) = first
    assert not fragment.is_whole_molecule
    # the parent plus every fragment tried, each one bond-order record
    assert len(rows) == 1 + len(fragment.history)
    with Store(db) as store:
        again = fragment_for_bond(ether, (4, 5), store=store)
        assert len(store) == len(rows)
    assert _rows(db) == rows  # nothing recomputed or rewritten
    assert again.wbo == first[0].wbo and again.parent_wbo == first[0].parent_wbo
    assert again.molecule.to_smiles() == fragment.molecule.to_smiles()


def test_bond_orders_need_an_xtb_method(ether):
    with pytest.raises(InputError, match="xtb method"):
        wiberg_bond_orders(ether, method="hf/sto-3g")
    (record,) = compute(ether, ether.conformers, "hf/sto-3g", "bond_orders")
    assert not record.ok and "gives no bond orders" in record.error
