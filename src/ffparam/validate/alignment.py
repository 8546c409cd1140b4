"""Optimal superposition (Kabsch) and RMSD of Cartesian structures.

For mobile coordinates X and target Y (N x 3, Angstrom), both centred on the centroid of the
selected atoms, the rotation minimizing sum_i |R x_i - y_i|^2 comes from the SVD of the
covariance H = X^T Y = U S V^T: R = V diag(1, 1, d) U^T with d = sign(det(V U^T)), which
excludes reflections (Kabsch 1976, Acta Cryst. A32, 922; 1978, A34, 827). The RMSD after
superposition is sqrt(1/N sum_i |R x_i + t - y_i|^2).
"""

from __future__ import annotations

import numpy as np

from ffparam.errors import InputError


def _as_batch(coords: np.ndarray, name: str) -> np.ndarray:
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim not in (2, 3) or coords.shape[-1] != 3:
        raise InputError(f"{name} must have shape (n_atoms, 3) or (n, n_atoms, 3), "
                         f"got {coords.shape}")
    return coords


def superpose(mobile: np.ndarray, target: np.ndarray,
              atoms: np.ndarray | None = None) -> np.ndarray:
    """``mobile`` rotated and translated onto ``target`` by the Kabsch fit of ``atoms``.

    Args:
        mobile, target: (n_atoms, 3) or (n, n_atoms, 3) Angstrom (broadcast over the batch).
        atoms: indices of the atoms that define the fit (default all).

    Returns:
        all atoms of ``mobile`` after the superposition, shape of the broadcast batch.
    """
    mobile, target = _as_batch(mobile, "mobile"), _as_batch(target, "target")
    if mobile.shape[-2] != target.shape[-2]:
        raise InputError(f"mobile has {mobile.shape[-2]} atoms, target {target.shape[-2]}")
    sel = np.arange(mobile.shape[-2]) if atoms is None else np.asarray(atoms, dtype=np.int64)
    if sel.size == 0:
        raise InputError("superposition needs at least one atom")
    mobile_sel, target_sel = mobile[..., sel, :], target[..., sel, :]
    mobile_centre = mobile_sel.mean(axis=-2, keepdims=True)
    target_centre = target_sel.mean(axis=-2, keepdims=True)
    covariance = np.swapaxes(mobile_sel - mobile_centre, -1, -2) @ (target_sel - target_centre)
    u, _, vt = np.linalg.svd(covariance)
    v = np.swapaxes(vt, -1, -2)
    sign = np.sign(np.linalg.det(v @ np.swapaxes(u, -1, -2)))
    sign = np.where(sign == 0, 1.0, sign)
    diagonal = np.ones((*sign.shape, 3))
    diagonal[..., 2] = sign
    rotation = (v * diagonal[..., None, :]) @ np.swapaxes(u, -1, -2)  # R = V D U^T
    return (mobile - mobile_centre) @ np.swapaxes(rotation, -1, -2) + target_centre


def kabsch_rmsd(mobile: np.ndarray, target: np.ndarray,
                atoms: np.ndarray | None = None) -> np.ndarray | float:
    """RMSD (Angstrom) over ``atoms`` after optimal superposition of those atoms.

    Shapes as in :func:`superpose`; returns a float for single structures, else (n,).
    """
    mobile, target = _as_batch(mobile, "mobile"), _as_batch(target, "target")
    sel = np.arange(mobile.shape[-2]) if atoms is None else np.asarray(atoms, dtype=np.int64)
    aligned = superpose(mobile, target, sel)
    diff = aligned[..., sel, :] - target[..., sel, :]
    rmsd = np.sqrt(np.mean(np.sum(diff**2, axis=-1), axis=-1))
    return float(rmsd) if np.ndim(rmsd) == 0 else rmsd


def heavy_atoms(atomic_numbers: np.ndarray) -> np.ndarray:
    """Indices of the non-hydrogen atoms (all atoms if there are none)."""
    numbers = np.asarray(atomic_numbers)
    heavy = np.flatnonzero(numbers > 1)
    return heavy if heavy.size else np.arange(numbers.size)
