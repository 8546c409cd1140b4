"""Static electronic dipole polarizability tensors from PySCF (task ``polarizability``).

The installed PySCF has no ``pyscf.prop`` (the pyscf-properties extension is absent), so
the analytic tensor is computed here by coupled-perturbed SCF: the dipole perturbation
``h1 = <p|r|i>`` (origin at the nuclear charge centre) solved with PySCF's ``scf.cphf``
and the SCF response ``mf.gen_response`` (Coulomb, exchange and the XC kernel for DFT),
``alpha = -4 sum_ai h1_ai U_ai`` for closed shells (the second derivative of the energy
with respect to a uniform field, nuclei fixed). Open-shell species, for which this code
has no CPHF, use finite fields instead: central differences of the SCF dipole under
uniform fields of +-``FIELD_AU`` along x, y, z (error O(F^2), ~1e-5 relative). Both are
checked against each other in tests/fit/test_polarizability.py.

Units: polarizability in Angstrom^3 (a.u. Bohr^3 x 0.148185); the tensor is in the frame
of the input geometry.
"""

from __future__ import annotations

import numpy as np

from ffparam.errors import CalculationError, InputError, SCFConvergenceError
from ffparam.units import BOHR_ANGSTROM, HARTREE_KCAL_MOL

FIELD_AU = 1e-3
"""Uniform field (Hartree/(e Bohr)) of the finite-field polarizability."""
CPHF_TOLERANCE = 1e-9
CPHF_MAX_CYCLES = 100
BOHR3_TO_ANGSTROM3 = BOHR_ANGSTROM**3


def compute_polarizability(calc, geometry: np.ndarray) -> dict:
    """Energy (kcal/mol), dipole (e*A, about the frame origin) and the polarizability
    tensor (3, 3) A^3 of one geometry (n_atoms, 3) A with a PySCF calculator; ``details``
    names how the tensor was computed (``analytic CPHF`` or ``finite field``)."""
    if not hasattr(calc, "_scf"):
        raise InputError(f"{calc.spec.name} gives no polarizability; use a PySCF method "
                         "(hf/<basis> or <functional>/<basis>)")
    geometry = np.asarray(geometry, dtype=np.float64).reshape(-1, 3)
    mol = calc._mole(geometry)
    mf = _converged_scf(calc, mol)
    if mol.spin == 0 and mf.mo_coeff.ndim == 2:
        alpha, how = analytic_polarizability(mf), "analytic CPHF"
    else:
        alpha, how = finite_field_polarizability(calc, mol), f"finite field {FIELD_AU} au"
    dipole = np.asarray(mf.dip_moment(unit="AU", verbose=0)) * BOHR_ANGSTROM
    return {"energy": float(mf.e_tot) * HARTREE_KCAL_MOL, "dipole": dipole,
            "polarizability": alpha * BOHR3_TO_ANGSTROM3,
            "details": {"polarizability": how}}


def _converged_scf(calc, mol, hcore: np.ndarray | None = None):
    mf = calc._scf(mol)
    if hcore is not None:
        mf.get_hcore = lambda *args: hcore
    try:
        mf.kernel()
    except Exception as exc:
        raise CalculationError(f"{calc.spec.name}: PySCF SCF failed: {exc}") from None
    if not mf.converged:
        raise SCFConvergenceError(f"{calc.spec.name}: SCF not converged in {mf.max_cycle} "
                                  "cycles")
    return mf


def _dipole_integrals(mol) -> np.ndarray:
    """<mu|r|nu> (3, nao, nao) Bohr about the nuclear charge centre."""
    charges = mol.atom_charges()
    centre = charges @ mol.atom_coords() / charges.sum()
    with mol.with_common_orig(centre):
        return mol.intor_symmetric("int1e_r", comp=3)


def analytic_polarizability(mf) -> np.ndarray:
    """Closed-shell CPHF polarizability (3, 3) in Bohr^3 of a converged restricted SCF."""
    from pyscf.scf import cphf

    mo_coeff, mo_occ, mo_energy = mf.mo_coeff, mf.mo_occ, mf.mo_energy
    occ = mo_occ > 0
    orbo, orbv = mo_coeff[:, occ], mo_coeff[:, ~occ]
    nocc, nvir = orbo.shape[1], orbv.shape[1]
    h1 = np.einsum("xpq,pa,qi->xai", _dipole_integrals(mf.mol), orbv, orbo)
    response = mf.gen_response(hermi=1)

    def vind(u: np.ndarray) -> np.ndarray:
        u = u.reshape(-1, nvir, nocc)
        dm = np.einsum("pa,xai,qi->xpq", orbv, u * 2.0, orbo)
        v = response(dm + dm.transpose(0, 2, 1))
        return np.einsum("pa,xpq,qi->xai", orbv, v, orbo)

    e_ai = mo_energy[~occ][:, None] - mo_energy[occ][None, :]
    u, converged = _cphf_solve(cphf, vind, e_ai, h1)
    if not converged:
        raise CalculationError("CPHF for the polarizability did not converge")
    alpha = -4.0 * np.einsum("xai,yai->xy", h1, u)
    return 0.5 * (alpha + alpha.T)


def _cphf_solve(cphf, vind, e_ai: np.ndarray, h1: np.ndarray) -> tuple[np.ndarray, bool]:
    """Solve (e_a - e_i) U + vind(U) = -h1 with PySCF's Krylov solver."""
    from pyscf import lib

    def operator(x: np.ndarray) -> np.ndarray:
        x = x.reshape(-1, *e_ai.shape)
        return (vind(x) / e_ai).reshape(len(x), -1)

    rhs = (-h1 / e_ai).reshape(3, -1)
    solution = lib.krylov(operator, rhs, tol=CPHF_TOLERANCE, max_cycle=CPHF_MAX_CYCLES)
    u = solution.reshape(h1.shape)
    residual = u * e_ai + vind(u) + h1
    return u, bool(np.abs(residual).max() < 1e-4)


def finite_field_polarizability(calc, mol, field_au: float = FIELD_AU) -> np.ndarray:
    """(3, 3) Bohr^3 by central differences of the SCF dipole under uniform fields."""
    r = _dipole_integrals(mol)
    hcore = calc._scf(mol).get_hcore()
    alpha = np.zeros((3, 3))
    for j in range(3):
        dipoles = []
        for sign in (1.0, -1.0):
            # an electron (charge -1) in the field F has potential energy +F.r
            mf = _converged_scf(calc, mol, hcore + sign * field_au * r[j])
            dipoles.append(np.asarray(mf.dip_moment(unit="AU", verbose=0)))
        alpha[:, j] = (dipoles[0] - dipoles[1]) / (2.0 * field_au)
    return 0.5 * (alpha + alpha.T)
