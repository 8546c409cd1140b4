"""IPolQ charges: RESP to the mean of the gas-phase and the QM/MM-in-water ESP."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from ffparam.assign import assign_parameters
from ffparam.assign.charges import compute_partial_charges
from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.fit.resp import resp
from ffparam.reference import Store
from ffparam.workflows.bespoke import BespokeSettings
from ffparam.workflows.bespoke_charges import ipolq_bespoke_system
from ffparam.workflows.ipolq import ipolq_charges
from ffparam.workflows.qmmm import QMMMSettings

os.environ.setdefault("OMP_NUM_THREADS", "1")

SMALL = QMMMSettings(method="hf/sto-3g", n_frames=2, n_solvent=60, cutoff_a=5.0,
                     md_cutoff_a=5.0, equilibration_ps=0.4, interval_ps=0.2, threads=1)


@pytest.fixture(scope="module")
def methanol():
    molecule = Molecule.from_smiles("CO", name="methanol").generate_conformers(1, seed=7)
    return assign_parameters(molecule, "sage", charges="am1bcc")


@pytest.fixture(scope="module")
def methanol_ipolq(methanol, tmp_path_factory):
    out = tmp_path_factory.mktemp("ipolq")
    return out, ipolq_charges(methanol, out, SMALL)


def test_ipolq_lies_between_gas_and_water_charges(methanol, methanol_ipolq):
    out, result = methanol_ipolq
    assert result.n_frames == 2 and abs(result.charges.sum()) < 1e-8
    np.testing.assert_allclose(result.charges, 0.5 * (result.gas_charges + result.water_charges),
                               atol=5e-3)
    assert np.abs(result.water_charges - result.gas_charges).max() > 5e-3  # water polarizes
    gas, ipolq, water = (result.charge_dipole_debye(q) for q in
                         (result.gas_charges, result.charges, result.water_charges))
    assert gas < ipolq < water
    assert result.qm_dipole_water_debye > result.qm_dipole_gas_debye
    methyl_h = [2, 3, 4]
    assert np.ptp(result.charges[methyl_h]) < 1e-10  # RESP symmetry kept
    data = json.loads((out / "ipolq.json").read_text())
    assert data["schema_version"] == 1 and data["dipole_debye"]["ipolq"] == pytest.approx(ipolq)


def test_ipolq_fits_the_averaged_potential(methanol, methanol_ipolq):
    """The charges are RESP of (V_gas + <V_water>) / 2 from the stored records."""
    out, result = methanol_ipolq
    with Store(out / "qmmm.sqlite") as store:
        records = list(store.records(status="complete", task_kind="esp"))
    gas = [r for r in records if r.mm_charges is None]
    water = [r for r in records if r.mm_charges is not None]
    assert len(gas) == 1 and len(water) == 2
    target = 0.5 * (gas[0].esp + np.mean([r.esp for r in water], axis=0))
    expected = resp(methanol.topology, gas[0].geometry, gas[0].esp_points, target).charges
    np.testing.assert_allclose(result.charges, expected, atol=1e-10)


def test_rerun_recomputes_nothing(methanol, methanol_ipolq):
    out, result = methanol_ipolq
    with Store(out / "qmmm.sqlite") as store:
        n_before = len(store)
        again = ipolq_charges(methanol, out, SMALL, store=store)
        assert len(store) == n_before
    np.testing.assert_array_equal(again.charges, result.charges)


def test_bespoke_hook_optimizes_then_polarizes(methanol, tmp_path):
    with Store(tmp_path / "ffparam.db") as store:
        charged = ipolq_bespoke_system(methanol, "hf/sto-3g", store, None, SMALL)
    assert charged.parameters.settings["charge_method"].startswith("ipolq (hf/sto-3g ESP")
    assert (tmp_path / "ipolq" / "ipolq.json").exists()
    assert abs(charged.charges().sum()) < 1e-8
    assert not np.allclose(charged.charges(), methanol.charges(), atol=1e-3)
    assert BespokeSettings(charges="ipolq").charges == "ipolq"


def test_ipolq_is_not_a_plain_charge_method(methanol):
    with pytest.raises(InputError, match="ipolq charges need QM/MM"):
        compute_partial_charges(methanol.molecule, "ipolq")


@pytest.mark.slow
def test_assign_cli_writes_ipolq_charges(tmp_path):
    from ffparam.cli.main import main
    from ffparam.params.parameter_set import ParameterSet

    output = tmp_path / "methanol.yaml"
    assert main(["assign", "CO", "--charges", "ipolq", "-o", str(output)]) == 0
    assert (tmp_path / "methanol_ipolq" / "ipolq.json").exists()
    params = ParameterSet.load(output)
    assert params.settings["charge_method"].startswith("ipolq (hf/6-31g* ESP")
