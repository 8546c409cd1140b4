"""Morse bond E = D [1 - exp(-a (r - r0))]^2: D (``well_depth``) kcal/mol, a 1/Angstrom,
r0 (``length``) Angstrom. OpenMM: a CustomBondForce; not writable to AMBER/GROMACS/ffxml.
"""

from __future__ import annotations

from dataclasses import dataclass

from ffparam.forms.base import Form, register
from ffparam.units import ANGSTROM_PER_NM, KJ_PER_KCAL, NM_PER_ANGSTROM

MORSE_EXPRESSION = "well_depth*(1-exp(-a*(r-r0)))^2"


@dataclass(frozen=True)
class MorseBond(Form):
    def energy(self, x, p):
        return p["well_depth"] * (1.0 - (-p["a"] * (x - p["length"])).exp()) ** 2

    def derivative(self, x, p):
        return self.energy_and_derivative(x, p)[1]

    def energy_and_derivative(self, x, p):
        e = (-p["a"] * (x - p["length"])).exp()
        one_minus = 1.0 - e
        depth_one_minus = p["well_depth"] * one_minus
        return depth_one_minus * one_minus, (2.0 * p["a"]) * e * depth_one_minus

    def openmm_force(self, atoms, p):
        import openmm

        force = openmm.CustomBondForce(MORSE_EXPRESSION)
        for name in ("well_depth", "a", "r0"):
            force.addPerBondParameter(name)
        columns = zip(p["well_depth"] * KJ_PER_KCAL, p["a"] * ANGSTROM_PER_NM,
                      p["length"] * NM_PER_ANGSTROM)
        for (i, j), (depth, a, r0) in zip(atoms, columns):
            force.addBond(i, j, [float(depth), float(a), float(r0)])
        return force


MORSE_BOND = register(MorseBond(
    name="morse_bond", geometry="distance",
    fields={"well_depth": "kcal/mol", "a": "1/A", "length": "A"}, sections=("MorseBonds",),
    label="Morse bonds", category="bonds", scaled_fields=("well_depth",), kernel="morse"))
