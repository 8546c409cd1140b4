"""Ethanol with Sage, MMFF94, GFN2-xTB and a Gaussian process trained on DFT ethanol frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ffparam.chem import Molecule

ML_DATA = Path(__file__).resolve().parents[1] / "data" / "ml"


@pytest.fixture(scope="session")
def ethanol() -> Molecule:
    molecule = Molecule.from_smiles("CCO", name="ethanol")
    return molecule.generate_conformers(3, seed=5, rms_threshold=0.0)


@pytest.fixture(scope="session")
def displaced(ethanol) -> np.ndarray:
    """(3, 9, 3) Angstrom: the conformers displaced randomly so no term sits at a minimum."""
    rng = np.random.default_rng(11)
    return ethanol.conformers + rng.normal(0.0, 0.05, ethanol.conformers.shape)


@pytest.fixture(scope="session")
def sage(ethanol):
    from ffparam.assign import assign_parameters

    return assign_parameters(ethanol, "sage", charges="am1bcc")


@pytest.fixture(scope="session")
def tiny_gp():
    """An exact GP trained here on 8 DFT ethanol frames (eV; well under a second)."""
    from ffparam.ml.data import read_extxyz, read_isolated_atoms
    from ffparam.ml.models.gp import GPSettings, fit_gp

    data = read_extxyz(ML_DATA / "ethanol_60.xyz")
    refs = read_isolated_atoms(ML_DATA / "ethanol_isolated_atoms.xyz")
    cfg = GPSettings(length_scale=1.6, energy_noise=1e-3, force_noise=1e-3)
    return fit_gp(data.subset(np.arange(0, 40, 5)), refs, config=cfg)


def finite_difference_forces(model, xyz: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """-dE/dx (n_atoms, 3) kcal/mol/Angstrom by central differences of ``model`` energies,
    all 6 n displaced geometries in one ``evaluate(..., forces=False)`` call."""
    n = xyz.size
    shifts = np.eye(n).reshape(n, *xyz.shape) * step
    batch = np.concatenate([xyz + shifts, xyz - shifts])
    energy = model.evaluate(batch, forces=False).energy_kcal_mol
    assert model.evaluate(batch, forces=False).forces_kcal_mol_a is None
    return (-(energy[:n] - energy[n:]) / (2.0 * step)).reshape(xyz.shape)
