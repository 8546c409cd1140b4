"""ffparam: force fields and machine-learned potentials from quantum-mechanical reference data.

Internal units: kcal/mol, Angstrom, elementary charge, radians, amu (see :mod:`ffparam.units`).
"""

__version__ = "0.1.0"
