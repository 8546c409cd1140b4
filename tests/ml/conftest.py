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
