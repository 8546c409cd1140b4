"""A one-step liquid fit on a tiny methanol box: every output is written, the fitted
.offxml reads back with the fitted sigma/epsilon, a rerun resumes without simulating,
and bad options are one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ffparam.assign.smirnoff import SmirnoffForceField
from ffparam.cli.main import main
from ffparam.errors import InputError
from ffparam.liquid.data import read_liquids_csv
from ffparam.liquid.settings import LiquidFitSettings
from ffparam.workflows.liquid_fit import LiquidFit, fit_liquids
from tests.liquid.conftest import tiny_settings

DATA = Path(__file__).parents[1] / "data" / "liquid" / "liquids_subset.csv"


def _options(**changes) -> LiquidFitSettings:
    base = {"params": ("vdw:n16", "vdw:[#8X2H1+0:1]:sigma"), "iterations": 1,
            "charges": "gasteiger",
            "simulation": tiny_settings(production_ps=12.0, gas_production_ps=40.0)}
    base.update(changes)
    return LiquidFitSettings(**base)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    out = tmp_path_factory.mktemp("fit")
    refs = read_liquids_csv(DATA, ["Methanol"])
    log: list[str] = []
    outcome = fit_liquids(refs, _options(), out, log=log.append)
    return refs, out, outcome, log


def test_outputs_and_history(fitted):
    _, out, outcome, log = fitted
    for name in ("fitted.offxml", "fitted_vdw.yaml", "fit_history.json", "metrics.json",
                 "plots/liquids.png", "fit_state.json", "round_000/methanol/result.json",
                 "round_001/methanol/result.json"):
        assert (out / name).exists(), name
    history = json.loads((out / "fit_history.json").read_text())
    assert history["parameters"] == ["vdW/[#6X4:1]/epsilon", "vdW/[#6X4:1]/sigma",
                                     "vdW/[#8X2H1+0:1]/sigma"]
    rounds = history["rounds"]
    assert len(rounds) == 2 and rounds[0]["accepted"] is True
    assert 0 < rounds[1]["step_norm"] <= 0.3 + 1e-9  # inside the first trust radius
    assert rounds[1]["predicted_change"] < 0  # the model step goes downhill
    assert all(np.isfinite(r["objective"]) and r["objective_error"] > 0 for r in rounds)
    metrics = json.loads((out / "metrics.json").read_text())
    row = metrics["liquids"][0]
    assert row["name"] == "Methanol" and row["density_before_error"] > 0
    assert metrics["best_round"] == outcome.best_round in (0, 1)
    assert "train_density_before_mae" in metrics["summary"]
    assert any("round 1" in line for line in log)
    # methanol has no rotatable heavy-atom torsion: checked, nothing to report
    assert metrics["conformers_not_equilibrated"] == []
    state = json.loads((out / "fit_state.json").read_text())
    assert state["schema_version"] == 1
    assert state["rounds"][0]["results"]["methanol"]["torsion_drift"] == []


def test_fitted_offxml_reads_back(fitted):
    refs, out, outcome, _ = fitted
    best = outcome.best_round
    fit = LiquidFit(refs, _options(), out)
    physical = fit.fit.physical(torch.as_tensor(
        np.array(outcome.state.rounds[best].x), dtype=torch.float64)).numpy()
    loaded = SmirnoffForceField.load(out / "fitted.offxml").parameters
    for label, value in zip(fit.labels, physical):
        _, pid, name = label.split("/", 2)
        assert loaded.get("vdW", pid).values[name] == pytest.approx(value, rel=1e-9)
    # the proposed round-1 values (accepted or not) survive the rmin_half edge too
    _, changed = fit.fitted_parameters(1)
    path = fit.forcefield.to_offxml(out / "round1.offxml", extra=changed)
    again = SmirnoffForceField.load(path).parameters
    for _, par in changed:
        for name, value in par.values.items():
            assert again.get("vdW", par.id).values[name] == pytest.approx(value, rel=1e-9)


def test_rerun_resumes_without_simulating(fitted):
    refs, out, outcome, _ = fitted
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("round_*/methanol/*/progress.json")}
    assert len(stamps) == 4  # liquid and gas of two rounds
    again = fit_liquids(refs, _options(), out)
    assert again.best_round == outcome.best_round
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    with pytest.raises(InputError, match="holds a fit with other"):
        fit_liquids(refs, _options(params=("vdw:n16",)), out)


def test_a_state_written_before_schema_versions_resumes(fitted, tmp_path):
    """A fit directory whose fit_state.json was written by the code before the typed state
    (data/fit_state_v0.json: same liquids and settings, so the same fingerprint) resumes
    through the migration without simulating, and reports what that state recorded."""
    import shutil

    refs, out, _, _ = fitted
    copy = tmp_path / "fit"
    shutil.copytree(out, copy)
    v0 = Path(__file__).parent / "data" / "fit_state_v0.json"
    (copy / "fit_state.json").write_text(v0.read_text())
    stamps = {p: p.stat().st_mtime_ns for p in copy.glob("round_*/methanol/*/progress.json")}
    outcome = fit_liquids(refs, _options(), copy)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    recorded = json.loads(v0.read_text())
    assert outcome.best_round == recorded["centre"]
    row = outcome.metrics["liquids"][0]
    start = recorded["rounds"][0]["results"]["methanol"]
    assert row["density_before"] == start["density_g_ml"]["value"]
    assert row["hvap_before_error"] == start["hvap_kcal_mol"]["error"]


def test_cli_bad_params_and_rows(tmp_path, capsys):
    rc = main(["liquid", "fit", str(DATA), "--params", "bonds:[#6:1]", "--out",
               str(tmp_path / "f")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "only Lennard-Jones" in err[0]
    bad = tmp_path / "bad.csv"
    lines = DATA.read_text().splitlines()
    bad.write_text("\n".join([lines[0], lines[1], lines[2].replace("33.83", "-5")]) + "\n")
    rc = main(["liquid", "fit", str(bad), "--params", "vdw:*", "--out", str(tmp_path / "g")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["error: bad.csv row 2 (Benzene): hvap_298K_kJ_per_mol = -5 is "
                               "not physical (must lie between 0 and 300)"]
    assert not (tmp_path / "g").exists()


def test_guarded_step_from_a_finished_fit(fitted):
    """The no-worse guard changes how steps are proposed, not what the recorded rounds
    mean: the same directory opens with it, and its proposal predicts no property moving
    away from experiment beyond the margin (with the safety factor applied)."""
    refs, out, _, _ = fitted
    fit = LiquidFit(refs, _options(no_worse_margin=0.0, model_safety=1.5), out)
    proposal = fit._propose()
    centre = fit.state.rounds[fit.state.centre]
    terms = fit.objective(centre)
    dx = np.array(proposal.x) - np.array(centre.x)
    moved = terms.deviations + 1.5 * terms.deviation_jacobian @ dx
    assert np.all(np.abs(moved) <= np.abs(terms.deviations) + 1e-7)
    assert proposal.predicted_change <= 1e-12
    assert np.linalg.norm(dx) <= proposal.trust_radius + 1e-9
    assert [label for label in terms.row_labels] == [("methanol", "density"),
                                                      ("methanol", "hvap")]


def test_reweighted_step_from_a_finished_fit(fitted):
    """The MBAR step opens the same directory, pools both finished rounds, and proposes
    a step inside the trust radius whose predicted properties keep the no-worse guard and
    the Kish floor."""
    refs, out, _, _ = fitted
    log: list[str] = []
    fit = LiquidFit(refs, _options(step="reweighted", no_worse_margin=0.0,
                                   min_eff_fraction=0.2), out, log=log.append)
    proposal = fit._propose()
    centre = np.array(fit.state.rounds[fit.state.centre].x)
    dx = np.array(proposal.x) - centre
    assert np.linalg.norm(dx) <= proposal.trust_radius + 1e-6
    assert proposal.predicted_change <= 1e-9
    line = next(t for t in log if t.startswith("  reweighted prediction Methanol"))
    first = fit.state.rounds[0].results["methanol"]
    ref = refs[0]
    hvap = float(line.split("Hvap ")[1].split(" ")[0])
    density = float(line.split("density ")[1].split(",")[0])
    assert abs(hvap - ref.hvap_kcal_mol) <= abs(first.hvap.value - ref.hvap_kcal_mol) + 2e-3
    assert abs(density - ref.density_g_ml) <= abs(first.density.value
                                                  - ref.density_g_ml) + 1e-4
    with pytest.raises(InputError, match="unknown step"):
        LiquidFit(refs, _options(step="newton"), out)
