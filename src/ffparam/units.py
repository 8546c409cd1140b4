"""Physical constants and unit conversions, each with its source.

Internal units of ffparam (see docs/architecture.md):

* energy: kcal/mol (thermochemical calorie, 1 cal = 4.184 J)
* length: Angstrom
* charge: elementary charge e
* angle: radians (degrees only at I/O edges)
* mass: amu (Dalton)

Conversion happens only at the edges of the package (OpenMM: kJ/mol, nm; ML/ASE: eV,
Angstrom; QM codes: Hartree, Bohr). Every factor used anywhere in ffparam is defined here.
"""

from __future__ import annotations

import math

# --- CODATA 2018 exact/recommended values (NIST, https://physics.nist.gov/cuu/Constants/) ---
AVOGADRO: float = 6.02214076e23
"""Avogadro constant, 1/mol (exact, SI 2019)."""
BOLTZMANN_J_PER_K: float = 1.380649e-23
"""Boltzmann constant, J/K (exact, SI 2019)."""
ELEMENTARY_CHARGE_C: float = 1.602176634e-19
"""Elementary charge, C (exact, SI 2019)."""
HARTREE_J: float = 4.3597447222071e-18
"""Hartree energy, J (CODATA 2018)."""
BOHR_ANGSTROM: float = 0.529177210903
"""Bohr radius in Angstrom (CODATA 2018)."""
SPEED_OF_LIGHT_CM_S: float = 2.99792458e10
"""Speed of light, cm/s (exact)."""

# --- energy ---
KJ_PER_KCAL: float = 4.184
"""Thermochemical calorie: 1 kcal = 4.184 kJ (exact by definition)."""
KCAL_PER_KJ: float = 1.0 / KJ_PER_KCAL
HARTREE_KCAL_MOL: float = HARTREE_J * AVOGADRO / 1000.0 / KJ_PER_KCAL
"""1 Hartree in kcal/mol (= 627.5094740631, CODATA 2018)."""
EV_J: float = ELEMENTARY_CHARGE_C
EV_KCAL_MOL: float = EV_J * AVOGADRO / 1000.0 / KJ_PER_KCAL
"""1 eV in kcal/mol (= 23.060547830619, CODATA 2018)."""
KCAL_MOL_EV: float = 1.0 / EV_KCAL_MOL
GAS_CONSTANT_KCAL_MOL_K: float = BOLTZMANN_J_PER_K * AVOGADRO / 1000.0 / KJ_PER_KCAL
"""Molar gas constant R in kcal/(mol K) (= 1.987204e-3)."""
BOLTZMANN_KCAL_MOL_K: float = GAS_CONSTANT_KCAL_MOL_K

# --- length ---
NM_PER_ANGSTROM: float = 0.1
ANGSTROM_PER_NM: float = 10.0

# --- angle ---
RAD_PER_DEG: float = math.pi / 180.0

# --- electrostatics ---
COULOMB_CONSTANT_KCAL_MOL_A_E2: float = 332.0637
"""Coulomb constant 1/(4 pi eps0) in kcal/mol Angstrom / e^2.

The value used by AMBER/OpenFF-style force fields (DESIGN.md); OpenMM's ONE_4PI_EPS0 =
138.935456 kJ/mol nm / e^2 corresponds to 332.0637133 in these units. One constant,
used everywhere in ffparam.
"""

# --- mixed ---
KCAL_MOL_A2_TO_KJ_MOL_NM2: float = KJ_PER_KCAL * 100.0
"""Force constant kcal/mol/A^2 -> kJ/mol/nm^2."""
HARTREE_BOHR_TO_KCAL_MOL_A: float = HARTREE_KCAL_MOL / BOHR_ANGSTROM
"""Gradient Hartree/Bohr -> kcal/mol/Angstrom."""
HARTREE_BOHR2_TO_KCAL_MOL_A2: float = HARTREE_KCAL_MOL / BOHR_ANGSTROM**2
"""Hessian Hartree/Bohr^2 -> kcal/mol/Angstrom^2."""
DEBYE_E_ANGSTROM: float = 0.20819433622
"""1 Debye in e*Angstrom (1 D = 3.33564e-30 C m)."""
AMU_KG: float = 1.66053906660e-27
"""Atomic mass unit in kg (CODATA 2018)."""

# --- vibrational frequencies ---
# omega^2 [1/s^2] = lambda [kcal/mol/A^2/amu] * (4184 J/kcal / N_A) / (1e-20 m^2 * AMU_KG)
# wavenumber [cm^-1] = omega / (2 pi c)
HESSIAN_EIGENVALUE_TO_WAVENUMBER: float = math.sqrt(
    KJ_PER_KCAL * 1000.0 / AVOGADRO / (1e-20 * AMU_KG)
) / (2.0 * math.pi * SPEED_OF_LIGHT_CM_S)
"""sqrt(eigenvalue of mass-weighted Hessian in kcal/mol/A^2/amu) -> cm^-1 (about 108.59)."""

# --- Lennard-Jones forms ---
RMIN_PER_SIGMA: float = 2.0 ** (1.0 / 6.0)
"""rmin = 2^(1/6) sigma: position of the LJ minimum for E = 4 eps[(s/r)^12 - (s/r)^6]."""

