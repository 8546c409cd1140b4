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

Perturbing point charges (CHARMM's recipe: a +-0.5 e charge at a few positions 3-4 A from
the molecule, :func:`perturbing_charges`): an ``esp_field`` job with an
:class:`~ffparam.reference.qmmm.Environment` of one charge (:func:`charge_jobs`) runs its
SCF in that charge's potential (electrostatic embedding, PySCF ``qmmm.mm_charge``: the
electrons' one-electron potential and the nuclei-charge energy) and records, as for a
field, the potential of the molecule alone without the charge's own ``C Q/|r - R|``;
the record's ``mm_positions``/``mm_charges`` hold the charge and the environment is part
of the Store key.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ffparam.errors import InputError
from ffparam.reference.records import Species, Task
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


PERTURBING_CHARGE_E = 0.5
"""CHARMM Drude recipe: magnitude of each perturbing point charge (e)."""
PERTURBING_DISTANCE_A = 3.5
"""Distance of each perturbing charge from its nearest atom, Angstrom (CHARMM: 3-4 A)."""


def perturbing_charges(geometry: np.ndarray, n_charges: int,
                       distance_a: float = PERTURBING_DISTANCE_A,
                       charge_e: float = PERTURBING_CHARGE_E) -> list:
    """``n_charges`` single-charge environments around the molecule at ``geometry``
    (n_atoms, 3) Angstrom, signs alternating +``charge_e``, -``charge_e`` (e).

    Positions: points ``distance_a`` from an atom along 64 Fibonacci-sphere directions,
    kept where no other atom is closer, then chosen greedily (deterministic) each as far as
    possible from the ones already chosen, so the charges surround the molecule.
    """
    from ffparam.mm.drude_field import MIN_CHARGE_DISTANCE_A
    from ffparam.reference.qmmm import Environment

    if n_charges < 1 or not (np.isfinite(distance_a) and distance_a >= MIN_CHARGE_DISTANCE_A):
        raise InputError(f"perturbing charges: need n_charges >= 1 and a distance of at least "
                         f"{MIN_CHARGE_DISTANCE_A} A, got {n_charges}, {distance_a}")
    xyz = np.asarray(geometry, dtype=np.float64).reshape(-1, 3)
    k = np.arange(64) + 0.5
    polar, azimuth = np.arccos(1.0 - 2.0 * k / 64), np.pi * (1.0 + 5.0**0.5) * k
    sphere = np.stack([np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth),
                       np.cos(polar)], axis=1)
    candidates = (xyz[:, None, :] + distance_a * sphere[None]).reshape(-1, 3)
    nearest = np.linalg.norm(candidates[:, None] - xyz[None], axis=-1).min(axis=1)
    candidates = candidates[nearest >= distance_a - 1e-9]
    chosen = [int(np.argmax(candidates[:, 0]))]
    while len(chosen) < min(n_charges, len(candidates)):
        gap = np.linalg.norm(candidates[:, None] - candidates[chosen][None], axis=-1).min(1)
        chosen.append(int(np.argmax(gap)))
    return [Environment([charge_e * (-1.0) ** i], candidates[c][None])
            for i, c in enumerate(chosen)]


def charge_jobs(species: Species, geometry: np.ndarray, method, environments: Sequence,
                esp_density: float = 1.0) -> list:
    """One stored ``esp_field`` job (no uniform field) per perturbing-charge environment
    (:func:`perturbing_charges`) of ``species`` at ``geometry`` (n_atoms, 3) Angstrom; a
    non-PySCF method or a charge within 2 A of an atom
    (:data:`ffparam.mm.drude_field.MIN_CHARGE_DISTANCE_A`) is refused (InputError) before
    anything runs."""
    from ffparam.mm.drude_field import MIN_CHARGE_DISTANCE_A
    from ffparam.reference.jobs import Job
    from ffparam.reference.qmmm import check_qmmm_method

    spec = check_qmmm_method(method)
    geometry = np.asarray(geometry, dtype=np.float64).reshape(species.n_atoms, 3)
    (task,) = field_tasks([(0.0, 0.0, 0.0)], esp_density)
    for env in environments:
        gap = np.linalg.norm(env.positions[:, None] - geometry[None], axis=-1).min()
        if gap < MIN_CHARGE_DISTANCE_A:
            raise InputError(f"a perturbing charge is {gap:.2f} A from an atom of "
                             f"{species.name} (at least {MIN_CHARGE_DISTANCE_A} A)")
    return [Job.create(species, spec, task, geometry, environment=env) for env in environments]


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
