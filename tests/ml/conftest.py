"""Fixtures for the ML tests: slices of real DFT data copied into tests/data/ml."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "ml"
ETHANOL = DATA / "ethanol_60.xyz"
ETHANOL_ATOMS = DATA / "ethanol_isolated_atoms.xyz"
BPA = DATA / "3bpa_3.xyz"


@pytest.fixture(scope="session")
def ethanol():
    from ffparam.ml.data import read_extxyz

    return read_extxyz(ETHANOL)


@pytest.fixture(scope="session")
def ethanol_refs():
    from ffparam.ml.data import read_isolated_atoms

    return read_isolated_atoms(ETHANOL_ATOMS)


@pytest.fixture(scope="session")
def bpa():
    from ffparam.ml.data import read_extxyz

    return read_extxyz(BPA)


@pytest.fixture(scope="session")
def tiny_gp(ethanol, ethanol_refs):
    """An exact GP on 8 ethanol frames (fits in well under a second)."""
    import numpy as np

    from ffparam.ml.models.gp import GPSettings, fit_gp

    cfg = GPSettings(length_scale=1.6, energy_noise=1e-3, force_noise=1e-3)
    return fit_gp(ethanol.subset(np.arange(0, 40, 5)), ethanol_refs, config=cfg)


@pytest.fixture(scope="session")
def tiny_committee(ethanol, ethanol_refs, tmp_path_factory):
    """Two tiny ANI networks trained for a few epochs, as a committee."""
    import numpy as np

    from ffparam.ml.committee import train_committee
    from ffparam.ml.registry import TrainingJob

    out = tmp_path_factory.mktemp("committee")
    options = {"hidden": [16, 16], "max_epochs": 4, "batch_size": 10, "learning_rate": 3e-3,
               "dtype": "float64"}
    return train_committee(TrainingJob(
        "ani",
        ethanol.subset(np.arange(0, 30)),
        ethanol.subset(np.arange(30, 40)),
        out,
        ethanol_refs,
        options=options,
        committee=2,
    ))
