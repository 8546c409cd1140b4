"""QM ESP in uniform external fields (task ``esp_field``): the induced dipole equals the
polarizability tensor times the field, the far-field ESP change is that dipole's, Store
keys carry the field, bad input is refused."""

import numpy as np
import pytest

from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.reference.compute import compute, make_jobs
from ffparam.reference.esp_field import (
    AU_FIELD_KCAL_MOL_E_A,
    compute_esp_in_field,
    field_set,
    field_tasks,
)
from ffparam.reference.methods import get_calculator
from ffparam.reference.records import Species, Task
from ffparam.reference.store import Store
from ffparam.units import COULOMB_CONSTANT_KCAL_MOL_A_E2

METHOD = "hf/6-31g"  # seconds for water


@pytest.fixture(scope="module")
def water():
    return Molecule.from_smiles("O", name="water").generate_conformers(1, seed=7)


@pytest.fixture(scope="module")
def records(water):
    (pol,) = compute(water, water.conformers[:1], METHOD, "polarizability")
    fields = field_set()
    out = [compute(water, water.conformers[:1], METHOD, t)[0] for t in field_tasks(fields)]
    return pol, fields, out


def test_induced_dipole_is_alpha_times_field(records):
    """Central difference of the record dipoles over +-F along each axis = alpha F / C
    (first order in F; F = 0.005 au)."""
    pol, fields, recs = records
    assert all(r.ok for r in recs)
    strength = fields[1][0]
    induced = np.stack([(recs[1 + 2 * k].dipole - recs[2 + 2 * k].dipole) / 2
                        for k in range(3)], axis=1)  # column k: field along k
    expected = pol.polarizability * strength / COULOMB_CONSTANT_KCAL_MOL_A_E2
    np.testing.assert_allclose(induced, expected, atol=2e-4 * np.abs(expected).max())
    # the ESP moved, nearly linearly: V(+F) - V(0) = V(0) - V(-F) up to the second-order
    # (hyperpolarizability) part, 2.3 % of the change for water at 0.005 au
    up, down = recs[1].esp - recs[0].esp, recs[0].esp - recs[2].esp
    assert np.abs(up).max() > 0.3
    assert np.abs(up - down).max() < 0.05 * np.abs(up).max()


def test_far_field_esp_change_is_the_induced_dipole(water):
    """At points 40 A away the odd part of the field-induced ESP change is the potential
    of the induced dipole alpha F / C (octupole corrections ~ (3/40)^2)."""
    calc = get_calculator(METHOD, Species.from_molecule(water))
    geom = water.conformers[0]
    charges = np.array(water.atomic_numbers, dtype=float)
    centre = charges @ geom / charges.sum()
    directions = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]]) / np.array(
        [[1], [1], [1], [3**0.5]])
    points = centre + 40.0 * np.concatenate([directions, -directions])
    field = np.array([0.0, 0.004, 0.003]) * AU_FIELD_KCAL_MOL_E_A
    plus = compute_esp_in_field(calc, geom, field, points)
    minus = compute_esp_in_field(calc, geom, -field, points)
    delta = (plus["esp"] - minus["esp"]) / 2
    odd = (delta[:4] - delta[4:]) / 2
    mu = (plus["dipole"] - minus["dipole"]) / 2  # induced dipole, e*A
    r = points[:4] - centre
    expected = COULOMB_CONSTANT_KCAL_MOL_A_E2 * (r @ mu) / 40.0**3
    np.testing.assert_allclose(odd, expected, rtol=5e-3)


def test_field_is_part_of_the_key(water, tmp_path):
    fields = field_set(2.0)
    jobs = [make_jobs(water, water.conformers[:1], METHOD, t)[0] for t in field_tasks(fields)]
    assert len({j.key for j in jobs}) == 7
    with Store(tmp_path / "s.db") as store:
        (first,) = compute(water, water.conformers[:1], METHOD, field_tasks(fields[1:2])[0],
                           store)
        (again,) = compute(water, water.conformers[:1], METHOD, field_tasks(fields[1:2])[0],
                           store)
        assert again.cached and np.array_equal(first.esp, again.esp)
        stored = list(store.records(task_kind="esp_field"))
    assert len(stored) == 1 and '"field_kcal_mol_e_a":[2.0,0.0,0.0]' in stored[0].task


def test_bad_input_is_one_line(water):
    with pytest.raises(InputError, match="esp_field task only"):
        Task("esp", field_kcal_mol_e_a=(1.0, 0.0, 0.0))
    with pytest.raises(InputError, match="3 finite numbers"):
        Task("esp_field", field_kcal_mol_e_a=(1.0, float("nan"), 0.0))
    with pytest.raises(InputError, match="positive"):
        field_set(0.0)
    with pytest.raises(InputError, match="PySCF"):
        make_jobs(water, water.conformers[:1], "gfn2-xtb", field_tasks(field_set())[1])
