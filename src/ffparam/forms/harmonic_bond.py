"""Harmonic bond E = k/2 (r - r0)^2 (OpenMM/SMIRNOFF convention; AMBER's K = k/2), and
the Urey-Bradley 1-3 term of the same form (not writable to AMBER/GROMACS/ffxml files).

k kcal/mol/Angstrom^2, r0 (``length``) Angstrom.
"""

from __future__ import annotations

from dataclasses import dataclass

from ffparam.forms.base import register
from ffparam.forms.harmonic import Harmonic
from ffparam.units import KCAL_MOL_A2_TO_KJ_MOL_NM2, NM_PER_ANGSTROM


@dataclass(frozen=True)
class HarmonicBond(Harmonic):
    def openmm_force(self, atoms, p):
        import openmm

        force = openmm.HarmonicBondForce()
        k = p["k"] * KCAL_MOL_A2_TO_KJ_MOL_NM2
        for (i, j), kk, r0 in zip(atoms, k, p["length"] * NM_PER_ANGSTROM):
            force.addBond(i, j, float(r0), float(kk))
        return force


FIELDS = {"k": "kcal/mol/A^2", "length": "A"}

HARMONIC_BOND = register(HarmonicBond(
    name="harmonic_bond", geometry="distance", fields=FIELDS, sections=("Bonds",),
    label="harmonic bonds", category="bonds", standard="bond", kernel="bond"))

UREY_BRADLEY = register(HarmonicBond(
    name="urey_bradley", geometry="distance", fields=FIELDS, sections=("UreyBradley",),
    label="Urey-Bradley terms", category="bonds", kernel="bond"))
