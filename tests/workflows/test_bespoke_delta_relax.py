"""``ffparam bespoke --method HIGH//LOW --high-budget N --high-relax newton``: the chosen
HIGH points relaxed from their LOW geometries (GFN2-xTB//GFN1-xTB on ethanol, 30 degrees)."""

import json

import numpy as np
import pytest

from ffparam.chem import Molecule
from ffparam.cli.main import main
from ffparam.errors import InputError
from ffparam.reference.jobs import Job
from ffparam.reference.records import Species, Task
from ffparam.reference.store import Store
from ffparam.workflows.bespoke import BespokeSettings, run_bespoke
from ffparam.workflows.bespoke_delta import delta_rotor

METHOD = "gfn2-xtb//gfn1-xtb"
BOND = (1, 2)  # ethanol C-O


def settings(**kw):
    base = dict(method=METHOD, high_budget=4, spacing_deg=30, validation_conformers=0,
                validate_geometry=False, md_ps=0, progress=False, high_relax="newton",
                population_mc_steps=0)
    return BespokeSettings(**{**base, **kw})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("relax")
    result = run_bespoke(Molecule.from_smiles("CCO", name="ethanol"), out, settings())
    return result.molecule, out, result


def test_metrics_and_report_say_how_high_points_were_relaxed(run):
    _molecule, out, result = run
    (rotor,) = [r for r in result.metrics.rotors if r.delta is not None]
    delta = rotor.delta
    assert delta.high_relax == "newton"
    assert delta.n_high_calculations == delta.n_high + delta.n_failed == len(delta.high_angles)
    assert len(delta.relax_kcal_mol) == delta.n_high
    assert all(e <= 0 for e in delta.relax_kcal_mol) and min(delta.relax_kcal_mol) < -1e-3
    data = json.loads((out / "metrics.json").read_text())
    saved = next(r["delta"] for r in data["rotors"] if r.get("delta"))
    assert saved["high_relax"] == "newton" and saved["relax_kcal_mol"] == delta.relax_kcal_mol
    html = (out / "report.html").read_text()
    assert "relaxed from the gfn1-xtb geometries (newton" in html
    assert "relaxed from its gfn1-xtb geometry with the scanned dihedral held" in html


def test_profile_uses_relaxed_high_energies(run):
    molecule, out, result = run
    (scan,) = [r for r in result.rotors if r.delta is not None]
    delta = scan.delta
    species = Species.from_molecule(molecule)
    with Store(out / "ffparam.db") as store:
        for i in delta.learned.computed:
            grad = store.get(Job.create(species, "gfn2-xtb", Task.parse("gradient"),
                                        scan.profile.geometries[i]).key)
            hess = store.get(Job.create(species, "gfn1-xtb", Task.parse("hessian"),
                                        scan.profile.geometries[i]).key)
            assert grad.ok and hess.ok
            point = delta.relaxed[i]
            assert point.energy_sp_kcal_mol == pytest.approx(grad.energy, abs=1e-9)
            assert delta.learned.values[i] == pytest.approx(
                point.energy_kcal_mol - delta.low_energies[i], abs=1e-9)
            assert point.energy_kcal_mol < grad.energy


def test_rerun_recomputes_nothing(run):
    molecule, out, result = run
    (first,) = [r for r in result.rotors if r.delta is not None]
    with Store(out / "ffparam.db") as store:
        again = delta_rotor(molecule, BOND, settings(), store, None)
    assert again.delta.summary.n_computed == 0 and again.delta.summary.n_jobs > 0
    assert again.delta.learned.computed == first.delta.learned.computed
    np.testing.assert_allclose(again.profile.energies, first.profile.energies, atol=1e-10)


def test_bad_high_relax_is_refused():
    with pytest.raises(InputError, match="none, newton or steps:N"):
        settings(high_relax="steps:0")


def test_cli_refuses_bad_high_relax_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = main(["bespoke", "CCO", "--method", METHOD, "--high-budget", "3",
               "--high-relax", "relax"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(lines) == 1 and lines[0].startswith("error: ") and "high_relax" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_cli_summary_names_the_relaxation(run, capsys):
    from ffparam.cli.bespoke import _summary

    _summary(run[2])
    assert "HIGH points relaxed (newton): " in capsys.readouterr().out
