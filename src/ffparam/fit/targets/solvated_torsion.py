"""Solvated torsion profile target: MM in the solvent's point charges vs averaged QM/MM.

Reference data (:class:`SolvatedProfile`, written by
:mod:`ffparam.workflows.solvated_torsion`): for each drive point ``k`` a rigid solute
geometry (the LOW- or MM-relaxed drive geometry, held fixed in the solvent MD) and
``n_k`` solvent snapshots; per snapshot ``s`` the QM/MM energy E_QMMM(k, s) (the QM
solute in the point charges of the whole solvent molecules within the QM/MM cutoff) and
those solvent atoms (positions, charges, Lennard-Jones sigma/epsilon).

The solvated QM profile is the snapshot average

    E_QM(k) = < E_QMMM(k, s) + E_LJ(k, s) >_s,   standard error std_s / sqrt(n_k),

and the MM model is evaluated in the same embedding (same snapshots, same solvent atoms):

    E_MM(k) = E_solute(x_k) + < E_Coul(k, s) + E_LJ(k, s) >_s,

with E_solute the solute's force-field energy (:class:`~ffparam.mm.engine.MMEngine`),
E_Coul = sum_{i,J} C q_i q_J / r_iJ over solute atoms i and solvent atoms J and E_LJ the
solute-solvent Lennard-Jones energy (the force field's combining rule; no cutoff, the
snapshot's molecules are the environment). E_LJ enters both sides with the current
parameters, so it cancels from the residuals unless the solute's LJ parameters are fitted
(and then only the MM side's moves; the reference uses the start values). Both averages
are exact sums over the stored snapshots precomputed once: E_Coul through the mean
solvent potential at each solute atom, E_LJ through per solvent-atom-kind sums of r^-12
and r^-6, so the target is differentiable in the solute's charges, LJ and valence/torsion
parameters at the cost of a gas-phase profile.

Noise: the mean solute-solvent interaction energy of a few snapshots is uncertain by
kcal/mol (``standard_error`` of E_QM(k)), but the residual only sees the paired
difference <E_QMMM(k, s) - E_Coul(k, s)>_s (the QM solute's energy and polarization in
the field, less the MM charges' interaction with the same solvent), whose standard error
(``paired_error``, start charges) is several times smaller.

Residuals (kcal/mol) are MM - QM relative energies (to the mean, or to the QM minimum),
one per drive point.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ffparam.errors import InputError
from ffparam.fit.parameters import FitParameters
from ffparam.fit.targets.base import Target
from ffparam.fit.targets.energies import check_geometries, relative
from ffparam.io.atomic import write_json_atomic
from ffparam.mm.engine import MMEngine
from ffparam.mm.terms import combine_lj
from ffparam.params.system import ParameterizedSystem
from ffparam.units import COULOMB_CONSTANT_KCAL_MOL_A_E2

Tensor = torch.Tensor
SCHEMA_VERSION = 1


@dataclass
class SolvatedProfile:
    """QM/MM snapshots along a torsion drive (kcal/mol, Angstrom, e).

    Attributes:
        dihedral: (4,) the driven dihedral's atoms.
        angles: (P,) drive angles, degrees.
        geometries: (P, N, 3) the rigid solute geometry of each drive point.
        gas_energies: (P,) QM energies of the solute alone at those geometries.
        qmmm_energies: per point, (n_k,) QM/MM energies of its snapshots.
        solvent_positions: per point, per snapshot, (m, 3) solvent atoms (whole
            molecules, blocks in the solvent molecule's atom order).
        solvent_charges, solvent_sigma_a, solvent_epsilon_kcal_mol: (n_solvent_atoms,)
            one solvent molecule's charges and Lennard-Jones parameters.
        method: the QM method (canonical). label: a name.
    """

    dihedral: np.ndarray
    angles: np.ndarray
    geometries: np.ndarray
    gas_energies: np.ndarray
    qmmm_energies: list[np.ndarray]
    solvent_positions: list[list[np.ndarray]]
    solvent_charges: np.ndarray
    solvent_sigma_a: np.ndarray
    solvent_epsilon_kcal_mol: np.ndarray
    method: str = ""
    label: str = "solvated torsion"

    def __post_init__(self) -> None:
        self.dihedral = np.asarray(self.dihedral, dtype=np.int64).reshape(4)
        self.angles = np.asarray(self.angles, dtype=np.float64).reshape(-1)
        self.geometries = np.asarray(self.geometries, dtype=np.float64)
        self.gas_energies = np.asarray(self.gas_energies, dtype=np.float64).reshape(-1)
        self.qmmm_energies = [np.asarray(e, dtype=np.float64).reshape(-1)
                              for e in self.qmmm_energies]
        self.solvent_positions = [[np.asarray(x, dtype=np.float64).reshape(-1, 3) for x in s]
                                  for s in self.solvent_positions]
        for name in ("solvent_charges", "solvent_sigma_a", "solvent_epsilon_kcal_mol"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.float64).reshape(-1))
        self._check()

    def _check(self) -> None:
        n = len(self.angles)
        sizes = {len(self.geometries), len(self.gas_energies), len(self.qmmm_energies),
                 len(self.solvent_positions)}
        if sizes != {n} or n < 2:
            raise InputError(f"{self.label}: need the same number (>= 2) of angles, "
                             "geometries, gas energies and snapshot sets")
        n_kind = len(self.solvent_charges)
        for k, (energies, frames) in enumerate(zip(self.qmmm_energies, self.solvent_positions)):
            if len(energies) == 0 or len(energies) != len(frames):
                raise InputError(f"{self.label}: drive point {k} has {len(energies)} QM/MM "
                                 f"energies for {len(frames)} snapshots (need >= 1)")
            if any(len(x) % n_kind for x in frames):
                raise InputError(f"{self.label}: drive point {k}: solvent atoms are not whole "
                                 f"molecules of {n_kind} atoms")
        values = [self.gas_energies, *self.qmmm_energies]
        if not all(np.all(np.isfinite(v)) for v in values):
            raise InputError(f"{self.label}: non-finite energy")

    def qmmm_mean(self) -> tuple[np.ndarray, np.ndarray]:
        """(P,) mean QM/MM energy per drive point and its standard error (std/sqrt(n),
        NaN with one snapshot), kcal/mol."""
        mean = np.array([e.mean() for e in self.qmmm_energies])
        return mean, np.array([standard_error(e) for e in self.qmmm_energies])

    def to_json(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "label": self.label, "method": self.method,
                "dihedral": self.dihedral.tolist(), "angles_deg": self.angles.tolist(),
                "geometries_a": self.geometries.tolist(),
                "gas_energies_kcal_mol": self.gas_energies.tolist(),
                "qmmm_energies_kcal_mol": [e.tolist() for e in self.qmmm_energies],
                "solvent_positions_a": [[x.tolist() for x in s] for s in self.solvent_positions],
                "solvent_charges_e": self.solvent_charges.tolist(),
                "solvent_sigma_a": self.solvent_sigma_a.tolist(),
                "solvent_epsilon_kcal_mol": self.solvent_epsilon_kcal_mol.tolist()}

    def save(self, path: str | Path) -> None:
        write_json_atomic(path, self.to_json())

    @classmethod
    def from_json(cls, data: dict, where: str = "solvated profile") -> SolvatedProfile:
        """From :meth:`to_json` data; InputError for a missing field or a newer schema."""
        version = data.get("schema_version") if isinstance(data, dict) else None
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise InputError(f"{where}: not a solvated torsion profile of schema "
                             f"<= {SCHEMA_VERSION} (schema_version {version!r})")
        try:
            return cls(data["dihedral"], data["angles_deg"], data["geometries_a"],
                       data["gas_energies_kcal_mol"], data["qmmm_energies_kcal_mol"],
                       data["solvent_positions_a"], data["solvent_charges_e"],
                       data["solvent_sigma_a"], data["solvent_epsilon_kcal_mol"],
                       data.get("method", ""), data.get("label", where))
        except KeyError as exc:
            raise InputError(f"{where}: missing field {exc}") from None


def read_solvated_profile(path: str | Path) -> SolvatedProfile:
    """A :class:`SolvatedProfile` from its JSON file."""
    import json

    from ffparam.io.files import read_text

    path = Path(path)
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path.name}: not JSON ({exc.msg})") from None
    return SolvatedProfile.from_json(data, path.name)


@dataclass
class EmbeddingSums:
    """Solvent sums at the solute atoms per drive point (kcal/mol/e, Angstrom^-n):
    potential (P, N) = <sum_J C q_J / r_iJ> over the snapshots, r12 and r6 (P, N, n_kind)
    = <sum_{J of kind} r_iJ^-n>; frame_potentials: per point (n_k, N), each snapshot's."""

    potential: np.ndarray
    r12: np.ndarray
    r6: np.ndarray
    frame_potentials: list[np.ndarray]


def embedding_sums(profile: SolvatedProfile) -> EmbeddingSums:
    """The :class:`EmbeddingSums` of ``profile`` (one pass over the snapshots)."""
    n_kind = len(profile.solvent_charges)
    frames_v, r12, r6 = [], [], []
    for geometry, frames in zip(profile.geometries, profile.solvent_positions):
        v, a12, a6 = [], 0.0, 0.0
        for xyz in frames:
            r = np.linalg.norm(geometry[:, None] - xyz[None], axis=-1).reshape(
                len(geometry), -1, n_kind)
            v.append(COULOMB_CONSTANT_KCAL_MOL_A_E2 * (profile.solvent_charges / r).sum((1, 2)))
            a12 = a12 + (r ** -12.0).sum(1)
            a6 = a6 + (r ** -6.0).sum(1)
        frames_v.append(np.array(v))
        r12.append(a12 / len(frames))
        r6.append(a6 / len(frames))
    return EmbeddingSums(np.array([v.mean(axis=0) for v in frames_v]), np.array(r12),
                         np.array(r6), frames_v)


def standard_error(values: np.ndarray) -> float:
    """std / sqrt(n) of ``values`` (NaN for one value)."""
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else np.nan


class SolvatedTorsionTarget(Target):
    """MM vs averaged QM/MM torsion profile in solvent (residuals in kcal/mol)."""

    unit = "kcal/mol"

    def __init__(self, name: str, system: ParameterizedSystem, profile: SolvatedProfile,
                 reference: str = "mean", weight: float = 1.0, denominator: float = 1.0
                 ) -> None:
        super().__init__(name, weight, denominator)
        if profile.dihedral.max() >= system.n_atoms:
            raise InputError(f"{name}: dihedral atoms {profile.dihedral.tolist()} out of range "
                             f"for {system.n_atoms} atoms")
        self.system, self.profile, self.reference_mode = system, profile, reference
        self.geometries = torch.as_tensor(check_geometries(system, profile.geometries, name))
        self.engine = MMEngine(system)
        sums = embedding_sums(profile)
        self._potential = torch.as_tensor(sums.potential)
        self._r12, self._r6 = torch.as_tensor(sums.r12), torch.as_tensor(sums.r6)
        qmmm, self.standard_error = profile.qmmm_mean()
        start = np.asarray(system.parameters.vector(), dtype=np.float64)
        charges = start[system.nonbonded.charge_index]
        self.paired_error = np.array([  # of <E_QMMM - E_Coul>: what the residual sees
            standard_error(e - v @ charges)
            for e, v in zip(profile.qmmm_energies, sums.frame_potentials)])
        with torch.no_grad():
            solvated = torch.as_tensor(qmmm) + self._lj(torch.as_tensor(start))
        self.anchor = int(torch.argmin(solvated))
        self.reference = relative(solvated, reference, self.anchor)
        self.gas_reference = relative(torch.as_tensor(profile.gas_energies), reference,
                                      self.anchor)

    @property
    def systems(self) -> list[ParameterizedSystem]:
        return [self.system]

    def _lj(self, values: Tensor) -> Tensor:
        """<E_LJ> per drive point (P,), kcal/mol."""
        nb = self.system.nonbonded
        sigma_i = values[torch.as_tensor(nb.sigma_index)][:, None]
        eps_i = values[torch.as_tensor(nb.epsilon_index)][:, None]
        sigma_j = torch.as_tensor(self.profile.solvent_sigma_a)[None]
        eps_j = torch.as_tensor(self.profile.solvent_epsilon_kcal_mol)[None]
        sigma, eps = combine_lj(sigma_i, sigma_j, eps_i, eps_j, nb.combining_rule)
        return (4.0 * eps * (sigma**12 * self._r12 - sigma**6 * self._r6)).sum((-1, -2))

    def embedding_energy(self, values: Tensor) -> Tensor:
        """<E_Coul + E_LJ> of the solute in its snapshots per drive point (P,), kcal/mol."""
        charges = values[torch.as_tensor(self.system.nonbonded.charge_index)]
        return (self._potential * charges).sum(-1) + self._lj(values)

    def mm_energies(self, fit: FitParameters, x: Tensor) -> Tensor:
        """Absolute MM energies in the embedding (P,), kcal/mol."""
        values = fit.system_values(self.system, x)
        return self.engine.energy(self.geometries, values) + self.embedding_energy(values)

    def residuals(self, fit: FitParameters, x: Tensor) -> Tensor:
        mm = relative(self.mm_energies(fit, x), self.reference_mode, self.anchor)
        return mm - self.reference

    def metrics(self, fit: FitParameters, x: Tensor) -> dict[str, float]:
        with torch.no_grad():
            diff = self.residuals(fit, x)
        return {"rmse [kcal/mol]": float(torch.sqrt(torch.mean(diff**2))),
                "max_error [kcal/mol]": float(diff.abs().max()),
                "mean_paired_error [kcal/mol]": float(np.mean(self.paired_error))}

    def profile_table(self, fit: FitParameters, x: Tensor) -> dict[str, np.ndarray]:
        """Angles (deg); relative energies (kcal/mol): solvated QM with its standard error
        (``qm_error``) and MM aligned as in the fit, both zero at the solvated QM minimum;
        gas-phase QM zero at its own minimum; ``paired_error``: the standard error of
        <E_QMMM - E_Coul> (start charges), the noise the residuals carry."""
        with torch.no_grad():
            mm = relative(self.mm_energies(fit, x), self.reference_mode, self.anchor).numpy()
        qm, gas = self.reference.numpy(), self.gas_reference.numpy()
        return {"angles": self.profile.angles, "qm": qm - qm[self.anchor],
                "qm_error": self.standard_error, "mm": mm - qm[self.anchor],
                "gas": gas - gas.min(), "paired_error": self.paired_error}


def solvated_torsion_target_from_file(name: str, system: ParameterizedSystem,
                                      path: str | Path, reference: str = "mean",
                                      weight: float = 1.0, denominator: float = 1.0
                                      ) -> SolvatedTorsionTarget:
    """A :class:`SolvatedTorsionTarget` from a profile JSON file
    (:func:`ffparam.workflows.solvated_torsion.solvated_torsion_profile` writes one)."""
    return SolvatedTorsionTarget(name, system, read_solvated_profile(path), reference,
                                 weight, denominator)
