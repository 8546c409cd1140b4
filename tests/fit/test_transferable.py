"""Leave-one-molecule-out cross-validation of a shared-type fit (``ffparam fit --cv``) on
butane, pentane and hexane (MMFF94 scans) plus propane, which the shared type misses."""

import json
import subprocess
import sys

import numpy as np
import pytest

from ffparam.errors import InputError
from ffparam.fit.spec import load_fit_spec
from ffparam.workflows.fit import (
    build_systems,
    molecules_objective,
    optimize_spec,
    spec_leave_one_out,
)
from tests.fit.transferable_family import FAMILY, TYPE_SMIRKS, family_spec, write_scans

MOLECULES = {**FAMILY, "propane": "CCC"}


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cv")
    write_scans(tmp, MOLECULES)
    spec = family_spec(tmp, MOLECULES)
    out = tmp / "out"
    proc = subprocess.run([sys.executable, "-m", "ffparam.cli.main", "fit", str(spec), "-o",
                           str(out), "--quiet", "--cv"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    return tmp, out, proc.stdout


def test_cv_outputs(cv_run):
    _, out, stdout = cv_run
    cv = json.loads((out / "metrics.json").read_text())["leave_one_out"]
    rows = {row["molecule"]: row for row in cv["targets"]}
    assert set(rows) == set(MOLECULES)
    for name in FAMILY:  # the shared type transfers: most of the bespoke gain is kept
        row = rows[name]
        assert row["bespoke"] < row["left_out"] < row["start"], row
        assert row["kept"] > 0.5, row
    # propane has no C-CH2-CH2-C torsion: no fit changes it
    row = rows["propane"]
    assert row["start"] == row["left_out"] == row["bespoke"] == pytest.approx(row["fitted"])
    assert np.isnan(row["kept"])  # no bespoke gain to keep
    assert cv["median_kept"] == pytest.approx(np.median([rows[n]["kept"] for n in FAMILY]))
    assert "median share of the bespoke gain kept" in stdout
    assert "| butane | butane_scan |" in (out / "leave_one_out.md").read_text()
    assert (out / "plots" / "leave_one_out.png").stat().st_size > 1000


def test_left_out_fit_is_a_real_refit(cv_run):
    """The parameters predicting butane are those of a fit to the other molecules' data
    alone, and differ from the fit that saw butane."""
    tmp, out, _ = cv_run
    cv = json.loads((out / "metrics.json").read_text())["leave_one_out"]
    without = {k: v for k, v in MOLECULES.items() if k != "butane"}
    spec = load_fit_spec(family_spec(tmp, without))
    systems, _ = build_systems(spec)
    objective = molecules_objective(spec, systems, list(systems))
    assert objective.fit.size == 3  # one shared type, k1..k3, for three molecules
    refit = optimize_spec(spec, objective).parameters.get("ProperTorsions", TYPE_SMIRKS)
    left_out = cv["left_out_values"]["butane"]
    assert set(left_out) == {f"ProperTorsions/{TYPE_SMIRKS}/k{n}" for n in (1, 2, 3)}
    for n in (1, 2, 3):
        assert left_out[f"ProperTorsions/{TYPE_SMIRKS}/k{n}"] == pytest.approx(
            refit.values[f"k{n}"], abs=1e-6)
    full = json.loads((out / "fit_history.json").read_text())["history"][-1]["physical"]
    assert max(abs(a - b) for a, b in zip(full, left_out.values())) > 1e-3
    # the other folds differ too: each left out a different molecule
    assert cv["left_out_values"]["hexane"] != pytest.approx(left_out, abs=1e-3)


def test_cv_needs_two_molecules(cv_run):
    tmp, _, _ = cv_run
    spec = load_fit_spec(family_spec(tmp, {"butane": "CCCC"}))
    systems, _ = build_systems(spec)
    with pytest.raises(InputError, match="at least 2 molecules"):
        spec_leave_one_out(spec, systems)
