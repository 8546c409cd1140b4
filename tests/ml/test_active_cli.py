"""``ffparam mlp active``: the pool run from the command line, its model usable by
``mlp eval``, and one error line per bad input before anything is labelled."""

from __future__ import annotations

import json

import numpy as np

from ffparam.cli.main import main
from tests.ml.conftest import BPA, ETHANOL, ETHANOL_ATOMS

FAST = ["--option", "length_scale=1.6", "--option", "learn_weights=false",
        "--option", "symmetrize=false"]


def test_pool_run_and_eval_of_its_directory(tmp_path, capsys):
    out = tmp_path / "al"
    argv = ["mlp", "active", "--pool", str(ETHANOL), "--model", "gpr", "--budget", "15",
            "--initial", "10", "--per-round", "5", "--out", str(out), "--isolated-atoms",
            str(ETHANOL_ATOMS), "--test", str(ETHANOL), *FAST]
    assert main(argv) == 0
    assert "15 labels (15 spent), 2 rounds; stopped: label budget 15 spent" in \
        capsys.readouterr().out
    summary = json.loads((out / "active.json").read_text())
    assert [r["n_labels"] for r in summary["rounds"]] == [10, 15]
    assert main(["mlp", "eval", str(out), str(ETHANOL), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["model_type"] == "gpr"
    assert np.isfinite(metrics["forces_calibration"]["frame_spearman"])


def test_bad_input_gives_one_line_before_labelling(tmp_path, capsys):
    def error(argv) -> tuple[int, str]:
        capsys.readouterr()
        code = main(argv)
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        return code, err

    no_forces = tmp_path / "noforces.xyz"
    no_forces.write_text("".join(
        f'3\nenergy={-10 - k} pbc="F F F"\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 {0.01 * k}\n'
        for k in range(5)))
    base = ["mlp", "active", "--out", str(tmp_path / "x")]
    code, err = error([*base, "--pool", str(no_forces), "--initial", "3"])
    assert code == 2 and "no forces" in err
    code, err = error([*base, "--pool", str(ETHANOL), "--budget", "0"])
    assert code == 2 and "--budget" in err
    code, err = error([*base, "--pool", str(ETHANOL), "--test", str(BPA)])
    assert code == 2 and "element(s) N" in err and "never sees" in err
    code, err = error([*base, "CCO", "--pool", str(ETHANOL)])
    assert code == 2 and "not both" in err
    code, err = error([*base, "[Fe]", "--budget", "5", "--initial", "3"])
    assert code == 2 and "2 or more atoms" in err
    code, err = error([*base, "CCO", "--method", "gfn9-xtb"])
    assert code == 2 and "gfn9-xtb" in err
    code, err = error([*base, "--pool", str(ETHANOL), "--model", "ani", "--committee", "1"])
    assert code == 2 and "no uncertainty" in err
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").rglob("*.xyz"))
