"""The static HTML report: renders from a full metrics dict (real validation results on
butane) and from minimal ones (no rotors, failed scans), shows the key numbers, embeds the
PNGs as data URIs (one file, nothing fetched), escapes text, and is well-formed."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.report.html import format_number, write_report
from ffparam.report.plots import history_plot, torsion_profile_plot
from ffparam.validate import held_out_conformers, md_stability, optimized_geometry_rmsd

DATA_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def validation():
    molecule = Molecule.from_smiles("CCCC", name="butane").generate_conformers(1, seed=5)
    start = assign_parameters(molecule, "sage", charges="gasteiger")
    params = start.parameters.copy()
    params.get("Bonds", "[#6X4:1]-[#6X4:2]").values["length"] += 0.05
    systems = {"start": start, "bespoke": start.with_parameters(params)}
    return {
        "conformers": held_out_conformers(molecule, systems, n_conformers=4).to_json(),
        "geometry": optimized_geometry_rmsd(molecule, systems).to_json(),
        "md": md_stability(start, molecule, length_ps=0.3).to_json(),
    }


def full_metrics(validation) -> dict:
    angles = np.arange(-165.0, 181.0, 15.0)
    ref = 1.5 * (1 + np.cos(np.radians(3 * angles)))
    return {
        "molecule": {"name": "butane", "smiles": "CCCC", "formula": "C4H10", "n_atoms": 14},
        "settings": {"forcefield": "sage", "method": "gfn2-xtb", "charges": "am1bcc",
                     "spacing": 15},
        "rotors": [
            {"bond": [1, 2], "dihedral": [0, 1, 2, 3], "smirks": ["[#6X4:1]-[#6X4:2]-[#6X4:3]"
                                                                  "-[#6X4:4]"],
             "n_points": 24, "missing": [[30.0], [45.0]], "rmse_start": 0.8123,
             "rmse_fitted": 0.1234, "mode": "relaxed", "plot": "plots/rotor_1.png",
             "fragment": None,
             "profile": {"angles": angles.tolist(), "reference": ref.tolist(),
                         "start": (1.3 * ref).tolist(), "fitted": (1.02 * ref).tolist()}},
            {"bond": [2, 3], "dihedral": [1, 2, 3, 4], "smirks": [], "n_points": 0,
             "missing": [], "rmse_start": None, "rmse_fitted": None, "plot": None,
             "fragment": {"n_atoms": 12, "smiles": "CCCC"},
             "error": "every grid point failed"},
        ],
        "fit": {"objective_before": 12.34, "objective_after": 0.4321,
                "optimizer": "least_squares", "wall_time_s": 3.21, "n_iterations": 7,
                "plot": "history.png"},
        "changed_parameters": [
            {"section": "ProperTorsions", "id": "[#6X4:1]-[#6X4:2]-[#6X4:3]-[#6X4:4]",
             "field": "k1", "start": 0.4238, "fitted": 0.6543, "unit": "kcal/mol"}],
        "validation": validation,
        "exports": {"formats": {"openmm": {"path": "butane.system.xml", "max_abs_dE": 9.6e-7},
                                "amber": {"path": "butane.prmtop", "max_abs_dE": 1.7e-6}},
                    "skipped": {"offxml": "offxml is SMIRNOFF-only and this is a GAFF2 system"}},
        "provenance": {"ffparam_version": "0.1.0", "packages": {"openmm": "8.6.1",
                                                                "tblite": "0.4.0"},
                       "method": "gfn2-xtb",
                       "timings": {"charges_s": 1.5, "scans_s": 61.0, "fit_s": 9.5,
                                   "validation_s": 4.25, "export_s": 0.8, "total_s": 77.3},
                       "reference_note": "RMSE vs GFN2-xTB; GFN2-xTB itself differs from "
                                         "B3LYP-D3BJ/DZVP by ~0.3 kcal/mol on a biaryl torsion"},
        "warnings": ["rotor 2-3: every grid point failed; not fitted"],
    }


@pytest.fixture()
def rundir(tmp_path):
    plots = tmp_path / "plots"
    plots.mkdir()
    angles = np.arange(-165.0, 181.0, 15.0)
    torsion_profile_plot(plots / "rotor_1.png", angles,
                         {"reference": np.cos(np.radians(angles)),
                          "start": 1.3 * np.cos(np.radians(angles))}, "bond 1-2")
    history_plot(plots / "history.png", np.array([12.34, 3.0, 0.5, 0.4321]), "fit")
    return tmp_path


def test_full_report_shows_the_key_numbers(rundir, validation):
    metrics = json.loads(json.dumps(full_metrics(validation)))  # as read from metrics.json
    path = write_report(rundir / "report.html", metrics, rundir / "plots")
    html = path.read_text()
    text = _visible_text(html)
    assert "0.812 → 0.123 kcal/mol" in text  # median before/after
    assert "RMSE vs gfn2-xtb" in text and "B3LYP-D3BJ/DZVP" in text
    assert "2: 30°, 45°" in text  # missing grid points
    assert "every grid point failed" in text and "12 atoms" in text
    assert "[#6X4:1]-[#6X4:2]-[#6X4:3]-[#6X4:4]" in text and "0.6543" in text
    conformers = validation["conformers"]["systems"]
    for name in ("start", "bespoke"):
        assert format_number(conformers[name]["energy_rmse_kcal_mol"]) in text
        assert format_number(conformers[name]["force_rmse_kcal_mol_a"]) in text
        geometry = validation["geometry"]["systems"][name]
        assert format_number(geometry["mean_heavy_atom_rmsd_a"]) in text
    assert "stable" in text and format_number(validation["md"]["ns_per_day"]) in text
    assert "9.60e-07" in text and "offxml is SMIRNOFF-only" in text
    assert "77.3 s" in text and "tblite" in text
    assert "Warnings and missing data" in text


def test_plots_are_embedded_and_the_file_travels_alone(rundir, validation):
    path = write_report(rundir / "report.html", full_metrics(validation), rundir / "plots")
    html = path.read_text()
    images = [base64.b64decode(m) for m in DATA_URI.findall(html)]
    # rotor 1, torsion parity, conformer energy and force parity, fit history
    assert len(images) == 5
    assert all(image.startswith(PNG_MAGIC) for image in images)
    assert (rundir / "plots" / "rotor_1.png").read_bytes() in images
    for name in ("torsion_parity.png", "conformer_energy_parity.png",
                 "conformer_force_parity.png"):
        assert (rundir / "plots" / name).read_bytes() in images
    # nothing is fetched from elsewhere: no external links, scripts or relative images
    assert not re.search(r'(src|href)="(?!data:|#)', html)
    moved = rundir / "elsewhere.html"
    moved.write_text(html)
    for folder in ("plots",):
        for file in (rundir / folder).iterdir():
            file.unlink()
    assert len(DATA_URI.findall(moved.read_text())) == 5


def test_report_is_well_formed_and_escapes_text(tmp_path, validation):
    metrics = full_metrics(validation)
    metrics["molecule"]["name"] = "<script>alert(1)</script>"
    metrics["warnings"].append("a & b < c")
    html = write_report(tmp_path / "r.html", metrics, tmp_path / "plots").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "a &amp; b &lt; c" in html
    _check_balanced(html)


def test_minimal_metrics_render(tmp_path):
    html = write_report(tmp_path / "empty.html", {}, None).read_text()
    _check_balanced(html)
    text = _visible_text(html)
    assert "No rotatable bond was scanned" in text and "n/a" in text
    assert "MD not run" in text and "Nothing exported" in text


def test_no_rotors_and_failed_scans_render_with_what_is_missing(tmp_path):
    metrics = {
        "molecule": {"name": "benzene", "smiles": "c1ccccc1", "formula": "C6H6", "n_atoms": 12},
        "settings": {"forcefield": "sage", "method": "gfn2-xtb"},
        "rotors": [{"bond": [0, 1], "dihedral": [5, 0, 1, 2], "n_points": 0, "missing": [],
                    "error": "torsion drive failed: SCF not converged", "plot": None},
                   {"bond": [3, 4], "n_points": 20, "missing": [[15.0], [30.0]],
                    "rmse_start": 1.0, "rmse_fitted": None, "plot": "plots/rotor_2.png"}],
        "fit": None, "changed_parameters": [], "validation": {},
        "exports": {"files": {"amber": ["m.prmtop", "m.inpcrd"]},
                    "verification": {"amber": {"reader": "AmberPrmtopFile",
                                               "max_abs_de_kcal_mol": 1.7e-6,
                                               "max_abs_df_kcal_mol_A": 5.2e-6,
                                               "n_conformers": 1}},
                    "skipped": {}, "tolerance_kcal_mol": 1e-4},
        "warnings": ["no rotatable bond could be fitted; the starting force field is exported"],
    }
    html = write_report(tmp_path / "report.html", metrics, tmp_path / "plots").read_text()
    _check_balanced(html)
    text = _visible_text(html)
    assert "SCF not converged" in text
    assert "plot for rotor 2 not found: plots/rotor_2.png" in text
    assert "1.00 → n/a kcal/mol" in text
    assert "m.prmtop" in text and "1.70e-06" in text and "AmberPrmtopFile" in text
    assert "No fit was run" in text and "No parameter changed" in text
    assert "starting force field is exported" in text
    assert "data:image/png" not in html


@pytest.mark.parametrize(("value", "text"), [
    (0.12345, "0.123"), (12.345, "12.3"), (1.7e-6, "1.70e-06"), (0, "0"), (None, "n/a"),
    (float("nan"), "n/a"), (float("inf"), "n/a"), (250000.0, "2.50e+05"), (-3.14159, "-3.14"),
    (True, "True"), ("abc", "abc")])
def test_format_number(value, text):
    assert format_number(value) == text


def _visible_text(html: str) -> str:
    class Text(HTMLParser):
        def __init__(self):
            super().__init__()
            self.parts: list[str] = []

        def handle_data(self, data):
            self.parts.append(data)

    parser = Text()
    parser.feed(html)
    return re.sub(r"\s+", " ", "".join(parser.parts))


VOID = {"meta", "br", "img", "hr", "link", "input"}


def _check_balanced(html: str) -> None:
    class Balance(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack: list[str] = []

        def handle_starttag(self, tag, attrs):
            if tag not in VOID:
                self.stack.append(tag)

        def handle_endtag(self, tag):
            assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
            self.stack.pop()

    parser = Balance()
    parser.feed(html)
    parser.close()
    assert parser.stack == []
