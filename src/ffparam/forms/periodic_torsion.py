"""Periodic torsion E = k (1 + cos(n phi - phase)): k kcal/mol, phase rad, integer n
(``periodicity``, fixed). SMIRNOFF/AMBER ``idivf`` is already applied to k. Used by proper
and periodic improper torsions (each SMIRNOFF improper permutation carries scale 1/3)."""

from __future__ import annotations

from dataclasses import dataclass

from ffparam.forms.base import Form, register
from ffparam.units import KJ_PER_KCAL


@dataclass(frozen=True)
class PeriodicTorsion(Form):
    def energy(self, x, p):
        return p["k"] * (1.0 + (p["periodicity"] * x - p["phase"]).cos())

    def derivative(self, x, p):
        return -p["k"] * p["periodicity"] * (p["periodicity"] * x - p["phase"]).sin()

    def energy_and_derivative(self, x, p):
        arg = p["periodicity"] * x - p["phase"]
        return p["k"] * (1.0 + arg.cos()), arg.sin() * (-p["k"] * p["periodicity"])

    def openmm_force(self, atoms, p):
        import openmm

        force = openmm.PeriodicTorsionForce()
        for (a, b, c, d), n, phase, k in zip(atoms, p["periodicity"].tolist(), p["phase"],
                                             p["k"] * KJ_PER_KCAL):
            force.addTorsion(a, b, c, d, int(n), float(phase), float(k))
        return force


PERIODIC_TORSION = register(PeriodicTorsion(
    name="periodic_torsion", geometry="dihedral", fields={"k": "kcal/mol", "phase": "rad"},
    sections=("ProperTorsions", "ImproperTorsions"), label="periodic torsions",
    category="torsions", periodic=True, standard="torsion", kernel="torsion"))
