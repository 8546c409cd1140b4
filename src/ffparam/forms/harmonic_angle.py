"""Harmonic angle E = k/2 (theta - theta0)^2: k kcal/mol/rad^2, theta0 (``angle``) rad."""

from __future__ import annotations

from dataclasses import dataclass

from ffparam.forms.base import register
from ffparam.forms.harmonic import Harmonic
from ffparam.units import KJ_PER_KCAL


@dataclass(frozen=True)
class HarmonicAngle(Harmonic):
    def openmm_force(self, atoms, p):
        import openmm

        force = openmm.HarmonicAngleForce()
        for (i, j, m), k, theta in zip(atoms, p["k"] * KJ_PER_KCAL, p["angle"]):
            force.addAngle(i, j, m, float(theta), float(k))
        return force


HARMONIC_ANGLE = register(HarmonicAngle(
    name="harmonic_angle", geometry="angle", fields={"k": "kcal/mol/rad^2", "angle": "rad"},
    sections=("Angles",), label="harmonic angles", category="angles", standard="angle",
    kernel="angle"))
