"""``ffparam qmmm --polarizable``: methanol (HF/STO-3G) in one snapshot of a small TIP3P
box whose waters within the cutoff carry Drudes; the stored energy equals the direct
self-consistent QM/MM of an independently built Drude environment; --drude-params sets
alpha by type; bad Drude input is one line before anything is written."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from rdkit import Chem

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.cli.main import main
from ffparam.params import Parameter, ParameterSet
from ffparam.params.drude import DRUDE_SECTION, add_drude
from ffparam.reference.qmmm import Environment, embedded_calculator
from ffparam.reference.qmmm_drude import DrudeEnvironment, self_consistent_qmmm
from ffparam.workflows.qmmm import QMMMSettings
from ffparam.workflows.qmmm_drude import run_qmmm_drude

os.environ.setdefault("OMP_NUM_THREADS", "1")

METHOD = "hf/sto-3g"
SMALL = dict(method=METHOD, n_frames=1, n_solvent=60, cutoff_a=5.0, md_cutoff_a=5.0,
             equilibration_ps=0.4, interval_ps=0.2, threads=1)
CLI_SMALL = ["--method", METHOD, "--frames", "1", "--n-solvent", "60", "--cutoff", "5",
             "--md-cutoff", "5", "--equil-ps", "0.4", "--interval-ps", "0.2", "--threads", "1",
             "--workers", "0", "--quiet"]
TIP3P = np.array([-0.834, 0.417, 0.417])


@pytest.fixture(scope="module")
def drude_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("qmmm_drude") / "methanol"
    return out, run_qmmm_drude("CO", out, QMMMSettings(**SMALL))


def independent_environment(blocks: np.ndarray, alpha_a3: float) -> DrudeEnvironment:
    """Waters at ``blocks`` (n, 3, 3) A (O, H, H) with a Drude on each O (Thole 1.3); the
    system's atoms are in SMILES order (all O, then the H)."""
    waters = Molecule.from_smiles(".".join(["O"] * len(blocks)))
    positions, charges = np.zeros((3 * len(blocks), 3)), np.zeros(3 * len(blocks))
    for fragment, xyz in zip(Chem.GetMolFrags(waters.rdmol), blocks):
        positions[list(fragment)], charges[list(fragment)] = xyz, TIP3P
    system = assign_parameters(waters, "sage", charges=charges)
    source = ParameterSet()
    source.add(DRUDE_SECTION, Parameter("O3", {"alpha": alpha_a3, "thole": 1.3}))
    return DrudeEnvironment(add_drude(system, source=source), positions)


def test_snapshot_is_self_consistent_in_a_drude_solvent(drude_run):
    out, result = drude_run
    (record,), (region,) = result.records, result.regions
    assert record.ok and result.gas.ok
    data = json.loads((out / "qmmm.json").read_text())
    frame = data["frames"][0]
    assert data["polarizable"] is True
    assert data["drude"]["types"] == {"O3": {"alpha_a3": 1.5, "thole": 1.3}}
    assert frame["n_drudes"] == frame["n_mm_molecules"] >= 10 and frame["drude_iterations"] >= 2
    blocks = region.environment.positions.reshape(-1, 3, 3)
    direct_environment = independent_environment(blocks, 1.5)
    direct = self_consistent_qmmm(region.species, region.geometry, direct_environment, METHOD)
    assert record.energy == pytest.approx(direct.energy, abs=1e-5)
    fragments = Chem.GetMolFrags(direct_environment.system.molecule.rdmol)  # (O, H, H) each
    np.testing.assert_allclose(record.mm_gradient, np.concatenate(
        [direct.mm_gradient[list(f)] for f in fragments]), atol=1e-4)
    fixed = embedded_calculator(METHOD, region.species, Environment(
        np.tile(TIP3P, len(blocks)), blocks.reshape(-1, 3))).compute(region.geometry)
    assert frame["polarization_energy_kcal_mol"] < 0
    assert record.energy < fixed.energy < result.gas.energy  # polarization adds stabilization
    assert frame["dipole_debye"] > data["gas"]["dipole_debye"]


def test_cli_reuses_the_run_and_drude_params_set_alpha(drude_run, tmp_path, capsys):
    out, result = drude_run
    assert main(["qmmm", "CO", "--out", str(out), "--polarizable", *CLI_SMALL]) == 0
    printed = capsys.readouterr().out
    assert "1 job(s): 1 from the store, 0 computed" in printed
    assert "polarizable solvent: Drude types O3 alpha 1.500 A^3" in printed
    assert f"{result.records[0].energy:.4f}" in printed
    params = ParameterSet()
    params.add(DRUDE_SECTION, Parameter("O3H2", {"alpha": 1.0, "thole": 1.3}))
    params_file = params.save(tmp_path / "water_drude.yaml")
    assert main(["qmmm", "CO", "--out", str(out), "--polarizable", "--drude-params",
                 str(params_file), *CLI_SMALL]) == 0
    data = json.loads((out / "qmmm.json").read_text())
    assert data["drude"]["types"] == {"O3H2": {"alpha_a3": 1.0, "thole": 1.3}}
    assert data["frames"][0]["key"] != result.records[0].key  # alpha is part of the key
    assert data["frames"][0]["energy_kcal_mol"] > result.records[0].energy


@pytest.mark.parametrize("extra, message", [
    (["--polarizable", "--drude-params", "{params}"], "has no polarizability"),
    (["--drude-params", "{params}"], "needs --polarizable"),
    (["--polarizable", "--task", "esp"], "energies and forces"),
])
def test_bad_drude_input_is_one_line_before_anything(tmp_path, capsys, extra, message):
    params = ParameterSet()
    params.add(DRUDE_SECTION, Parameter("O3", {"thole": 1.3}))
    params_file = params.save(tmp_path / "no_alpha.yaml")
    args = [a.replace("{params}", str(params_file)) for a in extra]
    assert main(["qmmm", "CO", "--out", str(tmp_path / "never"), *CLI_SMALL, *args]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error
    assert not (tmp_path / "never").exists()
