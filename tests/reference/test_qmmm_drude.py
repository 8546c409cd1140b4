"""QM/MM in a Drude (polarizable) environment: self-consistency, stationarity in the
Drudes, forces against finite differences, the alpha -> 0 limit, the Store, bad input.

System: a QM water (HF/STO-3G) among three MM waters (Sage + TIP3P charges, a Drude on
each oxygen, starting alpha 1.5 A^3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rdkit import Chem
from tests.reference.test_qmmm import METHOD, TIP3P

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.errors import CalculationError, InputError
from ffparam.mm.drude import DrudeEngine
from ffparam.params import Parameter, ParameterSet
from ffparam.params.drude import DRUDE_SECTION, add_drude
from ffparam.reference import Store
from ffparam.reference.qmmm import Environment, embedded_calculator, qmmm_species
from ffparam.reference.qmmm_drude import (
    DrudeEnvironment,
    DrudeQMMMSettings,
    compute_qmmm_drude,
    drude_qmmm_job,
    self_consistent_qmmm,
)
from ffparam.reference.records import Species

OFFSETS = np.array([[2.9, 0.3, 0.1], [-1.2, 2.7, 0.4], [0.4, -2.4, 1.6]])
TIGHT = DrudeQMMMSettings(energy_tolerance_kcal_mol=1e-9)


@pytest.fixture(scope="module")
def cluster(water):
    """(QM species, QM geometry, MM waters as one fixed-charge system, MM positions)."""
    x0 = water.conformers[0]
    waters = Molecule.from_smiles("O.O.O", name="waters")
    positions, charges = np.zeros((9, 3)), np.zeros(9)
    for fragment, offset in zip(Chem.GetMolFrags(waters.rdmol), OFFSETS):
        positions[list(fragment)] = x0 + offset  # each fragment is O, H, H like x0
        charges[list(fragment)] = TIP3P
    mm = assign_parameters(waters.with_conformers(positions[None]), "sage", charges=charges)
    return Species.from_molecule(water), x0, mm, positions


def drude_environment(mm, positions, alpha=None, settings=TIGHT) -> DrudeEnvironment:
    source = None
    if alpha is not None:
        source = ParameterSet()
        source.add(DRUDE_SECTION, Parameter("O3", {"alpha": alpha, "thole": 1.3}))
    return DrudeEnvironment(add_drude(mm, source=source), positions, settings)


@pytest.fixture(scope="module")
def converged(cluster):
    species, x0, mm, positions = cluster
    environment = drude_environment(mm, positions)
    return environment, self_consistent_qmmm(species, x0, environment, METHOD)


def total_energy(species, geometry, environment, displacements) -> float:
    """E_QM/MM(sites at d) + E_MM(d) - E_MM(0), built independently of the module."""
    calc = embedded_calculator(METHOD, species, environment.sites(displacements))
    qmmm = calc.compute(geometry).energy
    engine = DrudeEngine(environment.system)
    pos = torch.as_tensor(environment.positions[None])
    p = engine.parameter_vector().detach()

    def mm(d):
        terms = engine.polarization_terms(pos, torch.as_tensor(d[None]), p)
        return float(sum(terms.values())[0])

    return qmmm + mm(displacements) - mm(np.zeros_like(displacements))


def test_converges_to_a_stationary_point_in_the_drudes(cluster, converged):
    """The energy changes fall below the tolerance within a few iterations, the Drudes
    moved, and the converged energy is stationary in every Drude displacement (central
    differences, 1e-4 A) while the QM/MM part alone is not."""
    species, x0, _, _ = cluster
    environment, result = converged
    assert 3 <= result.iterations < TIGHT.max_iterations
    assert abs(result.energies[-1] - result.energies[-2]) < TIGHT.energy_tolerance_kcal_mol
    assert np.abs(result.displacements).max() > 1e-3
    assert result.residual_kcal_mol_a < 1e-3
    assert result.energy == pytest.approx(total_energy(species, x0, environment,
                                                       result.displacements), abs=1e-7)
    assert result.polarization_energy != 0.0
    h = 1e-4
    for n, k in ((0, 0), (1, 1), (2, 2)):
        plus, minus = result.displacements.copy(), result.displacements.copy()
        plus[n, k] += h
        minus[n, k] -= h
        slope = (total_energy(species, x0, environment, plus)
                 - total_energy(species, x0, environment, minus)) / (2 * h)
        assert abs(slope) < 2e-3, (n, k, slope)
    sites = environment.sites(result.displacements)
    qmmm_only = embedded_calculator(METHOD, species, sites).compute(x0, gradient=True)
    assert np.abs(qmmm_only.mm_gradient[9:]).max() > 1.0  # the QM field does pull


@pytest.mark.parametrize("where,index", [("mm", (0, 0)), ("mm", (7, 1)), ("qm", (2, 0))])
def test_forces_match_finite_differences(cluster, converged, where, index):
    """dE/dx of the converged energy on MM oxygens (Drude parents), MM hydrogens and QM
    atoms against central differences of self-consistent energies (step 2.5e-4 A: the
    O-H stretch's third derivative makes the O(h^2) error 5e-4 kcal/mol/A at 1e-3 A)."""
    species, x0, _, positions = cluster
    environment, result = converged
    h = 2.5e-4
    energies = []
    for sign in (1.0, -1.0):
        qm, mm = x0.copy(), positions.copy()
        (mm if where == "mm" else qm)[index] += sign * h
        shifted = DrudeEnvironment(environment.system, mm, TIGHT)
        energies.append(self_consistent_qmmm(species, qm, shifted, METHOD).energy)
    numeric = (energies[0] - energies[1]) / (2 * h)
    analytic = (result.mm_gradient if where == "mm" else result.gradient)[index]
    assert analytic == pytest.approx(numeric, abs=1e-4), (where, index, numeric)


def test_vanishing_polarizability_gives_fixed_charge_qmmm(cluster):
    """alpha -> 0 (1e-9 A^3): energy and forces of fixed-charge QM/MM with TIP3P charges."""
    species, x0, mm, positions = cluster
    environment = drude_environment(mm, positions, alpha=1e-9)
    result = self_consistent_qmmm(species, x0, environment, METHOD)
    fixed = embedded_calculator(METHOD, species, Environment(mm.charges(), positions)
                                ).compute(x0, gradient=True)
    assert result.energy == pytest.approx(fixed.energy, abs=1e-5)
    assert abs(result.polarization_energy) < 1e-5
    # gradients: first order in the SCF density error (conv_tol 1e-11 Hartree)
    assert np.abs(result.gradient - fixed.gradient).max() < 5e-4
    assert np.abs(result.mm_gradient - fixed.mm_gradient).max() < 5e-4
    polarizable = drude_environment(mm, positions)
    assert self_consistent_qmmm(species, x0, polarizable, METHOD).energy < fixed.energy - 0.1


def test_stored_with_the_drude_environment_in_the_key(cluster, converged, tmp_path):
    """A record holds the converged energy, forces and details; a rerun reads it back;
    another alpha or another core position is another calculation."""
    species, x0, mm, positions = cluster
    environment, result = converged
    with Store(tmp_path / "store.sqlite") as store:
        (record,), summary = compute_qmmm_drude([(species, x0, environment)], METHOD, store)
        assert summary.n_computed == 1 and record.ok
        assert record.species.key == qmmm_species(species).key
        assert record.energy == pytest.approx(result.energy, abs=1e-6)
        assert np.abs(record.mm_gradient - result.mm_gradient).max() < 1e-5
        np.testing.assert_allclose(record.mm_charges[:3], TIP3P[0])  # the oxygens first
        np.testing.assert_allclose(record.mm_charges[3:], TIP3P[1])
        details = record.provenance["details"]["drude"]
        assert details["iterations"] == result.iterations
        assert details["alpha_a3"] == pytest.approx([1.5, 1.5, 1.5])
        assert np.array(details["drude_positions_a"]).shape == (3, 3)
        again, summary = compute_qmmm_drude([(species, x0, environment)], METHOD, store)
        assert summary.n_cached == 1 and again[0].energy == record.energy
    other_alpha = drude_environment(mm, positions, alpha=1.2)
    moved = positions.copy()
    moved[4, 0] += 0.01
    keys = {drude_qmmm_job(species, x0, env, METHOD).key for env in
            (environment, other_alpha, DrudeEnvironment(environment.system, moved, TIGHT))}
    assert len(keys) == 3


def test_bad_input_is_one_line_before_any_calculation(cluster):
    species, x0, mm, positions = cluster
    with pytest.raises(InputError, match="needs Drude particles"):
        DrudeEnvironment(mm, positions)
    environment = drude_environment(mm, positions)
    with pytest.raises(InputError, match="positions"):
        DrudeEnvironment(environment.system, positions[:4])
    with pytest.raises(InputError, match="tblite"):
        drude_qmmm_job(species, x0, environment, "gfn2-xtb")
    with pytest.raises(InputError, match="overlap"):
        drude_qmmm_job(species, positions[:3] + 0.1, environment, METHOD)
    with pytest.raises(InputError, match="energy_tolerance_kcal_mol"):
        DrudeQMMMSettings(energy_tolerance_kcal_mol=0.0)
    with pytest.raises(InputError, match="max_iterations"):
        DrudeQMMMSettings(max_iterations=1)
    with pytest.raises(InputError, match="no QM/MM"):
        compute_qmmm_drude([], METHOD)


def test_not_converged_is_a_calculation_error_and_a_failed_record(cluster):
    species, x0, mm, positions = cluster
    short = DrudeQMMMSettings(energy_tolerance_kcal_mol=1e-12, max_iterations=2)
    environment = drude_environment(mm, positions, settings=short)
    with pytest.raises(CalculationError, match="not self-consistent in 2 iterations"):
        self_consistent_qmmm(species, x0, environment, METHOD)
    (record,), summary = compute_qmmm_drude([(species, x0, environment)], METHOD)
    assert not record.ok and "not self-consistent" in record.error
    assert summary.n_failed == 1
