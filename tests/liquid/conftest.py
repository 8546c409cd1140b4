"""Shared fixtures of the liquid tests: small Sage molecules and tiny-box settings."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from ffparam.liquid.box import box_density
from ffparam.liquid.prepare import prepare_system
from ffparam.liquid.properties import LiquidResult, production_start
from ffparam.liquid.settings import LiquidSettings
from ffparam.liquid.simulate import load_trajectory
from ffparam.liquid.statistics import inefficiency


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


def conservative_errors(directory: Path, settings: LiquidSettings, result: LiquidResult,
                        mass: float) -> tuple[float, float]:
    """Standard errors (density g/mL, Hvap kcal/mol) of one run's own averages, with a
    statistical inefficiency that a short run cannot underestimate.

    The run's own errors use g of the frames kept after equilibration detection; the
    detector keeps the start that maximizes n/g, so on 24 ps of a 24-molecule box it keeps
    ~30 frames whose g often comes out 1.0 while the density decorrelates in ~3 ps (g ~ 15
    at 0.2 ps a frame): errors 3-4 x too small. Here g is the larger of the kept frames'
    and the whole production series' (more lags; the equilibration drift only makes it
    larger), applied to the kept frames' standard deviation and count."""
    liquid = load_trajectory(directory / "liquid", settings.save_interval_ps)
    gas = load_trajectory(directory / "gas", settings.gas_save_interval_ps)
    density = box_density(mass, settings.n_molecules, liquid.volumes)
    t0 = production_start(liquid.energies, density)
    assert len(liquid.energies) - t0 == result.density.n_samples

    def error(full: np.ndarray, kept: np.ndarray) -> float:
        g = max(inefficiency(full), inefficiency(kept))
        return float(np.std(kept, ddof=1) * math.sqrt(g / len(kept)))

    density_error = error(density, density[t0:])
    liquid_error = error(liquid.energies, liquid.energies[t0:]) / settings.n_molecules
    hvap_error = math.hypot(liquid_error, error(gas.energies, gas.energies))
    return density_error, hvap_error
