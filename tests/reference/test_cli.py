"""`ffparam qm`, `ffparam torsiondrive`, `ffparam sample` end to end."""

from __future__ import annotations

import numpy as np
import pytest

from ffparam.cli.main import main
from ffparam.reference import Store
from ffparam.units import KCAL_MOL_EV


def test_qm_records_rerun_reuses_and_writes_extxyz(tmp_path, capsys):
    db, out = tmp_path / "p.db", tmp_path / "g.xyz"
    args = ["qm", "CCO", "--task", "gradient", "--store", str(db), "--workers", "0"]
    assert main([*args, "-o", str(out)]) == 0
    assert main(args) == 0
    text = capsys.readouterr().err
    assert "1 from the store, 0 computed, 0 failed" in text
    from ase.io import read

    atoms = read(out)
    with Store(db, readonly=True) as store:
        (record,) = list(store.records())
    assert atoms.get_potential_energy() == pytest.approx(record.energy * KCAL_MOL_EV)


def test_qm_failure_is_recorded_and_exit_code_is_nonzero(tmp_path, capsys):
    db = tmp_path / "f.db"
    code = main(
        [
            "qm",
            "O",
            "--method",
            "hf/sto-3g",
            "--max-scf-cycles",
            "1",
            "--store",
            str(db),
            "--workers",
            "0",
        ]
    )
    assert code == 1
    assert "SCF not converged" in capsys.readouterr().err
    with Store(db, readonly=True) as store:
        assert store.counts() == {"failed": 1}


def test_torsiondrive_cli_writes_profile_and_png_with_a_worker_pool(tmp_path):
    out = tmp_path / "scan.xyz"
    code = main(
        [
            "torsiondrive",
            "CC",
            "--dihedral",
            "2,0,1,5",
            "--spacing",
            "60",
            "--store",
            str(tmp_path / "t.db"),
            "--workers",
            "2",
            "-o",
            str(out),
        ]
    )
    assert code == 0
    from ase.io import read

    frames = read(out, index=":")
    assert len(frames) == 6
    relative = np.array([f.info["relative_energy_kcal_mol"] for f in frames])
    assert relative.min() == 0.0 and 2.0 < relative.max() < 3.5
    assert out.with_suffix(".png").stat().st_size > 1000


@pytest.mark.parametrize(
    "mode",
    [
        ["--conformers", "3"],
        ["--md", "300", "--frames", "3"],
        ["--md", "300", "--frames", "2", "--md-engine", "mm"],
        ["--normal-modes", "3"],
    ],
)
def test_sample_modes_write_frames(tmp_path, mode):
    out = tmp_path / "frames.xyz"
    code = main(
        [
            "sample",
            "CCO",
            *mode,
            "--store",
            str(tmp_path / "s.db"),
            "--workers",
            "0",
            "-o",
            str(out),
        ]
    )
    assert code == 0
    from ase.io import read

    frames = read(out, index=":")
    assert 1 <= len(frames) <= 3
    assert all(np.isfinite(f.get_forces()).all() for f in frames)


def test_bad_arguments_are_one_line_input_errors(tmp_path, capsys):
    assert main(["torsiondrive", "CC", "--store", str(tmp_path / "x.db")]) == 2
    assert "--dihedral" in capsys.readouterr().err
    assert main(["qm", "CC", "--method", "gfn9-xtb", "--store", str(tmp_path / "x.db")]) == 2
    assert "unknown method" in capsys.readouterr().err
    assert main(["sample", "CC", "--store", str(tmp_path / "x.db")]) == 2
    assert main(["qm", "CC", "--task", "esp", "--store", str(tmp_path / "x.db")]) == 2
    assert "no ESP" in capsys.readouterr().err
