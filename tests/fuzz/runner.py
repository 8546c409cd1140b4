"""Run fuzz cases in this process (fast) or as real ``ffparam`` subprocesses (exit code,
time limit and memory limit as a user meets them), and print the outcome table.

``python -m tests.fuzz.runner [--subprocess] [ID_SUBSTRING...]`` sweeps the cases (all, or
those whose id contains one of the substrings), each in a forked child (or, with
``--subprocess``, a fresh interpreter) under the time and memory limits, and prints one
line per misbehaving case and a table of outcomes.
"""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

from tests.fuzz.cases import Case, all_cases, check

TIME_LIMIT_S = 60
"""Wall-clock limit per case; a case still running then is a hang."""

MEMORY_LIMIT_BYTES = 4 * 1024**3
"""Address-space limit of a subprocess case (``RLIMIT_AS``)."""


class CaseTimeout(BaseException):
    """Raised by SIGALRM in an in-process case that ran past its time limit."""


def _alarm(signum, frame):
    raise CaseTimeout


def run_in_process(case: Case, root: Path, timeout: int = TIME_LIMIT_S) -> tuple[int | None, str]:
    """Materialize ``case`` in ``root`` and run ``ffparam.cli.main.main`` there with stdout
    and stderr (file descriptors 1 and 2) captured; returns (exit code or None on a hang,
    stderr). An exception escaping ``main`` is printed as the traceback a user would see."""
    from ffparam.cli.main import main

    case.materialize(root)
    cwd = os.getcwd()
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = os.dup(1), os.dup(2)
    saved_streams = sys.stdout, sys.stderr
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        sys.stdout = io.TextIOWrapper(open(os.dup(1), "wb"), encoding="utf-8",
                                      line_buffering=True)
        sys.stderr = io.TextIOWrapper(open(os.dup(2), "wb"), encoding="utf-8",
                                      errors="backslashreplace", line_buffering=True)
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(timeout)
        code: int | None
        try:
            os.chdir(root)
            code = main(list(case.argv))
        except CaseTimeout:
            code = None
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # what the console script would show
            traceback.print_exc()
            code = 1
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
            os.chdir(cwd)
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                    stream.close()
                except Exception:  # a closed or broken capture stream
                    pass
            sys.stdout, sys.stderr = saved_streams
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for fd in saved_fds:
                os.close(fd)
        err.seek(0)
        stderr = err.read().decode("utf-8", errors="surrogateescape")
    return code, stderr


def _limit_memory(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_subprocess(case: Case, root: Path, timeout: int = TIME_LIMIT_S,
                   memory: int = MEMORY_LIMIT_BYTES) -> tuple[int | None, str]:
    """Run ``case`` as ``python -m ffparam.cli.main`` in ``root`` under an address-space
    limit; returns (exit code, or None when killed at the time limit; stderr)."""
    case.materialize(root)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ffparam.cli.main", *case.argv], cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            preexec_fn=lambda: _limit_memory(memory), start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        code = None
    return code, err.decode("utf-8", errors="surrogateescape")


def _address_space() -> int:
    """Bytes of virtual memory this process maps now (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[0]) * resource.getpagesize()


def run_forked(case: Case, root: Path, timeout: int = TIME_LIMIT_S,
               memory: int = MEMORY_LIMIT_BYTES) -> tuple[int | None, str]:
    """:func:`run_in_process` in a forked child (already-imported modules are shared, so
    a case costs milliseconds, not an interpreter start) whose address space may grow by
    at most ``memory`` bytes and which is killed at ``timeout`` s: a hang inside C code or
    a runaway allocation stops the case, not the sweep. A child killed by the time limit
    gives code None; one that died otherwise gives its signal as stderr."""
    limit = _address_space() + memory
    with tempfile.TemporaryFile() as result:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # child: never returns into the caller's code
            status = 0
            try:
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
                code, stderr = run_in_process(case, root, timeout)
                result.write(json.dumps([code, stderr]).encode())
                result.flush()
            except BaseException:
                status = 70
            finally:
                os._exit(status)
        deadline = time.monotonic() + timeout + 5
        while True:
            done, wait_status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return None, ""
            time.sleep(0.01)
        result.seek(0)
        data = result.read()
    if not data:
        return 1, f"Traceback (most recent call last): child died (wait status {wait_status})"
    code, stderr = json.loads(data)
    return code, stderr


def outcome(case: Case, code: int | None, stderr: str, root: Path) -> str:
    """``check``'s verdict, with ``hang`` for a run stopped at the time limit."""
    return "hang" if code is None else check(case, code, stderr, root)


PRELOAD = ("ffparam.cli.main", "ffparam.workflows.bespoke", "ffparam.reference",
           "ffparam.workflows.fit", "ffparam.workflows.mlp", "ffparam.ml.potential",
           "ffparam.liquid", "ffparam.assign", "ffparam.mm", "ase.io")
"""Modules the commands import lazily; imported once before forking so that each case
does not pay for them again."""


def preload() -> None:
    """Import :data:`PRELOAD` (a module that is missing here is skipped)."""
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def sweep(cases: list[Case], in_subprocess: bool = False) -> Counter:
    """Run ``cases``; print each that misbehaves; return the count of each outcome."""
    counts: Counter = Counter()
    for case in cases:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.monotonic()
            runner = run_subprocess if in_subprocess else run_forked
            code, stderr = runner(case, Path(tmp))
            verdict = outcome(case, code, stderr, Path(tmp))
            seconds = time.monotonic() - start
        counts[verdict.split()[0] if verdict.startswith(("exit", "lines", "wrote")) else verdict] \
            += 1
        if verdict != "ok":
            last = stderr.strip().splitlines()[-1:] or [""]
            print(f"{verdict:12s} {seconds:5.1f}s {case.id}: {ascii(last[0])[:160]}",
                  flush=True)
    return counts


if __name__ == "__main__":
    args = sys.argv[1:]
    use_subprocess = "--subprocess" in args
    wanted = [a for a in args if not a.startswith("--")]
    selected = [c for c in all_cases() if not wanted or any(w in c.id for w in wanted)]
    if not use_subprocess:
        preload()
    result = sweep(selected, use_subprocess)
    print(f"{len(selected)} cases: " + ", ".join(f"{k} {v}" for k, v in result.most_common()))
