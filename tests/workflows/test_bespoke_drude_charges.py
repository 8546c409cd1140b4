"""``bespoke --polarizable --field-charges N``: the Drude fit's reference also holds the QM
ESP in N perturbing +-0.5 e point charges (CHARMM's recipe), stored and fitted through the
same field-ESP target; a negative count is refused."""

import numpy as np
import pytest

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.reference.store import Store
from ffparam.runtime import SerialExecutor
from ffparam.workflows.bespoke import BespokeSettings
from ffparam.workflows.bespoke_drude import fit_drude

METHOD = "hf/sto-3g"  # the mechanism, not the numbers


def test_fit_with_point_charges_stores_and_uses_them(tmp_path):
    mol = Molecule.from_smiles("C=O", name="formaldehyde").generate_conformers(1, seed=7)
    system = assign_parameters(mol, "sage", charges="gasteiger")
    with Store(tmp_path / "s.db") as store:
        _, summary = fit_drude(system, METHOD, 5.93, store, SerialExecutor(),
                               max_iterations=4, n_field_charges=3)
        records = list(store.records(status="complete"))
    charged = [r for r in records if r.mm_charges is not None]
    assert len(records) == 11 and len(charged) == 3  # tensor + 7 fields + 3 charges
    assert sorted(float(r.mm_charges[0]) for r in charged) == [-0.5, 0.5, 0.5]
    assert summary.n_fields == 7 and summary.n_charges == 3
    esp = summary.esp_field  # 4 iterations per stage: the fit only has to move
    assert esp["fitted_rmse_kcal_mol_e"] < esp["start_rmse_kcal_mol_e"]
    assert abs(np.sum(summary.charges_fitted)) < 1e-4
    assert summary.to_json()["n_charges"] == 3


def test_negative_field_charges_refused():
    with pytest.raises(InputError, match="n_field_charges"):
        BespokeSettings(polarizable=True, n_field_charges=-1)
