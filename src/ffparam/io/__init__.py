"""File formats shared by several boxes (torsion-scan imports), checked reading of
user-supplied files and the one atomic writer of every output file."""

from ffparam.io.atomic import (
    atomic_output,
    json_default,
    savefig_atomic,
    write_json_atomic,
    write_text_atomic,
)
from ffparam.io.files import check_output_dir, make_output_dir, read_text, require_file
from ffparam.io.torsion_scans import ImportedScan, read_torsion_scans
from ffparam.io.xyz import read_extxyz_frames

__all__ = [
    "ImportedScan",
    "atomic_output",
    "check_output_dir",
    "json_default",
    "make_output_dir",
    "read_extxyz_frames",
    "read_text",
    "read_torsion_scans",
    "require_file",
    "savefig_atomic",
    "write_json_atomic",
    "write_text_atomic",
]
