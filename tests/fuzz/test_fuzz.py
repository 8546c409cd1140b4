"""Hostile input over every subcommand and file reader (issue 14, section 6).

Every case of :mod:`tests.fuzz.cases` (300+) must give exit code 2 (or 1 for a failed
calculation), exactly one line on stderr starting ``error:`` (a bare command group prints
its help instead), no traceback, none of its outputs written, within
:data:`~tests.fuzz.runner.TIME_LIMIT_S` and with at most
:data:`~tests.fuzz.runner.MEMORY_LIMIT_BYTES` more address space.

The default suite runs each case in a child forked from this process (modules already
imported, so a case costs what the command does, not an interpreter start); a
representative subset also runs as a real ``ffparam`` subprocess, and the whole list does
under ``-m slow``.
"""

from __future__ import annotations

import pytest

from tests.fuzz.cases import all_cases, check
from tests.fuzz.runner import run_forked, run_subprocess

CASES = all_cases()
BY_ID = {case.id: case for case in CASES}

SUBPROCESS_SUBSET = (
    "energy-missing-args", "usage5-energy", "unknown-command", "energy-neg-count-xyz",
    "energy-devzero-xyz", "energy-fifo-sdf", "energy-smiles24", "fit-binary",
    "fit-alias-bomb", "store-qm-text", "bespoke-out-file", "reference-deep-nesting",
    "offxml-energy-billion-laughs", "mlp-eval-weights-pickle", "energy-binary-sdf",
)
"""Cases also run as real subprocesses: usage errors, runaway counts, FIFOs and devices,
a 5000-character SMILES, binary and bomb files, a pickle payload."""


def _verdict(case, code, stderr, root) -> str:
    return "hang" if code is None else check(case, code, stderr, root)


def test_at_least_300_cases_over_every_subcommand():
    assert len(CASES) >= 300
    commands = {case.argv[0] for case in CASES if case.argv}
    assert commands >= {"energy", "assign", "qm", "torsiondrive", "sample", "fit", "bespoke",
                        "demo", "mlp", "liquid"}
    assert set(SUBPROCESS_SUBSET) <= set(BY_ID)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_one_line_error(case, tmp_path, preloaded):
    code, stderr = run_forked(case, tmp_path)
    assert _verdict(case, code, stderr, tmp_path) == "ok", stderr[-2000:]


@pytest.mark.parametrize("case_id", SUBPROCESS_SUBSET)
def test_bad_input_as_a_real_process(case_id, tmp_path):
    case = BY_ID[case_id]
    code, stderr = run_subprocess(case, tmp_path)
    assert _verdict(case, code, stderr, tmp_path) == "ok", stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_as_a_real_process_all(case, tmp_path):
    code, stderr = run_subprocess(case, tmp_path)
    assert _verdict(case, code, stderr, tmp_path) == "ok", stderr[-2000:]
