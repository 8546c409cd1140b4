"""ASE calculator and MD: numerical forces, velocity-Verlet energy conservation, safety stops."""

from __future__ import annotations

import numpy as np
import pytest
from ase.calculators.fd import calculate_numerical_forces
from ase.io import read

from ffparam.energy.ase import EnergyModelCalculator
from ffparam.errors import InputError
from ffparam.ml.energy_model import PotentialEnergyModel
from ffparam.ml.md import run_md


@pytest.mark.parametrize("which", ["tiny_gp", "tiny_committee"])
def test_calculator_forces_match_ase_numerical_forces(which, ethanol, request):
    potential = request.getfixturevalue(which)
    atoms = ethanol.to_atoms()[45]
    atoms.calc = EnergyModelCalculator(PotentialEnergyModel(potential, atoms.numbers))
    forces = atoms.get_forces()
    numeric = calculate_numerical_forces(atoms, eps=1e-4, iatoms=[0, 3, 8])
    np.testing.assert_allclose(forces[[0, 3, 8]], numeric, atol=1e-5)
    per_atom = atoms.get_potential_energies()
    assert per_atom.sum() == pytest.approx(atoms.get_potential_energy(), abs=1e-6)
    assert atoms.get_potential_energy() == pytest.approx(
        potential.predict(ethanol.subset([45])).energy[0], abs=1e-9
    )


@pytest.mark.stochastic
def test_velocity_verlet_conserves_energy_with_second_order_error(tiny_gp, ethanol, seed):
    # both runs start from the same seeded velocities, so they follow the same trajectory
    # and only the integration error differs: ~dt^2 for any start. The absolute bound is
    # ~10 x the measured spread; a start 10 x hotter than 300 K (chi^2 with 27 degrees of
    # freedom) has probability < 1e-30
    atoms = ethanol.to_atoms()[0]
    spread = {}
    for dt in (0.4, 0.2):
        steps = round(20 / dt)  # 20 fs either way
        result = run_md(
            tiny_gp,
            atoms,
            steps,
            temperature_k=300,
            timestep_fs=dt,
            ensemble="nve",
            seed=seed,
            max_force_sigma=None,
        )
        assert not result.stopped and result.steps_done == steps
        total = result.total_energy
        spread[dt] = total.max() - total.min()
        assert result.drift_ok is not None
    # velocity Verlet: energy error ~ dt^2, so halving dt divides the spread by about 4
    assert 2.5 < spread[0.4] / spread[0.2] < 6.0
    assert spread[0.2] < 2e-3  # eV, for a 9-atom molecule at 300 K


@pytest.mark.stochastic
def test_langevin_writes_trajectory(tiny_gp, ethanol, tmp_path, seed):
    traj = tmp_path / "traj.xyz"
    result = run_md(
        tiny_gp,
        ethanol.to_atoms()[0],
        20,
        temperature_k=300,
        timestep_fs=0.5,
        trajectory=traj,
        interval=5,
        max_force_sigma=None,
        seed=seed,
    )
    assert not result.stopped
    frames = read(str(traj), index=":")
    assert len(frames) == 5  # steps 0, 5, 10, 15, 20
    assert np.all(np.isfinite(frames[-1].positions))


def test_stop_on_exploding_forces(tiny_gp, ethanol):
    result = run_md(tiny_gp, ethanol.to_atoms()[0], 10, max_force=0.05)
    assert result.stopped and "forces exploded at step 0" in result.reason


def test_stop_on_committee_disagreement(tiny_committee, ethanol):
    result = run_md(tiny_committee, ethanol.to_atoms()[0], 10, max_force_sigma=1e-6)
    assert result.stopped and "uncertainty too high" in result.reason
    assert result.max_force_sigma > 1e-6


def test_md_bad_input(tiny_gp, ethanol):
    with pytest.raises(InputError, match="unknown ensemble"):
        run_md(tiny_gp, ethanol.to_atoms()[0], 10, ensemble="npt")
