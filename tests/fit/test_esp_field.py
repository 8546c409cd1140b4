"""The ``esp_field`` fit target: charges + Drude alpha recovered from a synthetic model's
ESPs in fields (total charge held), ``ffparam fit`` with QM field ESPs from a Store, bad
input refused."""

import numpy as np
import pytest
import torch
import yaml

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.fit.objective import Objective
from ffparam.fit.optimizers import optimize
from ffparam.fit.parameters import FitParameters
from ffparam.fit.targets.esp_field import FieldESPTarget, field_esp_target_from_records
from ffparam.mm.drude_field import DrudeFieldESP
from ffparam.params.drude import DRUDE_SECTION, add_drude
from ffparam.reference.compute import compute
from ffparam.reference.esp_field import field_set, field_tasks
from ffparam.reference.esp_grid import merz_kollman_points
from ffparam.reference.store import Store
from tests.fit.test_polarizability import _types

QM_METHOD = "hf/6-31g"


@pytest.fixture(scope="module")
def formaldehyde():
    mol = Molecule.from_smiles("C=O", name="formaldehyde").generate_conformers(1, seed=7)
    return add_drude(assign_parameters(mol, "sage", charges="gasteiger"))


def test_fit_recovers_charges_and_alphas(formaldehyde):
    """ESPs in 7 fields made with known charges (same total) and alphas; a joint fit from
    the start values finds both again."""
    check_recovery(formaldehyde, np.array(field_set()))


def check_recovery(system, fields: np.ndarray, charges=None) -> None:
    """ESPs of ``system`` in ``fields`` (n, 3) kcal/mol/(e A) (and perturbing ``charges``,
    one (k_i, 4) array per entry) made with shifted charges (same total) and scaled alphas
    are fitted from the start values: both are found again, the total charge held."""
    geom = system.molecule.conformers[0]
    n = len(fields)
    points = merz_kollman_points(system.molecule.atomic_numbers, geom, density=0.5)
    truth = system.parameters.vector().copy()
    q_index = system.nonbonded.charge_index
    truth[q_index] += np.array([0.08, -0.12, 0.02, 0.02])
    truth[system.drude.alpha_index] *= np.array([1.3, 0.8])
    model = DrudeFieldESP(system, np.repeat(geom[None], n, 0), fields, [points] * n,
                          charges=charges)
    esp = [v.numpy() for v in model.esp(torch.as_tensor(truth))]
    params = system.parameters.copy()
    params.set_free(DRUDE_SECTION, "*", ["alpha"])
    params.set_free("Charges", "*", ["charge"])
    fit_system = add_drude(system, _types(system), source=params).with_parameters(params)
    target = FieldESPTarget("esp", fit_system, np.repeat(geom[None], n, 0), fields,
                            [points] * n, esp, charges=charges)
    objective = Objective([target], FitParameters.from_free(fit_system.parameters),
                          use_priors=False)
    result = optimize(objective, "least_squares", max_iterations=50)
    fitted = result.parameters.vector()
    np.testing.assert_allclose(fitted[fit_system.drude.alpha_index],
                               truth[system.drude.alpha_index], rtol=1e-4)
    np.testing.assert_allclose(fitted[q_index], truth[q_index], atol=1e-5)
    after = result.metrics_after["esp"]
    assert after["rmse [kcal/mol/e]"] < 1e-4
    assert abs(after["total charge deviation [e]"]) < 1e-6
    assert result.metrics_before["esp"]["induced rmse [kcal/mol/e]"] > 10 * after[
        "induced rmse [kcal/mol/e]"]


def test_target_refuses_bad_input(formaldehyde):
    geom = formaldehyde.molecule.conformers[0]
    points = geom + 3.0
    fixed = assign_parameters(formaldehyde.molecule, "sage", charges="gasteiger")
    with pytest.raises(InputError, match="Drude"):
        FieldESPTarget("e", fixed, geom, np.zeros((1, 3)), [points], [np.zeros(4)])
    with pytest.raises(InputError, match="3 ESP values for 4 points"):
        FieldESPTarget("e", formaldehyde, geom, np.zeros((1, 3)), [points], [np.zeros(3)])
    with pytest.raises(InputError, match="one point set"):
        FieldESPTarget("e", formaldehyde, geom, np.zeros((1, 3)), [points, points],
                       [np.zeros(4)])


def test_ffparam_fit_esp_field_target(tmp_path):
    """``ffparam fit`` with an esp_field target from a Store of QM field ESPs (HF): the
    Drude alphas and the charges move, the total charge stays 0, the fit lowers the
    field-induced ESP error; records of another task are refused."""
    from ffparam.fit.spec import load_fit_spec
    from ffparam.workflows.fit import run_fit

    water = Molecule.from_smiles("O", name="water").generate_conformers(1, seed=7)
    with Store(tmp_path / "qm.db") as store:
        for task in field_tasks(field_set()):
            compute(water, water.conformers[:1], QM_METHOD, task, store)
        (esp,) = compute(water, water.conformers[:1], QM_METHOD, "esp", store)
    spec = {"forcefield": "sage", "charges": "gasteiger",
            "molecules": {"water": {"input": "O"}},
            "targets": [{"name": "field", "type": "esp_field", "molecule": "water",
                         "reference": "qm.db", "method": QM_METHOD}],
            "parameters": [{"section": "Drude", "id": "*", "fields": ["alpha"]},
                           {"section": "Charges", "id": "*", "fields": ["charge"]}],
            "priors": False}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    outcome = run_fit(load_fit_spec(tmp_path / "spec.yaml"), tmp_path / "out",
                      progress=False)
    before, after = outcome.result.metrics_before["field"], outcome.result.metrics_after["field"]
    assert after["rmse [kcal/mol/e]"] < 0.5 * before["rmse [kcal/mol/e]"]
    assert after["induced rmse [kcal/mol/e]"] < before["induced rmse [kcal/mol/e]"]
    assert abs(after["total charge deviation [e]"]) < 1e-5
    (alpha,) = [p.values["alpha"] for s, p in outcome.result.parameters if s == DRUDE_SECTION]
    assert 0.3 < alpha < 2.0 and alpha != pytest.approx(0.9 + 2 * 0.3)  # moved from start
    with pytest.raises(InputError, match="esp_field"):
        field_esp_target_from_records("x", outcome.systems["water"], [esp])
