"""Normal modes and ANI-style normal-mode sampling.

Normal modes: the mass-weighted Hessian M^-1/2 H M^-1/2 with overall translations and
rotations projected out is diagonalized; eigenvalue lambda (kcal/mol/A^2/amu) gives the
wavenumber sqrt(lambda) * ``HESSIAN_EIGENVALUE_TO_WAVENUMBER`` (cm^-1). Each mode's
Cartesian direction q_i = M^-1/2 e_i is normalized, and K_i = q_i^T H q_i is its force
constant (kcal/mol/A^2); the q_i are H-conjugate, so displacing by sum_i R_i q_i costs
sum_i K_i R_i^2 / 2 in the harmonic approximation.

Sampling (Smith, Isayev, Roitberg, Chem. Sci. 8, 3192 (2017), "normal mode sampling"):
for each frame draw c_i >= 0 uniformly with sum_i c_i <= 1 and random signs, and displace
mode i by R_i = +-sqrt(3 c_i N_atoms k_B T / K_i), so the harmonic energy of a frame is
(3/2) N_atoms k_B T sum_i c_i.
"""

from __future__ import annotations

import numpy as np
from rich.progress import Progress

from ffparam.chem import Molecule
from ffparam.errors import CalculationError
from ffparam.reference.compute import RunSummary, make_jobs, run_jobs
from ffparam.reference.records import Task
from ffparam.reference.sampling.base import SampleResult, check_sampling
from ffparam.reference.spec import MethodSpec
from ffparam.reference.store import Store
from ffparam.runtime import Executor
from ffparam.units import BOLTZMANN_KCAL_MOL_K, HESSIAN_EIGENVALUE_TO_WAVENUMBER


def rigid_body_basis(geometry: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Orthonormal mass-weighted translation/rotation vectors (3n, k), k = 5 or 6."""
    x = np.asarray(geometry, dtype=np.float64).reshape(-1, 3)
    centred = x - (masses[:, None] * x).sum(0) / masses.sum()
    sqrt_m = np.sqrt(masses)[:, None]
    vectors = []
    for axis in np.eye(3):
        vectors.append((sqrt_m * axis).reshape(-1))
        vectors.append((sqrt_m * np.cross(axis, centred)).reshape(-1))
    basis = np.array(vectors).T
    u, s, _ = np.linalg.svd(basis, full_matrices=False)
    return u[:, s > 1e-6 * s.max()]


def normal_modes(
    hessian: np.ndarray, masses: np.ndarray, geometry: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vibrational modes of a (3n, 3n) Hessian in kcal/mol/Angstrom^2.

    Returns:
        wavenumbers (n_vib,) cm^-1 (negative for imaginary modes), ascending;
        modes (n_vib, n_atoms, 3) unit Cartesian directions q_i;
        force_constants (n_vib,) K_i = q_i^T H q_i, kcal/mol/Angstrom^2.
    """
    masses = np.asarray(masses, dtype=np.float64)
    inv_sqrt = np.repeat(1.0 / np.sqrt(masses), 3)
    weighted = hessian * inv_sqrt[:, None] * inv_sqrt[None, :]
    rigid = rigid_body_basis(geometry, masses)
    projector = np.eye(len(weighted)) - rigid @ rigid.T
    weighted = projector @ weighted @ projector
    values, vectors = np.linalg.eigh(0.5 * (weighted + weighted.T))
    # drop the rigid-body directions: the eigenvectors with largest overlap with them
    overlap = np.linalg.norm(rigid.T @ vectors, axis=0)
    keep = np.sort(np.argsort(overlap)[: len(values) - rigid.shape[1]])
    values, vectors = values[keep], vectors[:, keep]
    wavenumbers = np.sign(values) * np.sqrt(np.abs(values)) * HESSIAN_EIGENVALUE_TO_WAVENUMBER
    cartesian = vectors * inv_sqrt[:, None]
    cartesian /= np.linalg.norm(cartesian, axis=0)
    force_constants = np.einsum("ai,ab,bi->i", cartesian, hessian, cartesian)
    return wavenumbers, cartesian.T.reshape(len(values), -1, 3), force_constants


def normal_mode_displacements(
    modes: np.ndarray,
    force_constants: np.ndarray,
    n_atoms: int,
    temperature_k: float,
    n_frames: int,
    rng: np.random.Generator,
    min_force_constant: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """ANI-style random displacements (n_frames, n_atoms, 3) Angstrom and their harmonic
    energies (n_frames,) kcal/mol. Force constants are floored at ``min_force_constant``
    kcal/mol/A^2 (soft torsions and imaginary modes would otherwise fly apart)."""
    k = np.maximum(force_constants, min_force_constant)
    n_modes = len(k)
    c = rng.dirichlet(np.ones(n_modes + 1), size=n_frames)[:, :n_modes]  # sum <= 1, uniform
    signs = rng.choice([-1.0, 1.0], size=(n_frames, n_modes))
    amplitudes = signs * np.sqrt(3.0 * c * n_atoms * BOLTZMANN_KCAL_MOL_K * temperature_k / k)
    displacements = np.einsum("fi,iad->fad", amplitudes, modes)
    harmonic = 0.5 * (k * amplitudes**2).sum(axis=1)
    return displacements, harmonic


def sample_normal_modes(
    molecule: Molecule,
    n_frames: int = 10,
    temperature_k: float = 300.0,
    method: MethodSpec | str = "gfn2-xtb",
    store: Store | None = None,
    executor: Executor | None = None,
    *,
    seed: int = 0,
    min_force_constant: float = 2.0,
    retry_failed: bool = False,
    progress: Progress | bool = False,
) -> SampleResult:
    """Optimize ``molecule`` (first conformer) with ``method``, compute its Hessian, and
    return ``n_frames`` normal-mode-sampled frames at ``temperature_k`` (K) with reference
    energies and gradients. ``info`` holds the minimum, wavenumbers and harmonic energies.
    """
    check_sampling({"n_frames": n_frames}, {"temperature_k": temperature_k}, seed)
    if not molecule.n_conformers:
        molecule = molecule.generate_conformers(1, seed=seed)
    spec = MethodSpec.parse(method)
    own = store is None
    store = store if store is not None else Store(":memory:")
    summary = RunSummary()
    try:
        steps = (("optimize", molecule.conformers[:1]), ("hessian", None))
        minimum = None
        for kind, geometries in steps:
            geometries = geometries if geometries is not None else minimum.final_geometry[None]
            jobs = make_jobs(molecule, geometries, spec, Task(kind))
            (record,), part = run_jobs(jobs, store, executor, retry_failed, progress, kind)
            summary.merge(part)
            if not record.ok:
                raise CalculationError(f"normal-mode sampling: {kind} failed: {record.error}")
            minimum = record if kind == "optimize" else minimum
            hessian = record.hessian if kind == "hessian" else None
        x0 = minimum.final_geometry
        wavenumbers, modes, force_constants = normal_modes(hessian, molecule.masses, x0)
        rng = np.random.default_rng(seed)
        displacements, harmonic = normal_mode_displacements(
            modes,
            force_constants,
            molecule.n_atoms,
            temperature_k,
            n_frames,
            rng,
            min_force_constant,
        )
        jobs = make_jobs(molecule, x0[None] + displacements, spec, Task("gradient"))
        records, part = run_jobs(jobs, store, executor, retry_failed, progress, "NM frames")
        summary.merge(part)
    finally:
        if own:
            store.close()
    info = {
        "temperature_k": temperature_k,
        "minimum_energy": minimum.energy,
        "minimum_geometry": x0,
        "wavenumbers": wavenumbers,
        "force_constants": force_constants,
        "harmonic_energies": harmonic,
        "seed": seed,
    }
    return SampleResult(molecule, records, summary, info)
