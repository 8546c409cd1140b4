"""The ESP of a molecule polarized by a uniform external electric field (task ``esp_field``).

The CHARMM Drude recipe fits charges and polarizabilities together to the QM electrostatic
potential around the molecule computed with and without perturbing fields. Here the
perturbation is a uniform field **F** (kcal/mol/(e Angstrom), converted to atomic units,
1 Hartree/(e Bohr) = 1185.82 kcal/mol/(e Angstrom)): it is added to the PySCF core
Hamiltonian as the dipole term ``+F.r`` of each electron (an electron, charge -1, in the
potential ``-F.r``), origin at the nuclear charge centre, and the SCF is solved in it.
The nuclei are fixed; about that origin their energy in the field is zero, so the
record's energy is the molecule's total energy in the field.

The record holds the potential of the molecule alone (its nuclei and its polarized
density, :func:`~ffparam.reference.methods.pyscf_backend.electrostatic_potential`) on the
Merz-Kollman points of the ``esp`` task, *without* the field's own potential ``-F.r``,
and the dipole of the polarized density (e*Angstrom, about the frame origin). To first
order in F the change of the ESP is that of the induced density, whose dipole is
``alpha F`` with ``alpha`` the ``polarizability`` task's tensor.

The field is part of the task (:attr:`Task.field_kcal_mol_e_a`) and so of the Store key.
Only PySCF methods support it (tblite's uniform field is not wired in).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ffparam.errors import InputError
from ffparam.reference.records import Task
from ffparam.units import BOHR_ANGSTROM, HARTREE_KCAL_MOL

AU_FIELD_KCAL_MOL_E_A = HARTREE_KCAL_MOL / BOHR_ANGSTROM
"""One atomic unit of electric field (Hartree/(e Bohr)) in kcal/mol/(e Angstrom)."""
DEFAULT_FIELD_KCAL_MOL_E_A = 0.005 * AU_FIELD_KCAL_MOL_E_A
"""Default perturbing field strength, 0.005 au (~5.9 kcal/mol/(e A), 0.26 V/A): the
response is linear to ~1e-3 for small organic molecules."""


def field_set(strength_kcal_mol_e_a: float = DEFAULT_FIELD_KCAL_MOL_E_A
              ) -> list[tuple[float, float, float]]:
    """The standard perturbations: no field, then +-``strength`` along x, y and z (7)."""
    if not (np.isfinite(strength_kcal_mol_e_a) and strength_kcal_mol_e_a > 0):
        raise InputError(f"field strength must be positive (kcal/mol/(e A)), got "
                         f"{strength_kcal_mol_e_a}")
    fields = [(0.0, 0.0, 0.0)]
    for axis in range(3):
        for sign in (1.0, -1.0):
            f = [0.0, 0.0, 0.0]
            f[axis] = sign * float(strength_kcal_mol_e_a)
            fields.append((f[0], f[1], f[2]))
    return fields


def field_tasks(fields: Sequence[Sequence[float]], esp_density: float = 1.0) -> list[Task]:
    """One ``esp_field`` task per field (3,) kcal/mol/(e A)."""
    return [Task("esp_field", esp_density=esp_density,
                 field_kcal_mol_e_a=tuple(float(f) for f in field)) for field in fields]


def field_hcore(calc, mol, field_kcal_mol_e_a: Sequence[float]) -> np.ndarray:
    """Core Hamiltonian (nao, nao) Hartree of ``calc`` for ``mol`` plus the electrons'
    energy ``+F.r`` in the uniform field (origin: nuclear charge centre)."""
    from ffparam.reference.polarizability import _dipole_integrals

    field_au = np.asarray(field_kcal_mol_e_a, dtype=np.float64) / AU_FIELD_KCAL_MOL_E_A
    hcore = calc._scf(mol).get_hcore()
    return hcore + np.einsum("x,xpq->pq", field_au, _dipole_integrals(mol))


def compute_esp_in_field(calc, geometry: np.ndarray, field_kcal_mol_e_a: Sequence[float],
                         points: np.ndarray) -> dict:
    """Energy (kcal/mol), dipole (e*A) and the ESP (m,) kcal/mol/e at ``points`` (m, 3) A
    of the molecule at ``geometry`` (n_atoms, 3) A polarized by a uniform field (3,)
    kcal/mol/(e A), with a PySCF calculator (see the module docstring)."""
    from ffparam.reference.methods.pyscf_backend import electrostatic_potential
    from ffparam.reference.polarizability import _converged_scf

    if not hasattr(calc, "_scf"):
        raise InputError(f"{calc.spec.name} gives no ESP in a field; use a PySCF method "
                         "(hf/<basis> or <functional>/<basis>)")
    geometry = np.asarray(geometry, dtype=np.float64).reshape(-1, 3)
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    mol = calc._mole(geometry)
    mf = _converged_scf(calc, mol, field_hcore(calc, mol, field_kcal_mol_e_a))
    dm = mf.make_rdm1()
    total = dm if dm.ndim == 2 else dm[0] + dm[1]
    return {"energy": float(mf.e_tot) * HARTREE_KCAL_MOL,
            "dipole": np.asarray(mf.dip_moment(unit="AU", verbose=0)) * BOHR_ANGSTROM,
            "esp_points": points, "esp": electrostatic_potential(mol, total, points),
            "details": {"field": "uniform, core Hamiltonian +F.r",
                        "scf_cycles": int(getattr(mf, "cycles", -1))}}
