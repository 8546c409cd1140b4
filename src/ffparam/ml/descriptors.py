"""Behler-Parrinello / ANI atomic environment vectors (AEVs) and smooth cutoffs.

For atom i with neighbours j, k (distances R_ij, angle theta_ijk at i), following Smith,
Isayev & Roitberg, Chem. Sci. 8, 3192 (2017), with the conventions of the NeuroChem/TorchANI
implementations so that the vectors can be checked against ``torchani.AEVComputer``:

* cutoff  f_c(R) = 0.5 cos(pi R / R_c) + 0.5 for R < R_c, else 0
* radial  G^R_{i,s,m} = sum_{j of element s} 0.25 exp(-eta_R (R_ij - R_m)^2) f_c(R_ij)
* angular G^A_{i,(s,t),m,n} = sum_{j<k, elements {s,t}} 2 ((1 + cos(theta'_ijk - theta_n))/2)^zeta
  exp(-eta_A ((R_ij + R_ik)/2 - R_m)^2) f_c(R_ij) f_c(R_ik)

with theta' = arccos(0.95 cos theta) (the damping keeps the gradient finite for collinear
triples). The AEV of atom i is [G^R for each element s (shifts fastest)] followed by
[G^A for each unordered element pair (s <= t) in row-major upper-triangle order, with
radial shifts outer and angular sections inner]. Units: Angstrom in, dimensionless out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ffparam.errors import InputError
from ffparam.settings import Settings, require_positive


def cosine_cutoff(r: torch.Tensor, cutoff: float) -> torch.Tensor:
    """f_c(r) = 0.5 cos(pi r / r_c) + 0.5 inside the cutoff, 0 outside (dimensionless)."""
    return torch.where(r < cutoff, 0.5 * torch.cos(math.pi * r / cutoff) + 0.5, torch.zeros_like(r))


def _linspace(start: float, stop: float, num: int) -> tuple[float, ...]:
    return tuple(float(x) for x in np.linspace(start, stop, num, endpoint=False))


@dataclass(frozen=True)
class AEVSettings(Settings):
    """AEV hyperparameters (Angstrom, Angstrom^-2, radians). Defaults: ANI-1x values.

    The field names are TorchANI's and those of the ``aev`` section of a saved ANI
    network's ``model.json`` (cutoffs and shifts in Angstrom, etas in Angstrom^-2, sections
    in radians).
    """

    what = "AEV settings"

    radial_cutoff: float = 5.2
    radial_eta: float = 16.0
    radial_shifts: tuple[float, ...] = field(default_factory=lambda: _linspace(0.9, 5.2, 16))
    angular_cutoff: float = 3.5
    angular_eta: float = 8.0
    angular_zeta: float = 32.0
    angular_shifts: tuple[float, ...] = field(default_factory=lambda: _linspace(0.9, 3.5, 4))
    angular_sections: tuple[float, ...] = field(
        default_factory=lambda: _linspace(math.pi / 16, math.pi + math.pi / 16, 8)
    )
    angle_damping: float = 0.95

    def __post_init__(self) -> None:
        require_positive(self, "radial_cutoff", "radial_eta", "angular_cutoff", "angular_eta",
                         "angular_zeta", "angle_damping")
        for name in ("radial_shifts", "angular_shifts", "angular_sections"):
            values = tuple(float(v) for v in getattr(self, name))
            if not values:
                raise InputError(f"{self.what}: {name} must not be empty")
            object.__setattr__(self, name, values)


def angular_triples(center: torch.Tensor, n_atoms_total: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs of pair indices (p, q), p < q, that share the same centre atom.

    Args:
        center: (P,) centre atom of each directed pair, sorted (non-decreasing).
        n_atoms_total: number of atoms A.

    Returns:
        Two (T,) int64 tensors indexing into the pairs: every unordered pair of neighbours
        of each centre appears once. Built on a padded (A, m_max) table, no Python loops.
    """
    if center.numel() == 0:
        empty = torch.zeros(0, dtype=torch.int64)
        return empty, empty
    counts = torch.bincount(center, minlength=n_atoms_total)
    m_max = int(counts.max())
    start = torch.cumsum(counts, 0) - counts
    rank = torch.arange(center.numel()) - start[center]
    table = torch.full((n_atoms_total, m_max), -1, dtype=torch.int64)
    table[center, rank] = torch.arange(center.numel())
    a, b = torch.triu_indices(m_max, m_max, offset=1)
    p, q = table[:, a], table[:, b]
    keep = (p >= 0) & (q >= 0)
    return p[keep], q[keep]


class AEVComputer(torch.nn.Module):
    """Atomic environment vectors for atoms of the given elements.

    Args:
        elements: sorted atomic numbers the computer knows (species index = position).
        params: AEV hyperparameters.
    """

    def __init__(self, elements: Sequence[int], params: AEVSettings | None = None) -> None:
        super().__init__()
        self.params = params or AEVSettings()
        p = self.params
        if p.angular_cutoff > p.radial_cutoff:
            raise ValueError("angular cutoff must not exceed the radial cutoff")
        self.n_species = len(elements)
        self.n_radial = len(p.radial_shifts)
        self.n_angular = len(p.angular_shifts) * len(p.angular_sections)
        n_pairs = self.n_species * (self.n_species + 1) // 2
        self.n_species_pairs = n_pairs
        self.dim = self.n_species * self.n_radial + n_pairs * self.n_angular
        s1, s2 = torch.triu_indices(self.n_species, self.n_species)
        pair_index = torch.zeros(self.n_species, self.n_species, dtype=torch.int64)
        pair_index[s1, s2] = torch.arange(n_pairs)
        pair_index[s2, s1] = torch.arange(n_pairs)
        self.register_buffer("pair_index", pair_index, persistent=False)
        self.register_buffer("radial_shifts", torch.tensor(p.radial_shifts), persistent=False)
        self.register_buffer("angular_shifts", torch.tensor(p.angular_shifts), persistent=False)
        self.register_buffer("sections", torch.tensor(p.angular_sections), persistent=False)

    @property
    def cutoff(self) -> float:
        return self.params.radial_cutoff

    def forward(
        self,
        species: torch.Tensor,
        positions: torch.Tensor,
        pair_i: torch.Tensor,
        pair_j: torch.Tensor,
    ) -> torch.Tensor:
        """AEVs of all atoms.

        Args:
            species: (A,) species index 0..n_species-1 of each atom.
            positions: (A, 3) Angstrom (may require grad).
            pair_i, pair_j: (P,) directed neighbour pairs within the radial cutoff, sorted
                by ``pair_i`` (as returned by :func:`ffparam.ml.batch.neighbor_pairs`).

        Returns:
            (A, dim) AEVs, dtype of ``positions``.
        """
        p = self.params
        n_atoms = species.shape[0]
        vec = positions[pair_j] - positions[pair_i]
        dist = vec.norm(dim=1)
        dtype = positions.dtype
        shifts_r = self.radial_shifts.to(dtype)
        radial_terms = 0.25 * torch.exp(-p.radial_eta * (dist.unsqueeze(1) - shifts_r) ** 2)
        radial_terms = radial_terms * cosine_cutoff(dist, p.radial_cutoff).unsqueeze(1)
        radial = positions.new_zeros(n_atoms * self.n_species, self.n_radial)
        radial.index_add_(0, pair_i * self.n_species + species[pair_j], radial_terms)

        inside = (dist < p.angular_cutoff).nonzero(as_tuple=True)[0]
        a_i, a_j = pair_i[inside], pair_j[inside]
        a_vec, a_dist = vec[inside], dist[inside]
        t1, t2 = angular_triples(a_i, n_atoms)
        d1, d2 = a_dist[t1], a_dist[t2]
        cos = (a_vec[t1] * a_vec[t2]).sum(1) / torch.clamp(d1 * d2, min=1e-10)
        theta = torch.acos(p.angle_damping * cos)
        angle_part = (
            2.0
            * ((1.0 + torch.cos(theta.unsqueeze(1) - self.sections.to(dtype))) / 2.0)
            ** p.angular_zeta
        )
        mean_d = 0.5 * (d1 + d2)
        dist_part = torch.exp(
            -p.angular_eta * (mean_d.unsqueeze(1) - self.angular_shifts.to(dtype)) ** 2
        )
        fc = cosine_cutoff(d1, p.angular_cutoff) * cosine_cutoff(d2, p.angular_cutoff)
        terms = (dist_part.unsqueeze(2) * angle_part.unsqueeze(1)).flatten(1) * fc.unsqueeze(1)
        pair_species = self.pair_index[species[a_j[t1]], species[a_j[t2]]]
        angular = positions.new_zeros(n_atoms * self.n_species_pairs, self.n_angular)
        angular.index_add_(0, a_i[t1] * self.n_species_pairs + pair_species, terms)
        return torch.cat([radial.view(n_atoms, -1), angular.view(n_atoms, -1)], dim=1)
