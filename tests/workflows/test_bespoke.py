"""`ffparam bespoke` end to end with GFN2-xTB and fast settings (ethanol: one O-H rotor,
the methyl rotor skipped as symmetric), export round trips, resume after SIGKILL, molecules
without rotatable bonds, failed scans, bad input."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from ffparam.errors import InputError
from ffparam.report.bespoke_metrics import SCHEMA_VERSION, read_bespoke_metrics
from ffparam.workflows.bespoke import BespokeSettings, run_bespoke

FAST = dict(spacing_deg=60, md_ps=0.5, validation_conformers=3, progress=False)
BARE = dict(spacing_deg=60, md_ps=0, validation_conformers=0, validate_geometry=False,
            progress=False, population_mc_steps=0)
CLI = [sys.executable, "-m", "ffparam.cli.main"]

pytestmark = pytest.mark.xdist_group("bespoke")


@pytest.fixture(scope="module")
def ethanol_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bespoke") / "ethanol"
    result = run_bespoke("CCO", out, BespokeSettings(**FAST))
    return out, result


def test_end_to_end_improves_torsion_and_exports(ethanol_run):
    out, _ = ethanol_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["schema_version"] == SCHEMA_VERSION
    assert read_bespoke_metrics(out / "metrics.json").to_dict() == metrics
    (rotor,) = metrics["rotors"]
    assert rotor["bond"] == [1, 2] and rotor["n_points"] == 6
    assert rotor["rmse_fitted"] < rotor["rmse_start"]
    assert rotor["rmse_fitted"] < 0.3
    assert any("symmetric terminal rotor" in w for w in metrics["warnings"])
    formats = metrics["exports"]["verification"]
    assert set(formats) == {"openmm", "ffxml", "gromacs", "amber", "offxml"}
    assert all(v["max_abs_de_kcal_mol"] < 1e-4 for v in formats.values())
    assert metrics["changed_parameters"]
    assert (out / "plots" / "rotor_1.png").exists()
    validation = metrics["validation"]
    scores = validation["conformers"]["systems"]
    assert set(scores) == {"start", "bespoke"} and validation["conformers"]["n_used"] >= 2
    assert scores["bespoke"]["energy_rmse_kcal_mol"] is not None
    assert validation["md"]["stable"] is True
    assert "rmsd" in json.dumps(validation["geometry"]).lower()
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html and f"{rotor['rmse_fitted']:.2f}" in html


def test_written_offxml_loads_again_in_ffparam_energy(ethanol_run):
    out, _ = ethanol_run
    offxml = out / "C2H6O.offxml"
    proc = subprocess.run([*CLI, "energy", str(out / "C2H6O.pdb"), "--ff", str(offxml),
                           "--json", "--charges", "am1bcc"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["conformers"]


def test_rerun_recomputes_nothing(ethanol_run):
    out, first = ethanol_run
    again = run_bespoke("CCO", out, BespokeSettings(**BARE))
    (rotor,) = again.rotors
    assert rotor.n_cached == rotor.n_jobs > 0
    assert again.metrics.rotors[0].rmse_fitted == pytest.approx(
        first.metrics.rotors[0].rmse_fitted, abs=1e-6)


def test_other_molecule_in_same_dir_refused(ethanol_run):
    out, _ = ethanol_run
    with pytest.raises(InputError, match="another molecule"):
        run_bespoke("CCCO", out, BespokeSettings(**BARE))


def test_no_rotatable_bonds_exports_start(tmp_path):
    result = run_bespoke("c1ccccc1", tmp_path / "benzene", BespokeSettings(**BARE))
    assert result.fitted is result.start
    assert any("no rotatable bonds" in w for w in result.metrics.warnings)
    assert (tmp_path / "benzene" / "C6H6.offxml").exists()


def test_no_fittable_rotor_exits_nonzero_with_the_reason(tmp_path, capsys):
    """Every optimization of the only rotor fails: the run is an error (exit 1) naming the
    rotor and why, and no force field is exported as if it were the bespoke result."""
    from ffparam.cli.main import main

    out = tmp_path / "fail"
    code = main(["bespoke", "CCO", "--out", str(out), "--method", "gfn2-xtb[max_scf_cycles=1]",
                 "--spacing", "60", "--md-ps", "0", "--validation-conformers", "0",
                 "--no-validate-geometry", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("error: no rotor could be fitted")
    assert "rotor 1-2: only 0 grid point(s) succeeded" in err[0]
    assert not list(out.glob("*.offxml")) and not (out / "metrics.json").exists()


@pytest.mark.parametrize("args,message", [
    (["C[Si](C)(C)C"], "no Bonds parameter"),
    (["CC(", ], "unparsable SMILES"),
    (["[CH2]O"], "radical"),
    (["CCO", "--method", "b3lyp/nonsense-basis"], "basis"),
])
def test_bad_input_rejected_before_work(tmp_path, args, message):
    proc = subprocess.run([*CLI, "bespoke", *args, "--out", str(tmp_path / "x"), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x" / "ffparam.db").exists()


def _complete_keys(db):
    with sqlite3.connect(db) as con:
        try:
            return dict(con.execute("SELECT key, provenance FROM records WHERE "
                                    "status='complete'"))
        except sqlite3.OperationalError:  # polled between file creation and schema
            return {}


def test_resume_after_sigkill(tmp_path):
    out = tmp_path / "killed"
    cmd = [*CLI, "bespoke", "CCCO", "--out", str(out), "--spacing", "60", "--md-ps", "0",
           "--validation-conformers", "0", "--no-validate-geometry", "--charges", "gasteiger",
           "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    db = out / "ffparam.db"
    deadline = time.time() + 240
    while time.time() < deadline:
        if db.exists() and len(_complete_keys(db)) >= 3:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _complete_keys(db)
    assert before, "the run was killed before any job completed"
    result = run_bespoke("CCCO", out, BespokeSettings(charges="gasteiger", **BARE))
    after = _complete_keys(db)
    assert all(after[k] == v for k, v in before.items())  # none recomputed or rewritten
    reference = run_bespoke("CCCO", tmp_path / "clean",
                            BespokeSettings(charges="gasteiger", **BARE))
    for ours, theirs in zip(result.rotors, reference.rotors):
        np.testing.assert_allclose(ours.profile.energies, theirs.profile.energies, atol=1e-6)


@pytest.mark.slow
def test_fragment_scan_transfers_to_parent(tmp_path):
    """Butyl phenyl ether, aryl-O bond scanned on its ethoxybenzene fragment (forced): the
    parent's bespoke torsions take the fragment's fitted values, and the parent's own
    torsion profile along the fragment's scan geometries improves."""
    settings = BespokeSettings(fragment=True, bonds=[(4, 5)], **BARE)
    result = run_bespoke("CCCCOc1ccccc1", tmp_path / "frag", settings)
    (rotor,) = result.rotors
    assert rotor.fragment is not None
    assert rotor.fragment.molecule.n_atoms < result.molecule.n_atoms
    entry = result.metrics.rotors[0]
    assert entry.fragment.n_atoms == rotor.fragment.molecule.n_atoms
    assert entry.rmse_fitted < entry.rmse_start
    changed = result.metrics.changed_parameters
    assert changed and any(abs(r.fitted - r.start) > 1e-4 for r in changed)


def test_unknown_bond_rejected(tmp_path):
    with pytest.raises(InputError, match="not a rotatable bond"):
        run_bespoke("CCO", tmp_path / "x", BespokeSettings(bonds=[(0, 3)], **BARE))


def test_gaff2_resp_valence_through_dask(tmp_path):
    """The other pipeline options end to end on ethanol with HF/STO-3G (cheap enough for a
    test): GAFF2 start, RESP charges from the method's own ESP, bonds/angles fitted to its
    Hessian (`--fit-valence`), QM jobs through a Dask LocalCluster. Checked: RESP charges
    equal a separate `resp()` on the stored ESP record, symmetry-equivalent methyl H share a
    charge, the frequency RMSE against the Hessian goes down, and the GAFF2 exports are
    verified (offxml is SMIRNOFF-only and skipped for GAFF2)."""
    import re

    from ffparam.fit.resp import resp
    from ffparam.reference import Store

    out = tmp_path / "ethanol"
    settings = BespokeSettings(**{**BARE, "forcefield": "gaff2", "charges": "resp",
                                  "method": "hf/sto-3g", "fit_valence": True,
                                  "dask": "local"})
    result = run_bespoke("CCO", out, settings)
    charges = result.fitted.charges()
    assert abs(charges.sum()) < 1e-8
    np.testing.assert_allclose(charges[[3, 4, 5]], charges[3], atol=1e-10)
    with Store(out / "ffparam.db", readonly=True) as store:
        (record,) = [r for r in store.records() if r.esp is not None]
    independent = resp(result.fitted.topology, record.geometry, record.esp_points, record.esp)
    np.testing.assert_allclose(charges, independent.charges, atol=1e-8)
    assert "resp" in result.fitted.parameters.settings["charge_method"]
    note = result.metrics.valence.note
    before, after = map(float, re.search(r"([\d.]+) -> ([\d.]+) cm", note).groups())
    assert after < before
    (rotor,) = result.metrics.rotors
    assert rotor.rmse_fitted < rotor.rmse_start
    checks = result.metrics.exports["verification"]
    assert {"openmm", "amber", "gromacs"} <= set(checks)
    assert all(v["max_abs_de_kcal_mol"] < 1e-4 for v in checks.values())
