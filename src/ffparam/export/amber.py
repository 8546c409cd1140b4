"""AMBER ``.prmtop`` / ``.inpcrd`` through ParmEd.

The molecule's standard OpenMM System (one force per kind, 1-4 pairs as NonbondedForce
exceptions, see :func:`ffparam.export.openmm_files.standard_system`) goes through
``parmed.openmm.load_topology`` and ``Structure.save``. ParmEd converts OpenMM's
k (E = k/2 (x - x0)^2) to AMBER's K = k/2, sigma to rmin/2, derives each dihedral's SCEE
and SCNB from the 1-4 exceptions (q_i q_j / exception charge product, combined epsilon /
exception epsilon), and marks every dihedral whose end pair is excluded (impropers,
rings) or already counted by another dihedral (multi-term torsions, a 1-4 pair reached
through both sides of a ring) with "ignore end", so each 1-4 pair is counted once. The
file is read back with OpenMM's own ``AmberPrmtopFile`` to verify all of that.

Any ParmEd warning while reading the System (a force it does not understand, incomplete
exceptions) is turned into an error: ParmEd would otherwise drop the term silently.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import parmed

from ffparam.chem.molecule import Molecule
from ffparam.errors import ConventionError
from ffparam.export.openmm_files import standard_system
from ffparam.export.terms import FlatTerms, atom_type_names, require_standard_forms
from ffparam.export.topology import openmm_topology

INPCRD_COORDINATE_TOLERANCE = 1e-6
"""Angstrom, per coordinate: inpcrd stores 7 decimals."""


def write_amber(molecule: Molecule, terms: FlatTerms, exclusions: np.ndarray,
                positions: np.ndarray, prmtop: Path, inpcrd: Path,
                residue_name: str = "MOL") -> None:
    """Write ``prmtop`` and ``inpcrd`` (``positions`` (n_atoms, 3) Angstrom)."""
    require_standard_forms(terms, "AMBER prmtop")
    omm = standard_system(terms, molecule.masses, exclusions)
    types = atom_type_names(molecule, terms, max_length=4)
    if max(len(t) for t in types) > 4:  # AMBER atom type names have 4 characters
        types = None
    topology = openmm_topology(molecule, residue_name, atom_ids=types)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        struct = parmed.openmm.load_topology(topology, omm,
                                             xyz=np.asarray(positions, dtype=float))
    problems = [str(w.message) for w in caught
                if issubclass(w.category, parmed.exceptions.OpenMMWarning)]
    if struct.unknown_functional or problems:
        raise ConventionError(f"ParmEd cannot convert {molecule.name} to AMBER files: "
                              f"{problems[0] if problems else 'unknown functional form'}")
    for atom, mass in zip(struct.atoms, molecule.masses):
        atom.mass = float(mass)
    with warnings.catch_warnings():
        # "Multiple 1-4 scaling factors": pairs with zero epsilon get SCNB 1e10, which
        # changes no energy; the read-back check covers it.
        warnings.simplefilter("ignore", parmed.exceptions.AmberWarning)
        struct.save(str(prmtop), format="amber", overwrite=True)
        struct.save(str(inpcrd), format="rst7", overwrite=True)


__all__ = ["INPCRD_COORDINATE_TOLERANCE", "write_amber"]
