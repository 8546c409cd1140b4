"""Gas-phase replica exchange (parallel tempering) and boxes packed from several conformers.

The physics check: 1,2-dichloroethane's Cl-C-C-Cl torsion crosses its barrier every few
ns at 298 K, so plain Langevin runs started trans and gauche disagree about the gauche
fraction for ns; tempered runs from the two starts must agree.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math

import numpy as np
import pytest

from ffparam.errors import InputError
from ffparam.liquid.box import conformer_counts, pack_box
from ffparam.liquid.conformers import dihedral_deg
from ffparam.liquid.job import LiquidJob, box_start_conformers, simulate_liquid
from ffparam.liquid.openmm_system import build_gas_system
from ffparam.liquid.prepare import prepare_system
from ffparam.liquid.settings import LiquidSettings
from ffparam.liquid.simulate import PhaseSpec, load_trajectory
from ffparam.liquid.statistics import mean_estimate
from ffparam.liquid.tempering import (
    exchange_probability,
    exchange_statistics,
    run_tempering,
    temperature_ladder,
)
from ffparam.units import GAS_CONSTANT_KCAL_MOL_K
from tests.liquid.conftest import tiny_settings

pytestmark = pytest.mark.xdist_group("tempering")


def set_dihedral(molecule, xyz: np.ndarray, target_deg: float) -> np.ndarray:
    """Rotate atom 2's side of ClCCCl about the C1-C2 bond to Cl-C-C-Cl = target."""
    bonds = molecule.bonds
    side = {2}
    frontier = [2]
    while frontier:
        a = frontier.pop()
        for i, j in bonds:
            for u, v in ((i, j), (j, i)):
                if u == a and v != 1 and v not in side:
                    side.add(v)
                    frontier.append(v)
    axis = xyz[2] - xyz[1]
    axis /= np.linalg.norm(axis)
    angle = math.radians(target_deg - float(dihedral_deg(xyz, (0, 1, 2, 3))))
    out = xyz.copy()
    for k in side - {2}:
        r = xyz[k] - xyz[2]
        out[k] = xyz[2] + (r * math.cos(angle) + np.cross(axis, r) * math.sin(angle)
                           + axis * (axis @ r) * (1 - math.cos(angle)))
    return out


@pytest.fixture(scope="module")
def dichloroethane():
    return prepare_system("ClCCCl", "sage", "gasteiger", name="dichloroethane")


def gas_spec(system, start_xyz, production_ps, settings):
    return PhaseSpec(build_gas_system(system, settings, system.parameters.vector()), start_xyz,
                     None, 298.15, None, 20.0, production_ps, 0.5, "dichloroethane gas")


def test_ladder_is_geometric_and_checked():
    ladder = temperature_ladder(300.0, 1200.0, 3)
    assert np.allclose(ladder, [300.0, 600.0, 1200.0])
    assert np.allclose(temperature_ladder(298.15, 600.0, 1), [298.15])
    with pytest.raises(InputError, match="must exceed"):
        temperature_ladder(300.0, 250.0, 4)
    with pytest.raises(InputError, match="gas_replicas"):
        LiquidSettings(gas_replicas=0)


@pytest.mark.parametrize("energies", [(1.0, 3.0), (3.0, 1.0), (-12.5, -2.0)])
def test_exchange_obeys_detailed_balance(energies):
    """pi(x at T_i, y at T_j) P(swap) = pi(y at T_i, x at T_j) P(reverse swap)."""
    t_i, t_j = 300.0, 450.0
    u_x, u_y = energies
    beta = [1.0 / (GAS_CONSTANT_KCAL_MOL_K * t) for t in (t_i, t_j)]
    forward = math.exp(-beta[0] * u_x - beta[1] * u_y) * exchange_probability(t_i, t_j, u_x, u_y)
    backward = math.exp(-beta[0] * u_y - beta[1] * u_x) * exchange_probability(t_i, t_j, u_y, u_x)
    assert forward == pytest.approx(backward, rel=1e-12)
    assert 0.0 < exchange_probability(t_i, t_j, u_x, u_y) <= 1.0


@pytest.mark.stochastic
def test_tempering_samples_both_conformers_from_either_start(dichloroethane, tmp_path, seed):
    """Tempered runs (6 replicas, 298-1000 K, 2 ns each) started trans and gauche agree
    on the gauche fraction (measured 0.50 with Gasteiger charges), every neighbour pair
    exchanges, and the saved frames are the T_0 ones.

    Statistics: each fraction's error is that of the mean of its 4000-frame indicator
    series with the series' own statistical inefficiency (4000 frames determine g well);
    the two runs are independent, so their difference is asked within 4 combined sigma
    (fails for 6e-5 of valid runs), and 0.3-0.7 is > 5 sigma from the measured 0.5. The
    acceptance of a neighbour pair is a rate over > 1500 attempts, known to +- 0.013."""
    settings = LiquidSettings(n_molecules=64, platform="Reference", checkpoint_interval_ps=500.0,
                              seed=seed)
    xyz = dichloroethane.molecule.conformers[0]
    ladder = temperature_ladder(298.15, 1000.0, 6)
    fractions, errors = [], []
    for name, start in (("trans", 180.0), ("gauche", 65.0)):
        begin = set_dihedral(dichloroethane.molecule, xyz, start)
        assert abs(abs(dihedral_deg(begin, (0, 1, 2, 3))) - start) < 1e-6
        run = run_tempering(tmp_path / name, gas_spec(dichloroethane, begin, 2000.0, settings),
                            settings, ladder)
        assert len(run) == 4000 and run.box_lengths is None
        phi = dihedral_deg(run.positions, (0, 1, 2, 3))
        gauche = (np.abs(phi) < 120.0).astype(float)
        estimate = mean_estimate(gauche)
        fractions.append(estimate.value)
        errors.append(estimate.error)
        stats = exchange_statistics(tmp_path / name)
        assert np.allclose(stats["temperatures_k"], ladder)
        assert min(stats["acceptance"]) > 0.3, stats["acceptance"]
        assert all(a > 1500 for a in stats["attempts"])
    assert 0.3 < fractions[0] < 0.7 and 0.3 < fractions[1] < 0.7, (fractions, errors)
    assert abs(fractions[0] - fractions[1]) < 4 * math.hypot(*errors), (fractions, errors)


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tempering_resumes_and_extends(dichloroethane, tmp_path):
    settings = LiquidSettings(n_molecules=64, platform="Reference", checkpoint_interval_ps=25.0)
    xyz = dichloroethane.molecule.conformers[0]
    ladder = temperature_ladder(298.15, 600.0, 3)
    short = run_tempering(tmp_path, gas_spec(dichloroethane, xyz, 50.0, settings), settings,
                          ladder)
    first = _digest(tmp_path / "frames_00000.npz")
    state = json.loads((tmp_path / "progress.json").read_text())
    assert len(short) == 100 and state["chunks"] == 2 and state["stage"] == "done"
    longer = run_tempering(tmp_path, gas_spec(dichloroethane, xyz, 100.0, settings), settings,
                           ladder)
    assert len(longer) == 200
    assert _digest(tmp_path / "frames_00000.npz") == first
    assert np.array_equal(longer.energies[:100], short.energies)
    assert np.all(np.diff(longer.steps) > 0)
    with pytest.raises(InputError, match="different simulation"):
        run_tempering(tmp_path, gas_spec(dichloroethane, xyz, 100.0, settings), settings,
                      temperature_ladder(298.15, 700.0, 3))


def test_box_is_packed_from_the_given_conformers(dichloroethane, tmp_path):
    mol = dichloroethane.molecule
    trans = set_dihedral(mol, mol.conformers[0], 180.0)
    gauche = set_dihedral(mol, mol.conformers[0], 65.0)
    assert conformer_counts(10, 3) == [4, 3, 3] and conformer_counts(2, 5) == [1, 1]
    packed = pack_box(mol, 10, 0.9, conformers=np.stack([trans, gauche]), workdir=tmp_path)
    per_molecule = packed.positions.reshape(10, mol.n_atoms, 3)
    angles = np.abs(dihedral_deg(per_molecule, (0, 1, 2, 3)))
    # packmol moves molecules rigidly: the first five are trans, the last five gauche
    assert np.allclose(angles[:5], 180.0, atol=1e-3) and np.allclose(angles[5:], 65.0, atol=1e-3)


def test_liquid_job_with_tempered_gas_and_conformer_box(methanol_am1bcc, tmp_path):
    """End to end on a tiny methanol box: the gas phase is tempered (3 replicas), the box
    is packed from 4 gas-phase frames, and the result is finite with error bars."""
    settings = tiny_settings(gas_replicas=3, gas_max_temperature_k=500.0, box_conformers=4,
                             gas_production_ps=40.0)
    job = LiquidJob("methanol", methanol_am1bcc, 298.15, 1.0, tmp_path, settings,
                    density_guess_g_ml=0.79)
    result = simulate_liquid(job)
    assert 0.6 < result.density.value < 1.0 and result.density.error > 0
    assert 6.0 < result.hvap.value < 11.0 and result.hvap.error > 0
    stats = exchange_statistics(tmp_path / "gas")
    assert len(stats["acceptance"]) == 2 and min(stats["attempts"]) > 0
    gas = load_trajectory(tmp_path / "gas", settings.gas_save_interval_ps)
    starts = box_start_conformers(gas, 4, settings.seed)
    assert starts.shape == (4, 6, 3)
    # each start is a gas frame from the second half of the run
    index = [int(np.flatnonzero(np.all(np.isclose(gas.positions, s), axis=(1, 2)))[0])
             for s in starts]
    assert min(index) >= len(gas) // 2 and len(set(index)) == 4
    again = simulate_liquid(dataclasses.replace(job))
    assert again.hvap.value == result.hvap.value
