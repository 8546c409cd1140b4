"""Import torsion drives computed elsewhere (e.g. DFT scans published by OpenFF/QCArchive).

Two formats:

(a) extended XYZ, one frame per grid point, each frame's info holding
    ``dihedral_atoms`` (four 0-based indices, e.g. ``dihedral_atoms="4 9 10 6"``; a 2-D scan
    gives eight) and the energy as ASE's ``energy`` (eV) or ``energy_hartree`` (Hartree).
    The grid angle is taken from ``dihedral_angle``/``grid_angle`` (degrees) when present,
    else measured from the geometry.

(b) QCFractal/QCSubmit TorsionDrive result JSON (optionally ``.xz``): a record (or a list,
    or ``{"records": [...]}``) with ``keywords.dihedrals`` (or
    ``specification.keywords.dihedrals``), final energies per grid point in Hartree
    (``final_energies`` / ``final_energy_dict``, keys like ``"[-165]"``) and the optimized
    geometry per grid point (``final_molecules`` / ``minimum_molecules``: ``symbols`` and
    ``geometry`` in Bohr, flat or (N, 3)). The molecule's mapped SMILES, when present
    (``canonical_isomeric_explicit_hydrogen_mapped_smiles``), is kept as provenance.

Energies come out in kcal/mol, geometries in Angstrom, angles in degrees.
"""

from __future__ import annotations

import json
import lzma
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ffparam.errors import InputError
from ffparam.io.files import MAX_TEXT_BYTES, decode_text, read_bytes, require_file
from ffparam.units import BOHR_ANGSTROM, EV_KCAL_MOL, HARTREE_KCAL_MOL

MAPPED_SMILES_KEYS = ("canonical_isomeric_explicit_hydrogen_mapped_smiles",
                      "mapped_smiles", "cmiles")


@dataclass
class ImportedScan:
    """A torsion scan read from a file.

    Attributes:
        dihedrals: (n_d, 4) 0-based atom indices.
        angles: (P, n_d) grid angles, degrees.
        symbols: element symbols in the file's atom order.
        geometries: (P, N, 3) Angstrom.
        energies: (P,) kcal/mol (absolute as given; only differences are used).
        source: file path; provenance: method, program and other metadata found.
    """

    dihedrals: np.ndarray
    angles: np.ndarray
    symbols: list[str]
    geometries: np.ndarray
    energies: np.ndarray
    source: str
    provenance: dict = field(default_factory=dict)


def read_torsion_scans(path: str | Path) -> list[ImportedScan]:
    """Read every scan in ``path`` (.xyz/.extxyz, .json, .json.xz)."""
    path = require_file(path, "torsion scan file")
    name = path.name.lower()
    if name.endswith((".xyz", ".extxyz")):
        return [_read_extxyz(path)]
    if name.endswith((".json", ".json.xz")):
        return _read_qcfractal_json(path)
    raise InputError(f"unknown torsion-scan file type for {path.name}; use extended XYZ "
                     "(.xyz) or QCFractal TorsionDrive JSON (.json, .json.xz)")


def check_atom_order(scan: ImportedScan, symbols: list[str], bonds: np.ndarray,
                     label: str = "") -> None:
    """Raise :class:`InputError` unless ``scan`` has the molecule's elements in the same
    order and its bonded atoms sit at bonding distances."""
    what = label or scan.source
    if list(scan.symbols) != list(symbols):
        diff = next((i for i, (a, b) in enumerate(zip(scan.symbols, symbols)) if a != b),
                    min(len(scan.symbols), len(symbols)))
        raise InputError(f"{what}: atom order does not match the input molecule (atom {diff}: "
                         f"{_at(scan.symbols, diff)} in the scan, {_at(symbols, diff)} in the "
                         f"molecule; {len(scan.symbols)} vs {len(symbols)} atoms)")
    from ffparam.chem.geometry import stretched_bond

    from_symbols = [_atomic_number(s) for s in symbols]
    bad = stretched_bond(from_symbols, bonds, scan.geometries)
    if bad is not None:
        frame, a, b, length = bad
        raise InputError(f"{what}: atoms {a} and {b} are bonded in the molecule but "
                         f"{length:.2f} A apart in scan frame {frame}; the atom order does "
                         "not match the input molecule")


def _atomic_number(symbol: str) -> int:
    from rdkit import Chem

    return Chem.GetPeriodicTable().GetAtomicNumber(symbol)


def _at(symbols: list[str], i: int) -> str:
    return symbols[i] if i < len(symbols) else "none"


def _read_extxyz(path: Path) -> ImportedScan:
    from ffparam.io.xyz import read_extxyz_frames

    frames = read_extxyz_frames(path, what="torsion scan (extended XYZ)")
    if not frames:
        raise InputError(f"{path.name} holds no frames")
    energies, dihedrals, angles, geoms = [], None, [], []
    for n, atoms in enumerate(frames):
        info = atoms.info
        atoms_field = info.get("dihedral_atoms")
        if atoms_field is None:
            raise InputError(f"{path.name} frame {n}: no dihedral_atoms in the comment line")
        quads = np.array(str(atoms_field).replace(",", " ").split() if isinstance(
            atoms_field, str) else np.ravel(atoms_field), dtype=np.int64).reshape(-1, 4)
        if dihedrals is None:
            dihedrals = quads
        elif not np.array_equal(quads, dihedrals):
            raise InputError(f"{path.name} frame {n}: dihedral_atoms differ from frame 0")
        energies.append(_frame_energy(atoms, path.name, n))
        geoms.append(atoms.get_positions())
        given = info.get("dihedral_angle", info.get("grid_angle"))
        angles.append(None if given is None else np.ravel(np.array(given, dtype=float)))
    geometries = np.array(geoms)
    measured = measure_dihedrals(geometries, dihedrals)
    angle_table = np.array([measured[i] if a is None else a for i, a in enumerate(angles)])
    provenance = {"format": "extxyz"}
    for key in ("method", "basis", "program"):
        if key in frames[0].info:
            provenance[key] = str(frames[0].info[key])
    return ImportedScan(dihedrals, angle_table.reshape(len(frames), -1),
                        frames[0].get_chemical_symbols(), geometries, np.array(energies),
                        str(path), provenance)


def _frame_energy(atoms, name: str, n: int) -> float:
    info = atoms.info
    if "energy_hartree" in info:
        value = float(info["energy_hartree"]) * HARTREE_KCAL_MOL
    else:
        energy = info.get("energy")
        if energy is None and atoms.calc is not None:
            try:
                energy = atoms.get_potential_energy()
            except Exception:  # calculator without an energy
                energy = None
        if energy is None:
            raise InputError(f"{name} frame {n}: no energy (give energy= in eV or "
                             "energy_hartree=)")
        value = float(energy) * EV_KCAL_MOL
    if not np.isfinite(value):
        raise InputError(f"{name} frame {n}: non-finite energy")
    return value


def measure_dihedrals(geometries: np.ndarray, dihedrals: np.ndarray) -> np.ndarray:
    """Dihedral angles (P, n_d) in degrees, (-180, 180]."""
    p = [geometries[:, dihedrals[:, a]] for a in range(4)]
    b1, b2, b3 = p[1] - p[0], p[2] - p[1], p[3] - p[2]
    n1, n2 = np.cross(b1, b2), np.cross(b2, b3)
    y = np.linalg.norm(b2, axis=-1) * np.sum(b1 * n2, axis=-1)
    x = np.sum(n1 * n2, axis=-1)
    return np.degrees(np.arctan2(y, x))


def _load_json(path: Path):
    data = read_bytes(path, "torsion scan file")
    try:
        if path.name.lower().endswith(".xz"):
            data = _decompress_xz(data, path.name)
        return json.loads(decode_text(data, path.name, "JSON file"))
    except (lzma.LZMAError, json.JSONDecodeError, EOFError) as exc:
        raise InputError(f"could not read {path.name} as JSON: {exc}") from None
    except RecursionError:
        raise InputError(f"could not read {path.name} as JSON: nested too deeply") from None


def _decompress_xz(data: bytes, name: str) -> bytes:
    """``data`` xz-decompressed, refusing truncated streams and more than
    :data:`~ffparam.io.files.MAX_TEXT_BYTES` of output (a decompression bomb)."""
    decompressor = lzma.LZMADecompressor()
    out = decompressor.decompress(data, max_length=MAX_TEXT_BYTES)
    if not decompressor.eof:
        if decompressor.needs_input:
            raise InputError(f"{name}: truncated xz stream")
        raise InputError(f"{name} decompresses to more than {MAX_TEXT_BYTES / 1024**3:.0f} GiB")
    return out


def _read_qcfractal_json(path: Path) -> list[ImportedScan]:
    data = _load_json(path)
    records = data.get("records", data) if isinstance(data, dict) else data
    if isinstance(records, dict):
        records = [records]
    if not isinstance(records, list) or not records:
        raise InputError(f"{path.name}: no TorsionDrive records found")
    scans = []
    for i, record in enumerate(records):
        try:
            scans.append(_qcfractal_record(record, path, i))
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
            if isinstance(exc, InputError):
                raise
            # any other type or shape mismatch in the untrusted record
            raise InputError(f"{path.name} record {i}: not a TorsionDrive record "
                             f"({type(exc).__name__}: {exc})") from None
    return scans


def _first(mapping: dict, *keys):
    for key in keys:
        if isinstance(mapping, dict) and mapping.get(key) is not None:
            return mapping[key]
    return None


def _qcfractal_record(record: dict, path: Path, index: int) -> ImportedScan:
    where = f"{path.name} record {index}"
    keywords = _first(record, "keywords") or _first(record.get("specification", {}),
                                                     "keywords") or {}
    dihedrals = keywords.get("dihedrals")
    if not dihedrals:
        raise InputError(f"{where}: no keywords.dihedrals")
    dihedrals = np.array(dihedrals, dtype=np.int64).reshape(-1, 4)
    energies = _first(record, "final_energies", "final_energy_dict")
    molecules = _first(record, "final_molecules", "minimum_molecules", "minimum_positions")
    if not energies or not molecules:
        raise InputError(f"{where}: needs final_energies and final_molecules per grid point")
    keys = sorted(energies, key=lambda k: tuple(_grid_key(k)))
    missing = [k for k in keys if k not in molecules]
    if missing:
        raise InputError(f"{where}: grid point(s) {missing[:3]} have an energy but no geometry")
    symbols, geoms = None, []
    for key in keys:
        mol = molecules[key]
        syms = mol.get("symbols")
        geom = np.array(mol.get("geometry"), dtype=float).reshape(-1, 3) * BOHR_ANGSTROM
        if symbols is None:
            symbols = list(syms)
        elif list(syms) != symbols:
            raise InputError(f"{where}: grid point {key} has different atoms")
        geoms.append(geom)
    energy = np.array([float(energies[k]) for k in keys]) * HARTREE_KCAL_MOL
    if not np.all(np.isfinite(energy)):
        raise InputError(f"{where}: non-finite energy")
    initial = record.get("initial_molecule") or {}
    if isinstance(initial, list):
        initial = initial[0] if initial else {}
    identifiers = {**(initial.get("identifiers") or {}), **(initial.get("extras") or {}),
                   **(record.get("extras") or {}), **(record.get("attributes") or {})}
    spec = record.get("specification", {}) or {}
    qc = spec.get("qc_specification") or spec.get("qc_spec") or record.get("qc_spec") or {}
    provenance = {"format": "qcfractal-torsiondrive-json",
                  "record_id": record.get("id"),
                  "method": qc.get("method"), "basis": qc.get("basis"),
                  "program": qc.get("program"),
                  "mapped_smiles": _first(identifiers, *MAPPED_SMILES_KEYS)}
    angles = np.array([_grid_key(k) for k in keys], dtype=float).reshape(len(keys), -1)
    return ImportedScan(dihedrals, angles, symbols, np.array(geoms), energy, str(path),
                        {k: v for k, v in provenance.items() if v is not None})


def _grid_key(key: str) -> list[float]:
    try:
        return [float(v) for v in json.loads(key)]
    except (json.JSONDecodeError, TypeError):
        raise InputError(f"grid key {key!r} is not like '[-165]'") from None
