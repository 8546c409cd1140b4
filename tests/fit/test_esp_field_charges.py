"""The ``esp_field`` fit target with perturbing point charges (CHARMM's recipe): charges +
Drude alpha recovered from a synthetic model's ESPs around +-0.5 e charges; QM records of
charge jobs are read by ``ffparam fit``'s Store query and become charge-perturbed entries
of the same target."""

import numpy as np
import torch

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.fit.parameters import FitParameters
from ffparam.fit.spec import TargetSettings
from ffparam.fit.targets.esp_field import field_esp_target_from_records
from ffparam.params.drude import add_drude
from ffparam.reference.compute import compute, run_jobs
from ffparam.reference.esp_field import charge_jobs, field_tasks, perturbing_charges
from ffparam.reference.records import Species
from ffparam.reference.store import Store
from ffparam.workflows.fit import store_records
from tests.fit.test_esp_field import check_recovery


def _charge_rows(geometry: np.ndarray, n: int) -> list[np.ndarray]:
    """No perturbation, then one (1, 4) charge row per perturbing charge."""
    rows = [np.array([[*env.positions[0], env.charges[0]]])
            for env in perturbing_charges(geometry, n)]
    return [np.zeros((0, 4)), *rows]


def test_fit_recovers_charges_and_alphas_from_point_charge_esps():
    """ESPs without and with 4 perturbing charges (no uniform field) made with known
    charges (same total) and alphas; a joint fit from the start values finds both (the
    charge-perturbed entries pair with the unperturbed one for the induced metric)."""
    mol = Molecule.from_smiles("C=O", name="formaldehyde").generate_conformers(1, seed=7)
    system = add_drude(assign_parameters(mol, "sage", charges="gasteiger"))
    charges = _charge_rows(system.molecule.conformers[0], 4)
    check_recovery(system, np.zeros((len(charges), 3)), charges)


def test_qm_charge_records_become_charge_perturbed_entries(tmp_path):
    water = Molecule.from_smiles("O", name="water").generate_conformers(1, seed=7)
    system = add_drude(assign_parameters(water, "sage", charges="gasteiger"))
    geometry = water.conformers[0]
    environments = perturbing_charges(geometry, 2)
    with Store(tmp_path / "qm.db") as store:
        (plain,) = compute(water, geometry[None], "hf/sto-3g", field_tasks([(0, 0, 0)])[0],
                           store)
        perturbed, _ = run_jobs(charge_jobs(Species.from_molecule(water), geometry,
                                            "hf/sto-3g", environments), store)
    entry = TargetSettings(name="qm", type="esp_field", molecule="water", reference="qm.db",
                           method="hf/sto-3g")
    found = store_records(tmp_path / "qm.db", system, entry)  # what `ffparam fit` reads
    assert sorted(r.key for r in found) == sorted(r.key for r in [plain, *perturbed])
    target = field_esp_target_from_records("qm", system, [plain, *perturbed])
    rows = [c.numpy() for c in target.model.charges]
    assert [len(r) for r in rows] == [0, 1, 1]
    for row, env in zip(rows[1:], environments):
        np.testing.assert_allclose(row, [[*env.positions[0], env.charges[0]]])
    fit = FitParameters(system.parameters, [])
    metrics = target.metrics(fit, torch.zeros(0, dtype=torch.float64))
    assert metrics["induced rmse [kcal/mol/e]"] > 0  # charge entries pair with the plain one
