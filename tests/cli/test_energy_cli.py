"""`ffparam energy` / `ffparam assign`: output formats and one-line errors (exit code 2,
no traceback, nothing written). Runs the installed console script like a user does."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

FFPARAM = [sys.executable, "-m", "ffparam.cli.main"]


def run(*args, cwd=None):
    return subprocess.run([*FFPARAM, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_energy_json_terms_sum_to_total():
    proc = run("energy", "CCO", "--ff", "sage", "--charges", "gasteiger", "--conformers", "2",
               "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["units"] == "kcal/mol"
    for conf in data["conformers"]:
        assert set(conf["terms"]) >= {"Bonds", "Angles", "ProperTorsions", "vdW",
                                      "Electrostatics"}
        assert conf["total"] == pytest.approx(sum(conf["terms"].values()), abs=1e-9)


def test_energy_table_and_rdkit_models():
    proc = run("energy", "CCO", "--ff", "mmff94")
    assert proc.returncode == 0, proc.stderr
    assert "total" in proc.stdout and "mmff94" in proc.stdout


def test_assign_writes_parameters_and_openmm(tmp_path):
    out, xml = tmp_path / "p.yaml", tmp_path / "system.xml"
    proc = run("assign", "c1ccccc1O", "--ff", "sage", "--charges", "gasteiger", "-o", str(out),
               "--openmm", str(xml))
    assert proc.returncode == 0, proc.stderr
    from ffparam.params import ParameterSet

    params = ParameterSet.load(out)
    charges = [p.values["charge"] for p in params.parameters("Charges")]
    assert np.isclose(sum(charges), 0.0, atol=1e-9)
    assert "<System" in xml.read_text()


@pytest.mark.parametrize("args,message", [
    (("energy", "CC(C"), "unparsable SMILES"),
    (("energy", "missing_file.sdf"), "missing file"),
    (("energy", "weird.cif"), "unknown file type"),
    (("energy", "C[Si](C)(C)C", "--charges", "gasteiger"), "no Bonds parameter"),
    (("energy", "[CH3]", "--charges", "gasteiger"), "radical"),
    (("energy", "CCO", "--ff", "nonexistent-ff"), "nonexistent-ff"),
])
def test_bad_input_one_line_exit_2(tmp_path, args, message):
    if args[1] == "weird.cif":
        (tmp_path / "weird.cif").write_text("data_x\n")
    proc = run(*args, cwd=tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr


def test_non_finite_coordinates_rejected(tmp_path):
    path = tmp_path / "bad.xyz"
    path.write_text("3\n\nO 0 0 0\nH 0 0 0.96\nH 0.9 0 nan\n")
    proc = run("energy", str(path))
    assert proc.returncode == 2 and "non-finite" in proc.stderr


def test_assign_failure_writes_nothing(tmp_path):
    out = tmp_path / "p.yaml"
    proc = run("assign", "C[Si](C)(C)C", "--charges", "gasteiger", "-o", str(out))
    assert proc.returncode == 2
    assert not out.exists() and not list(Path(tmp_path).iterdir())
