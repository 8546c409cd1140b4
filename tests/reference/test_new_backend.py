"""Adding a reference method family is one ``Backend`` entry plus its Calculator module:
an EMT backend declared here (tests/reference/emt_backend.py) is parsed, computed, stored
and cached by the unchanged reference layer."""

from __future__ import annotations

import numpy as np
import pytest

from ffparam.reference import spec
from ffparam.reference.methods import available_methods, get_calculator
from ffparam.reference.records import Species
from ffparam.reference.store import Store
from ffparam.units import EV_KCAL_MOL


@pytest.fixture
def emt_backend(monkeypatch):
    entry = spec.Backend("ase-emt", "tests.reference.emt_backend:EMTCalculator",
                         names=("emt",), spelling="emt")
    monkeypatch.setattr(spec, "BACKENDS", (*spec.BACKENDS, entry))
    monkeypatch.setattr("ffparam.reference.methods.BACKENDS", spec.BACKENDS)
    return entry


def test_a_declared_backend_computes_through_the_reference_layer(emt_backend, ethanol, tmp_path):
    from ase import Atoms
    from ase.calculators.emt import EMT

    from ffparam.reference import compute

    assert spec.MethodSpec.parse("EMT").backend == "ase-emt"
    assert "emt" in available_methods()
    xyz = ethanol.conformers[0]
    result = get_calculator("emt", Species.from_molecule(ethanol)).compute(xyz, gradient=True)
    atoms = Atoms(numbers=ethanol.atomic_numbers, positions=xyz)
    atoms.calc = EMT()
    assert result.energy == pytest.approx(atoms.get_potential_energy() * EV_KCAL_MOL, abs=1e-9)
    np.testing.assert_allclose(result.gradient, -atoms.get_forces() * EV_KCAL_MOL, atol=1e-9)

    store = Store(tmp_path / "emt.db")
    first = compute(ethanol, xyz[None], method="emt", task="gradient", store=store)
    assert first[0].ok and first[0].energy == pytest.approx(result.energy, abs=1e-9)
    stamp = store.counts()
    again = compute(ethanol, xyz[None], method="emt", task="gradient", store=store)
    assert not first[0].cached and again[0].cached and store.counts() == stamp
    store.close()


def test_an_unknown_method_names_every_backend(emt_backend):
    from ffparam.errors import InputError

    with pytest.raises(InputError, match=r"unknown method 'foo'.*gfn2-xtb.*emt"):
        _ = spec.MethodSpec.parse("foo").backend
