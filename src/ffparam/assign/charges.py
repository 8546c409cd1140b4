"""Partial charges: AM1-BCC (AmberTools antechamber + sqm), Gasteiger and MMFF94 (RDKit).

Entry point: :func:`compute_partial_charges` ``(molecule, method) -> (n_atoms,)`` array in
elementary charges, atom order of the molecule, summing to its total (formal) charge.

AM1-BCC protocol (what OpenFF's ``ToolkitAM1BCC`` does when AmberTools is the toolkit):

* geometry: the molecule's first conformer if it has one, otherwise one RDKit ETKDGv3
  conformer optimized with MMFF94 (OpenFF generates one RDKit conformer; the ELF10
  multi-conformer selection is an OpenEye-only path and is not reproduced here);
* ``antechamber -c bcc`` with its default sqm keywords (``qm_theory='AM1'``,
  ``grms_tol=0.0005``, ``scfconv=1.d-10``): sqm minimizes the geometry at AM1, the AM1
  Mulliken charges (printed to 3 decimals by sqm) are averaged over topologically
  equivalent atoms and the AM1-BCC bond charge corrections (``BCCPARM.DAT``) are added;
* the 6-decimal charges of antechamber's mol2 output are read back. sqm prints Mulliken
  charges to 3 decimals, so their sum can miss the total charge by up to 5e-4 e per atom;
  that residual is spread evenly over the atoms (as OpenFF's charge normalization does)
  so that the sum is exactly the total charge. Larger residuals raise
  :class:`~ffparam.errors.CalculationError`.

Results are cached within a process per (method, mapped SMILES, geometry rounded to
1e-4 Angstrom).
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
from rdkit import Chem

from ffparam.chem.molecule import Molecule
from ffparam.errors import (
    CalculationError,
    ExternalProgramError,
    InputError,
    UnsupportedChemistryError,
)

CHARGE_METHODS: tuple[str, ...] = ("am1bcc", "gasteiger", "mmff94")
"""Names accepted by :func:`compute_partial_charges`."""

AM1BCC_ELEMENTS: frozenset[str] = frozenset({"H", "C", "N", "O", "F", "P", "S", "Cl", "Br", "I"})
"""Elements with AM1-BCC bond charge correction types (Jakalian et al. 2002)."""

AM1BCC_ROUNDING_PER_ATOM: float = 5e-4
"""Largest rounding error per atom (e) of AM1-BCC charges: sqm's 3-decimal Mulliken output."""
RDKIT_ROUNDING_PER_ATOM: float = 1e-8
"""Largest rounding error per atom (e) accepted for RDKit's (double precision) charges."""

IPOLQ_HINT: str = ("ipolq charges need QM/MM snapshots in water: use `ffparam assign --charges "
                   "ipolq`, `ffparam bespoke --charges ipolq` or "
                   "ffparam.workflows.ipolq.ipolq_system")
"""IPolQ charges are made by the workflows box (QM/MM MD), above this one."""

_CACHE: dict[tuple[str, str, str], np.ndarray] = {}


def compute_partial_charges(molecule: Molecule, method: str = "am1bcc") -> np.ndarray:
    """Partial charges of ``molecule`` in e, float64 array (n_atoms,), molecule atom order.

    Args:
        molecule: closed-shell molecule with explicit hydrogens. ``am1bcc`` uses its first
            conformer (Angstrom) or generates one (ETKDGv3 + MMFF94) when it has none.
        method: ``am1bcc`` (antechamber/sqm), ``gasteiger`` or ``mmff94`` (RDKit).

    The charges sum to ``molecule.total_charge`` exactly (rounding residuals within the
    method's precision are spread evenly over the atoms; larger ones raise).
    """
    name = method.strip().lower().replace("-", "").replace("_", "")
    if name == "ipolq":
        raise InputError(IPOLQ_HINT)
    if name not in CHARGE_METHODS:
        raise InputError(f"unknown charge method {method!r}; "
                         f"use one of {', '.join(CHARGE_METHODS)}")
    if name == "am1bcc":
        return am1bcc_charges(molecule)
    if name == "gasteiger":
        return gasteiger_charges(molecule)
    return mmff94_charges(molecule)


def clear_charge_cache() -> None:
    """Forget every cached charge set of this process."""
    _CACHE.clear()


# ---------------------------------------------------------------------------- AM1-BCC
def am1bcc_charges(molecule: Molecule) -> np.ndarray:
    """AM1-BCC charges (e, (n_atoms,)) through ``antechamber -c bcc`` and ``sqm``.

    See the module docstring for the protocol. Raises
    :class:`~ffparam.errors.UnsupportedChemistryError` for radicals and elements without
    BCC types, :class:`~ffparam.errors.ExternalProgramError` when antechamber/sqm fail.
    """
    molecule.require_closed_shell("AM1-BCC")
    if molecule.n_atoms == 1:  # a monatomic ion carries its formal charge
        return molecule.formal_charges.astype(np.float64)
    molecule.require_elements(set(AM1BCC_ELEMENTS), "AM1-BCC")
    coords = (molecule.conformers[0] if molecule.n_conformers
              else molecule.generate_conformers(n_conformers=1).conformers[0])
    key = ("am1bcc", molecule.canonical_key(), _geometry_key(coords))
    if key not in _CACHE:
        raw = _run_antechamber_bcc(molecule, coords)
        _CACHE[key] = _fix_total_charge(raw, molecule.total_charge, "AM1-BCC",
                                        AM1BCC_ROUNDING_PER_ATOM)
    return _CACHE[key].copy()


def antechamber_input_sdf(molecule: Molecule, coords: np.ndarray) -> str:
    """MDL molfile text of ``molecule`` at ``coords`` (n_atoms, 3) Angstrom, Kekulé bonds
    and ``M  CHG`` formal charges: the input antechamber reads with ``-fi mdl``."""
    mol = Chem.Mol(molecule.rdmol)
    mol.RemoveAllConformers()
    conf = Chem.Conformer(mol.GetNumAtoms())
    for i, xyz in enumerate(np.asarray(coords, dtype=np.float64)):
        conf.SetAtomPosition(i, xyz.tolist())
    mol.AddConformer(conf, assignId=True)
    Chem.Kekulize(mol, clearAromaticFlags=True)
    return Chem.MolToMolBlock(mol, kekulize=True)


def _run_antechamber_bcc(molecule: Molecule, coords: np.ndarray) -> np.ndarray:
    from ffparam.assign.programs import run_program

    with tempfile.TemporaryDirectory(prefix="ffparam-am1bcc-") as tmp:
        work = Path(tmp)
        (work / "molecule.sdf").write_text(antechamber_input_sdf(molecule, coords))
        args = ["antechamber", "-i", "molecule.sdf", "-fi", "mdl", "-o", "charged.mol2",
                "-fo", "mol2", "-c", "bcc", "-nc", str(molecule.total_charge),
                "-pf", "n", "-dr", "n"]
        try:
            run_program(args, cwd=work, timeout=3600.0, what="antechamber -c bcc")
        except ExternalProgramError as exc:
            raise ExternalProgramError(f"AM1-BCC for {molecule.name}: {exc}"
                                       f"{_sqm_error(work)}") from None
        out = work / "charged.mol2"
        if not out.is_file():
            raise ExternalProgramError(f"AM1-BCC for {molecule.name}: antechamber wrote no "
                                       f"charges{_sqm_error(work)}")
        charges = read_mol2_charges(out.read_text())
    if charges.shape != (molecule.n_atoms,):
        raise ExternalProgramError(f"AM1-BCC for {molecule.name}: antechamber returned "
                                   f"{charges.size} charges for {molecule.n_atoms} atoms")
    return charges


def _sqm_error(work: Path) -> str:
    """A short reason from ``sqm.out`` (empty if none), prefixed with '; sqm: '."""
    out = work / "sqm.out"
    if not out.is_file():
        return ""
    lines = [ln.strip() for ln in out.read_text(errors="replace").splitlines() if ln.strip()]
    hits = [ln for ln in lines if any(w in ln.lower() for w in
                                     ("error", "unable", "not converge", "fail"))]
    return f"; sqm: {hits[-1][:200]}" if hits else ""


def read_mol2_charges(text: str) -> np.ndarray:
    """Charges (9th column) of the ``@<TRIPOS>ATOM`` block of a mol2 text, (n_atoms,) e."""
    charges: list[float] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("@<TRIPOS>"):
            inside = line.strip() == "@<TRIPOS>ATOM"
            continue
        if inside and line.strip():
            fields = line.split()
            if len(fields) < 9:
                raise ExternalProgramError(f"mol2 atom line without a charge: {line.strip()!r}")
            charges.append(float(fields[8]))
    return np.array(charges, dtype=np.float64)


def _geometry_key(coords: np.ndarray) -> str:
    rounded = np.round(np.asarray(coords, dtype=np.float64), 4) + 0.0  # -0.0 -> 0.0
    return hashlib.sha1(rounded.tobytes()).hexdigest()


# ---------------------------------------------------------------------------- RDKit
def gasteiger_charges(molecule: Molecule) -> np.ndarray:
    """Gasteiger-Marsili charges from RDKit (e, (n_atoms,)), 12 iterations (RDKit's
    default)."""
    from rdkit.Chem import rdPartialCharges

    mol = Chem.Mol(molecule.rdmol)
    rdPartialCharges.ComputeGasteigerCharges(mol, nIter=12, throwOnParamFailure=False)
    charges = np.array([a.GetDoubleProp("_GasteigerCharge") for a in mol.GetAtoms()])
    bad = [f"{molecule.symbols[i]}{i}" for i in np.flatnonzero(~np.isfinite(charges))]
    if bad:
        raise UnsupportedChemistryError(f"Gasteiger charges undefined for atom(s) "
                                        f"{', '.join(bad[:8])} of {molecule.name}")
    return _fix_total_charge(charges, molecule.total_charge, "Gasteiger",
                             RDKIT_ROUNDING_PER_ATOM)


def mmff94_charges(molecule: Molecule) -> np.ndarray:
    """MMFF94 partial charges from RDKit's MMFF atom typing (e, (n_atoms,))."""
    from rdkit.Chem import rdForceFieldHelpers

    mol = Chem.Mol(molecule.rdmol)
    props = rdForceFieldHelpers.MMFFGetMoleculeProperties(mol)
    if props is None:
        raise UnsupportedChemistryError(f"MMFF94 has no atom types for {molecule.name} "
                                        f"({molecule.formula}); use another charge method")
    charges = np.array([props.GetMMFFPartialCharge(i) for i in range(mol.GetNumAtoms())])
    return _fix_total_charge(charges, molecule.total_charge, "MMFF94",
                             RDKIT_ROUNDING_PER_ATOM)


# ---------------------------------------------------------------------------- helpers
def _fix_total_charge(charges: np.ndarray, total: int, what: str,
                      per_atom: float) -> np.ndarray:
    """Check ``|sum(charges) - total| <= per_atom * n_atoms`` and remove the residual
    evenly; raise :class:`CalculationError` otherwise."""
    charges = np.asarray(charges, dtype=np.float64)
    if not np.all(np.isfinite(charges)):
        raise CalculationError(f"{what} produced non-finite charges")
    residual = float(charges.sum()) - total
    if abs(residual) > per_atom * len(charges) + 1e-12:
        raise CalculationError(f"{what} charges sum to {charges.sum():.4f}, "
                               f"not the total charge {total}")
    return charges - residual / len(charges)


__all__ = [
    "CHARGE_METHODS",
    "am1bcc_charges",
    "clear_charge_cache",
    "compute_partial_charges",
    "gasteiger_charges",
    "mmff94_charges",
]
