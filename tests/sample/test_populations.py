"""Rotamer populations: torsion states from sampled angles, Boltzmann weights of
conformer energies, MC populations of a force field, and their table in report.html."""

from __future__ import annotations

import numpy as np
import pytest

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.report.html import write_report
from ffparam.sample import MCSettings
from ffparam.sample.populations import (
    boltzmann_by_label,
    conformer_populations,
    rotamer_labels,
    torsion_peaks,
)
from ffparam.units import BOLTZMANN_KCAL_MOL_K


def clusters(centres_deg, n: int, spread_deg: float, rng) -> np.ndarray:
    return np.concatenate([c + rng.normal(0.0, spread_deg, n) for c in centres_deg])


def test_torsion_peaks_find_the_wells() -> None:
    """sp3 (60/180/300), amide-like (0/180) and one-well angles; 15 degree spread."""
    rng = np.random.default_rng(0)
    for centres in ((60.0, 180.0, 300.0), (0.0, 180.0), (100.0,)):
        peaks = torsion_peaks(clusters(centres, 3000, 15.0, rng))
        assert len(peaks) == len(centres)
        for c in centres:
            assert np.min(np.abs((peaks - c + 180.0) % 360.0 - 180.0)) <= 10.0
    rare = np.concatenate([clusters((180.0,), 5000, 15.0, rng), [60.0] * 20])
    assert len(torsion_peaks(rare)) == 1  # 0.4 % is below min_fraction


def test_labels_and_boltzmann_weights() -> None:
    peaks = [np.array([60.0, 180.0, 300.0]), np.array([0.0, 180.0])]
    labels = rotamer_labels(np.array([[170.0, 350.0], [65.0, 200.0], [-50.0, 10.0]]), peaks)
    assert labels.tolist() == ["180/0", "60/180", "300/0"]
    kt = BOLTZMANN_KCAL_MOL_K * 300.0
    weights = boltzmann_by_label(np.array(["a", "b", "a"]), np.array([0.0, 1.0, 5.0]), 300.0)
    assert weights["b"] == pytest.approx(np.exp(-1.0 / kt) / (1.0 + np.exp(-1.0 / kt)))
    assert sum(weights.values()) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def butane():
    molecule = Molecule.from_smiles("CCCC", name="butane").generate_conformers(1, seed=3)
    return molecule, assign_parameters(molecule, "sage", "gasteiger")


@pytest.mark.stochastic
def test_butane_populations_mirror_symmetric_and_rendered(butane, tmp_path, seed) -> None:
    """g+ and g- of butane are mirror images: their MC populations agree within 5
    combined standard errors (independent chains); the table lands in report.html."""
    molecule, system = butane
    settings = MCSettings(n_chains=64, n_steps=600, equilibration_steps=200, seed=seed)
    reference = (np.array([molecule.conformers[0]]), np.array([0.0]))
    pops = conformer_populations({"start": system, "bespoke": system},
                                 molecule.conformers[0], settings, reference, "gfn2-xtb")
    table = pops.mc["start"]
    assert len(pops.peaks_deg) == 1 and len(pops.peaks_deg[0]) == 3
    assert sum(f for f, _ in table.values()) == pytest.approx(1.0)
    peaks = pops.peaks_deg[0]
    trans = str(round(peaks[np.argmin(np.abs(peaks - 180.0))]))
    gauche = [label for label in table if label != trans]
    assert len(gauche) == 2
    (f1, e1), (f2, e2) = (table[g] for g in gauche)
    assert abs(f1 - f2) < 5 * np.hypot(e1, e2)
    assert sum(pops.reference.values()) == pytest.approx(1.0)
    data = pops.to_json()
    assert data["sources"] == ["start", "bespoke"] and data["has_reference"]
    html = write_report(tmp_path / "r.html", {"validation": {"populations": data}}).read_text()
    assert "Conformer populations at 300 K" in html and "MC bespoke" in html
    assert "gfn2-xtb" in html and "MC acceptance" in html


def test_no_rotatable_bond_is_one_rotamer(tmp_path) -> None:
    molecule = Molecule.from_smiles("CC", name="ethane").generate_conformers(1, seed=3)
    pops = conformer_populations({"start": assign_parameters(molecule, "sage", "gasteiger")},
                                 molecule.conformers[0])
    assert pops.labels == [] and "no rotatable bond" in pops.notes[0]
    html = write_report(tmp_path / "r.html",
                        {"validation": {"populations": pops.to_json()}}).read_text()
    assert "no rotatable bond" in html
