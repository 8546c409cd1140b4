"""Shared fixtures of the liquid tests: small Sage molecules and tiny-box settings."""

from __future__ import annotations

import pytest

from ffparam.liquid.prepare import prepare_system
from ffparam.liquid.settings import LiquidSettings


@pytest.fixture(scope="session")
def methanol_am1bcc():
    """Methanol, Sage 2.2.1, AM1-BCC charges (sqm), one MMFF conformer."""
    return prepare_system("CO", "sage", "am1bcc", name="methanol")


@pytest.fixture(scope="session")
def methyl_acetate_gasteiger():
    """Methyl acetate (bonds, angles, propers, an improper), Gasteiger charges."""
    return prepare_system("COC(C)=O", "sage", "gasteiger", name="methyl_acetate")


def tiny_settings(**changes) -> LiquidSettings:
    """40-molecule boxes, 6 A cutoff (switch 5 A), short runs; 1 OpenMM thread; a plain
    (untempered) gas run and a box of copies of one conformer unless asked."""
    base = {"n_molecules": 40, "cutoff_a": 6.0, "switch_a": 5.0, "equilibration_ps": 4.0,
            "production_ps": 20.0, "save_interval_ps": 0.2, "checkpoint_interval_ps": 5.0,
            "gas_equilibration_ps": 2.0, "gas_production_ps": 200.0,
            "gas_save_interval_ps": 0.2, "threads": 1, "gas_replicas": 1,
            "box_conformers": 0}
    base.update(changes)
    return LiquidSettings(**base)
