"""Lennard-Jones energy of saved frames as an analytic function of the LJ parameters.

OpenMM's liquid Hamiltonian (see :mod:`ffparam.liquid.openmm_system`) has, for LJ,

* every non-excluded, non-1-4 pair i < j within the cutoff r_c (minimum image, intra- and
  intermolecular alike): 4 eps_ij [(s_ij/r)^12 - (s_ij/r)^6] S(r), with the switch
  S = 1 - 10 x^3 + 15 x^4 - 6 x^5, x = (r - r_s)/(r_c - r_s) for r_s < r < r_c (S = 1
  below r_s; no switch: S = 1 up to r_c);
* every 1-4 pair, scaled by ``lj_scale`` (0.5 in Sage), without cutoff or switch;
* the long-range dispersion correction E_LRC = C(theta) / V for a uniform fluid beyond
  the switched cutoff, averaged as OpenMM does over all N(N+1)/2 particle pairs i <= j:
  C = 8 pi N^2 <eps_ij [s_ij^12 A12 - s_ij^6 A6]>, with
  A12 = 1/(9 r_c^9) + int_{r_s}^{r_c} r^-10 (1 - S) dr and
  A6  = 1/(3 r_c^3) + int_{r_s}^{r_c} r^-4 (1 - S) dr (Gauss-Legendre quadrature),
  i.e. C/V = (N^2 / 2V) <int 4 pi r^2 u_ij(r) [1 - S(r)] dr> over r > r_s (S = 0 past r_c).

Mixing is Lorentz-Berthelot: s_ij = (s_i + s_j)/2, eps_ij = sqrt(eps_i eps_j).

The geometry enters only through per-frame sums over each pair of atom *types* (atoms
sharing one sigma and one epsilon parameter): C12_ab = sum S(r) w / r^12 and
C6_ab = sum S(r) w / r^6 (w = 1, or the 1-4 scale), so

    U_LJ(theta) = sum_ab 4 eps_ab (s_ab^12 C12_ab - s_ab^6 C6_ab) + C(theta) / V,

which is linear in the frame statistics and analytic in theta. :class:`LJModel` evaluates
it and its exact derivative dU/dtheta for every frame with PyTorch; the same statistics
reweight frames to other parameters. Electrostatics (PME) do not depend on LJ
parameters, so the LJ energy carries the whole parameter dependence of U needed for vdW
gradients. Neighbour search: scipy's periodic cKDTree; pair terms in float64 torch.

Units: Angstrom, kcal/mol; sigma in Angstrom, epsilon in kcal/mol.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ffparam.errors import InputError
from ffparam.io.atomic import atomic_output
from ffparam.params.parameter_set import ParameterKey
from ffparam.params.system import ParameterizedSystem

Tensor = torch.Tensor


@dataclass
class LJLayout:
    """LJ bookkeeping of one molecule, replicated over a box.

    Attributes:
        n_atoms: atoms per molecule.
        atom_type: int64 (n_atoms,) type of each atom (0..n_types-1).
        sigma_index, epsilon_index: int64 (n_types,) positions of each type's sigma and
            epsilon in the system's parameter vector.
        type_keys: per type, (sigma key, epsilon key).
        special: bool (n_atoms, n_atoms) pairs that are not ordinary pairs (excluded
            1-2/1-3, 1-4).
        pairs_14: int64 (n14, 2) local 1-4 pairs; scale_14: float64 (n14,) their LJ scale.
        pairs_intra: int64 (m, 2) ordinary intramolecular pairs (gas phase).
        type_pair: int64 (n_types, n_types) index of the unordered type pair.
        type_counts: int64 (n_types,) atoms of each type per molecule.
        lj_free_particles: particles per molecule without LJ (the Drude particles of a
            Drude system, :mod:`ffparam.liquid.drude`): they count in OpenMM's
            dispersion-correction average over all particle pairs.
    """

    n_atoms: int
    atom_type: np.ndarray
    sigma_index: np.ndarray
    epsilon_index: np.ndarray
    type_keys: list[tuple[ParameterKey, ParameterKey]]
    special: np.ndarray
    pairs_14: np.ndarray
    scale_14: np.ndarray
    pairs_intra: np.ndarray
    type_pair: np.ndarray
    type_counts: np.ndarray
    lj_free_particles: int = 0

    @property
    def n_types(self) -> int:
        return len(self.sigma_index)

    @property
    def n_type_pairs(self) -> int:
        return self.n_types * (self.n_types + 1) // 2

    @classmethod
    def from_system(cls, system: ParameterizedSystem) -> LJLayout:
        nb = system.nonbonded
        if nb.combining_rule != "lorentz-berthelot":
            raise InputError(f"liquid LJ gradients need Lorentz-Berthelot mixing, not "
                             f"{nb.combining_rule}")
        if len(nb.nbfix_rows):
            raise InputError("pair-specific LJ (NBFix) is not supported in liquid boxes")
        combos = np.stack([nb.sigma_index, nb.epsilon_index], axis=1)
        unique, atom_type = np.unique(combos, axis=0, return_inverse=True)
        atom_type = atom_type.reshape(-1).astype(np.int64)
        keys = system.parameters.keys()
        n = system.n_atoms
        special = np.zeros((n, n), dtype=bool)
        excl = system.topology.exclusions
        special[excl[:, 0], excl[:, 1]] = special[excl[:, 1], excl[:, 0]] = True
        scaled = (nb.lj_scale != 1.0) | (nb.coulomb_scale != 1.0)
        pairs_14 = nb.pairs[scaled].astype(np.int64).reshape(-1, 2)
        special[pairs_14[:, 0], pairs_14[:, 1]] = special[pairs_14[:, 1], pairs_14[:, 0]] = True
        ordinary = nb.pairs[~scaled].astype(np.int64).reshape(-1, 2)
        nt = len(unique)
        type_pair = np.zeros((nt, nt), dtype=np.int64)
        a, b = np.triu_indices(nt)
        type_pair[a, b] = type_pair[b, a] = np.arange(len(a))
        return cls(
            n_atoms=n,
            atom_type=atom_type,
            sigma_index=unique[:, 0].astype(np.int64),
            epsilon_index=unique[:, 1].astype(np.int64),
            type_keys=[(keys[s], keys[e]) for s, e in unique.tolist()],
            special=special,
            pairs_14=pairs_14,
            scale_14=np.asarray(nb.lj_scale[scaled], dtype=np.float64),
            pairs_intra=ordinary,
            type_pair=type_pair,
            type_counts=np.bincount(atom_type, minlength=nt).astype(np.int64),
            lj_free_particles=0 if system.drude is None else len(system.drude),
        )


@dataclass
class CutoffScheme:
    """Cutoff treatment, Angstrom: ``cutoff_a``, ``switch_a`` (None = none), ``lrc`` (on/off)."""

    cutoff_a: float
    switch_a: float | None
    lrc: bool = True

    def switch_function(self, r: Tensor) -> Tensor:
        """S(r) (dimensionless), 1 below the switch, 0 beyond the cutoff."""
        inside = (r < self.cutoff_a).to(r.dtype)
        if self.switch_a is None:
            return inside
        x = ((r - self.switch_a) / (self.cutoff_a - self.switch_a)).clamp(0.0, 1.0)
        return (1.0 - 10.0 * x**3 + 15.0 * x**4 - 6.0 * x**5) * inside

    def tail_integrals(self) -> tuple[float, float]:
        """(A12, A6) of the module docstring, Angstrom^-9 and Angstrom^-3."""
        rc = self.cutoff_a
        a12, a6 = 1.0 / (9.0 * rc**9), 1.0 / (3.0 * rc**3)
        if self.switch_a is not None:
            nodes, weights = np.polynomial.legendre.leggauss(64)
            half = 0.5 * (rc - self.switch_a)
            r = torch.as_tensor(self.switch_a + half * (nodes + 1.0), dtype=torch.float64)
            w = torch.as_tensor(weights * half, dtype=torch.float64)
            one_minus_s = 1.0 - self.switch_function(r)
            a12 += float((w * one_minus_s * r**-10).sum())
            a6 += float((w * one_minus_s * r**-4).sum())
        return a12, a6


@dataclass
class FrameStatistics:
    """Per-frame LJ sums (see the module docstring).

    Attributes:
        c12, c6: float64 (n_frames, n_type_pairs), Angstrom^-12 and Angstrom^-6.
        inverse_volume: float64 (n_frames,) 1/V in Angstrom^-3 (0 for the gas phase).
        n_molecules: molecules per frame (1 for the gas phase).
    """

    c12: np.ndarray
    c6: np.ndarray
    inverse_volume: np.ndarray
    n_molecules: int

    def __len__(self) -> int:
        return len(self.inverse_volume)

    def save(self, path) -> None:
        """Write the arrays to ``path`` (``.npz``) atomically."""
        with atomic_output(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, c12=self.c12, c6=self.c6, inverse_volume=self.inverse_volume,
                     n_molecules=self.n_molecules)

    @classmethod
    def load(cls, path) -> FrameStatistics:
        with np.load(path) as data:
            return cls(data["c12"], data["c6"], data["inverse_volume"],
                       int(data["n_molecules"]))


def _type_pair_sums(layout: LJLayout, ti: np.ndarray, tj: np.ndarray, weight: Tensor,
                    r: Tensor) -> tuple[np.ndarray, np.ndarray]:
    inv6 = r.pow(-6) * weight
    inv12 = r.pow(-12) * weight
    index = torch.as_tensor(layout.type_pair[ti, tj])
    c12 = torch.zeros(layout.n_type_pairs, dtype=torch.float64).index_add_(0, index, inv12)
    c6 = torch.zeros(layout.n_type_pairs, dtype=torch.float64).index_add_(0, index, inv6)
    return c12.numpy(), c6.numpy()


def box_frame_statistics(layout: LJLayout, positions: np.ndarray, box_lengths: np.ndarray,
                         scheme: CutoffScheme) -> FrameStatistics:
    """LJ sums of liquid frames.

    Args:
        layout: the molecule's layout.
        positions: (n_frames, n_molecules * n_atoms, 3) Angstrom (any wrapping).
        box_lengths: (n_frames, 3) orthorhombic box edges, Angstrom.
        scheme: cutoff, switch and dispersion correction of the simulation.
    """
    from scipy.spatial import cKDTree

    positions = np.asarray(positions, dtype=np.float64)
    box_lengths = np.asarray(box_lengths, dtype=np.float64).reshape(-1, 3)
    n_frames, n_total, _ = positions.shape
    n = layout.n_atoms
    if n_total % n:
        raise InputError(f"{n_total} atoms is not a whole number of {n}-atom molecules")
    if np.any(box_lengths < 2.0 * scheme.cutoff_a):
        raise InputError("a box edge is shorter than twice the cutoff")
    n_mol = n_total // n
    types = np.tile(layout.atom_type, n_mol)
    p14 = (np.arange(n_mol)[:, None, None] * n + layout.pairs_14[None]).reshape(-1, 2)
    s14 = torch.as_tensor(np.tile(layout.scale_14, n_mol))
    c12 = np.zeros((n_frames, layout.n_type_pairs))
    c6 = np.zeros((n_frames, layout.n_type_pairs))
    for f in range(n_frames):
        lengths = box_lengths[f]
        wrapped = np.mod(positions[f], lengths)
        wrapped[wrapped >= lengths] = 0.0  # guard the half-open interval against rounding
        pairs = cKDTree(wrapped, boxsize=lengths).query_pairs(scheme.cutoff_a,
                                                              output_type="ndarray")
        i, j = pairs[:, 0], pairs[:, 1]
        same = (i // n) == (j // n)
        keep = ~(same & layout.special[i % n, j % n])
        i, j = i[keep], j[keep]
        r = _minimum_image_distance(positions[f], i, j, lengths)
        a12, a6 = _type_pair_sums(layout, types[i], types[j], scheme.switch_function(r), r)
        if len(p14):
            r14 = _minimum_image_distance(positions[f], p14[:, 0], p14[:, 1], lengths)
            b12, b6 = _type_pair_sums(layout, types[p14[:, 0]], types[p14[:, 1]], s14, r14)
            a12, a6 = a12 + b12, a6 + b6
        c12[f], c6[f] = a12, a6
    inverse_volume = 1.0 / np.prod(box_lengths, axis=1)
    return FrameStatistics(c12, c6, inverse_volume, n_mol)


def gas_frame_statistics(layout: LJLayout, positions: np.ndarray) -> FrameStatistics:
    """LJ sums of single-molecule frames (no cutoff, no periodicity): ordinary pairs and
    scaled 1-4 pairs. ``positions`` (n_frames, n_atoms, 3) Angstrom."""
    positions = torch.as_tensor(np.asarray(positions, dtype=np.float64))
    n_frames = positions.shape[0]
    c12 = np.zeros((n_frames, layout.n_type_pairs))
    c6 = np.zeros((n_frames, layout.n_type_pairs))
    groups = [(layout.pairs_intra, np.ones(len(layout.pairs_intra))),
              (layout.pairs_14, layout.scale_14)]
    t = layout.atom_type
    for pairs, scale in groups:
        if not len(pairs):
            continue
        delta = positions[:, pairs[:, 1]] - positions[:, pairs[:, 0]]
        r = torch.linalg.vector_norm(delta, dim=-1)  # (F, m)
        w = torch.as_tensor(scale)
        index = torch.as_tensor(layout.type_pair[t[pairs[:, 0]], t[pairs[:, 1]]])
        c12 += torch.zeros(n_frames, layout.n_type_pairs, dtype=torch.float64).index_add_(
            1, index, r.pow(-12) * w).numpy()
        c6 += torch.zeros(n_frames, layout.n_type_pairs, dtype=torch.float64).index_add_(
            1, index, r.pow(-6) * w).numpy()
    return FrameStatistics(c12, c6, np.zeros(n_frames), 1)


def _minimum_image_distance(xyz: np.ndarray, i: np.ndarray, j: np.ndarray,
                            lengths: np.ndarray) -> Tensor:
    delta = torch.as_tensor(xyz[j] - xyz[i])
    box = torch.as_tensor(lengths)
    delta = delta - box * torch.round(delta / box)
    return torch.linalg.vector_norm(delta, dim=-1)


class LJModel:
    """U_LJ(theta) and dU_LJ/dtheta of saved frames (see the module docstring).

    Args:
        layout: the molecule's layout.
        scheme: the cutoff scheme (its dispersion correction is used for box frames).
    """

    def __init__(self, layout: LJLayout, scheme: CutoffScheme) -> None:
        self.layout = layout
        self.scheme = scheme
        self._a12, self._a6 = scheme.tail_integrals()
        nt = layout.n_types
        a, b = np.triu_indices(nt)
        self._pair_a = torch.as_tensor(a)
        self._pair_b = torch.as_tensor(b)

    def type_parameters(self, values: np.ndarray | Tensor) -> tuple[Tensor, Tensor]:
        """Per-type (sigma, epsilon) from a full parameter vector (internal units)."""
        v = torch.as_tensor(values, dtype=torch.float64)
        return (v[torch.as_tensor(self.layout.sigma_index)],
                v[torch.as_tensor(self.layout.epsilon_index)])

    def coefficients(self, sigma: Tensor, epsilon: Tensor, n_molecules: int
                     ) -> tuple[Tensor, Tensor, Tensor]:
        """(a12, a6, lrc): U = C12 . a12 - C6 . a6 + lrc / V, where a12 = 4 eps_ab s_ab^12,
        a6 = 4 eps_ab s_ab^6 per type pair (kcal/mol A^12, kcal/mol A^6) and lrc is the
        dispersion-correction numerator C (kcal/mol A^3) for ``n_molecules``."""
        sa, sb = sigma[self._pair_a], sigma[self._pair_b]
        ea, eb = epsilon[self._pair_a], epsilon[self._pair_b]
        s_ab = 0.5 * (sa + sb)
        e_ab = _safe_sqrt(ea * eb)
        s6 = s_ab**6
        a12, a6 = 4.0 * e_ab * s6 * s6, 4.0 * e_ab * s6
        if not self.scheme.lrc or n_molecules <= 1:
            return a12, a6, sigma.new_zeros(())
        counts = torch.as_tensor(self.layout.type_counts * n_molecules, dtype=torch.float64)
        g = e_ab * (s6 * s6 * self._a12 - s6 * self._a6)  # per unordered type pair
        na, nb = counts[self._pair_a], counts[self._pair_b]
        same = self._pair_a == self._pair_b
        # sum over particle pairs i <= j: same type n(n+1)/2, different types n_a n_b
        pair_count = torch.where(same, na * (na + 1.0) / 2.0, na * nb)
        n_total = counts.sum() + self.layout.lj_free_particles * n_molecules
        mean = (pair_count * g).sum() / (n_total * (n_total + 1.0) / 2.0)
        return a12, a6, 8.0 * math.pi * n_total**2 * mean

    def energies(self, stats: FrameStatistics, values: np.ndarray | Tensor) -> Tensor:
        """U_LJ per frame (n_frames,) kcal/mol at parameter vector ``values``."""
        sigma, epsilon = self.type_parameters(values)
        a12, a6, lrc = self.coefficients(sigma, epsilon, stats.n_molecules)
        c12 = torch.as_tensor(stats.c12)
        c6 = torch.as_tensor(stats.c6)
        inv_v = torch.as_tensor(stats.inverse_volume)
        return c12 @ a12 - c6 @ a6 + lrc * inv_v

    def gradients(self, stats: FrameStatistics, values: np.ndarray | Tensor,
                  keys: list[ParameterKey]) -> np.ndarray:
        """dU_LJ/dtheta per frame, (n_frames, len(keys)) in kcal/mol per internal unit
        (kcal/mol/A for sigma, dimensionless for epsilon), exact (autograd of the
        analytic coefficients, contracted with the frame sums); keys of parameters this
        molecule does not use get zero columns."""
        sigma, epsilon = self.type_parameters(values)
        nt = self.layout.n_types

        def coefficient_vector(theta: Tensor) -> Tensor:
            a12, a6, lrc = self.coefficients(theta[:nt], theta[nt:], stats.n_molecules)
            return torch.cat([a12, a6, lrc.reshape(1)])

        theta = torch.cat([sigma, epsilon]).detach()
        jac = torch.autograd.functional.jacobian(coefficient_vector, theta).numpy()
        features = np.concatenate([stats.c12, -stats.c6, stats.inverse_volume[:, None]],
                                  axis=1)  # (F, 2 T + 1)
        per_type = features @ jac  # (F, 2 n_types): d/dsigma_t then d/depsilon_t
        column = {key: c for c, key in enumerate(keys)}
        out = np.zeros((len(stats), len(keys)))
        for t, (sigma_key, epsilon_key) in enumerate(self.layout.type_keys):
            if sigma_key in column:
                out[:, column[sigma_key]] += per_type[:, t]
            if epsilon_key in column:
                out[:, column[epsilon_key]] += per_type[:, nt + t]
        return out


def _safe_sqrt(x: Tensor) -> Tensor:
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))),
                       torch.zeros_like(x))
