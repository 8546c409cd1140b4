"""One error hierarchy rooted in :class:`FFParamError`.

Every raise carries a message that the CLI prints as its one-line error (exit code 2 for
bad input, 1 for failed calculations).
"""

from __future__ import annotations


class FFParamError(Exception):
    """Base class for every error ffparam raises on purpose."""

    exit_code: int = 1


class InputError(FFParamError, ValueError):
    """Bad user input: unparsable SMILES, unknown file type, non-finite coordinates..."""

    exit_code = 2


class MissingFileError(InputError, FileNotFoundError):
    """An input file does not exist."""


class UnsupportedChemistryError(InputError):
    """An element, radical or charge state that a method or force field cannot handle."""


class ParameterAssignmentError(InputError):
    """A force field cannot type a term (names the atoms and the term)."""


class ConventionError(FFParamError, ValueError):
    """A parameter conversion between conventions was asked for that does not exist."""


class DependencyError(FFParamError, ImportError):
    """An optional backend (package or program) is missing."""

    exit_code = 2


class CalculationError(FFParamError, RuntimeError):
    """A calculation ran but failed (SCF not converged, optimizer failure, NaN)."""


class SCFConvergenceError(CalculationError):
    """The self-consistent field did not converge."""


class NonFiniteError(CalculationError):
    """A NaN or infinite energy, force or parameter was produced."""


class ExternalProgramError(CalculationError):
    """An external program (antechamber, sqm, tleap, packmol) exited with an error."""


class ExportVerificationError(CalculationError):
    """An exported file, read back, does not reproduce ffparam's energies."""
