"""Hartree-Fock and DFT through PySCF, with D3(BJ)/D4 dispersion from pyscf-dispersion.

PySCF works in Hartree and Bohr; this module converts to kcal/mol and Angstrom. Closed
shells use restricted (RHF/RKS), open shells unrestricted (UHF/UKS) references. A functional
name with a dispersion suffix (``b3lyp-d3bj``) is handed to PySCF, which adds the
correction through the pyscf-dispersion package (two-body D3; D4 with its three-body term)
to energies, gradients and Hessians. Gradients and Hessians are analytic (the DFT
integration grid moves with the atoms; grid-response terms are left out, PySCF's default).

Like PySCF's ``as_scanner``, each new geometry starts its SCF from the previous density
matrix of this calculator. A fresh calculator (one Store job) starts from the converged
density of the nearest geometry this process has already computed with the same method and
species (:class:`DensityGuesses`): along a torsion drive that saves SCF cycles without
changing the converged result (the same ``conv_tol`` decides when it stops).

QM/MM: with ``environment`` set (:func:`ffparam.reference.qmmm.embed`), every SCF runs in
the field of those MM point charges (PySCF ``qmmm``) and a gradient also gives the
gradient on the charges (``PointResult.mm_gradient``).
"""

from __future__ import annotations

import numpy as np

from ffparam.errors import CalculationError, InputError, SCFConvergenceError
from ffparam.reference.methods.base import Calculator
from ffparam.reference.records import PointResult, Species
from ffparam.reference.spec import MethodSpec
from ffparam.units import (
    BOHR_ANGSTROM,
    HARTREE_BOHR2_TO_KCAL_MOL_A2,
    HARTREE_BOHR_TO_KCAL_MOL_A,
    HARTREE_KCAL_MOL,
)

GUESS_MAX_RMSD_A = 0.75
"""Largest root-mean-square displacement (Angstrom, same atom order, no alignment) between
a new geometry and a stored one for the stored density to be the SCF's starting guess.
Farther apart, PySCF's own ``minao`` guess is used (a density from a geometry that far away
can cost more cycles than it saves)."""

GUESS_KEEP = 8
"""Converged densities kept per method and species in one process."""


class DensityGuesses:
    """Converged density matrices of recent geometries, per (method, species), in this
    process: the starting guess for the next SCF of a nearby geometry."""

    def __init__(self, keep: int = GUESS_KEEP) -> None:
        self.keep = keep
        self._entries: dict[tuple, list[tuple[np.ndarray, np.ndarray]]] = {}

    def put(self, key: tuple, geometry: np.ndarray, dm: np.ndarray) -> None:
        entries = self._entries.setdefault(key, [])
        entries.append((np.array(geometry, dtype=np.float64), np.array(dm)))
        del entries[:-self.keep]

    def nearest(self, key: tuple, geometry: np.ndarray,
                max_rmsd: float = GUESS_MAX_RMSD_A) -> np.ndarray | None:
        """The stored density of the geometry closest to ``geometry`` (n_atoms, 3)
        Angstrom, or None when none is within ``max_rmsd`` Angstrom."""
        entries = self._entries.get(key, [])
        if not entries:
            return None
        rmsd = [float(np.sqrt(((g - geometry) ** 2).sum(axis=1).mean())) for g, _ in entries]
        best = int(np.argmin(rmsd))
        return entries[best][1] if rmsd[best] <= max_rmsd else None

    def clear(self) -> None:
        self._entries.clear()


GUESSES = DensityGuesses()
"""This process's store of converged densities (:class:`DensityGuesses`)."""

ESP_CHUNK = 2000
"""Points per batch of three-centre integrals in :func:`electrostatic_potential`."""


class PySCFCalculator(Calculator):
    """PySCF HF/DFT for one species, restarting each SCF from the previous density."""

    has_analytic_hessian = True
    supports_esp = True
    supports_embedding = True
    environment = None
    """MM point charges (:class:`ffparam.reference.qmmm.Environment`) or None."""

    def __init__(self, spec: MethodSpec, species: Species) -> None:
        super().__init__(spec, species)
        self._dm: np.ndarray | None = None
        probe = np.zeros((species.n_atoms, 3))
        probe[:, 0] = 2.0 * np.arange(species.n_atoms)
        self._mole(probe)  # fails early on an unknown basis or element

    def _mole(self, geometry: np.ndarray):
        from pyscf import gto

        atoms = [(int(z), tuple(map(float, xyz))) for z, xyz in zip(self.species.numbers, geometry)]
        try:
            return gto.M(
                atom=atoms,
                unit="Angstrom",
                basis=self.spec.basis,
                charge=self.species.charge,
                spin=self.species.multiplicity - 1,
                verbose=0,
            )
        except (KeyError, RuntimeError, OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(
                f"PySCF cannot set up {self.spec.name} for {self.species.name}: {first}"
            ) from None

    def _guess_key(self) -> tuple | None:
        """Key of this calculator's densities in :data:`GUESSES`; None in an MM
        environment (the density depends on the charges too)."""
        if self.environment is not None:
            return None
        species = self.species
        return (str(self.spec), species.key, tuple(species.numbers), species.charge,
                species.multiplicity)

    def _scf(self, mol):
        from pyscf import dft, scf

        spec = self.spec
        if spec.functional == "hf":
            mf = scf.HF(mol)
        else:
            mf = dft.KS(mol)
            mf.xc = spec.functional
            if spec.grid_level is not None:
                mf.grids.level = spec.grid_level
        if spec.dispersion:
            mf.disp = spec.dispersion
        if spec.density_fit:
            mf = mf.density_fit()
        if spec.max_scf_cycles is not None:
            mf.max_cycle = spec.max_scf_cycles
        if spec.scf_tolerance is not None:
            mf.conv_tol = spec.scf_tolerance
        mf.verbose = 0
        if self.environment is not None:
            from ffparam.reference.qmmm import embed_scf

            mf = embed_scf(mf, self.environment)
        return mf

    def compute(
        self,
        geometry: np.ndarray,
        gradient: bool = False,
        hessian: bool = False,
        esp_points: np.ndarray | None = None,
    ) -> PointResult:
        geometry = np.asarray(geometry, dtype=np.float64).reshape(-1, 3)
        mol = self._mole(geometry)
        mf = self._scf(mol)
        guess_key = self._guess_key()
        dm0 = self._dm
        if dm0 is None and guess_key is not None:
            dm0 = GUESSES.nearest(guess_key, geometry)
        try:
            energy = mf.kernel(dm0=dm0)
        except Exception as exc:
            self._dm = None
            raise CalculationError(f"{self.spec.name}: PySCF SCF failed: {exc}") from None
        if not mf.converged:
            self._dm = None
            raise SCFConvergenceError(
                f"{self.spec.name}: SCF not converged in {mf.max_cycle} cycles"
            )
        dm = mf.make_rdm1()
        self._dm = dm
        if guess_key is not None:
            GUESSES.put(guess_key, geometry, dm)
        total_dm = dm if dm.ndim == 2 else dm[0] + dm[1]
        result = PointResult(
            energy=float(energy) * HARTREE_KCAL_MOL,
            dipole=np.asarray(mf.dip_moment(unit="AU", verbose=0)) * BOHR_ANGSTROM,
            charges=np.asarray(mf.mulliken_pop(verbose=0)[1], dtype=np.float64),
            details={"charges": "mulliken", "scf_cycles": int(getattr(mf, "cycles", -1))},
        )
        if gradient or hessian:
            grad_method = mf.nuc_grad_method()
            grad = grad_method.kernel()
            result.gradient = np.asarray(grad) * HARTREE_BOHR_TO_KCAL_MOL_A
            if self.environment is not None:
                from ffparam.reference.qmmm import mm_gradient

                result.mm_gradient = mm_gradient(grad_method, total_dm)
        if hessian:
            hess = np.asarray(mf.Hessian().kernel())  # (n, n, 3, 3) Hartree/Bohr^2
            n = mol.natm
            result.hessian = hess.transpose(0, 2, 1, 3).reshape(3 * n, 3 * n)
            result.hessian = result.hessian * HARTREE_BOHR2_TO_KCAL_MOL_A2
            result.details["hessian"] = "analytic"
        if esp_points is not None:
            result.esp_points = np.asarray(esp_points, dtype=np.float64)
            result.esp = electrostatic_potential(mol, total_dm, result.esp_points)
        result.check_finite()
        return result


def electrostatic_potential(mol, dm: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Molecular electrostatic potential (m,) in kcal/mol/e at ``points`` (m, 3) Angstrom.

    V(r) = sum_A Z_A / |r - R_A| - sum_{mu nu} D_{mu nu} (mu | 1/|r - r'| | nu),
    the electronic part from three-centre integrals with point charges at ``points``
    (PySCF ``fakemol_for_charges``); computed in atomic units, returned times
    ``HARTREE_KCAL_MOL`` (1 Hartree/e = 627.5 kcal/mol/e).
    """
    from pyscf import df, gto

    points_bohr = np.asarray(points, dtype=np.float64) / BOHR_ANGSTROM
    charges = mol.atom_charges().astype(np.float64)
    coords = mol.atom_coords()
    distances = np.linalg.norm(points_bohr[:, None, :] - coords[None, :, :], axis=-1)
    nuclear = (charges[None, :] / distances).sum(axis=1)
    electronic = np.empty(len(points_bohr))
    for start in range(0, len(points_bohr), ESP_CHUNK):
        chunk = points_bohr[start : start + ESP_CHUNK]
        fake = gto.fakemol_for_charges(chunk)
        ints = df.incore.aux_e2(mol, fake)  # (nao, nao, n_chunk)
        electronic[start : start + len(chunk)] = np.einsum("ijp,ij->p", ints, dm)
    return (nuclear - electronic) * HARTREE_KCAL_MOL
