"""``ffparam qmmm``: methanol in a small TIP3P box, QM/MM per snapshot, resumed from the
Store; bad input refused before anything is written."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from ffparam.cli.main import main
from ffparam.errors import InputError
from ffparam.liquid.simulate import load_trajectory
from ffparam.reference import Store
from ffparam.workflows.qmmm import QMMMSettings, box_edge_a, run_qmmm

os.environ.setdefault("OMP_NUM_THREADS", "1")

SMALL = dict(method="hf/sto-3g", n_frames=2, n_solvent=60, cutoff_a=5.0, md_cutoff_a=5.0,
             equilibration_ps=0.4, interval_ps=0.2, threads=1)
CLI_SMALL = ["--method", "hf/sto-3g", "--frames", "2", "--n-solvent", "60", "--cutoff", "5",
             "--md-cutoff", "5", "--equil-ps", "0.4", "--interval-ps", "0.2", "--threads", "1",
             "--workers", "0", "--quiet"]


@pytest.fixture(scope="module")
def methanol_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("qmmm") / "methanol"
    return out, run_qmmm("CO", out, QMMMSettings(**SMALL))


def test_snapshots_are_computed_in_their_solvent_shell(methanol_run):
    out, result = methanol_run
    assert [r.ok for r in result.records] == [True, True] and result.gas.ok
    data = json.loads((out / "qmmm.json").read_text())
    assert data["schema_version"] == 1 and len(data["frames"]) == 2
    trajectory = load_trajectory(out / "md", 0.2)
    for region, record, frame in zip(result.regions, result.records, trajectory.positions):
        env = region.environment
        assert len(env) % 3 == 0 and len(env) >= 30
        assert abs(env.charges.sum()) < 1e-9  # whole neutral waters only
        waters = env.positions.reshape(-1, 3, 3)
        closest = np.linalg.norm(waters[:, :, None] - region.geometry[None, None],
                                 axis=-1).min(axis=(1, 2))
        assert closest.max() <= 5.0 and closest.min() > 1.5
        # the frozen solute kept its conformer (up to a barostat translation)
        moved = frame[:6] - frame[:6].mean(axis=0)
        np.testing.assert_allclose(moved, region.geometry - region.geometry.mean(axis=0),
                                   atol=1e-4)
        np.testing.assert_allclose(record.mm_positions, env.positions)
        assert record.mm_gradient.shape == (len(env), 3)
        assert record.energy < result.gas.energy  # the solvent field stabilizes the solute
    assert data["frames"][0]["dipole_debye"] > data["gas"]["dipole_debye"]


def test_rerun_computes_nothing(methanol_run):
    out, result = methanol_run
    with Store(out / "qmmm.sqlite") as store:
        again = run_qmmm("CO", out, QMMMSettings(**SMALL), store=store)
    assert all(r.cached for r in again.records) and again.gas.cached
    assert "0 computed" in again.summary_text
    assert [r.energy for r in again.records] == [r.energy for r in result.records]


def test_cli_reuses_the_run(methanol_run, capsys):
    out, result = methanol_run
    assert main(["qmmm", "CO", "--out", str(out), *CLI_SMALL]) == 0
    printed = capsys.readouterr().out
    assert "2 job(s): 2 from the store, 0 computed" in printed
    assert f"{result.records[1].energy:.4f}" in printed


def test_box_smaller_than_twice_the_cutoff_is_refused_first(tmp_path, capsys):
    settings = QMMMSettings(**{**SMALL, "cutoff_a": 7.0})
    with pytest.raises(InputError, match="smaller than twice the cutoff"):
        box_edge_a(settings)
    with pytest.raises(InputError, match="smaller than twice the cutoff"):
        run_qmmm("CO", tmp_path / "never", settings)
    assert not (tmp_path / "never").exists()
    args = ["qmmm", "CO", "--out", str(tmp_path / "cli"), *CLI_SMALL, "--cutoff", "7"]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "twice the cutoff" in error
    assert not (tmp_path / "cli").exists()
    assert main(["qmmm", "C1CC", "--out", str(tmp_path / "bad"), *CLI_SMALL]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not (tmp_path / "bad").exists()


def test_xtb_is_refused_for_qmmm():
    with pytest.raises(InputError, match="no external point charges"):
        QMMMSettings(method="gfn2-xtb")
