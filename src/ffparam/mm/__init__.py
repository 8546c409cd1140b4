"""The MM engine: batched PyTorch energies, forces, Hessians and parameter gradients of a
ParameterizedSystem, and its export to / evaluation in OpenMM."""

from ffparam.mm.engine import EnergyResult, MMEngine
from ffparam.mm.openmm_export import build_openmm, evaluate_openmm, to_openmm

__all__ = ["EnergyResult", "MMEngine", "build_openmm", "evaluate_openmm", "to_openmm"]
