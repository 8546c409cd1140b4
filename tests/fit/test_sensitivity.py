"""Fit sensitivities (ffparam.fit.sensitivity) against central finite differences of the
targets themselves, on a real two-rotor torsion fit of ethanol (bespoke C-C and C-O
torsions fitted to MMFF94 scans of H-C-C-O and C-C-O-H, single-point MM)."""

import numpy as np
import pytest
import torch

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.fit.bespoke_torsions import make_bespoke_torsions
from ffparam.fit.objective import Objective
from ffparam.fit.optimizers import optimize
from ffparam.fit.parameters import FitParameters
from ffparam.fit.sensitivity import fit_sensitivity
from ffparam.fit.targets.torsion import TorsionProfile, TorsionProfileTarget
from ffparam.fit.uncertainty import laplace_uncertainty
from tests.fit.mmff_scan import mmff_scan

SCANS = {"rotor_CO": ((0, 1, 2, 8), "1-2"), "rotor_CC": ((5, 0, 1, 2), "0-1")}


@pytest.fixture(scope="module")
def fitted():
    mol = Molecule.from_smiles("CCO").generate_conformers(1, seed=5)
    start = assign_parameters(mol, "sage", charges="gasteiger")
    system = make_bespoke_torsions(start, [(0, 1), (1, 2)]).system
    targets = []
    for (name, (dihedral, label)), weight in zip(SCANS.items(), (1.0, 0.5)):
        angles, geoms, energies = mmff_scan(mol, dihedral, spacing=30)
        profile = TorsionProfile([dihedral], angles, geoms, energies, label)
        targets.append(TorsionProfileTarget(name, system, profile, weight=weight,
                                            mode="single_point"))
    objective = Objective(targets, FitParameters.from_free(system.parameters))
    x = optimize(objective, "least_squares").x
    return objective, x


def _values(objective, target, x):
    with torch.no_grad():
        return target.residuals(objective.fit, torch.as_tensor(x, dtype=torch.float64)).numpy()


def _step_x(objective, x, step_p):
    """The optimizer-space step of a physical step, by finite differences of physical()."""
    h = 1e-6
    out = []
    for k in range(len(x)):
        e = np.zeros_like(x)
        e[k] = h
        p = [objective.fit.physical(torch.as_tensor(x + s * e)).numpy()[k] for s in (1, -1)]
        out.append(step_p[k] / abs((p[0] - p[1]) / (2 * h)))
    return np.array(out)


@pytest.mark.parametrize("posterior", [False, True])
def test_sensitivity_matches_finite_differences(fitted, posterior):
    objective, x = fitted
    post = laplace_uncertainty(objective, x) if posterior else None
    sens = fit_sensitivity(objective, x, post)
    assert sens.step_kind[0] == ("posterior sigma" if posterior else "prior width")
    if posterior:
        np.testing.assert_allclose(sens.step, post.sigma, rtol=1e-8)
    step_x = _step_x(objective, x, sens.step)
    h = 1e-5
    for t, target in enumerate(objective.targets):
        base = _values(objective, target, x)
        assert sens.rmse[t] == pytest.approx(np.sqrt(np.mean(base**2)), rel=1e-10)
        for k in range(len(x)):
            e = np.zeros_like(x)
            e[k] = h
            plus, minus = _values(objective, target, x + e), _values(objective, target, x - e)
            shift = np.sqrt(np.mean(((plus - minus) / (2 * h)) ** 2)) * step_x[k]
            rmse = (np.sqrt(np.mean(plus**2)) - np.sqrt(np.mean(minus**2))) / (2 * h)
            assert sens.shift[t, k] == pytest.approx(shift, rel=1e-5, abs=1e-9)
            assert sens.rmse_change[t, k] == pytest.approx(rmse * step_x[k], rel=1e-4,
                                                           abs=1e-8)


def test_each_rotor_is_moved_most_by_its_own_torsions(fitted):
    objective, x = fitted
    sens = fit_sensitivity(objective, x)
    oxygen_third = "[$([#8X2H1+0;A]-[#6X4H2+0;A]):3]"  # bespoke SMIRKS of the C-O rotor
    co = [k for k, label in enumerate(sens.parameters) if oxygen_third in label]
    cc = [k for k in range(len(sens.parameters)) if k not in co]
    assert len(co) == len(cc) == 8
    for t, (mine, other) in enumerate(((co, cc), (cc, co))):  # rotor_CO, rotor_CC
        assert sens.shift[t, mine].max() > 10 * sens.shift[t, other].max()
    data = sens.to_json()
    assert data["targets"] == ["rotor_CO", "rotor_CC"] and len(data["shift"][0]) == len(x)


def test_weight_zero_target_gets_no_rmse_scale(fitted):
    objective, x = fitted
    objective.targets[1].weight = 0.0
    try:
        sens = fit_sensitivity(objective, x)
    finally:
        objective.targets[1].weight = 0.5
    assert np.isnan(sens.shift[1]).all() and np.isfinite(sens.shift[0]).all()
    assert sens.to_json()["shift"][1][0] is None


def test_bespoke_diagnostics_and_report_show_the_table(fitted, tmp_path):
    """The bespoke workflow's fit diagnostics carry the sensitivity; report.html shows
    sensitivity.json from its folder, and has no such section without one."""
    from ffparam.fit.optimizers import optimize as run
    from ffparam.report.html import write_report
    from ffparam.report.sensitivity import write_sensitivity
    from ffparam.workflows.bespoke_results import fit_diagnostics

    objective, _ = fitted
    result = run(objective, "least_squares")
    diagnostics = fit_diagnostics(objective.targets, result)
    assert diagnostics.sensitivity is not None and diagnostics.posterior is not None
    np.testing.assert_allclose(diagnostics.sensitivity.step, diagnostics.posterior.sigma)
    write_report(tmp_path / "plain.html", {})
    assert "Sensitivity" not in (tmp_path / "plain.html").read_text()
    write_sensitivity(tmp_path, diagnostics.sensitivity.to_json())
    html = write_report(tmp_path / "report.html", {}).read_text()
    assert "Sensitivity: which parameter moves which target" in html
    assert "rotor_CO (kcal/mol)" in html and "posterior sigma" in html
    write_sensitivity(tmp_path, None)  # a later run without a fit removes the stale file
    assert "Sensitivity" not in write_report(tmp_path / "again.html", {}).read_text()


def test_fit_spec_writes_sensitivity_and_report(tmp_path):
    import json

    import yaml

    from ffparam.fit.spec import load_fit_spec
    from ffparam.workflows.fit import run_fit
    from tests.fit.mmff_scan import write_scan_extxyz

    mol = Molecule.from_smiles("CCCC").generate_conformers(1, seed=3)
    angles, geoms, energies = mmff_scan(mol, (0, 1, 2, 3), spacing=30)
    write_scan_extxyz(tmp_path / "butane.xyz", mol, (0, 1, 2, 3), angles, geoms, energies)
    spec = {"forcefield": "sage", "charges": "gasteiger",
            "molecules": {"butane": {"input": "CCCC"}},
            "targets": [{"name": "butane_scan", "type": "torsion_profile",
                         "molecule": "butane", "reference": "butane.xyz",
                         "mode": "single_point"}],
            "parameters": [{"bespoke_torsions": {"molecule": "butane",
                                                 "bonds": "rotatable"}}],
            "optimizer": {"name": "least_squares", "max_iterations": 20}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    outcome = run_fit(load_fit_spec(tmp_path / "spec.yaml"), tmp_path / "out", progress=False)
    data = json.loads((tmp_path / "out" / "sensitivity.json").read_text())
    assert data["targets"] == ["butane_scan"]
    assert data["parameters"] == outcome.objective.fit.labels
    assert max(data["shift"][0]) > 0
    html = (tmp_path / "out" / "report.html").read_text()
    assert outcome.files["report"] == tmp_path / "out" / "report.html"
    assert "Sensitivity: which parameter moves which target" in html
    assert "butane_scan: rmse [kcal/mol]" in html and html.count("data:image/png") >= 2
