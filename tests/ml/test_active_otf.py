"""On-the-fly active learning (GFN2-xTB labels of water): broken candidate MD is cut and
restarted, the random baseline, test scoring, failed labels and bad input before any
labelling."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ffparam.errors import InputError
from ffparam.ml.active import ActiveSettings, LabelBatch, run_active
from ffparam.ml.data import MLDataset, read_extxyz
from ffparam.workflows.mlp_active import (
    MlpActiveSettings,
    ReferenceLabeller,
    active_on_the_fly,
    geometry_check,
    make_trainer,
    sound_frames,
)
from tests.ml.conftest import ETHANOL

GP_FAST = {"length_scale": 1.6, "learn_weights": False, "symmetrize": False}


@pytest.fixture(scope="module")
def water(tmp_path_factory):
    """(molecule, 8 GFN2-xTB labelled frames of water around its conformer, store path)."""
    from ffparam.chem import Molecule
    from ffparam.reference import Store
    from ffparam.runtime import make_executor

    molecule = Molecule.from_input("O").generate_conformers(1, seed=0)
    rng = np.random.default_rng(0)
    positions = molecule.conformers[0] + 0.03 * rng.normal(size=(8, 3, 3))
    frames = MLDataset(numbers=np.tile(molecule.atomic_numbers, 8),
                       positions=positions.reshape(-1, 3), n_atoms=np.full(8, 3))
    store_path = tmp_path_factory.mktemp("water") / "reference.db"
    with Store(store_path) as store, make_executor(0, None) as executor:
        labeller = ReferenceLabeller(molecule, store, executor, MlpActiveSettings(),
                                     store_path.parent)
        batch = labeller.label(frames, [str(i) for i in range(8)])
    assert batch.data is not None and len(batch.data) == 8 and not batch.failures
    return molecule, batch.data, store_path


def _water_potential(data, out):
    from ffparam.workflows.mlp import reference_energies

    train = make_trainer(MlpActiveSettings(), reference_energies(data, None), options=GP_FAST)
    return train(data.subset(np.arange(6)), data.subset([6, 7]), out)


def test_sound_frames_flag_stretched_bonds_and_clashes():
    from ffparam.chem import Molecule

    ethanol = Molecule.from_input("CCO").generate_conformers(1, seed=0)
    ref = ethanol.conformers[0]
    bonds = ethanol.bonds
    i, j = bonds[0]
    stretched = ref.copy()
    stretched[j] = ref[i] + 1.6 * (ref[j] - ref[i])
    clash = ref.copy()
    far = next(k for k in range(ethanol.n_atoms)
               if k != 0 and not any({0, k} == set(b) for b in bonds.tolist()))
    clash[far] = ref[0] + [0.5, 0.0, 0.0]  # a non-bonded atom 0.5 A from atom 0
    ok = sound_frames(np.stack([ref, stretched, clash, ref]), bonds, ref)
    assert ok.tolist() == [True, False, False, True]
    assert sound_frames(stretched[None], bonds, ref, max_stretch=1.7).tolist() == [True]
    check = geometry_check(np.stack([ref, stretched, ref]), bonds, ref)
    assert not check["ok"] and check["first_broken_frame"] == 1
    assert check["max_bond_ratio"] == pytest.approx(1.6)
    assert geometry_check(ref[None], bonds, ref)["ok"]


def test_broken_candidate_md_is_cut_at_its_last_sound_frame_and_restarted(water, tmp_path):
    from ffparam.reference import Store
    from ffparam.runtime import make_executor

    molecule, data, store_path = water
    potential = _water_potential(data, tmp_path / "model")
    # any bond longer than 1.0001 x its length in the conformer counts as broken: 600 K
    # MD from the conformer itself breaks within a few steps, every time
    settings = MlpActiveSettings(temperatures_k=(600.0,), md_steps=40, md_interval=2,
                                 max_stretch=1.0001, md_restarts=2)
    start = MLDataset(numbers=molecule.atomic_numbers, positions=molecule.conformers[0],
                      n_atoms=np.array([3]))
    with Store(store_path) as store, make_executor(0, None) as executor:
        labeller = ReferenceLabeller(molecule, store, executor, settings, tmp_path / "md")
        frames, names = labeller.candidates(potential, start, ["start"], 1)
    assert frames is not None and 1 <= len(frames) < 21 and len(names) == len(frames)
    assert sound_frames(frames.positions.reshape(-1, 3, 3), molecule.bonds,
                        molecule.conformers[0], max_stretch=1.0001).all()
    events = json.loads((tmp_path / "md" / "round_001_600K.json").read_text())["events"]
    assert len(events) == 3 and all(e["reason"] == "broken geometry" for e in events)
    assert len(read_extxyz(tmp_path / "md" / "round_001_600K.xyz")) == len(frames)
    assert not list((tmp_path / "md").glob("*.part*"))
    # a sound run is left alone: no restart, every 2nd step of 0..40 kept
    with Store(store_path) as store, make_executor(0, None) as executor:
        calm = ReferenceLabeller(molecule, store, executor,
                                 settings.replace(max_stretch=3.0), tmp_path / "calm")
        frames, _ = calm.candidates(potential, start, ["start"], 1)
    assert len(frames) == 21 and not list((tmp_path / "calm").glob("*.json"))


def test_candidate_md_from_a_broken_start_restarts_from_the_first_labelled_frame(
        water, tmp_path):
    from ffparam.reference import Store
    from ffparam.runtime import make_executor

    molecule, data, store_path = water
    potential = _water_potential(data, tmp_path / "model")
    ref = molecule.conformers[0]
    broken = ref.copy()
    broken[1] = ref[0] + 1.8 * (ref[1] - ref[0])  # an O-H bond 1.8 x its length
    labelled = MLDataset(numbers=np.tile(molecule.atomic_numbers, 2),
                         positions=np.concatenate([ref, broken]), n_atoms=np.array([3, 3]))
    # the round whose seeded start is the broken frame (index 1)
    round_index = next(r for r in range(1, 50)
                       if np.random.default_rng([0, r]).integers(2) == 1)
    settings = MlpActiveSettings(temperatures_k=(300.0,), md_steps=20, md_interval=2)
    with Store(store_path) as store, make_executor(0, None) as executor:
        labeller = ReferenceLabeller(molecule, store, executor, settings, tmp_path / "md")
        frames, names = labeller.candidates(potential, labelled, ["a", "b"], round_index)
    stem = tmp_path / "md" / f"round_{round_index:03d}_300K"
    events = json.loads(stem.with_suffix(".json").read_text())["events"]
    assert events[0]["reason"] == "broken geometry" and "restart_from" in events[0]
    assert frames is not None and 1 <= len(frames) <= 10 and len(names) == len(frames)
    assert sound_frames(frames.positions.reshape(-1, 3, 3), molecule.bonds, ref).all()


def test_random_baseline_on_the_fly_is_scored_on_test_frames(water, tmp_path):
    _, data, _ = water
    test = tmp_path / "test.xyz"
    data.write_extxyz(test)
    settings = MlpActiveSettings(temperatures_k=(300.0,), md_steps=40, md_interval=2)
    loop = ActiveSettings(budget=9, initial=6, per_round=3)
    summary = active_on_the_fly("O", tmp_path / "random", settings, loop, options=GP_FAST,
                                test=test, random=True)
    assert [r["n_labels"] for r in summary["rounds"]] == [6, 9]
    later = summary["rounds"][1]
    assert later["candidates"]["n"] == 3  # drawn at random among the 21 MD frames
    assert len(later["selected"]["ids"]) == 3
    assert all(r["test_frames"] == 8 and r["test_force_mae_mev_a"] > 0
               for r in summary["rounds"])


def test_failed_reference_label_is_recorded_and_never_trained_on(water, tmp_path):
    from ffparam.reference import Store
    from ffparam.runtime import make_executor
    from ffparam.workflows.mlp import reference_energies

    molecule, data, _ = water

    class Collapsing(ReferenceLabeller):
        """Labels the first chosen frame with every atom on one point: tblite refuses."""

        def initial(self, n, seed):
            return LabelBatch(data.subset(np.arange(n)), [f"init{i}" for i in range(n)])

        def label(self, frames, ids):
            frames.positions[:3] = 0.0
            return super().label(frames, ids)

    settings = MlpActiveSettings(temperatures_k=(300.0,), md_steps=20, md_interval=2)
    train = make_trainer(settings, reference_energies(data, None), options=GP_FAST)
    with Store(tmp_path / "ref.db") as store, make_executor(0, None) as executor:
        labeller = Collapsing(molecule, store, executor, settings, tmp_path / "md")
        summary = run_active(labeller, train, ActiveSettings(budget=9, initial=6, per_round=3),
                             tmp_path / "al")
    failures = summary["rounds"][1]["failures"]
    assert len(failures) == 1 and "Too close" in failures[0]["error"]
    record = json.loads((tmp_path / "al" / "rounds" / "001" / "round.json").read_text())
    assert failures[0]["id"] not in record["ids"]
    assert summary["labels_spent"] == 9 and summary["n_labels"] == 8
    trained = read_extxyz(tmp_path / "al" / "rounds" / "001" / "data.xyz")
    assert len(trained) == 8
    assert np.all(np.abs(trained.positions.reshape(8, 9)).max(axis=1) > 0)  # no collapsed frame


def test_bad_on_the_fly_input_is_one_error_before_labelling(tmp_path):
    settings = MlpActiveSettings(temperatures_k=(300.0,), md_steps=20)
    loop = ActiveSettings(budget=9, initial=6, per_round=3)
    with pytest.raises(InputError, match="cannot set up hf/6-31g"):
        active_on_the_fly("CI", tmp_path / "a", settings.replace(method="hf/6-31g"), loop)
    with pytest.raises(InputError, match="atoms in the molecule's order"):
        active_on_the_fly("O", tmp_path / "b", settings, loop, test=ETHANOL)
    with pytest.raises(InputError, match="budget must be at least 1"):
        ActiveSettings(budget=0, initial=0)
    with pytest.raises(InputError, match="max_stretch"):
        MlpActiveSettings(max_stretch=0.9)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_budget_zero_is_one_line_before_anything_is_written(tmp_path, monkeypatch,
                                                                capsys):
    from ffparam.cli.main import main

    monkeypatch.chdir(tmp_path)
    rc = main(["mlp", "active", "O", "--budget", "0", "--out", "x"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "--budget" in lines[0], lines
    assert list(tmp_path.iterdir()) == []
