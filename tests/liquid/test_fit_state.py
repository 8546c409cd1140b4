"""The liquid-fit state and liquid results are typed and versioned: files written before
``schema_version`` existed (``data/fit_state_v0.json`` and ``data/result_v0.json``, written
by the liquid fit of commit 7fe0052 on the tiny methanol fit of test_fit.py) read back
through one migration each, a newer version is refused with one InputError, malformed
files are one InputError, and the fit's fingerprint is the one that code stored (so its
fit directories resume)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from ffparam.errors import InputError
from ffparam.liquid.data import read_liquids_csv
from ffparam.liquid.fit_state import (
    FIT_STATE_SCHEMA_VERSION,
    FitRound,
    LiquidFitState,
    fit_fingerprint,
    migrate_fit_state_v0,
    read_fit_state,
)
from ffparam.liquid.properties import RESULT_SCHEMA_VERSION, LiquidResult, migrate_result_v0
from ffparam.liquid.settings import LiquidFitSettings
from tests.liquid.conftest import tiny_settings

HERE = Path(__file__).parent
STATE_V0 = HERE / "data" / "fit_state_v0.json"
RESULT_V0 = HERE / "data" / "result_v0.json"
CSV = HERE.parent / "data" / "liquid" / "liquids_subset.csv"


def test_v0_state_reads_through_the_migration():
    raw = json.loads(STATE_V0.read_text())
    assert "schema_version" not in raw
    state = read_fit_state(STATE_V0)
    assert state.schema_version == FIT_STATE_SCHEMA_VERSION == 1
    assert state.fingerprint == raw["fingerprint"] and state.centre == raw["centre"]
    assert state.validation is None and len(state.rounds) == len(raw["rounds"]) == 2
    first, second = state.rounds
    assert first.step_norm is None and first.predicted_change is None  # absent in v0
    assert first.accepted is True and first.status == "done"
    assert second.from_round == 0 and second.step_norm == raw["rounds"][1]["step_norm"]
    assert second.x == tuple(raw["rounds"][1]["x"])
    assert second.accepted == raw["rounds"][1]["accepted"]
    assert second.next_trust_radius == raw["rounds"][1]["next_trust_radius"]
    result = first.results["methanol"]
    data = raw["rounds"][0]["results"]["methanol"]
    assert result.density.value == data["density_g_ml"]["value"]
    assert result.hvap.error == data["hvap_kcal_mol"]["error"]
    assert result.density.n_samples == data["density_g_ml"]["n_samples"]
    assert result.torsion_drift == [] and result.keys == list(data["gradients"])
    # written back as version 1 and read again: the same data
    written = state.to_dict()
    assert written["schema_version"] == 1
    assert written["rounds"][0]["results"]["methanol"]["schema_version"] == 1
    assert LiquidFitState.from_dict(json.loads(json.dumps(written))).to_dict() == written


def test_v0_migration_fills_what_v0_left_out():
    """Version 0 wrote fields only once they had a value; the migration names them."""
    v0 = {"fingerprint": "f", "rounds": [], "validation": None}  # saved before round 0
    assert migrate_fit_state_v0(v0) == {"schema_version": 1, "fingerprint": "f",
                                        "rounds": [], "centre": 0, "validation": None}
    raw = json.loads(STATE_V0.read_text())
    pending = {"index": 2, "x": [0.1, 0.0, -0.1], "trust_radius": 0.15, "from_round": 0,
               "step_norm": 0.14, "predicted_change": -1.5, "status": "pending"}
    failed = copy.deepcopy(raw["rounds"][1])
    for name in ("objective_error", "data_objective", "prior_objective", "gradient_norm",
                 "actual_change", "model_ratio"):
        failed.pop(name)
    failed.update(objective=None, results={}, errors={"methanol": "NonFiniteError: NaN"})
    raw["rounds"] = [raw["rounds"][0], failed, pending]
    raw["validation"] = {"round": 1, "results": {}, "errors": {}}
    state = LiquidFitState.from_dict(raw)
    assert state.rounds[1].errors == {"methanol": "NonFiniteError: NaN"}
    assert state.rounds[1].objective is None and state.rounds[1].model_ratio is None
    assert state.rounds[2].status == "pending" and state.rounds[2].results == {}
    assert state.rounds[2].accepted is None and state.validation.round == 1


def test_newer_or_malformed_states_are_one_input_error(tmp_path):
    raw = json.loads(STATE_V0.read_text())
    newer = {**LiquidFitState.from_dict(raw).to_dict(), "schema_version": 2}
    path = tmp_path / "fit_state.json"
    path.write_text(json.dumps(newer))
    with pytest.raises(InputError, match="schema version 2, newer than this ffparam reads"):
        read_fit_state(path)
    current = LiquidFitState.from_dict(raw).to_dict()
    del current["rounds"][0]["trust_radius"]
    with pytest.raises(InputError, match=r"rounds\[0\]: missing field\(s\) trust_radius"):
        LiquidFitState.from_dict(current)
    with pytest.raises(InputError, match="unknown field"):
        LiquidFitState.from_dict({**LiquidFitState.from_dict(raw).to_dict(), "extra": 1})
    with pytest.raises(InputError, match="schema_version must be a non-negative integer"):
        LiquidFitState.from_dict({**raw, "schema_version": "1"})
    path.write_text("{not json")
    with pytest.raises(InputError, match="not a liquid fit state"):
        read_fit_state(path)


def test_results_read_every_version_and_refuse_newer():
    raw = json.loads(RESULT_V0.read_text())
    assert "schema_version" not in raw
    result = LiquidResult.from_json(raw)
    assert result.density.value == raw["density_g_ml"]["value"]
    again = result.to_json()
    assert again["schema_version"] == RESULT_SCHEMA_VERSION == 1
    assert LiquidResult.from_json(json.loads(json.dumps(again))).to_json() == again
    # the earliest results had no torsion check and no sample counts
    early = {k: v for k, v in raw.items() if k not in ("torsion_drift", "frames")}
    early["density_g_ml"] = {"value": 0.8, "error": 0.01}
    migrated = migrate_result_v0(early)
    assert migrated["torsion_drift"] is None and migrated["frames"] == {}
    assert migrated["density_g_ml"] == {"value": 0.8, "error": 0.01, "n_samples": 0,
                                        "statistical_inefficiency": 1.0}
    old = LiquidResult.from_json(early)
    assert old.torsion_drift is None and old.density.n_samples == 0
    assert LiquidResult.from_json(old.to_json()).torsion_drift is None
    with pytest.raises(InputError, match="schema version 3"):
        LiquidResult.from_json({**again, "schema_version": 3})
    with pytest.raises(InputError, match="malformed"):
        LiquidResult.from_json({k: v for k, v in again.items() if k != "hvap_kcal_mol"})


def test_fingerprints_are_the_ones_stored_before():
    """Digests computed by the code of commit 7fe0052 (LiquidFitOptions): fit directories
    written by it open with LiquidFitSettings."""
    methanol = read_liquids_csv(CSV, ["Methanol"])
    settings = LiquidFitSettings(params=("vdw:n16", "vdw:[#8X2H1+0:1]:sigma"), iterations=1,
                                 charges="gasteiger",
                                 simulation=tiny_settings(production_ps=12.0,
                                                          gas_production_ps=40.0))
    expected = "4bf8c482d52b76b2af122fca013168bc80711be41712f8b1b291052229e26e3f"
    assert fit_fingerprint(methanol, settings) == expected
    assert json.loads(STATE_V0.read_text())["fingerprint"] == expected
    # how later steps are proposed and where they run are not part of it
    assert fit_fingerprint(methanol, settings.replace(iterations=5,
                                                      step="reweighted")) == expected
    everything = read_liquids_csv(CSV)
    assert fit_fingerprint(everything, LiquidFitSettings(holdout=("Benzene",))) == (
        "9bc7060068e4dec88e70b481aa08358d3685971abff5ad0599a84ee9c1bfbf18")


def test_rounds_are_frozen_and_replaced_whole():
    state = LiquidFitState("f").with_round(FitRound(0, (0.0,), 0.3, None))
    with pytest.raises(AttributeError):
        state.rounds[0].status = "done"  # type: ignore[misc]
    done = state.with_round(FitRound(0, (0.0,), 0.3, None, status="done"))
    assert state.rounds[0].status == "pending" and done.rounds[0].status == "done"
    with pytest.raises(InputError, match="numbered"):
        LiquidFitState.from_dict({**done.to_dict(), "rounds": [
            {**done.rounds[0].to_dict(), "index": 1}]})


def test_fit_settings_are_settings():
    """LiquidFitSettings: validated on construction, plain data round trip with the nested
    simulation settings, copies through replace."""
    settings = LiquidFitSettings(params=["vdw:n16"], holdout=["Benzene"],
                                 simulation=tiny_settings())
    assert settings.params == ("vdw:n16",) and settings.holdout == ("Benzene",)
    again = LiquidFitSettings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert again == settings and again.simulation.n_molecules == 40
    for bad, match in (({"iterations": -1}, "iterations"),
                       ({"trust_radius": 0.0}, "trust_radius"),
                       ({"no_worse_margin": -1.0}, "no_worse_margin"),
                       ({"step": "newton"}, "step")):
        with pytest.raises(InputError, match=match):
            LiquidFitSettings(**bad)
    with pytest.raises(InputError, match="unknown option"):
        LiquidFitSettings.from_dict({"simulation": {"n_molecules": 40, "cutoff": 6.0}})
