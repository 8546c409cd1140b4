"""Batched neighbour lists against ASE's neighbour list."""

from __future__ import annotations

import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from ffparam.ml.batch import make_batch, neighbor_pairs
from ffparam.ml.data import MLDataset
from ffparam.ml.descriptors import angular_triples


def _mixed(ethanol, bpa) -> MLDataset:
    from ffparam.ml.data import dataset_from_atoms

    frames = ethanol.subset([0, 1]).to_atoms() + bpa.to_atoms()[:2] + ethanol.subset([7]).to_atoms()
    return dataset_from_atoms(frames)


@pytest.mark.parametrize("cutoff", [1.2, 3.0, 5.2])
def test_pairs_match_ase(ethanol, bpa, cutoff):
    data = _mixed(ethanol, bpa)
    batch = make_batch(data)
    i, j = neighbor_pairs(batch.positions, batch.n_atoms, cutoff)
    ours = set(zip(i.tolist(), j.tolist()))
    expected = set()
    for k, atoms in enumerate(data.to_atoms()):
        ai, aj = neighbor_list("ij", atoms, cutoff)
        off = int(data.offsets[k])
        expected |= {(a + off, b + off) for a, b in zip(ai.tolist(), aj.tolist())}
    assert ours == expected
    assert bool((i[1:] >= i[:-1]).all())


def test_angular_triples_count(ethanol):
    batch = make_batch(ethanol, np.arange(2))
    i, _ = neighbor_pairs(batch.positions, batch.n_atoms, 3.0)
    p, q = angular_triples(i, len(batch.numbers))
    counts = np.bincount(i.numpy(), minlength=18)
    assert len(p) == int(sum(c * (c - 1) // 2 for c in counts))
    assert bool((i[p] == i[q]).all()) and bool((p < q).all())
