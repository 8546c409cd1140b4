"""`ffparam energy FILE.prmtop|top|psf` (coordinates beside it or --coords, --json) and
`ffparam assign --from FILE`: energies equal OpenMM's own loading of the files; bad input
is one `error:` line with exit code 2. Runs the console entry point like a user does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from openmm import app

from ffparam.params.parameter_set import ParameterSet
from tests.assign.openmm_groups import openmm_groups

DATA = Path(__file__).parents[1] / "data" / "import"
FFPARAM = [sys.executable, "-m", "ffparam.cli.main"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*FFPARAM, *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_energy_of_a_prmtop_with_its_inpcrd_beside_it():
    proc = run("energy", DATA / "gaff2_acetaminophen.prmtop", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    conformer = data["conformers"][0]
    assert conformer["total"] == pytest.approx(sum(conformer["terms"].values()), abs=1e-9)
    prmtop = app.AmberPrmtopFile(str(DATA / "gaff2_acetaminophen.prmtop"))
    xyz = app.AmberInpcrdFile(str(DATA / "gaff2_acetaminophen.inpcrd")).getPositions(
        asNumpy=True)._value * 10.0
    groups = openmm_groups(prmtop.createSystem(nonbondedMethod=app.NoCutoff), xyz)
    reference = sum(e for e, _ in groups.values())
    assert conformer["total"] == pytest.approx(reference, rel=1e-6)


def test_energy_of_a_psf_with_params_and_assign_from_a_top(tmp_path):
    proc = run("energy", DATA / "charmm_aglcna.psf", "--params", DATA / "par_all36_carb.prm",
               "--params", DATA / "toppar_water_ions.str", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "HarmonicImpropers" in json.loads(proc.stdout)["conformers"][0]["terms"]
    out = tmp_path / "opls.yaml"
    proc = run("assign", "--from", DATA / "opls_butane.top", "-o", out)
    assert proc.returncode == 0, proc.stderr
    params = ParameterSet.load(out)
    assert params.settings["combining_rule"] == "geometric"
    assert {p.id for p in params.parameters("ProperTorsions")} == {
        "rb:CT-CT-CT-CT", "rb:CT-CT-CT-HC", "rb:HC-CT-CT-HC"}


@pytest.mark.parametrize("args, message", [
    (["energy", DATA / "opls_ethanol.top", "--coords", DATA / "opls_butane.gro"],
     "error: opls_butane.gro has 14 atoms but opls_ethanol.top has 9"),
    (["energy", DATA / "opls_butane.top", "--ff", "gaff2"],
     "error: --ff gaff2 does not apply to opls_butane.top"),
])
def test_bad_input_is_one_error_line(args, message):
    proc = run(*args)
    assert proc.returncode == 2
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1, proc.stderr
