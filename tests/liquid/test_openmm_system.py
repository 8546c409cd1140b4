"""The liquid box System is exact: its energy splits into N copies of the molecule's own
terms (ffparam's MMEngine), periodic LJ within the cutoff with OpenMM's switch and
dispersion correction (ffparam's LJModel, checked against OpenMM with charges zeroed) and
Ewald electrostatics (a textbook Ewald sum in numpy, checked against OpenMM's PME with
LJ zeroed)."""

from __future__ import annotations

import numpy as np
import openmm
import pytest
from openmm import unit

from ffparam.liquid.box import box_density, molar_mass, pack_box
from ffparam.liquid.lj import CutoffScheme, LJLayout, LJModel, box_frame_statistics
from ffparam.liquid.openmm_system import build_box_system, build_gas_system
from ffparam.liquid.settings import LiquidSettings
from ffparam.mm import MMEngine, build_openmm
from ffparam.units import KCAL_PER_KJ, NM_PER_ANGSTROM
from tests.liquid.ewald_reference import ewald_energy

N_MOLECULES = 30


def _energies(system: openmm.System, positions: np.ndarray, box: float) -> dict[int, float]:
    """Energy per force group, kcal/mol (Reference platform)."""
    context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("Reference"))
    edge = box * NM_PER_ANGSTROM
    context.setPeriodicBoxVectors(openmm.Vec3(edge, 0, 0), openmm.Vec3(0, edge, 0),
                                  openmm.Vec3(0, 0, edge))
    context.setPositions(positions * NM_PER_ANGSTROM)
    groups = {f.getForceGroup() for f in system.getForces()}
    out = {g: context.getState(getEnergy=True, groups={g}).getPotentialEnergy()
           .value_in_unit(unit.kilojoule_per_mole) * KCAL_PER_KJ for g in groups}
    out[-1] = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(
        unit.kilojoule_per_mole) * KCAL_PER_KJ
    return out


def _nonbonded_only(system: openmm.System, keep: str) -> openmm.System:
    """A copy whose NonbondedForce keeps only charges (``coulomb``) or only LJ (``lj``)."""
    copy = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(system))
    force = next(f for f in copy.getForces() if isinstance(f, openmm.NonbondedForce))
    for i in range(force.getNumParticles()):
        q, s, e = force.getParticleParameters(i)
        force.setParticleParameters(i, q if keep == "coulomb" else 0.0, s,
                                    e if keep == "lj" else 0.0)
    for k in range(force.getNumExceptions()):
        i, j, qq, s, e = force.getExceptionParameters(k)
        force.setExceptionParameters(k, i, j, qq if keep == "coulomb" else 0.0, s,
                                     e if keep == "lj" else 0.0)
    return copy


@pytest.fixture(scope="module")
def box(methyl_acetate_gasteiger):
    system = methyl_acetate_gasteiger
    settings = LiquidSettings(n_molecules=N_MOLECULES, cutoff_a=6.0, switch_a=5.0,
                              ewald_tolerance=1e-6)
    packed = pack_box(system.molecule, N_MOLECULES, 0.93, seed=11)
    omm = build_box_system(system, N_MOLECULES, packed.box_length_a, settings)
    return system, settings, packed, omm


def test_packed_box_density_and_whole_molecules(box):
    system, _, packed, _ = box
    n = system.n_atoms
    assert packed.positions.shape == (N_MOLECULES * n, 3)
    # the box edge reproduces the requested density: N M / (N_A L^3), M from RDKit masses
    density = box_density(molar_mass(system.molecule), N_MOLECULES, packed.box_length_a**3)
    assert density == pytest.approx(0.93, rel=1e-9)
    assert molar_mass(system.molecule) == pytest.approx(74.079, abs=0.01)  # C3H6O2
    # every copy is a rigid copy of the conformer (bond lengths kept)
    bonds = system.topology.bonds
    ref = np.linalg.norm(np.diff(system.molecule.conformers[0][bonds], axis=1), axis=-1)
    copies = packed.positions.reshape(N_MOLECULES, n, 3)
    lengths = np.linalg.norm(copies[:, bonds[:, 1]] - copies[:, bonds[:, 0]], axis=-1)
    assert np.allclose(lengths, ref[:, 0], atol=1e-4)


def test_bonded_terms_are_n_copies_of_the_molecule(box):
    system, _, packed, omm = box
    groups = build_openmm(system).group_names
    energies = _energies(omm, packed.positions, packed.box_length_a)
    per_molecule = MMEngine(system).term_energies(
        packed.positions.reshape(N_MOLECULES, system.n_atoms, 3))
    checked = 0
    for g, name in groups.items():
        if name == "Nonbonded":
            continue
        expected = float(per_molecule[name].sum())
        assert energies[g] == pytest.approx(expected, rel=1e-7, abs=1e-6), name
        checked += 1
    assert checked == 4  # bonds, angles, proper and improper torsions
    assert omm.getNumConstraints() == N_MOLECULES * 6  # six C-H bonds per molecule


def test_lennard_jones_matches_independent_periodic_sum(box):
    system, settings, packed, omm = box
    lj_only = _nonbonded_only(omm, "lj")
    nonbonded_group = next(g for g, n in build_openmm(system).group_names.items()
                           if n == "Nonbonded")
    openmm_lj = _energies(lj_only, packed.positions, packed.box_length_a)[nonbonded_group]
    layout = LJLayout.from_system(system)
    scheme = CutoffScheme(settings.cutoff_a, settings.switch_a, True)
    stats = box_frame_statistics(layout, packed.positions[None],
                                 np.full((1, 3), packed.box_length_a), scheme)
    ours = float(LJModel(layout, scheme).energies(stats, system.parameters.vector())[0])
    assert ours == pytest.approx(openmm_lj, rel=1e-8, abs=1e-6)
    # the dispersion correction is a real part of it (about -1 kcal/mol per molecule here)
    no_lrc = CutoffScheme(settings.cutoff_a, settings.switch_a, False)
    without = float(LJModel(layout, no_lrc).energies(stats, system.parameters.vector())[0])
    assert ours - without < -5.0


def test_electrostatics_match_textbook_ewald(box):
    system, _, packed, omm = box
    coulomb_only = _nonbonded_only(omm, "coulomb")
    nonbonded_group = next(g for g, n in build_openmm(system).group_names.items()
                           if n == "Nonbonded")
    openmm_coulomb = _energies(coulomb_only, packed.positions,
                               packed.box_length_a)[nonbonded_group]
    q = np.tile(system.charges(), N_MOLECULES)
    full = ewald_energy(packed.positions, q, packed.box_length_a, alpha=0.56, kmax=15)
    # intramolecular pairs: OpenMM excludes 1-2/1-3 and scales 1-4 by 1/1.2; remove the
    # plain Coulomb of those pairs from the full (no-exclusion) Ewald energy
    xyz = packed.positions.reshape(N_MOLECULES, system.n_atoms, 3)
    topo = system.topology
    charges = system.charges()
    scale14 = system.parameters.settings["coulomb_14_scale"]
    correction = 0.0
    for pairs, factor in ((topo.exclusions, 1.0), (topo.pairs_14, 1.0 - scale14)):
        r = np.linalg.norm(xyz[:, pairs[:, 1]] - xyz[:, pairs[:, 0]], axis=-1)
        correction += factor * np.sum(charges[pairs[:, 0]] * charges[pairs[:, 1]] / r)
    expected = full - 332.0637 * correction
    assert openmm_coulomb == pytest.approx(expected, abs=5e-4)  # PME tolerance 1e-6


def test_gas_phase_system_is_the_molecule(methyl_acetate_gasteiger):
    system = methyl_acetate_gasteiger
    omm = build_gas_system(system, LiquidSettings())
    xyz = system.molecule.conformers[0]
    context = openmm.Context(omm, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(xyz * NM_PER_ANGSTROM)
    energy = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(
        unit.kilojoule_per_mole) * KCAL_PER_KJ
    assert energy == pytest.approx(float(MMEngine(system).energy(xyz[None])[0]), abs=1e-5)
    assert omm.getNumConstraints() == 6


def test_box_smaller_than_twice_the_cutoff_is_refused(methyl_acetate_gasteiger):
    with pytest.raises(Exception, match="shorter than twice the cutoff"):
        build_box_system(methyl_acetate_gasteiger, 8, 11.0, LiquidSettings())
