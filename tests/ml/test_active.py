"""Active learning: diverse selection, the pool loop (records, resume, final model) and
bad input caught before anything is labelled."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ffparam.errors import InputError
from ffparam.ml.active import (
    ActiveSettings,
    PoolLabeller,
    frame_descriptors,
    run_active,
    select_diverse,
    split_labelled,
)
from ffparam.ml.data import read_extxyz
from ffparam.ml.potential import load_potential
from ffparam.workflows.mlp_active import MlpActiveSettings, active_from_pool, make_trainer
from tests.ml.conftest import ETHANOL, ETHANOL_ATOMS

GP_FAST = {"length_scale": 1.6, "learn_weights": False, "symmetrize": False}


def test_selection_takes_one_of_near_copies(ethanol):
    # frames 0..9 are one excursion (copies of frame 0 moved by 1e-4 A) with the largest
    # uncertainties; the rest are the other ethanol frames with smaller ones
    rng = np.random.default_rng(0)
    copies = [ethanol.subset([0]) for _ in range(10)]
    pos = np.concatenate([c.positions + 1e-4 * rng.normal(size=c.positions.shape)
                          for c in copies] + [ethanol.subset(np.arange(1, 20)).positions])
    data = ethanol.subset([0] * 10 + list(range(1, 20)))
    data.positions[:] = pos
    sigma = np.concatenate([np.linspace(1.0, 0.9, 10), np.linspace(0.5, 0.1, 19)])
    chosen = select_diverse(sigma, frame_descriptors(data), 5)
    assert chosen[0] == 0 and len(set(chosen.tolist())) == 5
    assert np.sum(chosen < 10) == 1  # not 5 copies of the excursion
    assert list(chosen[1:]) == [10, 11, 12, 13]  # then the most uncertain distinct frames
    # without a radius: plain largest uncertainty
    assert list(select_diverse(sigma, frame_descriptors(data), 3, exclusion=1e-9)) == [0, 1, 2]


def test_validation_split_is_stable_as_labels_grow(ethanol):
    a_train, a_valid = split_labelled(ethanol.subset(np.arange(20)), 10)
    b_train, b_valid = split_labelled(ethanol.subset(np.arange(30)), 10)
    assert len(a_valid) == 2 and len(b_valid) == 3
    np.testing.assert_array_equal(b_valid.positions[: a_valid.positions.shape[0]],
                                  a_valid.positions)
    np.testing.assert_array_equal(b_train.positions[: a_train.positions.shape[0]],
                                  a_train.positions)


def _pool_run(out, **loop):
    settings = MlpActiveSettings(model="gpr")
    loop = ActiveSettings(**{"budget": 20, "initial": 10, "per_round": 5, **loop})
    test = ETHANOL  # the pool itself: only the bookkeeping of the test scores is checked
    return active_from_pool(ETHANOL, out, settings, loop, test_path=test,
                            isolated_atoms=ETHANOL_ATOMS, options=GP_FAST)


def test_pool_loop_records_rounds_and_leaves_a_usable_model(tmp_path):
    out = tmp_path / "al"
    summary = _pool_run(out)
    assert summary["stop"] == "label budget 20 spent"
    assert [r["n_labels"] for r in summary["rounds"]] == [10, 15, 20]
    ids = json.loads((out / "rounds" / "002" / "round.json").read_text())["ids"]
    assert len(ids) == len(set(ids)) == 20
    assert len(read_extxyz(out / "rounds" / "002" / "data.xyz")) == 20
    for r in summary["rounds"][1:]:
        assert len(r["selected"]["ids"]) == 5
        assert min(r["selected"]["sigma_ev_a"]) >= 0.0
        assert r["candidates"]["n"] == 60 - r["n_labels"] + 5
        assert r["test_calibration"]["frame_spearman"] == r["test_calibration"]["frame_spearman"]
    assert (out / "active.png").stat().st_size > 0
    model = load_potential(out)  # DIR itself is the final model (mlp eval | md DIR)
    final = load_potential(out / "rounds" / "002" / "model")
    data = read_extxyz(ETHANOL).subset([0, 1])
    np.testing.assert_allclose(model.predict(data).forces, final.predict(data).forces)


def test_rerun_resumes_without_retraining(tmp_path):
    out = tmp_path / "al"
    first = _pool_run(out, budget=15)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "rounds").rglob("*") if p.is_file()}
    again = _pool_run(out, budget=15)
    assert json.dumps(again["rounds"]) == json.dumps(first["rounds"])  # NaN-safe equality
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    more = _pool_run(out, budget=20)  # a larger budget continues from round 1
    assert [r["n_labels"] for r in more["rounds"]] == [10, 15, 20]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_failed_labels_are_recorded_and_never_trained_on(ethanol, ethanol_refs, tmp_path):
    class Flaky(PoolLabeller):
        def label(self, frames, ids):
            batch = super().label(frames, ids)
            keep = [k for k, i in enumerate(ids) if int(i) % 2 == 0]
            failures = [{"id": i, "error": "SCF did not converge"}
                        for i in ids if int(i) % 2]
            return type(batch)(batch.data.subset(keep), [ids[k] for k in keep], failures)

    trainer = make_trainer(MlpActiveSettings(), ethanol_refs, options=GP_FAST)
    summary = run_active(Flaky(ethanol), trainer,
                         ActiveSettings(budget=20, initial=10, per_round=5), tmp_path)
    failed = [f["id"] for r in summary["rounds"] for f in r.get("failures", [])]
    assert failed and all(int(i) % 2 for i in failed)
    ids = json.loads((tmp_path / "rounds" / "002" / "round.json").read_text())["ids"]
    assert not set(failed) & set(ids)
    assert summary["labels_spent"] == 20 and summary["n_labels"] == 20 - len(failed)


def test_bad_input_is_one_error_before_labelling(ethanol, bpa, tmp_path):
    with pytest.raises(InputError, match="budget must be at least 1"):
        ActiveSettings(budget=0)
    no_forces = tmp_path / "noforces.xyz"
    ethanol.subset(np.arange(12)).__class__(
        numbers=ethanol.numbers[:90], positions=ethanol.positions[:90],
        n_atoms=ethanol.n_atoms[:10], energies=ethanol.energies[:10]).write_extxyz(no_forces)
    loop = ActiveSettings(budget=10, initial=5, per_round=5)
    with pytest.raises(InputError, match="no forces"):
        active_from_pool(no_forces, tmp_path / "a", MlpActiveSettings(), loop)
    other = tmp_path / "bpa.xyz"
    bpa.write_extxyz(other)
    with pytest.raises(InputError, match="never sees"):
        active_from_pool(ETHANOL, tmp_path / "b", MlpActiveSettings(), loop, test_path=other)
    with pytest.raises(InputError, match="no uncertainty"):
        MlpActiveSettings(model="ani", committee=1)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_on_the_fly_with_gfn2_labels_resumes_from_the_store(tmp_path):
    from ffparam.reference import Store
    from ffparam.workflows.mlp_active import active_on_the_fly

    settings = MlpActiveSettings(model="gpr", method="gfn2-xtb", temperatures_k=(300.0, 600.0),
                                 md_steps=40, md_interval=2)
    loop = ActiveSettings(budget=12, initial=6, per_round=3)
    out = tmp_path / "water"
    summary = active_on_the_fly("O", out, settings, loop, options=GP_FAST)
    assert [r["n_labels"] for r in summary["rounds"]] == [6, 9, 12]
    assert summary["rounds"][1]["candidates"]["n"] == 2 * 21  # two temperatures, steps 0..40
    with Store(out / "reference.db", readonly=True) as store:
        n_records = len(list(store.records()))
    assert n_records == 2 + 12  # optimization + Hessian, then one gradient per label
    load_potential(out)
    last = json.loads((out / "rounds" / "002" / "round.json").read_text())
    (out / "rounds" / "002" / "round.json").unlink()  # redo the last round: no new QM
    again = active_on_the_fly("O", out, settings, loop, options=GP_FAST)
    assert [r["n_labels"] for r in again["rounds"]] == [6, 9, 12]
    redone = json.loads((out / "rounds" / "002" / "round.json").read_text())
    assert redone["ids"] == last["ids"]  # the same MD, selection and labels
    with Store(out / "reference.db", readonly=True) as store:
        assert len(list(store.records())) == n_records
