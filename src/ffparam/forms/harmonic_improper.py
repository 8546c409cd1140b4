"""Harmonic improper E = k/2 dphi^2 with dphi = phi - phi0 wrapped into [-pi, pi)
(CHARMM-style): k kcal/mol/rad^2, phi0 (``angle``) rad. OpenMM: a CustomTorsionForce;
not writable to AMBER/GROMACS/ffxml."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ffparam.forms.base import register
from ffparam.forms.harmonic import Harmonic
from ffparam.units import KJ_PER_KCAL

HARMONIC_IMPROPER_EXPRESSION = (
    "0.5*k*dtheta^2; dtheta = dt - 6.283185307179586*floor((dt + 3.141592653589793)"
    "/6.283185307179586); dt = theta - theta0"
)


@dataclass(frozen=True)
class HarmonicImproper(Harmonic):
    def displacement(self, x, p):
        """phi - phi0 wrapped into [-pi, pi) (radians)."""
        return (x - p["angle"] + math.pi) % (2.0 * math.pi) - math.pi

    def openmm_force(self, atoms, p):
        import openmm

        force = openmm.CustomTorsionForce(HARMONIC_IMPROPER_EXPRESSION)
        force.addPerTorsionParameter("k")
        force.addPerTorsionParameter("theta0")
        for (a, b, c, d), k, phi0 in zip(atoms, p["k"] * KJ_PER_KCAL, p["angle"]):
            force.addTorsion(a, b, c, d, [float(k), float(phi0)])
        return force


HARMONIC_IMPROPER = register(HarmonicImproper(
    name="harmonic_improper", geometry="dihedral",
    fields={"k": "kcal/mol/rad^2", "angle": "rad"}, sections=("HarmonicImpropers",),
    label="harmonic impropers", category="torsions", kernel="improper"))
