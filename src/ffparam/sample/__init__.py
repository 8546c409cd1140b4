"""Monte Carlo sampling of molecules with the batched MM engine.

* :func:`run_mc` / :class:`MCSettings` / :class:`MCResult` — Metropolis chains in one
  batch: torsion moves on rotatable bonds, Cartesian moves, optional replica exchange over
  temperatures; step sizes adapt in equilibration only; acceptance rates reported.
* :mod:`ffparam.sample.moves` — the symmetric trial moves; :mod:`ffparam.sample.exchange`
  — temperature swaps; :mod:`ffparam.sample.statistics` — autocorrelation time, block and
  chain averages, torsion states; :mod:`ffparam.sample.populations` — rotamer
  populations of a molecule.
"""

from ffparam.sample.mc import MCResult, MCSettings, engine_energy, run_mc
from ffparam.sample.moves import TorsionMoves, cartesian_move, rotate_about_bond
from ffparam.sample.populations import ConformerPopulations, conformer_populations
from ffparam.sample.statistics import (
    Populations,
    block_average,
    chain_average,
    dihedral_angles,
    effective_sample_size,
    integrated_autocorrelation_time,
    state_populations,
    torsion_states,
)

__all__ = [
    "ConformerPopulations",
    "MCResult",
    "MCSettings",
    "Populations",
    "TorsionMoves",
    "block_average",
    "cartesian_move",
    "chain_average",
    "conformer_populations",
    "dihedral_angles",
    "effective_sample_size",
    "engine_energy",
    "integrated_autocorrelation_time",
    "rotate_about_bond",
    "run_mc",
    "state_populations",
    "torsion_states",
]
