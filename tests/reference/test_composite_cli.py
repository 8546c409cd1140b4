"""`ffparam torsiondrive --method HIGH//LOW` end to end, and composite bad input on the CLI."""

from __future__ import annotations

import numpy as np

from ffparam.cli.main import main
from ffparam.units import KCAL_MOL_EV


def test_torsiondrive_cli_composite_writes_high_profile(tmp_path, capsys):
    out = tmp_path / "scan.xyz"
    args = ["torsiondrive", "CC", "--dihedral", "2,0,1,5", "--spacing", "90", "--method",
            "hf/sto-3g//gfn2-xtb", "--store", str(tmp_path / "t.db"), "-o", str(out)]
    assert main(args) == 0
    from ase.io import read

    frames = read(out, index=":")
    assert len(frames) == 4
    assert {(f.info["method"], f.info["task"], f.info["geometry_method"]) for f in frames} == {
        ("hf/sto-3g", "energy", "gfn2-xtb")}
    energies = np.array([f.get_potential_energy() for f in frames]) / KCAL_MOL_EV
    relative = np.array([f.info["relative_energy_kcal_mol"] for f in frames])
    np.testing.assert_allclose(energies - energies.min(), relative, atol=1e-6)
    assert out.with_suffix(".png").stat().st_size > 1000
    assert "hf/sto-3g//gfn2-xtb" in capsys.readouterr().out
    assert main(args) == 0  # the rerun takes every record from the store
    assert "0 computed" in capsys.readouterr().err


def test_composite_bad_input_is_one_line_exit_2(tmp_path, capsys):
    store = tmp_path / "t.db"
    drive = ["torsiondrive", "CC", "--dihedral", "2,0,1,5", "--store", str(store)]
    assert main([*drive, "--method", "hf/sto-3g//gfn2-xtb//gfn1-xtb"]) == 2
    assert main([*drive, "--method", "hf/sto-3g//gfn2-xtb", "--solvent", "water"]) == 2
    assert main(["qm", "CC", "--method", "hf/sto-3g//gfn2-xtb", "--store", str(store)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 3
    assert "do not nest" in errors[0] and "ambiguous" in errors[1]
    assert "single method" in errors[2]
