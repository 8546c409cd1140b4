"""Unrestrained MM energy minimization of a batch of conformers (L-BFGS-B on MMEngine).

All conformers are minimized at once on the stacked coordinates: the total energy is the sum
of the conformers' energies, so each conformer's gradient is its own and the convergence
test (largest gradient component below ``gtol``) holds for every conformer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize
import torch

from ffparam.errors import NonFiniteError
from ffparam.mm.engine import MMEngine
from ffparam.params.system import ParameterizedSystem


@dataclass
class Minimized:
    """Minimized positions (n, n_atoms, 3) Angstrom, energies (n,) kcal/mol, the largest
    remaining force component (kcal/mol/A), whether L-BFGS-B reported convergence, and the
    number of iterations."""

    positions: np.ndarray
    energy: np.ndarray
    max_force: float
    converged: bool
    n_iterations: int


def mm_minimize(system: ParameterizedSystem, positions: np.ndarray, gtol: float = 1e-4,
                max_iterations: int = 5000) -> Minimized:
    """Minimize the MM energy of ``system`` from ``positions`` (n, n_atoms, 3) Angstrom.

    Uses the analytic forces of :class:`MMEngine`. Raises :class:`NonFiniteError` when the
    energy becomes NaN or infinite (a system without a minimum, overlapping atoms).
    """
    engine = MMEngine(system)
    start = np.asarray(positions, dtype=np.float64).reshape(-1, system.n_atoms, 3)
    shape = start.shape

    def energy_and_gradient(flat: np.ndarray) -> tuple[float, np.ndarray]:
        result = engine.compute(torch.as_tensor(flat.reshape(shape)), terms=False,
                                check_finite=False)
        energy = float(result.energy.sum())
        gradient = -result.forces.numpy().reshape(-1)
        if not (np.isfinite(energy) and np.all(np.isfinite(gradient))):
            raise NonFiniteError(f"MM minimization of {system.molecule.name} reached a "
                                 "non-finite energy")
        return energy, gradient

    result = scipy.optimize.minimize(energy_and_gradient, start.reshape(-1), jac=True,
                                     method="L-BFGS-B",
                                     options={"maxiter": max_iterations, "gtol": gtol,
                                              "ftol": 1e-15, "maxcor": 30})
    final = result.x.reshape(shape)
    evaluated = engine.compute(torch.as_tensor(final), terms=False, check_finite=False)
    energy = evaluated.energy.numpy().copy()
    if not np.all(np.isfinite(energy)):
        raise NonFiniteError(f"MM minimization of {system.molecule.name} reached a non-finite "
                             "energy")
    max_force = float(np.abs(evaluated.forces.numpy()).max()) if final.size else 0.0
    return Minimized(final, energy, max_force, bool(result.success), int(result.nit))
