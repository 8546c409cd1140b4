"""Shared fixtures: small real molecules with reproducible 3-D geometries."""

from __future__ import annotations

import os

import pytest

from ffparam.chem import Molecule

os.environ.setdefault("OMP_NUM_THREADS", "1")


def embedded(smiles: str, name: str, n: int = 1) -> Molecule:
    molecule = Molecule.from_smiles(smiles, name=name)
    return molecule.generate_conformers(n_conformers=n, seed=7)


@pytest.fixture(scope="session")
def water() -> Molecule:
    return embedded("O", "water")


@pytest.fixture(scope="session")
def ethanol() -> Molecule:
    return embedded("CCO", "ethanol")


@pytest.fixture(scope="session")
def ethane() -> Molecule:
    return embedded("CC", "ethane")


@pytest.fixture(scope="session")
def methanol() -> Molecule:
    return embedded("CO", "methanol")
