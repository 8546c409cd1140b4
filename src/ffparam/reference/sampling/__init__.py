"""Samplers that produce geometries with reference energies and forces.

* :func:`sample_conformers` — RDKit ETKDG + RMSD pruning + optimization with the method.
* :func:`sample_md` — Langevin dynamics with the reference method through ASE.
* :func:`sample_mm_md` — Langevin dynamics in OpenMM with an assigned force field, then
  reference single points on the kept frames.
* :func:`sample_normal_modes` — ANI-style normal-mode sampling at a temperature.
* :func:`sample_mc` — Metropolis Monte Carlo chains (:mod:`ffparam.sample`) with an
  assigned force field, then reference single points on frames spread over the chains.

Each returns a :class:`SampleResult` whose records are in the Store.
"""

from ffparam.reference.sampling.base import SampleResult
from ffparam.reference.sampling.conformers import sample_conformers
from ffparam.reference.sampling.mc import mc_frames, sample_mc
from ffparam.reference.sampling.md import sample_md
from ffparam.reference.sampling.mm_md import mm_trajectory, sample_mm_md
from ffparam.reference.sampling.normal_modes import (
    normal_mode_displacements,
    normal_modes,
    sample_normal_modes,
)

__all__ = [
    "SampleResult",
    "mc_frames",
    "mm_trajectory",
    "normal_mode_displacements",
    "normal_modes",
    "sample_conformers",
    "sample_mc",
    "sample_md",
    "sample_mm_md",
    "sample_normal_modes",
]
