"""Store: content keys, round trips, rerun semantics, concurrent readers, exports."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ffparam.reference import Job, MethodSpec, Species, Store, Task, compute, job_key, run_jobs
from ffparam.reference.compute import make_jobs
from ffparam.units import KCAL_MOL_EV


def test_key_depends_on_rounded_geometry_method_task_and_atom_order(ethanol):
    species = Species.from_molecule(ethanol)
    x = np.round(ethanol.conformers[0] / 1e-6) * 1e-6  # on the rounding grid
    spec, task = MethodSpec.parse("gfn2-xtb"), Task("energy")
    key = job_key(species, spec, task, x)
    assert job_key(species, spec, task, x + 3e-7) == key  # within the 1e-6 A precision
    assert job_key(species, spec, task, x - 3e-7) == key
    assert job_key(species, spec, task, x + 2e-6) != key
    assert job_key(species, MethodSpec.parse("gfn1-xtb"), task, x) != key
    assert job_key(species, spec, Task("gradient"), x) != key
    assert job_key(species, spec, task, x, precision=1e-3) != key
    from ffparam.chem import Molecule

    reordered = Molecule.from_smiles("OCC")
    assert Species.from_molecule(reordered).key != species.key


def test_records_round_trip_exactly(tmp_path, ethanol):
    path = tmp_path / "p.db"
    with Store(path) as store:
        written = compute(ethanol, method="gfn2-xtb", task="hessian", store=store)[0]
    with Store(path, readonly=True) as store:
        read = store.get(written.key)
    assert read.cached and read.ok
    assert read.energy == written.energy
    for name in ("geometry", "gradient", "hessian", "dipole", "charges"):
        np.testing.assert_array_equal(getattr(read, name), getattr(written, name))
    assert read.species == written.species
    assert read.provenance["versions"]["tblite"]
    assert read.provenance["wall_time"] > 0


def test_rerun_skips_complete_and_keeps_failed_unless_retry(tmp_path, water):
    geoms = water.conformers[0][None] + np.array([0.0, 0.02, 0.04])[:, None, None]
    good = make_jobs(water, geoms, "hf/sto-3g", "energy")
    bad = make_jobs(water, geoms[:1], "hf/sto-3g[max_scf_cycles=1]", "energy")
    with Store(tmp_path / "s.db") as store:
        records, summary = run_jobs(good + bad, store)
        assert [r.status for r in records] == ["complete"] * 3 + ["failed"]
        assert "SCF not converged" in records[-1].error
        assert (summary.n_computed, summary.n_failed, summary.complete) == (4, 1, False)
        again, summary = run_jobs(good + bad, store)
        assert (summary.n_cached, summary.n_computed) == (4, 0)
        assert [r.energy for r in again[:3]] == [r.energy for r in records[:3]]
        _, summary = run_jobs(good + bad, store, retry_failed=True)
        assert (summary.n_cached, summary.n_computed, summary.n_failed) == (3, 1, 1)
        assert store.counts() == {"complete": 3, "failed": 1}


def test_running_rows_from_a_killed_run_are_recomputed(tmp_path, water):
    jobs = make_jobs(water, water.conformers, "gfn2-xtb", "gradient")
    with Store(tmp_path / "s.db") as store:
        store.mark_running(jobs)
        assert store.counts() == {"running": 1}
        records, summary = run_jobs(jobs, store)
        assert summary.n_computed == 1 and records[0].ok
        store.mark_running(jobs)  # never downgrades a complete record
        assert store.counts() == {"complete": 1}


def test_readers_in_other_processes_see_committed_rows_while_writer_holds_a_lock(tmp_path, ethanol):
    path = tmp_path / "wal.db"
    store = Store(path)
    compute(ethanol, method="gfn2-xtb", store=store)
    store._db.execute("BEGIN IMMEDIATE")  # the writer holds the write lock now
    store._db.execute("UPDATE records SET error='uncommitted'")
    code = (
        "from ffparam.reference import Store;"
        f"s = Store({str(path)!r}, readonly=True);"
        "r = list(s.records());"
        "print(len(r), r[0].error)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["1", "None"]
    store._db.execute("ROLLBACK")
    store.close()


def test_extxyz_export_is_ase_readable_in_ev(tmp_path, ethanol):
    from ase.io import read

    with Store(tmp_path / "e.db") as store:
        record = compute(ethanol, method="gfn2-xtb", task="gradient", store=store)[0]
        bad = make_jobs(ethanol, ethanol.conformers, "gfn2-xtb[max_scf_cycles=1]", "gradient")
        run_jobs(bad, store)
        assert store.export_extxyz(tmp_path / "out.xyz") == 1  # failed records never exported
        assert store.export_json(tmp_path / "out.json") == 2
    frames = read(tmp_path / "out.xyz", index=":")
    assert len(frames) == 1
    atoms = frames[0]
    assert atoms.get_potential_energy() == pytest.approx(record.energy * KCAL_MOL_EV, rel=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), -record.gradient * KCAL_MOL_EV, atol=1e-7)
    np.testing.assert_allclose(atoms.positions, ethanol.conformers[0], atol=1e-8)
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["units"]["energy"] == "kcal/mol"
    assert sorted(r["status"] for r in data["records"]) == ["complete", "failed"]


def test_job_is_picklable_and_key_is_stable(ethanol):
    import pickle

    job = Job.create(Species.from_molecule(ethanol), "gfn2-xtb", "energy", ethanol.conformers[0])
    clone = pickle.loads(pickle.dumps(job))
    assert clone.key == job.key
    assert len(job.key) == 64


@pytest.mark.parametrize("method", ["gfn2-xtb", "hf/sto-3g"])
def test_broken_geometry_fails_alone_with_a_message(water, method):
    """Two atoms on top of each other: that job is failed with the backend's message,
    the other job of the same run completes."""
    good = water.conformers[0]
    bad = good.copy()
    bad[1] = bad[0]
    records, summary = run_jobs(
        make_jobs(water, np.array([good, bad]), method, "gradient"), Store()
    )
    assert [r.status for r in records] == ["complete", "failed"]
    assert records[1].error and records[1].energy is None and records[1].gradient is None
    assert summary.n_failed == 1 and not summary.complete


def test_readonly_open_refuses_another_programs_database(tmp_path):
    """A reader that opens a database without ffparam's tables gets one clear error (a
    store still being created, with no tables yet, is waited for instead)."""
    import sqlite3

    from ffparam.errors import InputError

    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE x (a)")
    with pytest.raises(InputError, match="not an ffparam store"):
        Store(path, readonly=True)
