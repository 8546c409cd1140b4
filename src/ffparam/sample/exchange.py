"""Replica exchange over temperatures for batched Monte Carlo chains.

The batch holds ``n_temperatures * n_chains`` configurations, temperature-major (row
``t * n_chains + c`` is walker ``c`` at temperature ``t``). An exchange attempt swaps the
configurations of neighbouring temperatures ``t, t + 1`` of the same walker with
probability ``min(1, exp((beta_t - beta_{t+1}) (E_t - E_{t+1})))``, which keeps the
product of the Boltzmann distributions at every temperature invariant. Even and odd pairs
alternate between attempts (deterministic alternation, each half a valid kernel).
"""

from __future__ import annotations

import torch
from torch import Tensor


def exchange_replicas(positions: Tensor, energies: Tensor, betas: Tensor, parity: int,
                      generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One round of swaps between temperature pairs (t, t+1) with ``t % 2 == parity``.

    Args:
        positions: (n_temperatures * n_chains, n_atoms, 3) Angstrom, temperature-major.
        energies: (n_temperatures * n_chains,) kcal/mol.
        betas: (n_temperatures,) 1/(kcal/mol), one per temperature.
        parity: 0 or 1, which pairs are attempted.

    Returns:
        new positions, new energies, attempted and accepted counts per pair
        (n_temperatures - 1,) each.
    """
    n_temps = int(betas.shape[0])
    n_pairs = max(n_temps - 1, 0)
    attempted = torch.zeros(n_pairs, dtype=torch.long)
    accepted = torch.zeros(n_pairs, dtype=torch.long)
    if n_temps < 2:
        return positions, energies, attempted, accepted
    n_chains = positions.shape[0] // n_temps
    pos = positions.reshape(n_temps, n_chains, *positions.shape[1:]).clone()
    ene = energies.reshape(n_temps, n_chains).clone()
    for t in range(parity, n_temps - 1, 2):
        log_ratio = (betas[t] - betas[t + 1]) * (ene[t] - ene[t + 1])
        u = torch.rand(n_chains, generator=generator, dtype=ene.dtype, device=ene.device)
        swap = torch.log(u) < log_ratio
        lower, upper = pos[t].clone(), pos[t + 1].clone()
        pos[t] = torch.where(swap[:, None, None], upper, lower)
        pos[t + 1] = torch.where(swap[:, None, None], lower, upper)
        e_lower, e_upper = ene[t].clone(), ene[t + 1].clone()
        ene[t] = torch.where(swap, e_upper, e_lower)
        ene[t + 1] = torch.where(swap, e_lower, e_upper)
        attempted[t] += n_chains
        accepted[t] += int(swap.sum())
    return pos.reshape(positions.shape), ene.reshape(energies.shape), attempted, accepted
