"""MD stability in OpenMM: Sage molecules stay intact; sabotaged systems (a bond with
negative force constant, charges that pull atoms together) are reported unstable with a
reason, never as an exception, and no NaN reaches the JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ffparam.units import BOLTZMANN_KCAL_MOL_K
from ffparam.validate import MDLimits, md_stability
from tests.validate.conftest import perturbed


def test_sage_butane_is_stable_and_equipartition_holds(butane, butane_sage):
    result = md_stability(butane_sage, butane, length_ps=3.0, friction_per_ps=5.0, seed=3)
    assert result.stable, result.reason
    assert result.reason is None and result.stage is None
    assert result.simulated_ps == pytest.approx(3.0)
    assert result.n_frames == 30
    assert result.max_bond_ratio < 1.3 and result.min_pair_distance_a > 1.5
    # kinetic temperature near the bath (3 ps, strong friction) ...
    assert 200.0 < result.mean_temperature_k < 400.0
    # ... and potential energy above the minimum near (3N - 6)/2 kT for a near-harmonic
    # molecule (butane: 36 modes, ~10.7 kcal/mol at 300 K)
    harmonic = (3 * butane.n_atoms - 6) / 2 * BOLTZMANN_KCAL_MOL_K * result.mean_temperature_k
    assert 0.5 < result.potential_energy_rise_kcal_mol / harmonic < 1.5
    assert result.ns_per_day > 0 and result.wall_time_s >= result.md_wall_time_s > 0
    data = json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert data["stable"] is True and data["limits"]["max_bond_ratio"] == 1.5


def test_same_seed_same_trajectory(ethanol, ethanol_sage):
    a = md_stability(ethanol_sage, ethanol, length_ps=0.5, seed=7, platform="Reference")
    b = md_stability(ethanol_sage, ethanol, length_ps=0.5, seed=7, platform="Reference")
    c = md_stability(ethanol_sage, ethanol, length_ps=0.5, seed=8, platform="Reference")
    assert a.stable and a.platform == "Reference"
    assert a.potential_energy_mean_kcal_mol == b.potential_energy_mean_kcal_mol
    assert a.potential_energy_mean_kcal_mol != c.potential_energy_mean_kcal_mol


def test_negative_bond_force_constant_is_unstable_with_a_reason(ethanol, ethanol_sage):
    broken = perturbed(ethanol_sage, "Bonds", "[#6:1]-[#8:2]", "k", value=-1000.0)
    during_minimization = md_stability(broken, ethanol, length_ps=1.0)
    assert not during_minimization.stable
    assert during_minimization.stage == "minimization"
    assert "bond 1-2 stretched" in during_minimization.reason
    dynamics = md_stability(broken, ethanol, length_ps=1.0, minimize=False)
    assert not dynamics.stable and dynamics.stage == "md"
    assert "bond 1-2 stretched" in dynamics.reason and "t = 0.1 ps" in dynamics.reason
    assert dynamics.simulated_ps < 1.0
    for result in (during_minimization, dynamics):
        text = json.dumps(result.to_json(), allow_nan=False)
        assert "NaN" not in text and "Infinity" not in text


def test_collapsing_charges_are_unstable(ethanol, ethanol_sage):
    hydroxyl_h = next(a.GetIdx() for a in ethanol.rdmol.GetAtoms()
                      if a.GetSymbol() == "H" and a.GetNeighbors()[0].GetSymbol() == "O")
    params = ethanol_sage.parameters.copy()
    params.get("Charges", f"atom:{hydroxyl_h}").values["charge"] = 3.0
    params.get("Charges", "atom:0").values["charge"] = -3.0  # methyl carbon, 1-4 partner
    collapsing = ethanol_sage.with_parameters(params)
    result = md_stability(collapsing, ethanol, length_ps=2.0, minimize=False)
    assert not result.stable and result.reason
    json.dumps(result.to_json(), allow_nan=False)


def test_tight_limits_catch_ordinary_thermal_motion(ethanol, ethanol_sage):
    # the checks do read the trajectory: a 1 % bond-stretch limit fails at 300 K
    result = md_stability(ethanol_sage, ethanol, length_ps=0.5,
                          limits=MDLimits(max_bond_ratio=1.01))
    assert not result.stable and "stretched" in result.reason
    # and an energy window of 0.01 kcal/mol per atom is left at once
    result = md_stability(ethanol_sage, ethanol, length_ps=0.5,
                          limits=MDLimits(energy_window_kcal_mol_per_atom=0.01))
    assert not result.stable and "potential energy" in result.reason


def test_start_geometry_defaults_to_the_systems_molecule(ethanol_sage, butane):
    from ffparam.errors import InputError

    result = md_stability(ethanol_sage, None, length_ps=0.1)
    assert result.stable and result.n_frames == 1
    with pytest.raises(InputError, match="positions"):
        md_stability(ethanol_sage, None, length_ps=0.1, positions=np.zeros((3, 3)))
    with pytest.raises(InputError, match="positions"):
        md_stability(ethanol_sage, butane, length_ps=0.1)  # another molecule's conformer


@pytest.mark.slow
def test_sage_drug_like_molecule_is_stable_for_100_ps():
    from ffparam.assign import assign_parameters
    from ffparam.chem import Molecule

    molecule = Molecule.from_smiles("CC(C)Cc1ccc(cc1)C(C)C(=O)O", name="ibuprofen")
    molecule = molecule.generate_conformers(1, seed=2)
    system = assign_parameters(molecule, "sage", charges="am1bcc")
    result = md_stability(system, molecule)  # defaults: 100 ps, 300 K, 1 fs
    assert result.stable, result.reason
    assert result.simulated_ps == pytest.approx(100.0) and result.n_frames == 1000
    assert 270.0 < result.mean_temperature_k < 330.0
