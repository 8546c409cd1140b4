"""`ffparam liquid run --polarizable`: a tiny Drude liquid through the CLI (alpha from a
parameter file, the rest starting values; dielectric constant with its error in the
output and result.json) and its one-line errors (exit code 2, nothing written)."""

import json
import subprocess
import sys

import pytest

from ffparam.liquid.drude import isotropic_polarizability, polarizable_system
from ffparam.liquid.prepare import prepare_system
from ffparam.params.drude import DRUDE_SECTION
from ffparam.params.parameter_set import Parameter, ParameterSet

FFPARAM = [sys.executable, "-m", "ffparam.cli.main"]
TINY = ["--charges", "gasteiger", "--n", "16", "--cutoff", "6", "--switch", "5",
        "--ns", "0.002", "--equil-ps", "0.5", "--gas-ns", "0.001", "--save-ps", "0.1",
        "--checkpoint-ps", "1", "--box-conformers", "0", "--density-guess", "1.59",
        "--threads", "1", "--quiet"]


def run(*args):
    return subprocess.run([*FFPARAM, *args], capture_output=True, text=True, timeout=600)


@pytest.fixture
def drude_file(tmp_path):
    source = ParameterSet()
    source.add(DRUDE_SECTION, Parameter("Cl3H0", {"alpha": 2.0, "thole": 1.3}))
    return source, source.save(tmp_path / "drude.yaml")


def test_polarizable_run_reports_the_dielectric_constant(tmp_path, drude_file):
    source, path = drude_file
    out = tmp_path / "run"
    proc = run("liquid", "run", "ClC(Cl)(Cl)Cl", *TINY, "--polarizable", "--drude-params",
               str(path), "--name", "ccl4", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "result.json").read_text())
    eps = data["dielectric"]
    assert eps["value"] >= eps["eps_inf"] > 1.0 and eps["error"] >= 0.0
    assert f"eps     {eps['value']:.3f} +/- {eps['error']:.3f}" in proc.stdout
    assert "density" in proc.stdout and "Hvap" in proc.stdout
    # the Drude protocol's defaults, and the file's alpha for Cl (C: starting value)
    assert data["settings"]["timestep_fs"] == 1.0 and data["settings"]["gas_replicas"] == 1
    fixed = prepare_system("ClC(Cl)(Cl)Cl", "sage", "gasteiger", name="ccl4")
    expected = isotropic_polarizability(polarizable_system(fixed, source))
    assert data["alpha_a3"] == pytest.approx(expected, rel=1e-3)
    assert set(data["epsilon_scale"]) == {"d_density_g_ml", "d_density_error",
                                          "d_hvap_kcal_mol", "d_hvap_error"}


@pytest.mark.parametrize("extra, message", [
    (["--polarizable", "--timestep", "2"], "time step of at most 1"),
    (["--polarizable", "--gas-replicas", "3"], "gas_replicas=1"),
    (["--drude-params", "FILE"], "--drude-params needs --polarizable"),
])
def test_bad_polarizable_input_is_one_line_before_any_work(tmp_path, drude_file, extra,
                                                           message):
    out = tmp_path / "run"
    extra = [str(drude_file[1]) if item == "FILE" else item for item in extra]
    proc = run("liquid", "run", "ClC(Cl)(Cl)Cl", *TINY, *extra, "-o", str(out))
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
