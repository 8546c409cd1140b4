"""SchNet-style continuous-filter convolution network (Schutt et al., J. Chem. Phys. 148,
241722 (2018)).

Atoms start from an element embedding x_i^0. Each interaction block updates

    v_i = sum_j (W1 x_j) * W(r_ij) f_c(r_ij),     W(r) = Dense(ssp(Dense(rbf(r))))
    x_i <- x_i + Dense(ssp(Dense(v_i)))

with rbf_k(r) = exp(-gamma (r - mu_k)^2) on an even grid mu_k in [0, r_c], the cosine
cutoff f_c and the shifted softplus ssp(x) = ln(1 + e^x) - ln 2. A two-layer readout maps
x_i to the per-atom output. Distances in Angstrom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ffparam.ml.batch import neighbor_pairs
from ffparam.ml.descriptors import cosine_cutoff
from ffparam.ml.models.base import AtomisticModel


class ShiftedSoftplus(torch.nn.Module):
    """ssp(x) = softplus(x) - ln 2 (zero at the origin, smooth)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.softplus(x) - math.log(2.0)


class Interaction(torch.nn.Module):
    """One continuous-filter convolution block with a residual update."""

    def __init__(self, n_features: int, n_rbf: int) -> None:
        super().__init__()
        self.filter = torch.nn.Sequential(
            torch.nn.Linear(n_rbf, n_features),
            ShiftedSoftplus(),
            torch.nn.Linear(n_features, n_features),
        )
        self.atom_in = torch.nn.Linear(n_features, n_features, bias=False)
        self.atom_out = torch.nn.Sequential(
            torch.nn.Linear(n_features, n_features),
            ShiftedSoftplus(),
            torch.nn.Linear(n_features, n_features),
        )

    def forward(
        self,
        x: torch.Tensor,
        rbf: torch.Tensor,
        fc: torch.Tensor,
        pair_i: torch.Tensor,
        pair_j: torch.Tensor,
    ) -> torch.Tensor:
        w = self.filter(rbf) * fc.unsqueeze(1)
        messages = self.atom_in(x)[pair_j] * w
        v = x.new_zeros(x.shape).index_add(0, pair_i, messages)
        return x + self.atom_out(v)


class SchNetModel(AtomisticModel):
    """SchNet-style message passing network.

    Args:
        elements: atomic numbers the model handles.
        cutoff: neighbour cutoff in Angstrom.
        n_features: width of the atom features and filters.
        n_rbf: number of Gaussian radial basis functions.
        n_interactions: number of interaction blocks.
    """

    model_type = "schnet"

    def __init__(
        self,
        elements: Sequence[int],
        cutoff: float = 5.0,
        n_features: int = 64,
        n_rbf: int = 32,
        n_interactions: int = 3,
    ) -> None:
        super().__init__(elements)
        self._cutoff = float(cutoff)
        self.n_features = int(n_features)
        self.n_rbf = int(n_rbf)
        self.n_interactions = int(n_interactions)
        self.embedding = torch.nn.Embedding(len(self.element_list), self.n_features)
        self.interactions = torch.nn.ModuleList(
            Interaction(self.n_features, self.n_rbf) for _ in range(self.n_interactions)
        )
        self.readout = torch.nn.Sequential(
            torch.nn.Linear(self.n_features, self.n_features // 2),
            ShiftedSoftplus(),
            torch.nn.Linear(self.n_features // 2, 1),
        )
        spacing = self._cutoff / (self.n_rbf - 1)
        self.rbf_gamma = 0.5 / spacing**2
        self.register_buffer(
            "rbf_centers", torch.linspace(0.0, self._cutoff, self.n_rbf), persistent=False
        )

    @property
    def cutoff(self) -> float:
        return self._cutoff

    def config(self) -> dict:
        return {
            "elements": list(self.element_list),
            "cutoff": self._cutoff,
            "n_features": self.n_features,
            "n_rbf": self.n_rbf,
            "n_interactions": self.n_interactions,
        }

    def raw_atom_outputs(
        self, species: torch.Tensor, positions: torch.Tensor, n_atoms: torch.Tensor
    ) -> torch.Tensor:
        i, j = neighbor_pairs(positions, n_atoms, self._cutoff)
        dist = (positions[j] - positions[i]).norm(dim=1)
        centers = self.rbf_centers.to(positions.dtype)
        rbf = torch.exp(-self.rbf_gamma * (dist.unsqueeze(1) - centers) ** 2)
        fc = cosine_cutoff(dist, self._cutoff)
        x = self.embedding(species)
        for block in self.interactions:
            x = block(x, rbf, fc, i, j)
        return self.readout(x).squeeze(1)
