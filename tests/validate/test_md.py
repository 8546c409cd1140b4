"""MD stability in OpenMM: Sage molecules stay intact; sabotaged systems (a bond with
negative force constant, charges that pull atoms together) are reported unstable with a
reason, never as an exception, and no NaN reaches the JSON."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from ffparam.units import BOLTZMANN_KCAL_MOL_K
from ffparam.validate import MDLimitSettings, md_stability
from tests.validate.conftest import perturbed


@pytest.mark.stochastic
def test_sage_butane_is_stable_and_equipartition_holds(butane, butane_sage, seed):
    """Bounds from the statistics of 30 frames 0.1 ps apart with friction 5/ps (velocity
    memory 1/gamma = 0.2 ps, so ~15-30 independent frames): one frame's kinetic temperature
    has sigma_T / T = sqrt(2 / 3N) = 0.22 (N = 14), the mean of the frames ~5 % (15 K), so
    200-400 K is > 6 sigma; the potential energy rise of a near-harmonic molecule has
    sigma / mean = sqrt(2 / (3N - 6)) = 0.24 per frame, ~6 % for the mean, and the first
    0.2 ps (velocities only, potential energy still rising) bias it low by < 10 %: the
    0.5-1.5 window is > 5 sigma from (3N - 6)/2 kT for any seed."""
    result = md_stability(butane_sage, butane, length_ps=3.0, friction_per_ps=5.0, seed=seed)
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


@pytest.mark.stochastic
def test_same_seed_same_trajectory(ethanol, ethanol_sage, seed):
    # Reference platform, one thread: the same seed gives the same floating-point trajectory
    a = md_stability(ethanol_sage, ethanol, length_ps=0.5, seed=seed, platform="Reference")
    b = md_stability(ethanol_sage, ethanol, length_ps=0.5, seed=seed, platform="Reference")
    c = md_stability(ethanol_sage, ethanol, length_ps=0.5, seed=seed + 1, platform="Reference")
    assert a.stable and a.platform == "Reference"
    assert a.potential_energy_mean_kcal_mol == b.potential_energy_mean_kcal_mol
    assert a.potential_energy_mean_kcal_mol != c.potential_energy_mean_kcal_mol


def _stretched_co(ethanol, by_a: float) -> np.ndarray:
    """Ethanol's conformer with the O (and its H) moved ``by_a`` A out along the C-O bond."""
    x = np.array(ethanol.conformers[0], dtype=np.float64)
    axis = (x[2] - x[1]) / np.linalg.norm(x[2] - x[1])
    hydroxyl = [2] + [a.GetIdx() for a in ethanol.rdmol.GetAtomWithIdx(2).GetNeighbors()
                      if a.GetSymbol() == "H"]
    x[hydroxyl] += by_a * axis
    return x


@pytest.mark.stochastic
def test_negative_bond_force_constant_is_unstable_with_a_reason(ethanol, ethanol_sage, seed):
    """C-O bond with k = -1000 kcal/mol/A^2 (Sage length r0 = 1.426 A), started 0.3 A
    beyond r0 so that the failure is deterministic, whatever the CPU and the seed:

    * minimization: E = k/2 (r - r0)^2 falls without bound as r grows; a descent method
      started at r > r0 can never go back over the maximum at r0 (45 kcal/mol up) and
      never converges (the bond force, |k| (r - r0) >= 300 kcal/mol/A, outweighs every
      other force), so the bond ends far beyond 1.5 x its start length;
    * dynamics: the unstable mode grows as cosh(lambda t), lambda = sqrt(|k| / mu) =
      0.25 / fs (mu = 6.86 amu), so r - r0 > 1.1 A (past the 2.5 A limit) by t = 10 fs
      and the first check at 0.1 ps catches it; turning it back would need 45 kcal/mol of
      thermal kinetic energy in one degree of freedom (kT/2 = 0.3): probability < 1e-30,
      and r stays finite (~1e10 A) so OpenMM raises nothing before that check."""
    broken = perturbed(ethanol_sage, "Bonds", "[#6:1]-[#8:2]", "k", value=-1000.0)
    start = _stretched_co(ethanol, 0.3)
    during_minimization = md_stability(broken, None, length_ps=1.0, positions=start,
                                       seed=seed)
    assert not during_minimization.stable
    assert during_minimization.stage == "minimization", during_minimization.reason
    assert "bond 1-2 stretched" in during_minimization.reason
    dynamics = md_stability(broken, None, length_ps=1.0, minimize=False, positions=start,
                            seed=seed)
    assert not dynamics.stable and dynamics.stage == "md", dynamics.reason
    assert "bond 1-2 stretched" in dynamics.reason and "t = 0.1 ps" in dynamics.reason
    assert dynamics.simulated_ps == pytest.approx(0.1)
    for result in (during_minimization, dynamics):
        text = json.dumps(result.to_json(), allow_nan=False)
        assert "NaN" not in text and "Infinity" not in text


def test_bond_that_collapses_onto_itself_is_caught_in_minimization(ethanol, ethanol_sage):
    """The same sabotaged bond from the conformer itself (r = 1.420 A < r0): the bond term
    now pulls the two atoms together, down to the kink of E at r = 0 (the lowest point
    for r < r0), where the minimizer stalls, or, from the kink, out past r0 and away. On
    one CPU it stalls (r ~ 1e-4 A), on another it escapes: either way the minimized
    geometry is broken at bond 1-2 and must be reported before any dynamics (a bond
    shorter than half its start length is never thermal: C-O fluctuates by ~0.03 A)."""
    broken = perturbed(ethanol_sage, "Bonds", "[#6:1]-[#8:2]", "k", value=-1000.0)
    result = md_stability(broken, ethanol, length_ps=1.0)
    assert not result.stable and result.stage == "minimization", result.reason
    assert re.match(r"bond 1-2 (compressed|stretched) to ", result.reason), result.reason
    json.dumps(result.to_json(), allow_nan=False)


@pytest.mark.stochastic
def test_collapsing_charges_are_unstable(ethanol, ethanol_sage, seed):
    # +3 / -3 e on a 1-4 pair (2.5-3.5 A apart): ~ -900 kcal/mol of scaled Coulomb
    # attraction that nothing bonded resists at that scale; thermal energy (kT = 0.6
    # kcal/mol) cannot keep them apart, whatever the seed
    hydroxyl_h = next(a.GetIdx() for a in ethanol.rdmol.GetAtoms()
                      if a.GetSymbol() == "H" and a.GetNeighbors()[0].GetSymbol() == "O")
    params = ethanol_sage.parameters.copy()
    params.get("Charges", f"atom:{hydroxyl_h}").values["charge"] = 3.0
    params.get("Charges", "atom:0").values["charge"] = -3.0  # methyl carbon, 1-4 partner
    collapsing = ethanol_sage.with_parameters(params)
    result = md_stability(collapsing, ethanol, length_ps=2.0, minimize=False, seed=seed)
    assert not result.stable and result.reason
    json.dumps(result.to_json(), allow_nan=False)


@pytest.mark.stochastic
def test_tight_limits_catch_ordinary_thermal_motion(ethanol, ethanol_sage, seed):
    # the checks do read the trajectory: a 1 % bond-stretch limit fails at 300 K. A C-H
    # bond (k ~ 740 kcal/mol/A^2) fluctuates by sqrt(kT / k) = 0.028 A = 2.6 % of its
    # length, so each of the 5 C-H bonds exceeds 1 % in ~35 % of the frames: all of them
    # staying inside for the 5 frames (25 draws, bond vibrations decorrelate in < 0.1 ps)
    # has probability 0.65^25 < 1e-4, and 8 bonds make it rarer still
    result = md_stability(ethanol_sage, ethanol, length_ps=0.5,
                          limits=MDLimitSettings(max_bond_ratio=1.01), seed=seed)
    assert not result.stable and "stretched" in result.reason
    # and an energy window of 0.01 kcal/mol per atom (0.09 kcal/mol) is left at once: the
    # potential energy rises by ~(3N - 6)/2 kT = 6 kcal/mol within 0.1 ps
    result = md_stability(ethanol_sage, ethanol, length_ps=0.5,
                          limits=MDLimitSettings(energy_window_kcal_mol_per_atom=0.01), seed=seed)
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
