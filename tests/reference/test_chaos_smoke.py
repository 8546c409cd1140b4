"""Smoke run of ``benchmarks/chaos.py`` (slow): one SIGKILL of a butane torsion drive and
one of a Dask worker; the benchmark exits 0 only if the drive completes, recomputes no
stored job, passes integrity_check, leaves no half-written output and reproduces the
uninterrupted profile bit for bit."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.mark.slow
def test_chaos_benchmark_smoke(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("chaos", ROOT / "benchmarks" / "chaos.py")
    chaos = importlib.util.module_from_spec(spec)
    sys.modules["chaos"] = chaos  # its dataclasses look their module up there
    spec.loader.exec_module(chaos)
    rc = chaos.main(["--kills", "1", "--seed", "0", "--workdir", str(tmp_path),
                     "--commands", "torsiondrive"])
    assert rc == 0, capsys.readouterr().out
