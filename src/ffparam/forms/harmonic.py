"""The harmonic energy E = k/2 dx^2, dx = x - x0, shared by harmonic bonds, Urey-Bradley
terms, harmonic angles and harmonic impropers (k in kcal/mol per unit of x squared; x0 is
the form's second field). A base class only: it registers no form."""

from __future__ import annotations

from dataclasses import dataclass

from ffparam.forms.base import Form


@dataclass(frozen=True)
class Harmonic(Form):
    def displacement(self, x, p):
        """dx = x - x0 (x0: the second field, e.g. ``length`` or ``angle``)."""
        return x - p[list(self.fields)[1]]

    def energy(self, x, p):
        return 0.5 * p["k"] * self.displacement(x, p) ** 2

    def derivative(self, x, p):
        return p["k"] * self.displacement(x, p)

    def energy_and_derivative(self, x, p):
        dx = self.displacement(x, p)
        k_dx = p["k"] * dx
        return 0.5 * k_dx * dx, k_dx
