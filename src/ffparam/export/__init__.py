"""Export a parameterized molecule to OpenMM (System XML + PDB, ForceField XML), GROMACS
(.top/.gro), AMBER (.prmtop/.inpcrd) and SMIRNOFF (.offxml), and prove each file by
reading it back and recomputing its energy in OpenMM.

Entry points: :func:`export_system` (write, verify, publish) and :func:`verify_export`
(re-check files already written).
"""

from ffparam.export.exporter import (
    DEFAULT_TOLERANCE,
    FORMATS,
    ExportReport,
    export_system,
    file_names,
    manifest_name,
    verify_export,
)
from ffparam.export.verify import FormatCheck

__all__ = [
    "DEFAULT_TOLERANCE",
    "FORMATS",
    "ExportReport",
    "FormatCheck",
    "export_system",
    "file_names",
    "manifest_name",
    "verify_export",
]
