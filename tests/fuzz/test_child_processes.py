"""External programs die with ffparam, however ffparam stops (issue 14, section 6).

A real ``ffparam energy --charges am1bcc`` runs antechamber, which runs sqm through a
shell; ffparam is killed with SIGKILL while sqm computes, and every program it had
started must be gone within a few seconds (before the guard, sqm went on for minutes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ffparam.assign.programs import run_guarded

GONE_WITHIN_S = 10.0


def _processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, command name, state) of every process visible in /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1: stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(entry.name)] = (int(fields[1]), name, fields[0])
    return table


def _descendants(pid: int) -> dict[int, str]:
    table = _processes()
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, name, _state) in table.items():
            if ppid == parent and child not in found:
                found[child] = name
                frontier.append(child)
    return found


def _alive(pids) -> list[int]:
    """Those of ``pids`` still running (a zombie waiting to be reaped is not running)."""
    table = _processes()
    return [p for p in pids if p in table and table[p][2] != "Z"]


def _wait_gone(pids, seconds: float = GONE_WITHIN_S) -> list[int]:
    deadline = time.monotonic() + seconds
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _alive(pids)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_stopping_ffparam_kills_antechamber_and_sqm(tmp_path, stop):
    """SIGKILL: the kernel tells the guard (PR_SET_PDEATHSIG), which kills the group.
    SIGINT (Ctrl-C, sent to ffparam alone): ffparam kills the group as it unwinds."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    parent = subprocess.Popen(
        [sys.executable, "-m", "ffparam.cli.main", "energy", "CCCCCCCCCCCCO", "--charges",
         "am1bcc"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        children: dict[int, str] = {}
        while time.monotonic() < deadline and parent.poll() is None:
            children = _descendants(parent.pid)
            if "sqm" in children.values():
                break
            time.sleep(0.05)
        assert "sqm" in children.values(), f"sqm never started (children: {children})"
        os.kill(parent.pid, stop)
        parent.wait(timeout=60)
        left = _wait_gone(children)
        assert not left, f"still running {GONE_WITHIN_S} s after {stop.name} to ffparam: " \
                         f"{[children[p] for p in left]}"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


_GRANDPARENT = ("import os, subprocess, sys, time\n"
                "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
                "open('pids', 'w').write(f'{os.getpid()} {child.pid}')\n"
                "time.sleep(60)\n")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_time_limit_kills_the_program_and_what_it_started(tmp_path):
    with pytest.raises(subprocess.TimeoutExpired):
        run_guarded([sys.executable, "-c", _GRANDPARENT], cwd=tmp_path, timeout=5.0)
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    assert len(pids) == 2
    assert not _wait_gone(pids)


def test_program_exit_code_and_output_pass_through(tmp_path):
    proc = run_guarded([sys.executable, "-c", "import sys; print('out'); "
                        "print('err', file=sys.stderr); sys.exit(3)"], cwd=tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "out\n", "err\n")
