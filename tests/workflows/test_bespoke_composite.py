"""`ffparam bespoke --method HIGH//LOW`: ethanol's O-H rotor fitted to HF/STO-3G single
points on GFN2-xTB geometries; every calculation a normal Store record; bad input first."""

import json

import numpy as np
import pytest

from ffparam.cli.main import main
from ffparam.errors import InputError
from ffparam.reference import Store
from ffparam.workflows.bespoke import STORE_FILE, BespokeSettings, run_bespoke

COMPOSITE = "hf/sto-3g//gfn2-xtb"
SETTINGS = dict(method=COMPOSITE, spacing_deg=60, md_ps=0, validation_conformers=2,
                validate_geometry=False, progress=False)

pytestmark = pytest.mark.xdist_group("bespoke")


def test_bespoke_composite_fits_high_single_points_on_low_geometries(tmp_path):
    out = tmp_path / "ethanol"
    result = run_bespoke("CCO", out, BespokeSettings(**SETTINGS))
    metrics = json.loads((out / "metrics.json").read_text())
    note = metrics["provenance"]["reference_note"]
    assert "hf/sto-3g single points on gfn2-xtb" in note
    assert metrics["settings"]["method"] == COMPOSITE
    (rotor,) = [r for r in result.rotors if r.profile is not None]
    with Store(out / STORE_FILE) as store:
        high = {r.key: r for r in store.records(method="hf/sto-3g", task_kind="energy")}
        low = list(store.records(method="gfn2-xtb", task_kind="optimize"))
        gradients = list(store.records(method="hf/sto-3g", task_kind="gradient"))
    # the fitted profile is the HF energies on the GFN2 grid geometries
    high_by_geometry = {np.round(r.geometry, 5).tobytes(): r.energy for r in high.values()}
    profile = [high_by_geometry[np.round(g, 5).tobytes()] for g in rotor.profile.geometries]
    np.testing.assert_allclose(rotor.profile.energies, profile, rtol=0, atol=1e-8)
    assert len(low) > len(rotor.profile.energies) and gradients  # held-out: HIGH gradients
    assert metrics["validation"]["conformers"]["method"] == "hf/sto-3g"
    (fit,) = metrics["rotors"]
    assert fit["rmse_fitted"] < fit["rmse_start"]


def test_bespoke_composite_bad_input_before_any_work(tmp_path, capsys):
    with pytest.raises(InputError, match="do not nest"):
        BespokeSettings(method="hf/sto-3g//gfn2-xtb//gfn1-xtb")
    out = tmp_path / "iodo"
    code = main(["bespoke", "CCI", "-o", str(out), "--method", "hf/6-31g//gfn2-xtb"])
    assert code == 2 and not out.exists()
    assert "Basis set not found for I" in capsys.readouterr().err
