"""ANI / Behler-Parrinello network: AEV descriptors, one feed-forward network per element.

e_i = NN_{Z_i}((G_i - mu) / sigma), with G_i the atomic environment vector of atom i
(:mod:`ffparam.ml.descriptors`) standardized by training-set statistics (mu, sigma are
buffers saved with the weights) and NN_Z a multilayer perceptron with CELU(0.1) activations
(the ANI-1x choice).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ffparam.ml.batch import neighbor_pairs
from ffparam.ml.descriptors import AEVComputer, AEVSettings
from ffparam.ml.models.base import AtomisticModel


def _mlp(n_in: int, hidden: Sequence[int], alpha: float) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    for width in hidden:
        layers += [torch.nn.Linear(n_in, width), torch.nn.CELU(alpha)]
        n_in = width
    layers.append(torch.nn.Linear(n_in, 1))
    return torch.nn.Sequential(*layers)


class ANIModel(AtomisticModel):
    """Behler-Parrinello network with ANI-style AEVs.

    Args:
        elements: atomic numbers the model handles.
        aev: AEV hyperparameters (dict form of :class:`AEVSettings`); ANI-1x by default.
        hidden: widths of the hidden layers of every element network.
        celu_alpha: CELU parameter.
    """

    model_type = "ani"

    def __init__(
        self,
        elements: Sequence[int],
        aev: dict | None = None,
        hidden: Sequence[int] = (128, 96, 64),
        celu_alpha: float = 0.1,
    ) -> None:
        super().__init__(elements)
        params = AEVSettings.from_dict(aev) if aev else AEVSettings()
        self.aev = AEVComputer(self.element_list, params)
        self.hidden = tuple(int(h) for h in hidden)
        self.celu_alpha = float(celu_alpha)
        self.networks = torch.nn.ModuleList(
            _mlp(self.aev.dim, self.hidden, self.celu_alpha) for _ in self.element_list
        )
        self.register_buffer("aev_mean", torch.zeros(self.aev.dim))
        self.register_buffer("aev_std", torch.ones(self.aev.dim))

    @property
    def cutoff(self) -> float:
        return self.aev.cutoff

    def config(self) -> dict:
        return {
            "elements": list(self.element_list),
            "aev": self.aev.params.to_dict(),
            "hidden": list(self.hidden),
            "celu_alpha": self.celu_alpha,
        }

    def descriptors(
        self, species: torch.Tensor, positions: torch.Tensor, n_atoms: torch.Tensor
    ) -> torch.Tensor:
        """(A, dim) raw AEVs."""
        i, j = neighbor_pairs(positions, n_atoms, self.aev.cutoff)
        return self.aev(species, positions, i, j)

    def set_descriptor_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Standardize AEVs with training-set mean and std (dim,); tiny std are floored."""
        self.aev_mean.copy_(mean)
        self.aev_std.copy_(torch.clamp(std, min=1e-3))

    def raw_atom_outputs(
        self, species: torch.Tensor, positions: torch.Tensor, n_atoms: torch.Tensor
    ) -> torch.Tensor:
        features = (self.descriptors(species, positions, n_atoms) - self.aev_mean) / self.aev_std
        out = features.new_zeros(species.shape[0])
        for index, network in enumerate(self.networks):
            atoms = (species == index).nonzero(as_tuple=True)[0]
            if atoms.numel():
                out = out.index_put((atoms,), network(features[atoms]).squeeze(1))
        return out
