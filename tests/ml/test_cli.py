"""``ffparam mlp train | eval | md`` end to end on tiny data, and one clear error per bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ffparam.cli.main import main
from ffparam.ml.data import read_extxyz
from tests.ml.conftest import BPA, ETHANOL, ETHANOL_ATOMS


@pytest.fixture(scope="module")
def files(ethanol, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    ethanol.subset(np.arange(0, 24)).write_extxyz(root / "train.xyz")
    ethanol.subset(np.arange(24, 30)).write_extxyz(root / "valid.xyz")
    ethanol.subset(np.arange(40, 50)).write_extxyz(root / "test.xyz")
    return root


@pytest.fixture(scope="module")
def gp_dir(files):
    out = files / "gp"
    code = main(
        [
            "mlp",
            "train",
            "--model",
            "gpr",
            "--train",
            str(files / "train.xyz"),
            "--valid",
            str(files / "valid.xyz"),
            "--out",
            str(out),
            "--isolated-atoms",
            str(ETHANOL_ATOMS),
            "--option",
            "length_scale=1.6",
        ]
    )
    assert code == 0
    return out


def test_train_eval_network(files, capsys):
    out = files / "ani"
    code = main(
        [
            "mlp",
            "train",
            "--model",
            "ani",
            "--train",
            str(files / "train.xyz"),
            "--out",
            str(out),
            "--max-epochs",
            "3",
            "--option",
            "hidden=[16,16]",
            "--option",
            "batch_size=8",
        ]
    )
    assert code == 0
    capsys.readouterr()
    assert main(["mlp", "eval", str(out), str(files / "test.xyz"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    from ffparam.ml.potential import load_potential

    test = read_extxyz(files / "test.xyz")
    pred = load_potential(out).predict(test)
    assert metrics["forces_mae_mev_a"] == pytest.approx(
        1000 * np.abs(pred.forces - test.forces).mean()
    )
    assert metrics["energy_rmse_mev"] == pytest.approx(
        1000 * np.sqrt(np.mean((pred.energy - test.energies) ** 2))
    )
    assert (out / "parity_test.png").stat().st_size > 1000
    info = json.loads((out / "model.json").read_text())
    assert info["metadata"]["n_train"] == 22 and info["metadata"]["n_valid"] == 2  # 10% held out


def test_gp_eval_and_md(gp_dir, files, capsys, tmp_path):
    capsys.readouterr()
    assert main(["mlp", "eval", str(gp_dir), str(files / "test.xyz")]) == 0
    text = capsys.readouterr().out
    assert "forces (meV/A)" in text and "miscalibration area" in text
    traj = tmp_path / "traj.xyz"
    code = main(
        [
            "mlp",
            "md",
            str(gp_dir),
            str(files / "test.xyz"),
            "--steps",
            "10",
            "--temperature",
            "300",
            "-o",
            str(traj),
            "--interval",
            "5",
            "--max-force-sigma",
            "100",
        ]
    )
    assert code == 0 and len(read_extxyz_frames(traj)) == 3


def read_extxyz_frames(path):
    from ase.io import read

    return read(str(path), index=":")


def test_md_stop_is_an_error_with_reason(gp_dir, files, capsys, tmp_path):
    code = main(
        [
            "mlp",
            "md",
            str(gp_dir),
            str(files / "test.xyz"),
            "--steps",
            "10",
            "-o",
            str(tmp_path / "t.xyz"),
            "--max-force",
            "0.01",
        ]
    )
    assert code == 1
    assert "MD stopped: forces exploded at step 0" in capsys.readouterr().err


def test_bad_inputs_give_one_line_errors(gp_dir, files, capsys, tmp_path):
    def error(argv) -> tuple[int, str]:
        capsys.readouterr()
        code = main(argv)
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        return code, err

    # species the model never saw
    code, err = error(["mlp", "eval", str(gp_dir), str(BPA)])
    assert code == 2 and "element(s) N not seen by the GP model" in err
    # frames without forces when training needs them
    no_forces = tmp_path / "noforces.xyz"
    no_forces.write_text(
        "".join(
            f'3\nenergy={-10 - k} pbc="F F F"\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 {0.01 * k}\n'
            for k in range(5)
        )
    )
    code, err = error(
        ["mlp", "train", "--model", "ani", "--train", str(no_forces), "--out", str(tmp_path / "x")]
    )
    assert code == 2 and "without forces" in err
    # NaN values
    nan = tmp_path / "nan.xyz"
    nan.write_text(ETHANOL.read_text().replace("-4209.4657843064815", "nan", 1))
    code, err = error(
        ["mlp", "train", "--model", "gpr", "--train", str(nan), "--out", str(tmp_path / "y")]
    )
    assert code == 2 and "frame 0 has a non-finite energy" in err
    # a checkpoint of another model type
    code, err = error(
        [
            "mlp",
            "train",
            "--model",
            "ani",
            "--train",
            str(files / "train.xyz"),
            "--out",
            str(gp_dir),
        ]
    )
    assert code == 2 and "holds a gpr model, not ani" in err
    code, err = error(
        [
            "mlp",
            "train",
            "--model",
            "transformer",
            "--train",
            str(files / "train.xyz"),
            "--out",
            str(tmp_path / "z"),
        ]
    )
    assert code == 2 and "unknown model" in err
    code, err = error(["mlp", "eval", str(tmp_path), str(files / "test.xyz")])
    assert code == 2 and "not an ffparam model directory" in err
