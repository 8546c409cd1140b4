"""A bespoke run (ethanol with an imported MMFF94 scan, the quickest bespoke path) writes the
Laplace sigma of every fitted k into metrics.json and the propagated band of the fitted
profile, and the band is the one ffparam.fit.uncertainty computes for the run's own fit; the
rotor's cross-validated RMSE stands next to its training RMSE, with a warning when they are
more than 2x apart."""

import json

import numpy as np
import pytest

from ffparam.chem import Molecule
from ffparam.fit.crossval import cross_validated_rmse
from ffparam.fit.objective import Objective
from ffparam.fit.targets.torsion import TorsionProfileTarget
from ffparam.fit.uncertainty import laplace_uncertainty, propagated_sigma
from ffparam.report.bespoke_metrics import SCHEMA_VERSION
from ffparam.workflows.bespoke import BespokeSettings, run_bespoke
from tests.fit.mmff_scan import mmff_scan, write_scan_extxyz

DIHEDRAL = (0, 1, 2, 8)  # ethanol C-C-O-H
BARE = dict(md_ps=0, validation_conformers=0, validate_geometry=False, progress=False,
            charges="gasteiger")


def test_bespoke_run_reports_sigmas_and_band(tmp_path):
    mol = Molecule.from_smiles("CCO").generate_conformers(1, seed=5)
    angles, geoms, energies = mmff_scan(mol, DIHEDRAL, spacing=30)
    write_scan_extxyz(tmp_path / "scan.xyz", mol, DIHEDRAL, angles, geoms, energies)
    out = tmp_path / "run"
    result = run_bespoke("CCO", out, BespokeSettings(references=[tmp_path / "scan.xyz"],
                                                     **BARE))
    data = json.loads((out / "metrics.json").read_text())
    assert data["schema_version"] == SCHEMA_VERSION == 6
    changed = data["changed_parameters"]
    assert changed and all(p["sigma"] is not None and p["sigma"] > 0 for p in changed)
    (rotor,) = data["rotors"]
    band = np.array(rotor["profile"]["fitted_sigma"])
    assert band.shape == (len(energies),) and np.all(band > 0)
    # the same numbers from the run's objective, rebuilt here around the fitted system (a
    # fresh MM relaxation, so agreement to what the relaxation resolves)
    fit = result.fit.fit
    target = TorsionProfileTarget(f"rotor_{rotor['bond'][0]}-{rotor['bond'][1]}",
                                  result.fitted, result.rotors[0].profile, mode=rotor["mode"])
    post = laplace_uncertainty(Objective([target], fit), result.fit.x)
    sigma = {str(g[0]): s for g, s in zip(post.groups, post.sigma)}
    for p in changed:
        assert np.isclose(p["sigma"], sigma[f"ProperTorsions/{p['id']}/{p['field']}"],
                          rtol=1e-4)
    np.testing.assert_allclose(band, propagated_sigma(
        lambda x: target.mm_relative(fit, x), post), rtol=1e-4)
    # cross-validated RMSE next to the training RMSE, as the fit's own hat matrix gives it
    cv = cross_validated_rmse(Objective([target], fit), result.fit.x)[target.name]
    assert rotor["rmse_cv"] == pytest.approx(cv, rel=1e-4)
    assert rotor["rmse_cv"] > 0 and rotor["rmse_fitted"] > 0
    overfit = max(rotor["rmse_cv"] / rotor["rmse_fitted"], rotor["rmse_fitted"] / rotor["rmse_cv"])
    assert any("cross-validated RMSE" in w for w in data["warnings"]) == (overfit > 2)
    assert (out / rotor["plot"]).exists()
    html = (out / "report.html").read_text()
    assert "<th>&sigma;</th>" in html and "RMSE held out" in html
    print("sigma k (kcal/mol):", [round(p["sigma"], 3) for p in changed],
          "band (kcal/mol):", band.min().round(3), band.max().round(3),
          "rmse train/cv:", rotor["rmse_fitted"], rotor["rmse_cv"])
