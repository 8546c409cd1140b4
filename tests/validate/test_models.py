"""Force field, MMFF94 and an ML potential scored side by side on GFN2-xTB held-out
conformers of ethanol; the reference scored against its own stored data gives exactly 0."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ffparam.assign.rdkit_models import RDKitEnergyModel
from ffparam.errors import InputError
from ffparam.ml.energy_model import PotentialEnergyModel
from ffparam.mm.energy_model import MMEnergyModel
from ffparam.reference import Species, Store, get_calculator
from ffparam.validate import (
    ReferenceModel,
    compare_models,
    held_out_conformers,
    score_models,
)
from ffparam.validate.results import rmse
from tests.energy.conftest import tiny_gp  # noqa: F401  (fixture)

METRICS = ("energy_rmse_kcal_mol", "energy_mae_kcal_mol", "energy_max_abs_error_kcal_mol",
           "force_rmse_kcal_mol_a", "force_mae_kcal_mol_a")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with Store(tmp_path_factory.mktemp("models") / "ref.db") as s:
        yield s


@pytest.fixture(scope="module")
def comparison(ethanol, ethanol_sage, tiny_gp, store):  # noqa: F811
    models = {
        "sage": MMEnergyModel(ethanol_sage),
        "mmff94": RDKitEnergyModel(ethanol, "mmff94"),
        "gp": PotentialEnergyModel(tiny_gp, ethanol.atomic_numbers),
        "gfn2-xtb": ReferenceModel(ethanol, "gfn2-xtb", store),
    }
    return compare_models(ethanol, models, "gfn2-xtb", store, n_conformers=6, seed=11)


def test_three_models_get_finite_metrics_and_the_reference_exactly_zero(comparison):
    reference, result = comparison
    assert result.n_conformers == reference.n_used >= 3 and reference.n_failed == 0
    for name in ("sage", "mmff94", "gp"):
        scores = result.models[name]
        assert scores.error is None
        values = [getattr(scores, m) for m in METRICS]
        assert all(v is not None and np.isfinite(v) and v > 0 for v in values), name
        assert scores.energy_mae_kcal_mol <= scores.energy_rmse_kcal_mol
    own = result.models["gfn2-xtb"]
    assert [getattr(own, m) for m in METRICS] == [0.0] * len(METRICS)
    # a GP trained on 8 DFT frames is far from GFN2-xTB; Sage and MMFF94 are closer
    assert result.models["gp"].force_rmse_kcal_mol_a > result.models["sage"].force_rmse_kcal_mol_a
    data = json.loads(json.dumps(result.to_json()))
    assert set(data["models"]) == {"sage", "mmff94", "gp", "gfn2-xtb"}
    assert len(data["parity"]["energy_kcal_mol"]["gp"]) == result.n_conformers


def test_scores_are_the_errors_of_the_evaluated_models(comparison, ethanol, ethanol_sage):
    reference, result = comparison
    mm = MMEnergyModel(ethanol_sage).evaluate(reference.geometries)
    ref_e = reference.energy_kcal_mol - reference.energy_kcal_mol.mean()
    error = mm.energy_kcal_mol - mm.energy_kcal_mol.mean() - ref_e
    assert result.models["sage"].energy_rmse_kcal_mol == pytest.approx(rmse(error), rel=1e-12)
    assert result.models["sage"].force_rmse_kcal_mol_a == pytest.approx(
        rmse(mm.forces_kcal_mol_a - reference.forces_kcal_mol_a), rel=1e-12)
    # the in-process Calculator agrees with the stored reference to the SCF tolerance
    calc = get_calculator("gfn2-xtb", Species.from_molecule(ethanol))
    again = score_models({"xtb": calc}, reference.geometries, reference.energy_kcal_mol,
                         reference.forces_kcal_mol_a)
    assert again.models["xtb"].energy_rmse_kcal_mol < 1e-3
    assert again.models["xtb"].force_rmse_kcal_mol_a < 0.05


def test_held_out_conformers_is_score_models_on_mm(ethanol, ethanol_sage, store, comparison):
    reference, result = comparison
    validation = held_out_conformers(ethanol, {"sage": ethanol_sage}, "gfn2-xtb", store,
                                     n_conformers=6, seed=11)
    np.testing.assert_array_equal(validation.geometries, reference.geometries)
    assert validation.systems["sage"] == result.models["sage"]


def test_a_model_that_fails_is_reported_and_the_others_scored(comparison, ethanol,
                                                               ethanol_sage):
    from ffparam.chem import Molecule

    reference, _ = comparison
    propanol = Molecule.from_smiles("CCCO", name="propanol")
    with pytest.raises(InputError, match="atoms"):
        score_models({"other": RDKitEnergyModel(propanol, "mmff94")}, reference.geometries,
                     reference.energy_kcal_mol, reference.forces_kcal_mol_a)
    assert ethanol.bonds.tolist().count([0, 8]) == 0  # atoms 0 and 8 interact by Coulomb
    bad = reference.geometries.copy()
    bad[0, 8] = bad[0, 0]  # on top of each other: Coulomb 1/r diverges, MMFF94's is buffered
    result = score_models({"sage": MMEnergyModel(ethanol_sage),
                           "mmff94": RDKitEnergyModel(ethanol, "mmff94")}, bad,
                          reference.energy_kcal_mol)  # energies only
    assert "non-finite" in result.models["sage"].error
    assert result.warnings and "sage" in result.warnings[0]
    mmff = result.models["mmff94"]
    assert mmff.error is None and np.isfinite(mmff.energy_rmse_kcal_mol)
    assert mmff.force_rmse_kcal_mol_a is None  # no reference forces given
    with pytest.raises(InputError, match="do not match"):
        score_models({}, reference.geometries, reference.energy_kcal_mol[:2])
