"""Active learning on an already labelled pool: labels cost nothing, which makes the loop
cheap to benchmark (``ffparam mlp active --pool FILE``)."""

from __future__ import annotations

import numpy as np

from ffparam.errors import InputError
from ffparam.ml.active.loop import LabelBatch
from ffparam.ml.data import MLDataset
from ffparam.ml.potential import Potential


class PoolLabeller:
    """Frames of ``pool`` (energies eV, forces eV/Angstrom) are the candidates; labelling
    one takes its stored label. Ids are pool indices as text.

    Args:
        pool: the labelled frames.
        max_candidates: rank at most this many unused frames per round (a seeded random
            subset; None: all).
        seed: seeds the initial frames and the candidate subsets.
    """

    def __init__(self, pool: MLDataset, max_candidates: int | None = None,
                 seed: int = 0) -> None:
        what = pool.source or "the pool"
        if pool.forces is None or pool.energies is None:
            raise InputError(f"{what} has no forces and energies: an active-learning pool "
                             "must be labelled (energy and forces on every frame)")
        if max_candidates is not None and max_candidates < 1:
            raise InputError(f"max_candidates must be at least 1, got {max_candidates}")
        self.pool = pool
        self.max_candidates = max_candidates
        self.seed = seed

    def initial(self, n: int, seed: int) -> LabelBatch:
        if n > len(self.pool):
            raise InputError(f"the pool has {len(self.pool)} frames, fewer than the {n} "
                             "initial labels")
        chosen = np.sort(np.random.default_rng(seed).permutation(len(self.pool))[:n])
        return LabelBatch(self.pool.subset(chosen), [str(i) for i in chosen])

    def candidates(self, potential: Potential, labelled: MLDataset, ids: list[str],
                   round_index: int) -> tuple[MLDataset | None, list[str]]:
        used = np.zeros(len(self.pool), dtype=bool)
        used[[int(i) for i in ids]] = True
        free = np.flatnonzero(~used)
        if self.max_candidates is not None and len(free) > self.max_candidates:
            rng = np.random.default_rng([self.seed, round_index])
            free = np.sort(rng.choice(free, self.max_candidates, replace=False))
        if not len(free):
            return None, []
        return self.pool.subset(free), [str(i) for i in free]

    def label(self, frames: MLDataset, ids: list[str]) -> LabelBatch:
        return LabelBatch(self.pool.subset([int(i) for i in ids]), list(ids))


class RandomPoolLabeller(PoolLabeller):
    """The baseline: the same pool and loop, but each round's frames chosen at random
    (the candidates are a seeded random subset of exactly the batch size, so the diverse
    selection takes them all)."""

    def __init__(self, pool: MLDataset, per_round: int, seed: int = 0) -> None:
        super().__init__(pool, max_candidates=per_round, seed=seed)
