"""ANI atomic environment vectors against torchani's AEVComputer with equal parameters."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from ffparam.ml.batch import make_batch, neighbor_pairs
from ffparam.ml.descriptors import AEVComputer, AEVSettings

os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")
torchani = pytest.importorskip("torchani")


def _float32_exact(values):
    # torchani stores its parameters as float32 buffers; use values it represents exactly
    return tuple(float(np.float32(v)) for v in values)


PARAMETER_SETS = [
    AEVSettings(),
    AEVSettings(
        radial_cutoff=4.6,
        radial_eta=19.7,
        radial_shifts=np.linspace(0.8, 4.6, 10, endpoint=False).tolist(),
        angular_cutoff=3.1,
        angular_eta=12.5,
        angular_zeta=14.1,
        angular_shifts=np.linspace(0.8, 3.1, 3, endpoint=False).tolist(),
        angular_sections=(0.3, 1.2, 2.0, 2.9),
    ),
]


@pytest.mark.parametrize("params", PARAMETER_SETS)
@pytest.mark.parametrize("which", ["ethanol", "bpa"])
def test_aev_matches_torchani(params, which, request):
    data = request.getfixturevalue(which)
    params = AEVSettings.from_dict(
        {
            **params.to_dict(),
            "radial_shifts": _float32_exact(params.radial_shifts),
            "angular_shifts": _float32_exact(params.angular_shifts),
            "angular_sections": _float32_exact(params.angular_sections),
            "radial_eta": _float32_exact([params.radial_eta])[0],
            "angular_eta": _float32_exact([params.angular_eta])[0],
            "angular_zeta": _float32_exact([params.angular_zeta])[0],
        }
    )
    n_frames = 3
    batch = make_batch(data, np.arange(n_frames))
    elements = (1, 6, 7, 8)
    species = torch.searchsorted(torch.tensor(elements), batch.numbers)
    ours = AEVComputer(elements, params)
    i, j = neighbor_pairs(batch.positions, batch.n_atoms, params.radial_cutoff)
    mine = ours(species, batch.positions, i, j)

    from torchani.aev import ANIAngular, ANIRadial

    radial = ANIRadial(params.radial_eta, params.radial_shifts, params.radial_cutoff)
    angular = ANIAngular(
        params.angular_eta,
        params.angular_zeta,
        params.angular_shifts,
        params.angular_sections,
        params.angular_cutoff,
    )
    reference = torchani.AEVComputer(radial, angular, num_species=len(elements)).double()
    n = int(batch.n_atoms[0])
    theirs = reference(species.view(n_frames, n), batch.positions.view(n_frames, n, 3))
    assert mine.shape == (n_frames * n, reference.out_dim)
    np.testing.assert_allclose(
        mine.numpy(), theirs.reshape(n_frames * n, -1).numpy(), atol=1e-12, rtol=1e-10
    )
    assert float(mine.abs().max()) > 0.1
