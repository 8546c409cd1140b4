"""The experimental polarizability table of benchmarks/bench_drude.py: every row is a
molecule of the benchmark (same SMILES), its source is named in the file's header, and the
comparison computes the relative errors against it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_drude",
                                                  ROOT / "benchmarks" / "bench_drude.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table_rows_are_benchmark_molecules_with_named_sources(bench):
    table = bench.experimental_alphas()
    header = "".join(line for line in bench.EXPERIMENT_FILE.read_text().splitlines(True)
                     if line.startswith("#"))
    smiles = {**bench.FIT, **bench.HELD_OUT}
    assert len(table) >= 5
    for name, (alpha, source) in table.items():
        assert name in smiles
        assert 0.5 < alpha < 50.0
        assert f"{source}:" in header
    rows = bench.EXPERIMENT_FILE.read_text().splitlines()
    for line in rows[[r.startswith("name,") for r in rows].index(True) + 1:]:
        name, smi = line.split(",")[:2]
        assert smiles[name] == smi


def test_compare_to_experiment_relative_errors(bench):
    rows = {"water": {"set": "fit", "qm_iso_a3": 1.2, "mm_iso_a3": 1.5},
            "ethylamine": {"set": "held-out", "qm_iso_a3": 5.0, "mm_iso_a3": 5.0}}
    summary = bench.compare_to_experiment(rows, {"water": (1.5, "crc_100")})
    assert rows["water"]["qm_vs_exp"] == pytest.approx(-0.2)
    assert rows["water"]["mm_vs_exp"] == pytest.approx(0.0)
    assert "exp_iso_a3" not in rows["ethylamine"]
    assert summary == {"n_molecules": 1, "qm_mean_abs_rel_error": pytest.approx(0.2),
                       "mm_mean_abs_rel_error": pytest.approx(0.0)}
