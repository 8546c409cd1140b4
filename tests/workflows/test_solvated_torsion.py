"""Solvated torsion profiles (QM/MM single points along a drive in water snapshots) and
the ``solvated_torsion`` fit target: 2-fluoroethanol's O-C-C-F torsion, HF/STO-3G,
3 drive angles, 2 snapshots each of a small TIP3P box."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from ffparam.cli.main import main
from ffparam.errors import InputError
from ffparam.fit.objective import Objective
from ffparam.fit.optimizers import least_squares
from ffparam.fit.parameters import FitParameters
from ffparam.fit.targets.solvated_torsion import (
    SolvatedProfile,
    SolvatedTorsionTarget,
    read_solvated_profile,
)
from ffparam.liquid.prepare import prepare_system
from ffparam.mm import terms as F
from ffparam.mm.engine import MMEngine
from ffparam.reference import Store
from ffparam.units import COULOMB_CONSTANT_KCAL_MOL_A_E2
from ffparam.workflows.qmmm import QMMMSettings
from ffparam.workflows.solvated_torsion import (
    PROFILE_FILE,
    check_dihedral,
    mm_drive_geometries,
    solvated_torsion_profile,
)

QUAD = (0, 1, 2, 3)  # O-C-C-F
ANGLES = [-60.0, 60.0, 180.0]  # the drive of --spacing 120
SETTINGS = QMMMSettings(method="hf/sto-3g", n_frames=2, n_solvent=30, cutoff_a=4.5,
                        md_cutoff_a=4.5, equilibration_ps=0.2, interval_ps=0.1,
                        charges="gasteiger")
CLI = ["--method", "hf/sto-3g", "--frames", "2", "--n-solvent", "30", "--cutoff", "4.5",
       "--md-cutoff", "4.5", "--equil-ps", "0.2", "--interval-ps", "0.1", "--charges",
       "gasteiger", "--workers", "0", "--quiet"]


@pytest.fixture(scope="module")
def system():
    return prepare_system("OCCF", "sage", "gasteiger")  # as `ffparam qmmm OCCF` does


@pytest.fixture(scope="module")
def run(system, tmp_path_factory):
    """(output directory, the profile computed there)."""
    out = tmp_path_factory.mktemp("solvated")
    profile = solvated_torsion_profile(system, QUAD, ANGLES, out, SETTINGS)
    return out, profile


def test_profile_holds_drive_points_snapshots_and_round_trips(system, run):
    out, profile = run
    phi = np.degrees(F.dihedrals(torch.as_tensor(profile.geometries),
                                 torch.as_tensor([QUAD])).numpy()[:, 0])
    off = (phi - np.array(ANGLES) + 180.0) % 360.0 - 180.0
    assert np.abs(off).max() < 0.5  # the restrained MM drive, frozen in the MD
    assert [len(e) for e in profile.qmmm_energies] == [2, 2, 2]
    assert all(len(x) % 3 == 0 and len(x) > 0 for s in profile.solvent_positions for x in s)
    mean, error = profile.qmmm_mean()
    assert np.all(np.isfinite(error)) and np.all(mean < profile.gas_energies)  # solvation
    np.testing.assert_allclose(profile.solvent_charges, [-0.834, 0.417, 0.417])
    again = read_solvated_profile(out / PROFILE_FILE)
    np.testing.assert_allclose(again.qmmm_energies[1], profile.qmmm_energies[1])
    np.testing.assert_allclose(again.solvent_positions[2][1], profile.solvent_positions[2][1])
    # a rerun reads every calculation back from the Store and every MD from its checkpoint
    rerun = solvated_torsion_profile(system, QUAD, ANGLES, out, SETTINGS)
    np.testing.assert_array_equal(rerun.gas_energies, profile.gas_energies)


def explicit_mm(system, profile, values: np.ndarray) -> np.ndarray:
    """MM energies in the embedding by a plain loop over snapshots and atom pairs."""
    nb = system.nonbonded
    q, sig, eps = (values[nb.charge_index], values[nb.sigma_index], values[nb.epsilon_index])
    intra = MMEngine(system).energy(profile.geometries, torch.as_tensor(values)).numpy()
    out = []
    for k, frames in enumerate(profile.solvent_positions):
        total = 0.0
        for xyz in frames:
            kind = np.arange(len(xyz)) % 3
            r = np.linalg.norm(profile.geometries[k][:, None] - xyz[None], axis=-1)
            s = 0.5 * (sig[:, None] + profile.solvent_sigma_a[kind][None])
            e = np.sqrt(eps[:, None] * profile.solvent_epsilon_kcal_mol[kind][None])
            total += (COULOMB_CONSTANT_KCAL_MOL_A_E2 * q[:, None]
                      * profile.solvent_charges[kind][None] / r).sum()
            total += (4 * e * ((s / r) ** 12 - (s / r) ** 6)).sum()
        out.append(intra[k] + total / len(frames))
    return np.array(out)


def torsion_fit(system):
    from ffparam.fit.bespoke_torsions import make_bespoke_torsions

    bespoke = make_bespoke_torsions(system, [(1, 2)])
    return bespoke.system, FitParameters.from_free(bespoke.system.parameters)


def test_target_is_mm_in_the_same_embedding_and_fits(system, run):
    """E_MM = solute energy + mean solute-solvent Coulomb + LJ (checked by an explicit
    loop); the residual derivative in a torsion barrier matches finite differences; a
    least-squares fit of the bespoke O-C-C-F torsion lowers the RMSE."""
    _, profile = run
    bespoke, fit = torsion_fit(system)
    target = SolvatedTorsionTarget("solv", bespoke, profile)
    x0 = torch.zeros(fit.size, dtype=torch.float64)
    values = fit.system_values(bespoke, x0).numpy()
    mm = target.mm_energies(fit, x0).detach().numpy()
    np.testing.assert_allclose(mm, explicit_mm(bespoke, profile, values), rtol=1e-10)
    qm = profile.qmmm_mean()[0] + _lj(target, values)  # the reference: <E_QMMM + E_LJ>
    np.testing.assert_allclose(target.reference.numpy(), qm - qm.mean(), atol=1e-8)
    x = x0.clone().requires_grad_(True)
    (jac,) = torch.autograd.grad(target.residuals(fit, x).sum(), x)
    h = 1e-5
    step = torch.zeros_like(x0)
    step[0] = h
    with torch.no_grad():
        numeric = (target.residuals(fit, x0 + step).sum()
                   - target.residuals(fit, x0 - step).sum()) / (2 * h)
    assert float(jac[0]) == pytest.approx(float(numeric), rel=1e-6, abs=1e-8)
    result = least_squares(Objective([target], fit, use_priors=False))
    before = result.metrics_before["solv"]["rmse [kcal/mol]"]
    after = result.metrics_after["solv"]["rmse [kcal/mol]"]
    assert after < 0.5 * before and after < 0.05
    table = target.profile_table(fit, torch.as_tensor(result.x))
    assert set(table) == {"angles", "qm", "qm_error", "mm", "gas", "paired_error"}
    assert table["qm"].min() == 0.0 and table["gas"].min() == 0.0
    assert not np.allclose(table["qm"], table["gas"], atol=0.01)
    assert np.all(np.isfinite(table["paired_error"]))


def _lj(target: SolvatedTorsionTarget, values: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return target._lj(torch.as_tensor(values)).numpy()


def test_ffparam_fit_spec_with_a_solvated_torsion_target(run, tmp_path):
    from ffparam.fit.spec import load_fit_spec
    from ffparam.workflows.fit import run_fit

    out, _ = run
    spec = {"forcefield": "sage", "charges": "gasteiger",
            "molecules": {"fe": {"input": "OCCF"}},
            "targets": [{"name": "solv", "type": "solvated_torsion", "molecule": "fe",
                         "reference": str(out / PROFILE_FILE)}],
            "parameters": [{"bespoke_torsions": {"molecule": "fe", "bonds": [[1, 2]]}}],
            "priors": False}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    outcome = run_fit(load_fit_spec(tmp_path / "spec.yaml"), tmp_path / "fit", progress=False)
    metrics = outcome.result.metrics_after["solv"]
    assert metrics["rmse [kcal/mol]"] < outcome.result.metrics_before["solv"]["rmse [kcal/mol]"]


def test_bad_input_is_refused_before_any_calculation(system, run, tmp_path):
    _, profile = run
    with pytest.raises(InputError, match="not four bonded atoms"):
        check_dihedral(system, (0, 1, 3, 2))
    with pytest.raises(InputError, match="at least 2 drive angles"):
        solvated_torsion_profile(system, QUAD, [60.0], tmp_path, SETTINGS)
    with pytest.raises(InputError, match="drive geometries"):
        solvated_torsion_profile(system, QUAD, ANGLES, tmp_path, SETTINGS,
                                 geometries=np.zeros((2, system.n_atoms, 3)))
    with pytest.raises(InputError, match="smaller than twice the cutoff"):
        solvated_torsion_profile(system, QUAD, ANGLES, tmp_path,
                                 SETTINGS.replace(cutoff_a=6.0))
    data = profile.to_json()
    with pytest.raises(InputError, match="schema"):
        SolvatedProfile.from_json({**data, "schema_version": 99})
    with pytest.raises(InputError, match="missing field"):
        SolvatedProfile.from_json({k: v for k, v in data.items() if k != "angles_deg"})
    with pytest.raises(InputError, match="snapshots"):
        SolvatedProfile.from_json({**data, "qmmm_energies_kcal_mol": [[], [1.0], [2.0]]})
    assert not list(tmp_path.iterdir())  # nothing written
    assert mm_drive_geometries(system, QUAD, [90.0]).shape == (1, system.n_atoms, 3)


def test_cli_torsion_profile_reuses_the_run(run, capsys, tmp_path):
    """``ffparam qmmm OCCF --torsion 0,1,2,3 --spacing 120`` on the fixture's directory:
    every calculation and MD comes back from the Store and checkpoints; bad --torsion or
    --spacing is one error line with nothing written."""
    out, profile = run
    with Store(out / "qmmm.sqlite") as store:
        before = len(store)
    assert main(["qmmm", "OCCF", "--torsion", "0,1,2,3", "--spacing", "120", "--out",
                 str(out), *CLI]) == 0
    printed = capsys.readouterr().out
    assert "in solvent" in printed and printed.count(" deg ") == 3
    with Store(out / "qmmm.sqlite") as store:
        assert len(store) == before
    np.testing.assert_array_equal(read_solvated_profile(out / PROFILE_FILE).gas_energies,
                                  profile.gas_energies)
    for bad in (["--torsion", "0,1,2"], ["--torsion", "0,1,3,2"], ["--torsion", "0,1,2,3",
                                                                   "--spacing", "7"]):
        assert main(["qmmm", "OCCF", *bad, "--out", str(tmp_path / "bad"), *CLI]) == 2
        assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "bad").exists()
