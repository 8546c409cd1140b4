"""Molecule readers: SMILES, SDF/MOL, PDB (with CONECT) and XYZ.

Every reader returns a :class:`~ffparam.chem.molecule.Molecule` with explicit hydrogens,
or raises :class:`~ffparam.errors.InputError` with one line saying what is wrong.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import rdDetermineBonds

from ffparam.chem.molecule import Molecule
from ffparam.errors import InputError
from ffparam.io.files import decode_text, path_exists, read_bytes, read_text, require_file

MOLECULE_SUFFIXES = {".sdf", ".mol", ".sd", ".pdb", ".xyz"}

MAX_ECHO_CHARS = 120
"""Longest piece of user input repeated in an error message."""


def _shorten(text: str) -> str:
    if len(text) <= MAX_ECHO_CHARS:
        return text
    return f"{text[:MAX_ECHO_CHARS - 20]}...({len(text)} chars)"


class _RDKitLog:
    """Capture RDKit's error log so that its reason can go into our one-line error."""

    def __enter__(self) -> _RDKitLog:
        from io import StringIO

        from rdkit import rdBase

        self.stream = StringIO()
        rdBase.LogToPythonStderr()
        import sys

        self._stderr = sys.stderr
        sys.stderr = self.stream
        return self

    def __exit__(self, *exc) -> None:
        import sys

        sys.stderr = self._stderr

    @property
    def reason(self) -> str:
        lines = [ln.strip() for ln in self.stream.getvalue().splitlines() if ln.strip()]
        lines = [ln.split("] ", 1)[-1] if "] " in ln else ln for ln in lines]
        lines = [ln for ln in lines if not set(ln) <= {"^", " "}]
        return "; ".join(_shorten(ln.rstrip(":")) for ln in lines[:2])


def molecule_from_smiles(smiles: str, name: str | None = None) -> Molecule:
    """Parse SMILES, add explicit hydrogens, assign stereo.

    If every atom carries an atom-map number (OpenFF/CMILES mapped SMILES), atoms are
    reordered so that map number ``k`` becomes index ``k - 1``.
    """
    text = smiles.strip()
    if not text:
        raise InputError("empty SMILES")
    odd = next((c for c in text if not (c.isascii() and c.isprintable()) or c.isspace()), None)
    if odd is not None:  # RDKit would read "CC O" as ethane named "O"
        raise InputError(f"SMILES {_shorten(text)!r} contains {odd!r} at position "
                         f"{text.index(odd)}; SMILES is printable ASCII without spaces")
    with _RDKitLog() as log:
        raw = Chem.MolFromSmiles(text, sanitize=False)
    if raw is None:
        raise InputError(f"unparsable SMILES {_shorten(text)!r}: "
                         f"{log.reason or 'syntax error'}")
    try:
        with _RDKitLog():
            Chem.SanitizeMol(raw)
    except Exception as exc:  # RDKit raises several sanitization exception types
        raise InputError(f"invalid SMILES {_shorten(text)!r}: {exc}") from None
    if raw.GetNumAtoms() == 0:
        raise InputError(f"SMILES {_shorten(text)!r} has no atoms")
    mol = Chem.AddHs(raw)
    maps = [a.GetAtomMapNum() for a in mol.GetAtoms()]
    if all(maps) and sorted(maps) == list(range(1, mol.GetNumAtoms() + 1)):
        order = [maps.index(k) for k in range(1, mol.GetNumAtoms() + 1)]
        mol = Chem.RenumberAtoms(mol, order)
    for atom in mol.GetAtoms():
        atom.SetAtomMapNum(0)
    Chem.AssignStereochemistry(mol, cleanIt=True, force=True)
    molecule = Molecule(mol, name=name or "molecule")
    if not name:  # the molecular formula names files and reports (C8H9NO2.offxml)
        molecule.name = molecule.formula.replace("+", "p").replace("-", "m")
    return molecule


def read_molecule(path: str | Path, charge: int | None = None) -> Molecule:
    """Read SDF/MOL (all records of one molecule become conformers), PDB or XYZ.

    Args:
        path: file path.
        charge: total charge in e; needed for XYZ (default 0) and used to check PDB/SDF.
    """
    path = require_file(path, "molecule file")
    suffix = path.suffix.lower()
    if suffix not in MOLECULE_SUFFIXES:
        raise InputError(
            f"unknown file type {suffix or '(none)'} for {path.name}; "
            f"supported: {', '.join(sorted(MOLECULE_SUFFIXES))} or a SMILES string"
        )
    reader = {".sdf": _read_sdf, ".sd": _read_sdf, ".mol": _read_sdf, ".pdb": _read_pdb,
              ".xyz": _read_xyz}[suffix]
    molecule = reader(path, charge)
    molecule.name = path.stem
    if charge is not None and molecule.total_charge != charge:
        raise InputError(
            f"{path.name}: formal charges sum to {molecule.total_charge}, but charge={charge} "
            "was given"
        )
    return molecule


def molecule_from_input(text: str, charge: int | None = None) -> Molecule:
    """Interpret ``text`` as a path when it names an existing file or ends like a molecule
    file, else as SMILES."""
    path = Path(text)
    looks_like_file = path.suffix.lower() in MOLECULE_SUFFIXES or path_exists(path)
    if looks_like_file or ("/" in text and "." in path.name):
        return read_molecule(path, charge=charge)
    if path.suffix and path.suffix.lower() not in MOLECULE_SUFFIXES and len(path.suffix) <= 5 \
            and path.suffix[1:].isalpha() and path.suffix[1:].islower():
        raise InputError(
            f"unknown file type {path.suffix} for {_shorten(text)}; supported: "
            f"{', '.join(sorted(MOLECULE_SUFFIXES))} or a SMILES string"
        )
    molecule = molecule_from_smiles(text)
    if charge is not None and molecule.total_charge != charge:
        raise InputError(f"SMILES has net charge {molecule.total_charge}, but charge={charge}")
    return molecule


def _read_sdf(path: Path, charge: int | None) -> Molecule:
    text = decode_text(read_bytes(path, "molecule file"), path.name, "molecule file")
    if not text.strip():
        raise InputError(f"{path.name} is empty")
    with _RDKitLog() as log:
        supplier = Chem.SDMolSupplier()
        supplier.SetData(text, removeHs=False, sanitize=True)
        records = list(supplier)
    if not records or any(r is None for r in records):
        raise InputError(f"could not parse {path.name}: {log.reason or 'invalid MOL block'}")
    first = records[0]
    if first.GetNumAtoms() == 0:
        raise InputError(f"{path.name} holds a molecule with no atoms")
    if any(a.GetAtomicNum() > 1 and a.GetTotalNumHs() > a.GetNumExplicitHs()
           for a in first.GetAtoms()) and first.GetNumAtoms() == Chem.RemoveHs(first).GetNumAtoms():
        first = Chem.AddHs(first, addCoords=True)
        records = [Chem.AddHs(r, addCoords=True) for r in records]
    key = Chem.MolToSmiles(first)
    coords = []
    for rec in records:
        if Chem.MolToSmiles(rec) != key:
            raise InputError(f"{path.name} holds more than one molecule; give one per file")
        coords.append(rec.GetConformer().GetPositions())
    mol = Chem.Mol(first)
    Chem.AssignStereochemistryFrom3D(mol)
    return Molecule(mol, np.array(coords), path.stem)


def _read_pdb(path: Path, charge: int | None) -> Molecule:
    text = read_text(path, "PDB file")
    if "CONECT" not in text:
        raise InputError(
            f"{path.name} has no CONECT records; bonds of a small molecule need CONECT "
            "(or give SDF/XYZ)"
        )
    with _RDKitLog() as log:
        mol = Chem.MolFromPDBBlock(text, removeHs=False, sanitize=False, proximityBonding=False)
    if mol is None or mol.GetNumAtoms() == 0:
        raise InputError(f"could not parse {path.name}: {log.reason or 'no atoms'}")
    # PDB has connectivity but no bond orders: perceive them from geometry + charge.
    for bond in mol.GetBonds():
        bond.SetBondType(Chem.BondType.SINGLE)
    for atom in mol.GetAtoms():
        atom.SetNoImplicit(True)
        atom.SetFormalCharge(0)
    return _perceive_orders(mol, charge or 0, path.name)


def _read_xyz(path: Path, charge: int | None) -> Molecule:
    frames = _split_xyz(path)
    with _RDKitLog() as log:
        mol = Chem.MolFromXYZBlock(frames[0])
    if mol is None:
        raise InputError(f"could not parse {path.name}: {log.reason or 'bad XYZ block'}")
    try:
        rdDetermineBonds.DetermineConnectivity(mol)
    except Exception as exc:
        raise InputError(f"{path.name}: bond perception failed: {exc}") from None
    molecule = _perceive_orders(mol, charge or 0, path.name)
    if len(frames) > 1:
        coords = []
        for block in frames:
            frame = Chem.MolFromXYZBlock(block)
            if frame is None or frame.GetNumAtoms() != molecule.n_atoms:
                raise InputError(f"{path.name}: frames differ in atom count")
            coords.append(frame.GetConformer().GetPositions())
        molecule = molecule.with_conformers(np.array(coords))
    return molecule


def _split_xyz(path: Path) -> list[str]:
    lines = read_text(path, "XYZ file").splitlines()
    frames, i = [], 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        try:
            n = int(lines[i].split()[0])
        except ValueError:
            raise InputError(f"{path.name}: line {i + 1} should hold an atom count") from None
        if n < 1:
            raise InputError(f"{path.name}: line {i + 1}: atom count {n} must be positive")
        if n + 2 > len(lines) - i:  # checked before slicing: a count is not trusted
            raise InputError(f"{path.name}: line {i + 1} announces {n} atoms but only "
                             f"{max(len(lines) - i - 2, 0)} lines follow")
        block = lines[i : i + n + 2]
        if len(block) < n + 2:
            raise InputError(f"{path.name}: truncated frame at line {i + 1}")
        # strip extended-XYZ extra columns: keep symbol x y z
        body = [" ".join(ln.split()[:4]) for ln in block[2:]]
        for offset, ln in enumerate(body):
            fields = ln.split()
            try:
                xyz = [float(v) for v in fields[1:4]]
            except ValueError:
                xyz = []
            if len(xyz) != 3:
                raise InputError(f"{path.name}: line {i + 3 + offset} should be 'symbol x y z'")
            if not all(map(math.isfinite, xyz)):
                raise InputError(f"non-finite coordinates in {path.name} (line {i + 3 + offset})")
        frames.append("\n".join([block[0].split()[0], "", *body]) + "\n")
        i += n + 2
    if not frames:
        raise InputError(f"{path.name} holds no atoms")
    return frames


def _perceive_orders(mol: Chem.Mol, charge: int, label: str) -> Molecule:
    coords = mol.GetConformer().GetPositions()
    if not np.all(np.isfinite(coords)):
        raise InputError(f"non-finite coordinates in {label}")
    work = Chem.Mol(mol)
    RDLogger.DisableLog("rdApp.*")
    try:
        rdDetermineBonds.DetermineBondOrders(work, charge=charge)
        Chem.SanitizeMol(work)
    except Exception as exc:
        raise InputError(
            f"{label}: could not assign bond orders for total charge {charge} ({exc}); "
            "check the charge argument or give an SDF file"
        ) from None
    finally:
        RDLogger.EnableLog("rdApp.*")
    Chem.AssignStereochemistryFrom3D(work)
    return Molecule(work, coords[None], Path(label).stem)
