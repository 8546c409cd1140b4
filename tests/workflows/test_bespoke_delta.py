"""``ffparam bespoke --method HIGH//LOW --high-budget N``: Delta-learned torsion profiles
from actively chosen HIGH single points (GFN2-xTB//GFN1-xTB on ethanol, 30-degree grid)."""

import shutil

import numpy as np
import pytest

from ffparam.chem import Molecule
from ffparam.cli.main import main
from ffparam.errors import InputError
from ffparam.fit.targets.torsion import TorsionProfileTarget
from ffparam.reference.jobs import Job
from ffparam.reference.records import Species, Task
from ffparam.reference.store import Store
from ffparam.reference.torsiondrive import run_torsiondrive
from ffparam.report.bespoke_metrics import read_bespoke_metrics
from ffparam.workflows.bespoke import BespokeSettings, run_bespoke
from ffparam.workflows.bespoke_delta import (
    FIT_SIGMA_FLOOR_KCAL_MOL,
    delta_rotor,
    delta_warnings,
    weigh_by_sigma,
)

METHOD = "gfn2-xtb//gfn1-xtb"
BOND = (1, 2)  # ethanol C-O


def settings(**kw):
    base = dict(method=METHOD, high_budget=5, spacing_deg=30, validation_conformers=0,
                validate_geometry=False, md_ps=0, progress=False,
                prior_widths_kcal_mol=[1.0, 6.0])
    return BespokeSettings(**{**base, **kw})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("delta")
    molecule = Molecule.from_smiles("CCO", name="ethanol")
    result = run_bespoke(molecule, out, settings())
    return result.molecule, out, result  # with the starting conformer the run generated


def high_energy(store, molecule, geometry):
    job = Job.create(Species.from_molecule(molecule), "gfn2-xtb", Task.parse("energy"),
                     geometry)
    return store.get(job.key)


def test_metrics_show_levels_band_and_budget(run):
    _molecule, out, result = run
    (rotor,) = [r for r in result.metrics.rotors if r.delta is not None]
    delta = rotor.delta
    assert delta.high_method == "gfn2-xtb" and delta.low_method == "gfn1-xtb"
    assert 4 <= delta.n_high <= 5 and delta.budget == 5 and delta.n_failed == 0
    assert len(delta.levels) == rotor.n_points == 12
    assert delta.levels.count("high") == delta.n_high == len(delta.high_angles)
    assert len(delta.sigma) == 12 and delta.max_sigma == pytest.approx(max(delta.sigma))
    assert delta.stop in ("threshold", "budget") and delta.time_limit_s is None
    assert delta.high_seconds >= 0.0
    assert (delta.max_sigma < 0.1) == (delta.stop == "threshold")
    assert (out / delta.plot).exists()
    back = read_bespoke_metrics(out / "metrics.json")
    assert back.rotors[[r.bond for r in back.rotors].index(rotor.bond)].delta == delta
    assert back.settings["high_budget"] == 5
    assert rotor.prior_width_kcal_mol in (1.0, 6.0)  # chosen by cross-validation
    html = (out / "report.html").read_text()
    assert "&Delta;-learned reference" in html and "correction of rotor" in html
    assert "gfn2-xtb single points" in back.provenance.reference_note


def test_profile_is_low_plus_the_learned_correction(run):
    molecule, out, result = run
    (scan,) = [r for r in result.rotors if r.delta is not None]
    delta = scan.delta
    with Store(out / "ffparam.db") as store:
        for i in delta.learned.computed:  # the GP nearly interpolates the computed points
            high = high_energy(store, molecule, scan.profile.geometries[i]).energy
            assert delta.learned.values[i] == pytest.approx(high - delta.low_energies[i])
    corrected = scan.profile.energies - delta.low_energies
    computed = delta.learned.computed
    observed = np.array([delta.learned.values[i] for i in computed])
    assert np.abs(corrected[computed] - observed).max() < 0.05
    # the fit weighs the points by their sigma
    target = TorsionProfileTarget("t", result.fitted, scan.profile, mode="single_point")
    weigh_by_sigma(target, delta)
    floor = FIT_SIGMA_FLOOR_KCAL_MOL**2
    np.testing.assert_allclose(target.sqrt_w.numpy() ** 2,
                               floor / (floor + delta.sigma**2), rtol=1e-12)
    assert target.sqrt_w.numpy()[computed].min() > np.delete(target.sqrt_w.numpy(),
                                                              computed).min()


def test_rerun_recomputes_nothing_and_asks_the_same_points(run):
    molecule, out, result = run
    (first,) = [r for r in result.rotors if r.delta is not None]
    with Store(out / "ffparam.db") as store:
        n_records = len(store)
        again = delta_rotor(molecule, BOND, settings(), store, None)
        assert len(store) == n_records
    assert again.delta.summary.n_computed == 0
    assert again.n_cached == again.n_jobs and again.n_failed == 0
    assert again.delta.learned.computed == first.delta.learned.computed
    np.testing.assert_allclose(again.profile.energies, first.profile.energies, atol=1e-10)


def test_failed_high_point_is_recorded_and_skipped(run, tmp_path):
    molecule, out, result = run
    (first,) = [r for r in result.rotors if r.delta is not None]
    shutil.copy(out / "ffparam.db", tmp_path / "ffparam.db")
    start = first.delta.learned.computed[0]
    with Store(tmp_path / "ffparam.db") as store:
        job = Job.create(Species.from_molecule(molecule), "gfn2-xtb", Task.parse("energy"),
                         first.profile.geometries[start])
        store.put(job.record("failed", error="SCF did not converge"))
        store.flush()
        rotor = delta_rotor(molecule, BOND, settings(), store, None)
    learned = rotor.delta.learned
    assert learned.failed == [start] and start not in learned.computed
    assert learned.n_asked <= 5 and rotor.usable and rotor.n_failed == 1
    assert rotor.delta.levels()[start] == "failed"
    (warning, *_) = delta_warnings([rotor])
    assert "failed at" in warning and "without them" in warning


def test_budget_one_point_and_full_composite_share_records(run, tmp_path):
    molecule, out, result = run
    shutil.copy(out / "ffparam.db", tmp_path / "ffparam.db")
    with Store(tmp_path / "ffparam.db") as store:
        one = delta_rotor(molecule, BOND, settings(high_budget=1), store, None)
        assert one.delta.learned.n_asked == 1 and one.delta.summary.n_computed == 0
        assert one.delta.learned.stop == "budget"
        # a full HIGH//LOW drive asks for the same HIGH jobs: only the others are computed
        dihedral = tuple(one.dihedral)
        full = run_torsiondrive(molecule, [dihedral], METHOD, 30, store)
    (first,) = [r for r in result.rotors if r.delta is not None]
    n_high = len(first.delta.learned.computed)
    assert full.summary.n_computed == 12 - n_high


def test_time_limit_stops_after_the_start_points(run, tmp_path):
    """--high-minutes: a limit shorter than one round of (stored) start points stops the
    loop after them; the rotor is still fitted and its metrics carry the limit."""
    molecule, out, _result = run
    shutil.copy(out / "ffparam.db", tmp_path / "ffparam.db")
    with Store(tmp_path / "ffparam.db") as store:
        rotor = delta_rotor(molecule, BOND, settings(high_minutes=1e-6), store, None)
    learned = rotor.delta.learned
    assert learned.stop == "time" and learned.n_asked == 3  # the start points
    assert rotor.delta.time_limit_s == pytest.approx(6e-5) and rotor.usable
    assert len(learned.round_seconds) == 1


@pytest.mark.parametrize("kw, message", [
    (dict(high_budget=0), "at least 1"),
    (dict(high_minutes=0.0), "high_minutes must be positive"),
    (dict(method="gfn2-xtb", high_budget=4), "needs a HIGH//LOW method"),
    (dict(high_sigma_kcal_mol=0.0), "positive"),
])
def test_bad_settings_are_refused(kw, message):
    with pytest.raises(InputError, match=message):
        settings(**kw)


@pytest.mark.parametrize("args, named", [
    (["--method", "gfn2-xtb", "--high-budget", "4"], "HIGH//LOW"),
    (["--method", METHOD, "--high-budget", "0"], "--high-budget"),
    (["--method", METHOD, "--high-budget", "3", "--high-sigma", "-1"], "--high-sigma"),
    (["--prior-width", "2", "--prior-width", "0"], "prior_widths_kcal_mol"),
    (["--method", METHOD, "--high-budget", "3", "--high-minutes", "0"], "--high-minutes"),
])
def test_cli_refuses_bad_budget_before_any_work(args, named, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = main(["bespoke", "CCO", *args])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], lines
    assert list(tmp_path.iterdir()) == []


def test_cli_summary_names_the_high_points(run, capsys):
    from ffparam.cli.bespoke import _summary

    _summary(run[2])
    out = capsys.readouterr().out
    assert "of 5 gfn2-xtb point(s) (0 failed, stop:" in out
