"""Export records: extended XYZ (ASE-readable, eV and Angstrom) and JSON (internal units).

Extended XYZ frames carry ``energy`` (eV) in the info line and ``forces`` (eV/Angstrom) per
atom, the conventions ASE and ML-potential codes read (1 kcal/mol = 1/23.0605 eV, from
``ffparam.units``). Only complete records are written to extxyz; failed records are never
exported as data. Optimization records use their final geometry. QM/MM records (energies
and forces in the field of MM point charges, :mod:`ffparam.reference.qmmm`) are not plain
frames of the molecule and are left out of extxyz.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ffparam.io.atomic import atomic_output, write_text_atomic
from ffparam.reference.records import Record
from ffparam.units import KCAL_MOL_EV

JSON_UNITS = {
    "energy": "kcal/mol",
    "geometry": "Angstrom",
    "gradient": "kcal/mol/Angstrom",
    "hessian": "kcal/mol/Angstrom^2",
    "esp": "kcal/mol/e",
    "dipole": "e*Angstrom",
    "charges": "e",
    "polarizability": "Angstrom^3",
}


def records_to_atoms(records: Iterable[Record]) -> list:
    """ASE Atoms (one per complete record) with a SinglePointCalculator in eV, eV/Angstrom."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for record in records:
        if not record.ok or record.energy is None or record.mm_charges is not None:
            continue
        atoms = Atoms(numbers=list(record.species.numbers), positions=record.result_geometry)
        results = {"energy": record.energy * KCAL_MOL_EV}
        if record.gradient is not None:
            results["forces"] = -np.asarray(record.gradient) * KCAL_MOL_EV
        atoms.calc = SinglePointCalculator(atoms, **results)
        atoms.info.update(
            method=record.method,
            task=record.task_kind,
            key=record.key,
            molecule=record.species.key,
            charge=record.species.charge,
            multiplicity=record.species.multiplicity,
        )
        if record.dipole is not None:
            atoms.info["dipole_e_angstrom"] = np.asarray(record.dipole)
        frames.append(atoms)
    return frames


def write_extxyz(records: Iterable[Record], path: str | Path) -> int:
    """Write complete records to ``path`` as extended XYZ; returns the number of frames."""
    from ase.io import write

    frames = records_to_atoms(records)
    with atomic_output(path) as tmp:
        write(str(tmp), frames, format="extxyz")
    return len(frames)


def record_to_dict(record: Record) -> dict:
    """JSON-ready dict of a record (arrays as nested lists, internal units)."""
    data = {
        "key": record.key,
        "status": record.status,
        "method": record.method,
        "task": json.loads(record.task),
        "molecule": record.species.key,
        "name": record.species.name,
        "numbers": list(record.species.numbers),
        "charge": record.species.charge,
        "multiplicity": record.species.multiplicity,
        "geometry": np.asarray(record.geometry).tolist(),
        "energy": record.energy,
        "error": record.error,
        "provenance": record.provenance,
    }
    for name, array in record.arrays().items():
        data[name] = np.asarray(array).tolist()
    return data


def write_json(records: Iterable[Record], path: str | Path) -> int:
    """Write records (any status) to ``path`` as JSON; returns the number of records."""
    items = [record_to_dict(r) for r in records]
    write_text_atomic(path, json.dumps({"units": JSON_UNITS, "records": items}, indent=1))
    return len(items)
