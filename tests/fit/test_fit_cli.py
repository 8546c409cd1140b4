"""`ffparam fit SPEC.yaml` end to end: bespoke torsions of butane fitted to an MMFF94
relaxed scan (an independent force field as the reference level)."""

import json
import subprocess
import sys

import pytest
import yaml

from ffparam.chem import Molecule
from tests.fit.mmff_scan import mmff_scan, write_scan_extxyz


@pytest.fixture(scope="module")
def scan_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fit")
    mol = Molecule.from_smiles("CCCC").generate_conformers(1, seed=3)
    angles, geoms, energies = mmff_scan(mol, (0, 1, 2, 3), spacing=30)
    write_scan_extxyz(tmp / "butane.xyz", mol, (0, 1, 2, 3), angles, geoms, energies)
    return tmp


def _spec(tmp, **overrides):
    spec = {
        "forcefield": "sage",
        "charges": "gasteiger",
        "molecules": {"butane": {"input": "CCCC"}},
        "targets": [{"name": "butane_scan", "type": "torsion_profile", "molecule": "butane",
                     "reference": "butane.xyz", "mode": "relaxed"}],
        "parameters": [{"bespoke_torsions": {"molecule": "butane", "bonds": "rotatable"}}],
        "optimizer": {"name": "least_squares", "max_iterations": 30},
    }
    spec.update(overrides)
    path = tmp / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_fit_spec_end_to_end(scan_file):
    spec = _spec(scan_file)
    out = scan_file / "out"
    proc = subprocess.run([sys.executable, "-m", "ffparam.cli.main", "fit", str(spec), "-o",
                           str(out), "--quiet"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    before = metrics["before"]["butane_scan"]["rmse [kcal/mol]"]
    after = metrics["after"]["butane_scan"]["rmse [kcal/mol]"]
    assert after < 0.5 * before and after < 0.3, (before, after)
    history = json.loads((out / "fit_history.json").read_text())
    assert history["history"][0]["objective"] >= history["history"][-1]["objective"]
    assert (out / "plots" / "butane_scan.png").stat().st_size > 1000
    # the written offxml reproduces the fitted profile when re-read by SMIRNOFF typing
    from ffparam.assign.smirnoff import SmirnoffForceField
    from ffparam.fit.spec import load_fit_spec
    from ffparam.workflows.fit import build_target, load_spec_molecule

    loaded = load_fit_spec(spec)
    mol = load_spec_molecule(loaded, "butane")
    start = SmirnoffForceField.load("sage").parameterize(mol, charges="gasteiger")
    refit = SmirnoffForceField.load(out / "fitted.offxml").parameterize(
        mol, charges=start.charges())
    import torch

    from ffparam.fit.parameters import FitParameters
    from ffparam.params import FreeSpec

    params = refit.parameters.copy()
    params.set_free("ProperTorsions", "*", "k1", FreeSpec())
    target = build_target(loaded, loaded.targets[0], refit.with_parameters(params))
    fit = FitParameters.from_free(params)
    rmse = target.metrics(fit, torch.zeros(fit.size, dtype=torch.float64))["rmse [kcal/mol]"]
    assert rmse == pytest.approx(after, abs=1e-4)


def test_spec_errors(scan_file):
    from ffparam.errors import InputError
    from ffparam.fit.spec import load_fit_spec

    bad = _spec(scan_file, optimizer={"name": "least_squares", "bogus": 1})
    with pytest.raises(InputError, match="bogus"):
        load_fit_spec(bad)
    bad = _spec(scan_file, targets=[{"name": "t", "type": "torsion_profile",
                                     "molecule": "propane", "reference": "butane.xyz"}])
    with pytest.raises(InputError, match="unknown molecule"):
        load_fit_spec(bad)


def test_spec_with_store_and_experiment_targets(tmp_path):
    """Frequencies of water against experiment (CSV) and a GFN2-xTB Hessian/ESP-free store
    target for the same molecule, through the spec loader and run_fit."""
    import shutil
    from pathlib import Path

    from ffparam.chem import Molecule
    from ffparam.fit.spec import load_fit_spec
    from ffparam.reference.compute import compute
    from ffparam.reference.store import Store
    from ffparam.workflows.fit import run_fit

    data = Path(__file__).parent.parent / "data" / "fit" / "vib_frequencies_train.csv"
    shutil.copy(data, tmp_path / "vib.csv")
    water = Molecule.from_smiles("O").generate_conformers(1)
    with Store(tmp_path / "qm.db") as store:
        (opt,) = compute(water, water.conformers, "gfn2-xtb", "optimize", store=store)
        compute(water, opt.final_geometry[None], "gfn2-xtb", "hessian", store=store)
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump({
        "forcefield": "sage", "charges": "gasteiger",
        "molecules": {"water": {"input": "O"}},
        "targets": [
            {"name": "exp", "type": "frequencies", "molecule": "water",
             "reference": "vib.csv", "scale": 1.0},
            {"name": "qm", "type": "frequencies", "molecule": "water",
             "reference": "qm.db", "method": "gfn2-xtb", "weight": 0.5},
        ],
        "parameters": [{"section": "Bonds", "id": "*", "fields": ["k"]},
                       {"section": "Angles", "id": "*", "fields": ["k"]}],
        "optimizer": {"name": "least_squares", "max_iterations": 20},
    }))
    outcome = run_fit(load_fit_spec(spec_path), tmp_path / "out", progress=False)
    before = outcome.result.metrics_before["exp"]["rmse [cm^-1]"]
    after = outcome.result.metrics_after["exp"]["rmse [cm^-1]"]
    assert after < before
    assert (tmp_path / "out" / "fitted.offxml").exists()
