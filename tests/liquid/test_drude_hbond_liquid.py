"""The H-bond Thole screening (``hbond_thole``) in a Drude liquid box: one box-wide
CustomNonbondedForce with the NonbondedForce's exclusions (the CPU platform accepts the
System), whose energy equals a minimum-image sum of the engine's formula over the
intermolecular (Drude site, donor H) pairs, and the gas System equals the engine."""

from __future__ import annotations

import numpy as np
import openmm
import pytest
from openmm import unit

from ffparam.liquid.box import pack_box
from ffparam.liquid.drude import (
    drude_box_system,
    override_parameters,
    polarizable_system,
    with_drude_particles,
)
from ffparam.liquid.prepare import prepare_system
from ffparam.liquid.settings import LiquidSettings
from ffparam.mm.drude import build_openmm_drude
from ffparam.params.drude import add_drude, with_hbond_thole
from ffparam.params.parameter_set import ParameterSet
from ffparam.units import COULOMB_CONSTANT_KCAL_MOL_A_E2, KCAL_PER_KJ, NM_PER_ANGSTROM
from tests.liquid.test_drude_liquid import gas_energies
from tests.liquid.test_openmm_system import _energies

N_MOLECULES = 40
HBOND_THOLE = 0.8


@pytest.fixture(scope="module")
def methanol():
    system = add_drude(prepare_system("CO", "sage", "gasteiger", name="methanol"))
    return with_hbond_thole(system, {"O3": HBOND_THOLE})


def _reference(system, positions: np.ndarray, box_a: float, cutoff_a: float) -> float:
    """sum over molecules m != m' of -C q_D q_H [f(r_DH) - f(r_cH)], minimum image,
    pairs beyond the cutoff left out, f(r) = (1 + u/2) exp(-u)/r, u = a r / alpha^(1/3)."""
    drude, p = system.drude, system.parameters.vector()
    n, per = system.n_atoms, system.n_atoms + len(drude)
    xyz = positions.reshape(N_MOLECULES, per, 3)
    q_d, alpha = drude.charges(p), drude.alphas(p)
    q = p[system.nonbonded.charge_index]
    total = 0.0
    for k in np.flatnonzero(drude.hbond_index >= 0).tolist():
        width = p[drude.hbond_index[k]] / alpha[k] ** (1 / 3)
        for site, sign in ((n + k, 1.0), (int(drude.parents[k]), -1.0)):
            for h in drude.donors.tolist():
                delta = xyz[:, None, site] - xyz[None, :, h]
                delta -= box_a * np.round(delta / box_a)
                r = np.linalg.norm(delta, axis=-1)
                np.fill_diagonal(r, 1e6)  # no self pairs (beyond the cutoff)
                u = width * r
                f = np.where(r < cutoff_a, (1 + u / 2) * np.exp(-u) / r, 0.0)
                total -= sign * COULOMB_CONSTANT_KCAL_MOL_A_E2 * q_d[k] * q[h] * f.sum()
    return total


def test_box_hbond_force_equals_the_minimum_image_sum(methanol):
    settings = LiquidSettings(n_molecules=N_MOLECULES, cutoff_a=6.0, switch_a=5.0)
    packed = pack_box(methanol.molecule, N_MOLECULES, 0.79, seed=4)
    omm = drude_box_system(methanol, N_MOLECULES, packed.box_length_a, settings)
    positions = with_drude_particles(methanol, packed.positions, 0.1, seed=3)
    group = next(g for g, name in build_openmm_drude(methanol).group_names.items()
                 if name == "HBondThole")
    energies = _energies(omm, positions, packed.box_length_a)
    expected = _reference(methanol, positions, packed.box_length_a, settings.cutoff_a)
    assert abs(expected) > 1e-3
    assert energies[group] == pytest.approx(expected, rel=1e-6)
    # the CPU platform wants the same exclusions on every nonbonded force
    context = openmm.Context(omm, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("CPU"), {"Threads": "1"})
    edge = packed.box_length_a * NM_PER_ANGSTROM
    context.setPeriodicBoxVectors(openmm.Vec3(edge, 0, 0), openmm.Vec3(0, edge, 0),
                                  openmm.Vec3(0, 0, edge))
    context.setPositions(positions * NM_PER_ANGSTROM)
    cpu = context.getState(getEnergy=True, groups={group}).getPotentialEnergy()
    assert cpu.value_in_unit(unit.kilojoule_per_mole) * KCAL_PER_KJ == pytest.approx(
        expected, rel=1e-4)


def test_gas_system_with_hbond_thole_equals_the_engine(methanol):
    omm_energy, engine_energy = gas_energies(methanol)
    assert omm_energy == pytest.approx(engine_energy, abs=1e-6)


def test_hbond_thole_travels_through_a_drude_parameter_file(methanol, tmp_path):
    """The CLI path (``liquid run --polarizable --drude-params FILE``): the saved
    parameters rebuild the screened model, charges and all."""
    methanol.parameters.save(tmp_path / "drude.yaml")
    loaded = ParameterSet.load(tmp_path / "drude.yaml")
    plain = prepare_system("CO", "sage", "gasteiger", name="methanol")
    rebuilt = polarizable_system(override_parameters(plain, loaded), loaded)
    assert rebuilt.parameters.keys() == methanol.parameters.keys()
    np.testing.assert_allclose(rebuilt.parameters.vector(), methanol.parameters.vector())
    np.testing.assert_array_equal(rebuilt.drude.hbond_pairs, methanol.drude.hbond_pairs)
    assert (rebuilt.drude.hbond_index >= 0).sum() == 1  # the O type
