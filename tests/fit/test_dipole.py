"""The dipole target: against AmberTools resp's dipole of the same charges, recovery of
charges from dipoles, origin handling for charged molecules, bad input."""

import numpy as np
import pytest
import torch

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule, Topology
from ffparam.errors import InputError
from ffparam.fit.objective import Objective
from ffparam.fit.optimizers import least_squares
from ffparam.fit.parameters import FitParameters
from ffparam.fit.resp import apply_charges, resp
from ffparam.fit.targets.dipole import DipoleTarget, centre_of_mass
from ffparam.params import FreeSpec, ParameterKey
from ffparam.units import DEBYE_E_ANGSTROM
from tests.fit.test_resp import hf_esp, run_amber_resp


def _fit(system):
    params = system.parameters.copy()
    params.set_free("Charges", "*", "charge", FreeSpec())
    return system.with_parameters(params), FitParameters.from_free(params)


def test_mm_dipole_matches_resp_program(tmp_path):
    mol, geometry, points, esp, qm_dipole = hf_esp("CO")
    charges = resp(Topology(mol), geometry, points, esp).charges
    amber = run_amber_resp(mol, geometry, points, esp, tmp_path)
    system, fit = _fit(apply_charges(assign_parameters(mol, "sage", charges="gasteiger"),
                                     charges))
    x = torch.zeros(fit.size, dtype=torch.float64)
    target = DipoleTarget("dip", system, geometry, qm_dipole, origin="frame")
    mm = target.mm_dipoles(fit, x).detach().numpy()[0]
    # resp reports the dipole of its own (equal to 1e-5 e) charges in Debye with
    # 1 e*bohr = 2.541765 D; ours uses 1 D = 0.20819434 e*A: both agree to 1e-4 D
    np.testing.assert_allclose(mm, amber["dipole"], atol=2e-4)
    # the reference (PySCF, about the frame origin, e*A) and the MM dipole share frame and
    # units: RESP charges, not fitted to it, reproduce the HF dipole to ~15 % (measured);
    # a unit or frame error would be off by a factor ~5 or in direction
    residual = target.residuals(fit, x).detach().numpy()
    assert np.linalg.norm(residual) < 0.25 * np.linalg.norm(qm_dipole) / DEBYE_E_ANGSTROM


def test_dipole_target_recovers_charges():
    """Water's dipole about the centre of mass fixes one charge combination only
    (q_O - q_H m_O/m_H); with O held and the two H tied the H charge is identifiable."""
    mol = Molecule.from_smiles("O").generate_conformers(1)
    truth = apply_charges(assign_parameters(mol, "sage", charges="gasteiger"),
                          [-0.8, 0.4, 0.4])
    rng = np.random.default_rng(0)
    geometries = mol.conformers[0] + rng.normal(0, 0.05, (6, 3, 3))
    dipoles = np.array([((g - centre_of_mass(g, mol.masses)) * truth.charges()[:, None]).sum(0)
                        for g in geometries])
    start = truth.parameters.copy()
    hydrogens = [ParameterKey("Charges", f"atom:{i}", "charge") for i in (1, 2)]
    for key in hydrogens:
        start.sections["Charges"][key.id].values["charge"] *= 1.35
        start.free[key] = FreeSpec()
    system = truth.with_parameters(start)
    fit = FitParameters.from_free(start, ties=[hydrogens])
    target = DipoleTarget("dip", system, geometries, dipoles)
    result = least_squares(Objective([target], fit, use_priors=False))
    recovered = system.with_parameters(result.parameters).charges()
    np.testing.assert_allclose(recovered, truth.charges(), rtol=1e-4)


def test_charged_molecule_origin_and_magnitude():
    mol = Molecule.from_smiles("C[NH3+]").generate_conformers(1)
    system, fit = _fit(assign_parameters(mol, "sage", charges="gasteiger"))
    x = torch.zeros(fit.size, dtype=torch.float64)
    geometry = mol.conformers[0]
    com = centre_of_mass(geometry, mol.masses)
    mu_com = ((geometry - com) * system.charges()[:, None]).sum(0)
    assert system.charges().sum() == pytest.approx(1.0)
    shift = np.array([3.0, -2.0, 5.0])
    for g in (geometry, geometry + shift):
        # about the frame origin a cation's dipole depends on the frame: mu + Q r_com
        frame = mu_com + 1.0 * centre_of_mass(g, mol.masses)
        target = DipoleTarget("dip", system, g, frame, origin="frame")
        assert torch.abs(target.residuals(fit, x)).max() < 1e-10
    rotation = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    rotated = geometry @ rotation.T
    target = DipoleTarget("dip", system, rotated, mu_com * 1.1, magnitude_only=True)
    expected = 0.1 * np.linalg.norm(mu_com) / DEBYE_E_ANGSTROM
    assert target.residuals(fit, x).item() == pytest.approx(-expected, rel=1e-9)


def test_bad_input():
    mol = Molecule.from_smiles("CO").generate_conformers(1)
    system, _ = _fit(assign_parameters(mol, "sage", charges="gasteiger"))
    geometry = mol.conformers[0]
    with pytest.raises(InputError, match="no dipoles"):
        DipoleTarget("dip", system, geometry, [])
    with pytest.raises(InputError, match="2 dipoles for 1 geometries"):
        DipoleTarget("dip", system, geometry, np.zeros((2, 3)))
    with pytest.raises(InputError, match="origin"):
        DipoleTarget("dip", system, geometry, np.zeros(3), origin="nucleus")
    with pytest.raises(InputError, match="atom order"):
        DipoleTarget("dip", system, geometry[::-1], np.zeros(3))
