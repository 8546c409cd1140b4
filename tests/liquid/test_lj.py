"""LJ energies of saved frames and their exact parameter derivatives: checked against
OpenMM energies (with and without switch / dispersion correction) and against central
finite differences of OpenMM box energies rebuilt at shifted parameters."""

from __future__ import annotations

import numpy as np
import openmm
import pytest
from openmm import unit

from ffparam.liquid.box import pack_box
from ffparam.liquid.job import lj_keys
from ffparam.liquid.lj import (
    CutoffScheme,
    LJLayout,
    LJModel,
    box_frame_statistics,
    gas_frame_statistics,
)
from ffparam.liquid.openmm_system import build_box_system
from ffparam.liquid.settings import LiquidSettings
from ffparam.mm import MMEngine
from ffparam.units import KCAL_PER_KJ, NM_PER_ANGSTROM

N = 24


def _box_energy(omm: openmm.System, positions: np.ndarray, edge: float) -> float:
    context = openmm.Context(omm, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("Reference"))
    e = edge * NM_PER_ANGSTROM
    context.setPeriodicBoxVectors(openmm.Vec3(e, 0, 0), openmm.Vec3(0, e, 0),
                                  openmm.Vec3(0, 0, e))
    context.setPositions(positions * NM_PER_ANGSTROM)
    return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(
        unit.kilojoule_per_mole) * KCAL_PER_KJ


@pytest.fixture(scope="module")
def frame(methanol_am1bcc):
    packed = pack_box(methanol_am1bcc.molecule, N, 0.75, seed=5)
    return methanol_am1bcc, packed


@pytest.mark.parametrize("switch, lrc", [(None, False), (None, True), (4.5, False),
                                         (4.5, True)])
def test_energy_differences_match_openmm(frame, switch, lrc):
    """U_LJ(theta') - U_LJ(theta) from the frame sums equals the OpenMM box energy
    difference (charges, bonded terms and PME cancel) for a 5% change of every sigma and
    epsilon, with every cutoff treatment."""
    system, packed = frame
    settings = LiquidSettings(n_molecules=N, cutoff_a=5.5, switch_a=switch,
                              dispersion_correction=lrc)
    layout = LJLayout.from_system(system)
    scheme = CutoffScheme(5.5, switch, lrc)
    stats = box_frame_statistics(layout, packed.positions[None],
                                 np.full((1, 3), packed.box_length_a), scheme)
    model = LJModel(layout, scheme)
    values = system.parameters.vector()
    moved = values.copy()
    for key in lj_keys(system):
        moved[system.parameters.index(key)] *= 1.05
    ours = float(model.energies(stats, moved)[0] - model.energies(stats, values)[0])
    e0 = _box_energy(build_box_system(system, N, packed.box_length_a, settings, values),
                     packed.positions, packed.box_length_a)
    e1 = _box_energy(build_box_system(system, N, packed.box_length_a, settings, moved),
                     packed.positions, packed.box_length_a)
    assert ours == pytest.approx(e1 - e0, rel=1e-6, abs=1e-6)
    assert abs(ours) > 1.0


def test_parameter_derivatives_match_openmm_finite_differences(frame):
    system, packed = frame
    settings = LiquidSettings(n_molecules=N, cutoff_a=5.5, switch_a=4.5)
    layout = LJLayout.from_system(system)
    scheme = CutoffScheme(5.5, 4.5, True)
    stats = box_frame_statistics(layout, packed.positions[None],
                                 np.full((1, 3), packed.box_length_a), scheme)
    keys = lj_keys(system)
    values = system.parameters.vector()
    analytic = LJModel(layout, scheme).gradients(stats, values, keys)[0]
    for col, key in enumerate(keys):
        i = system.parameters.index(key)
        h = 1e-4 * values[i] if key.field == "sigma" else 1e-3 * values[i]
        energies = []
        for sign in (1, -1):
            v = values.copy()
            v[i] += sign * h
            omm = build_box_system(system, N, packed.box_length_a, settings, v)
            energies.append(_box_energy(omm, packed.positions, packed.box_length_a))
        numeric = (energies[0] - energies[1]) / (2 * h)
        assert analytic[col] == pytest.approx(numeric, rel=2e-4, abs=2e-3 * max(
            1.0, abs(numeric))), str(key)


def test_gas_frames_match_the_molecules_vdw_term(methanol_am1bcc):
    system = methanol_am1bcc
    rng = np.random.default_rng(3)
    xyz = system.molecule.conformers[0] + rng.normal(scale=0.05, size=(5, system.n_atoms, 3))
    layout = LJLayout.from_system(system)
    stats = gas_frame_statistics(layout, xyz)
    ours = LJModel(layout, CutoffScheme(9.0, 8.0, True)).energies(
        stats, system.parameters.vector()).numpy()
    reference = MMEngine(system).term_energies(xyz)["vdW"].detach().numpy()
    assert np.allclose(ours, reference, atol=1e-10)
    assert np.all(stats.inverse_volume == 0)  # no dispersion correction for one molecule
