"""Starting a bespoke or ``ffparam fit`` run from an existing force field of the molecule
(``--ff X.prmtop|X.top|X.psf,PARAMS``): the start energies are the file's, the fit
improves on them, bad matches are one line. References: MMFF94 relaxed scans (cheap)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from ffparam.assign import assign_parameters
from ffparam.assign.import_amber import read_amber
from ffparam.assign.import_gromacs import read_gromacs
from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.mm.engine import MMEngine
from tests.fit.mmff_scan import mmff_scan, write_scan_extxyz

DATA = Path(__file__).parents[1] / "data" / "import"


def test_assign_parameters_binds_the_file_to_the_molecule():
    molecule = Molecule.from_smiles("CCCC").generate_conformers(2, seed=1)
    system = assign_parameters(molecule, str(DATA / "opls_butane.top"))
    reference = read_gromacs(DATA / "opls_butane.top")
    assert system.molecule is molecule
    np.testing.assert_allclose(MMEngine(system).energy(molecule.conformers).numpy(),
                               MMEngine(reference).energy(molecule.conformers).numpy(),
                               rtol=1e-12)
    with pytest.raises(InputError, match=r"bond 2-4 is in only one of .* and opls_butane.top"):
        assign_parameters(Molecule.from_smiles("CC(C)C"), str(DATA / "opls_butane.top"))
    with pytest.raises(InputError, match=r"has 9 atoms but opls_butane.top has 14"):
        assign_parameters(Molecule.from_smiles("CCO"), str(DATA / "opls_butane.top"))


def test_bespoke_starts_from_a_prmtop(tmp_path):
    from ffparam.workflows.bespoke import BespokeSettings, run_bespoke

    dihedral = (0, 1, 2, 8)  # ethanol C-C-O-H, the prmtop's atom order is RDKit's of CCO
    mol = Molecule.from_smiles("CCO").generate_conformers(1, seed=5)
    angles, geoms, energies = mmff_scan(mol, dihedral, spacing=30)
    write_scan_extxyz(tmp_path / "scan.xyz", mol, dihedral, angles, geoms, energies)
    prmtop = DATA / "gaff2_ethanol.prmtop"
    settings = BespokeSettings(forcefield=str(prmtop), references=[tmp_path / "scan.xyz"],
                               md_ps=0, validation_conformers=0, validate_geometry=False,
                               progress=False)
    result = run_bespoke("CCO", tmp_path / "run", settings)
    file_system = read_amber(prmtop)
    xyz = result.molecule.conformers
    np.testing.assert_allclose(MMEngine(result.start).energy(xyz).numpy(),
                               MMEngine(file_system).energy(xyz).numpy(), rtol=1e-12)
    entry = result.metrics.rotors[0]
    assert entry.rmse_fitted < entry.rmse_start


def test_fit_spec_starts_from_an_opls_top(tmp_path, monkeypatch):
    from ffparam.fit.spec import load_fit_spec
    from ffparam.workflows.fit import run_fit

    for name in ("opls_butane.top", "opls_types.itp"):
        shutil.copy(DATA / name, tmp_path / name)
    mol = Molecule.from_smiles("CCCC").generate_conformers(1, seed=3)
    angles, geoms, energies = mmff_scan(mol, (0, 1, 2, 3), spacing=30)
    write_scan_extxyz(tmp_path / "butane.xyz", mol, (0, 1, 2, 3), angles, geoms, energies)
    spec = {"forcefield": "opls_butane.top",
            "molecules": {"butane": {"input": "CCCC"}},
            "targets": [{"name": "scan", "type": "torsion_profile", "molecule": "butane",
                         "reference": "butane.xyz", "mode": "relaxed"}],
            "parameters": [{"section": "ProperTorsions", "id": "rb:CT-CT-CT-CT",
                            "fields": "k*"}],
            "optimizer": {"name": "least_squares", "max_iterations": 30}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    outcome = run_fit(load_fit_spec(tmp_path / "spec.yaml"), tmp_path / "out", progress=False)
    before = outcome.result.metrics_before["scan"]["rmse [kcal/mol]"]
    after = outcome.result.metrics_after["scan"]["rmse [kcal/mol]"]
    assert after < 0.7 * before, (before, after)
    assert "offxml" not in outcome.files and outcome.files["parameters"].is_file()
    # `ffparam fit SPEC --ff FILE`: the command-line file replaces the spec's (cwd-relative)
    from typer.testing import CliRunner

    from ffparam.cli.main import app

    spec["forcefield"] = "sage"
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["fit", "spec.yaml", "-o", "out2", "--quiet", "--ff",
                                      "opls_butane.top"])
    assert result.exit_code == 0, result.output
    assert "rb:CT-CT-CT-CT" in (tmp_path / "out2" / "fitted_parameters.yaml").read_text()
