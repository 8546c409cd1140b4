"""The typed bespoke metrics: a round trip through metrics.json, the one migration of files
written before ``schema_version`` existed, and a clear refusal of newer files."""

from __future__ import annotations

import json

import pytest

from ffparam.errors import InputError
from ffparam.io.atomic import write_json_atomic
from ffparam.report.bespoke_metrics import (
    SCHEMA_VERSION,
    BespokeMetrics,
    ChangedParameter,
    FitSummary,
    FragmentInfo,
    RotorResult,
    migrate_metrics,
    read_bespoke_metrics,
)
from ffparam.report.html import write_report

OLD_METRICS = {  # as written before schema_version (no version, "spacing" in degrees)
    "molecule": {"name": "ethanol", "smiles": "CCO", "mapped_smiles": "[C:1]", "formula": "C2H6O",
                 "n_atoms": 9},
    "settings": {"forcefield": "sage", "method": "gfn2-xtb", "charges": "am1bcc", "spacing": 60,
                 "mode": "relaxed", "workers": 1, "references": []},
    "summary": {"n_rotors": 1, "n_fitted": 1, "median_rmse_start": 0.9,
                "median_rmse_fitted": 0.1, "reference": "gfn2-xtb", "incomplete": False},
    "rotors": [{"bond": [1, 2], "dihedral": [0, 1, 2, 8], "source": "computed", "missing": [],
                "n_points": 6, "n_jobs": 6, "n_cached": 0, "n_failed": 0, "error": None,
                "fragment": {"n_atoms": 12, "smiles": "CCO", "wbo_parent": 1.01,
                             "wbo_fragment": 1.0, "note": "RMSE measured on the fragment"},
                "rmse_start": 0.9, "rmse_fitted": 0.1, "mode": "relaxed",
                "plot": "plots/rotor_1.png",
                "profile": {"angles": [0.0, 60.0], "reference": [0.0, 1.0],
                            "start": [0.0, 1.5], "fitted": [0.0, 1.1]}}],
    "fit": {"objective_before": 2.0, "objective_after": 0.1, "optimizer": "least_squares",
            "wall_time_s": 1.5, "n_iterations": 4},
    "changed_parameters": [{"section": "ProperTorsions", "id": "[#6:1]", "field": "k1",
                            "start": 0.1, "fitted": 0.3, "unit": "kcal/mol"}],
    "validation": {},
    "exports": {"files": {}, "verification": {}, "skipped": {}},
    "provenance": {"ffparam_version": "0.1.0", "packages": {"numpy": "2"}, "method": "gfn2-xtb",
                   "forcefield": "sage", "timings": {"total_s": 3.0}, "reference_note": "x"},
    "warnings": ["bond 0-1 is a symmetric terminal rotor; not scanned"],
}


def test_old_file_is_migrated_and_typed(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(OLD_METRICS))
    metrics = read_bespoke_metrics(path)
    assert metrics.schema_version == SCHEMA_VERSION == 6
    assert metrics.settings["spacing_deg"] == 60 and "spacing" not in metrics.settings
    (rotor,) = metrics.rotors
    assert isinstance(rotor, RotorResult) and isinstance(rotor.fragment, FragmentInfo)
    assert rotor.rmse_fitted == 0.1 and rotor.profile.angles == [0.0, 60.0]
    assert isinstance(metrics.fit, FitSummary) and metrics.fit.plot is None
    assert metrics.changed_parameters == [
        ChangedParameter("ProperTorsions", "[#6:1]", "k1", 0.1, 0.3, "kcal/mol")]
    assert metrics.provenance.timings == {"total_s": 3.0} and metrics.valence is None


def test_round_trip_through_the_atomic_writer(tmp_path):
    metrics = BespokeMetrics.from_dict(OLD_METRICS)
    path = write_json_atomic(tmp_path / "metrics.json", metrics)
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert read_bespoke_metrics(path) == metrics
    assert migrate_metrics(data) is data  # the current version passes unchanged


def test_newer_or_malformed_files_are_refused(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({**OLD_METRICS, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(InputError, match=r"metrics.json: .*schema_version 7 is newer"):
        read_bespoke_metrics(path)
    with pytest.raises(InputError, match=r"unknown key\(s\) rmse"):
        BespokeMetrics.from_dict({"rotors": [{"bond": [0, 1], "rmse": 1.0}]})
    with pytest.raises(InputError, match=r"metrics\.rotors must be a list"):
        BespokeMetrics.from_dict({"rotors": {"bond": [0, 1]}})
    path.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        read_bespoke_metrics(path)


def test_version_1_file_reads_without_sigmas_and_version_2_keeps_them(tmp_path):
    v1 = {**OLD_METRICS, "schema_version": 1,
          "settings": {"spacing_deg": 60, "method": "gfn2-xtb"}}
    metrics = BespokeMetrics.from_dict(v1)
    assert metrics.schema_version == 6
    assert metrics.changed_parameters[0].sigma is None
    assert metrics.rotors[0].profile.fitted_sigma is None
    metrics.changed_parameters[0].sigma = 0.05
    metrics.rotors[0].profile.fitted_sigma = [0.01, 0.02]
    path = write_json_atomic(tmp_path / "metrics.json", metrics)
    back = read_bespoke_metrics(path)
    assert back == metrics and back.changed_parameters[0].sigma == 0.05
    html = write_report(tmp_path / "r.html", back, tmp_path / "plots").read_text()
    assert "<th>&sigma;</th>" in html and "0.0500" in html


def test_report_takes_the_typed_object_and_its_dict_alike(tmp_path):
    metrics = BespokeMetrics.from_dict(OLD_METRICS)
    typed = write_report(tmp_path / "a.html", metrics, tmp_path / "plots").read_text()
    plain = write_report(tmp_path / "b.html", OLD_METRICS, tmp_path / "plots").read_text()
    assert _without_date(typed) == _without_date(plain)
    assert "spacing_deg" in typed and "0.900 &rarr; 0.100 kcal/mol" in typed


def _without_date(html: str) -> str:
    return "\n".join(line for line in html.splitlines() if "UTC" not in line)
