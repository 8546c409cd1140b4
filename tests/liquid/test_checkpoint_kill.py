"""A run killed inside a checkpoint, after the new OpenMM state is on disk but before the
progress file counts it: the resumed run must start from the state of the checkpoint the
progress file counts (plain MD and replica exchange), and make the same trajectory as an
uninterrupted run, bit for bit (OpenMM's Reference platform is deterministic)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ffparam.liquid import simulate
from ffparam.liquid.openmm_system import build_gas_system
from ffparam.liquid.prepare import prepare_system
from ffparam.liquid.simulate import (
    NEXT_SUFFIX,
    PROGRESS_FILE,
    STATE_FILE,
    PhaseSpec,
    fingerprint,
    run_phase,
)
from ffparam.liquid.tempering import REPLICAS_FILE, _key, _read_state, run_tempering
from tests.liquid.conftest import tiny_settings


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, the files stay as they are."""


@pytest.fixture(scope="module")
def gas():
    """Methanol in the gas phase: 0.2 ps equilibration, 10 frames in 5 checkpointed chunks."""
    system = prepare_system("CO", "sage", "gasteiger", name="methanol")
    settings = tiny_settings(checkpoint_interval_ps=0.2, platform="Reference")
    spec = PhaseSpec(build_gas_system(system, settings), system.molecule.conformers[0], None,
                     298.15, None, 0.2, 1.0, 0.1, "methanol gas")
    return spec, settings


@pytest.fixture(scope="module")
def uninterrupted(gas, tmp_path_factory):
    spec, settings = gas
    folder = tmp_path_factory.mktemp("uninterrupted")
    return (run_phase(folder / "plain", spec, settings),
            run_tempering(folder / "tempered", spec, settings, LADDER))


LADDER = [298.15, 400.0]


def assert_same_frames(a, b) -> None:
    np.testing.assert_array_equal(a.energies, b.energies)
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.steps, b.steps)


def kill_at_progress_write(monkeypatch, n: int) -> dict:
    """Make the ``n``-th progress-file write die before it happens; returns a dict whose
    ``"counted"`` is the state text of the last checkpoint the progress file counts."""
    seen = {"progress": 0, "last_state": None, "counted": None}
    write = simulate.write_text_atomic

    def dying_write(path, text):
        if path.name == PROGRESS_FILE:
            seen["progress"] += 1
            if seen["progress"] == n:
                raise Killed
            seen["counted"] = seen["last_state"]
        elif path.name.startswith((STATE_FILE, REPLICAS_FILE)):
            seen["last_state"] = text
        write(path, text)

    monkeypatch.setattr(simulate, "write_text_atomic", dying_write)
    return seen


def test_plain_md_resumes_from_the_counted_checkpoint_state(gas, uninterrupted, tmp_path,
                                                            monkeypatch):
    spec, settings = gas
    directory = tmp_path / "gas"
    seen = kill_at_progress_write(monkeypatch, 3)
    with pytest.raises(Killed):
        run_phase(directory, spec, settings)
    monkeypatch.undo()
    counted = json.loads((directory / PROGRESS_FILE).read_text())
    assert counted["checkpoints"] == 2 and seen["counted"] is not None
    simulate._read_progress(directory, fingerprint(spec, settings), spec.label)
    assert (directory / STATE_FILE).read_text() == seen["counted"]
    assert not (directory / (STATE_FILE + NEXT_SUFFIX)).exists()
    frames = run_phase(directory, spec, settings)
    assert len(frames) == 10
    assert json.loads((directory / PROGRESS_FILE).read_text())["stage"] == "done"
    assert_same_frames(frames, uninterrupted[0])


def test_replica_exchange_resumes_from_the_counted_checkpoint_state(gas, uninterrupted,
                                                                     tmp_path, monkeypatch):
    """For tempering the progress file also holds which replica runs at which
    temperature: replicas.xml of a later checkpoint would pair velocities with the
    wrong temperatures."""
    spec, settings = gas
    directory = tmp_path / "tempered"
    ladder = LADDER
    seen = kill_at_progress_write(monkeypatch, 4)
    with pytest.raises(Killed):
        run_tempering(directory, spec, settings, ladder)
    monkeypatch.undo()
    temps = np.asarray(ladder)
    _read_state(directory, _key(spec, settings, temps), spec.label, temps)
    assert (directory / REPLICAS_FILE).read_text() == seen["counted"]
    frames = run_tempering(directory, spec, settings, ladder)
    assert len(frames) == 10
    assert_same_frames(frames, uninterrupted[1])


def test_a_state_the_progress_file_names_is_moved_into_place(gas, tmp_path):
    """Killed after the progress write but before the rename: the new state is kept."""
    spec, settings = gas
    directory = tmp_path / "gas"
    run_phase(directory, spec, settings)
    final = (directory / STATE_FILE).read_text()
    (directory / STATE_FILE).replace(directory / (STATE_FILE + NEXT_SUFFIX))
    simulate._read_progress(directory, fingerprint(spec, settings), spec.label)
    assert (directory / STATE_FILE).read_text() == final
