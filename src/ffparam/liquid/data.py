"""Experimental liquid data: a CSV of density and heat of vaporization per liquid.

Columns (as ``liquids_train.csv``): ``name``, ``smiles``, ``temperature_K``,
``pressure_kPa``, ``density_g_per_mL`` and ``hvap_298K_kJ_per_mol`` (other columns such
as ``density_doi`` and ``cas`` are kept as provenance and otherwise ignored). Heats of
vaporization are converted to kcal/mol here, at the edge; densities stay in g/mL (the
unit every liquid property in :mod:`ffparam.liquid` uses).

Every row is checked: a missing or non-numeric value, a non-physical one (temperature
outside 50-1000 K, pressure outside 0-10^5 kPa, density outside 0.1-5 g/mL, heat of
vaporization outside 0-300 kJ/mol) or an unparsable SMILES raises one
:class:`~ffparam.errors.InputError` naming the file, the row (1-based data row, header
excluded) and the liquid.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from ffparam.errors import FFParamError, InputError
from ffparam.io.files import read_text
from ffparam.units import KCAL_PER_KJ

REQUIRED_COLUMNS: tuple[str, ...] = (
    "name", "smiles", "temperature_K", "pressure_kPa", "density_g_per_mL",
    "hvap_298K_kJ_per_mol",
)

PHYSICAL_RANGES: dict[str, tuple[float, float]] = {
    "temperature_K": (50.0, 1000.0),
    "pressure_kPa": (0.0, 1.0e5),
    "density_g_per_mL": (0.1, 5.0),
    "hvap_298K_kJ_per_mol": (0.0, 300.0),
}
"""Open intervals a value must lie in to be accepted (units of the column name)."""

KPA_PER_ATM: float = 101.325
"""1 standard atmosphere in kPa (exact by definition)."""


@dataclass(frozen=True)
class LiquidReference:
    """One experimental liquid.

    Attributes:
        name: label (file/directory names use :attr:`slug`).
        smiles: the molecule.
        temperature_k: K.
        pressure_atm: atm (converted from kPa).
        density_g_ml: g/mL (= g/cm^3).
        hvap_kcal_mol: heat of vaporization, kcal/mol (converted from kJ/mol).
        row: 1-based data row in the CSV (0 when not from a file).
    """

    name: str
    smiles: str
    temperature_k: float
    pressure_atm: float
    density_g_ml: float
    hvap_kcal_mol: float
    row: int = 0

    @property
    def slug(self) -> str:
        """File-system-safe name."""
        text = "".join(c if c.isalnum() else "_" for c in self.name.lower())
        return "_".join(part for part in text.split("_") if part) or "liquid"


def read_liquids_csv(path: str | Path, names: list[str] | None = None) -> list[LiquidReference]:
    """Read and validate a liquids CSV (see the module docstring).

    Args:
        path: the CSV file.
        names: keep only these liquids (by ``name``, case-insensitive); unknown names are
            an error.
    """
    path = Path(path)
    text = read_text(path, "liquids CSV")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path.name}: missing column(s) {', '.join(missing)}")
        rows = [_parse_row(path.name, n, row) for n, row in enumerate(reader, start=1)]
    except csv.Error as exc:
        raise InputError(f"{path.name} line {reader.line_num}: not valid CSV: {exc}") from None
    if not rows:
        raise InputError(f"{path.name}: no liquids")
    seen: set[str] = set()
    for ref in rows:
        if ref.slug in seen:
            raise InputError(f"{path.name} row {ref.row} ({ref.name}): duplicate liquid name")
        seen.add(ref.slug)
    if names:
        wanted = {n.strip().lower() for n in names}
        unknown = wanted - {r.name.lower() for r in rows}
        if unknown:
            raise InputError(f"{path.name}: no liquid named {', '.join(sorted(unknown))}")
        rows = [r for r in rows if r.name.lower() in wanted]
    return rows


def _parse_row(filename: str, number: int, row: dict[str, str | None]) -> LiquidReference:
    name = (row.get("name") or "").strip()
    where = f"{filename} row {number}" + (f" ({name})" if name else "")
    if not name:
        raise InputError(f"{where}: missing name")
    smiles = (row.get("smiles") or "").strip()
    if not smiles:
        raise InputError(f"{where}: missing smiles")
    values: dict[str, float] = {}
    for column, (low, high) in PHYSICAL_RANGES.items():
        text = (row.get(column) or "").strip()
        if not text:
            raise InputError(f"{where}: missing {column}")
        try:
            value = float(text)
        except ValueError:
            raise InputError(f"{where}: {column} {text!r} is not a number") from None
        if not math.isfinite(value) or not low < value < high:
            raise InputError(f"{where}: {column} = {text} is not physical "
                             f"(must lie between {low:g} and {high:g})")
        values[column] = value
    from ffparam.chem import Molecule

    try:
        Molecule.from_smiles(smiles)
    except FFParamError as exc:
        raise InputError(f"{where}: {exc}") from None
    return LiquidReference(
        name=name,
        smiles=smiles,
        temperature_k=values["temperature_K"],
        pressure_atm=values["pressure_kPa"] / KPA_PER_ATM,
        density_g_ml=values["density_g_per_mL"],
        hvap_kcal_mol=values["hvap_298K_kJ_per_mol"] * KCAL_PER_KJ,
        row=number,
    )
