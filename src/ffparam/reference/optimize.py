"""Geometry optimization and constrained optimization with geomeTRIC and any method.

geomeTRIC drives the optimization through its Python API with a custom engine that calls a
:class:`~ffparam.reference.methods.base.Calculator` (geomeTRIC works in Hartree and Bohr;
the conversion happens in :class:`_GeometricEngine`). Connectivity comes from the chemical
graph, not from distances. Constraints: dihedrals held at target values (degrees) and
frozen atoms (fixed Cartesian positions).

Settings follow what TorsionDrive/QCFractal use for torsion scans: delocalized internal
coordinates when constrained (TRIC otherwise), ``enforce=0.1`` (constraints enforced exactly
once within 0.1 of target), ``epsilon=0``, ``reset=True``, and the Q-Chem-style convergence
criteria (``qccnv``) for constrained runs; GAU criteria otherwise.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import numpy as np

from ffparam.errors import CalculationError, FFParamError
from ffparam.reference.methods.base import Calculator
from ffparam.reference.records import Constraints
from ffparam.units import BOHR_ANGSTROM, HARTREE_BOHR_TO_KCAL_MOL_A, HARTREE_KCAL_MOL


@dataclass
class OptimizationResult:
    """Final geometry (n_atoms, 3) Angstrom, its energy (kcal/mol) and gradient
    (n_atoms, 3) kcal/mol/Angstrom, and the energies along the path (kcal/mol)."""

    geometry: np.ndarray
    energy: float
    gradient: np.ndarray
    trajectory_energies: np.ndarray

    @property
    def n_steps(self) -> int:
        return len(self.trajectory_energies)


def _geometric_engine_class():
    from geometric.engine import Engine

    class _GeometricEngine(Engine):
        """geomeTRIC engine around a Calculator: Bohr in, Hartree and Hartree/Bohr out."""

        def __init__(self, molecule, calculator: Calculator) -> None:
            super().__init__(molecule)
            self.calculator = calculator
            self.last: tuple[np.ndarray, float, np.ndarray] | None = None

        def calc_new(self, coords: np.ndarray, dirname: str) -> dict:
            geometry = coords.reshape(-1, 3) * BOHR_ANGSTROM
            energy, gradient = self.calculator.energy_and_gradient(geometry)
            self.last = (geometry, energy, gradient)
            return {
                "energy": energy / HARTREE_KCAL_MOL,
                "gradient": (gradient / HARTREE_BOHR_TO_KCAL_MOL_A).reshape(-1),
            }

    return _GeometricEngine


def constraints_text(constraints: Constraints) -> str:
    """geomeTRIC constraint block (1-based indices) for ``constraints``."""
    lines = []
    if constraints.frozen_atoms:
        lines.append("$freeze")
        lines += [f"xyz {i + 1}" for i in sorted(constraints.frozen_atoms)]
    if constraints.dihedrals:
        lines.append("$set")
        for i, j, k, m, value in constraints.dihedrals:
            lines.append(f"dihedral {i + 1} {j + 1} {k + 1} {m + 1} {float(value):.6f}")
    return "\n".join(lines) + "\n"


def optimize_geometry(
    calculator: Calculator,
    geometry: np.ndarray,
    constraints: Constraints | None = None,
    max_steps: int = 300,
) -> OptimizationResult:
    """Minimize the energy of ``calculator`` from ``geometry`` (n_atoms, 3) Angstrom.

    Raises:
        CalculationError: geomeTRIC did not converge in ``max_steps`` or failed; errors of
            the method (SCF not converged, NaN) propagate unchanged.
    """
    from geometric.errors import Error as GeometricError
    from geometric.internal import DelocalizedInternalCoordinates
    from geometric.molecule import Molecule as GeometricMolecule
    from geometric.optimize import Optimize
    from geometric.params import OptParams
    from geometric.prepare import parse_constraints

    constraints = constraints or Constraints()
    species = calculator.species
    molecule = GeometricMolecule()
    molecule.elem = species.symbols
    molecule.xyzs = [np.asarray(geometry, dtype=np.float64).reshape(-1, 3).copy()]
    molecule.bonds = [tuple(b) for b in species.bonds]
    molecule.top_settings["read_bonds"] = True
    molecule.build_topology(force_bonds=False)
    engine = _geometric_engine_class()(molecule, calculator)

    cons, values = (None, None)
    if constraints:
        cons, values = parse_constraints(molecule, constraints_text(constraints))
    options = {"maxiter": int(max_steps), "epsilon": 0.0, "reset": True}
    if constraints:
        options.update(enforce=0.1, qccnv=True)
    ic = DelocalizedInternalCoordinates(
        molecule,
        build=True,
        connect=bool(constraints),
        addcart=False,
        constraints=cons,
        cvals=values[0] if values is not None else None,
    )
    coords = molecule.xyzs[0].reshape(-1) / BOHR_ANGSTROM
    with tempfile.TemporaryDirectory(prefix="ffparam-opt-") as scratch:
        try:
            progress = Optimize(
                coords, molecule, ic, engine, scratch, OptParams(**options), print_info=False
            )
        except FFParamError:
            raise
        except GeometricError as exc:
            name = type(exc).__name__
            raise CalculationError(f"geomeTRIC {name}: {_first_line(exc) or 'failed'}") from None
        except (RuntimeError, ValueError, np.linalg.LinAlgError) as exc:
            raise CalculationError(f"geomeTRIC failed: {_first_line(exc)}") from None
    final = np.asarray(progress.xyzs[-1], dtype=np.float64)
    energies = np.asarray(progress.qm_energies, dtype=np.float64) * HARTREE_KCAL_MOL
    assert engine.last is not None
    last_geometry, last_energy, last_gradient = engine.last
    if not np.allclose(last_geometry, final, atol=1e-8):
        last_energy, last_gradient = calculator.energy_and_gradient(final)
    return OptimizationResult(final, float(last_energy), last_gradient, energies)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
