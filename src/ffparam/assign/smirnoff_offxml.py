"""Read and write SMIRNOFF ``.offxml`` files, and convert their unit strings.

An ``.offxml`` file is a ``<SMIRNOFF>`` root holding metadata (``<Author>``, ``<Date>``)
and parameter handlers (``<Bonds>``, ``<Angles>``, ``<ProperTorsions>``, ...), each with
attributes and parameter elements (``<Bond smirks=... id=... k=... length=...>``). This
module keeps that document as plain data (:class:`OffxmlDocument`) with the attribute
strings exactly as written, so that a file can be written back with only the changed
values re-formatted.

Quantities are strings such as ``"529.2 * angstrom**-2 * mole**-1 * kilocalorie"``:
a number times a product of ``unit ** power`` factors (``/`` is accepted too).
:func:`quantity_to_internal` parses one into ffparam's internal units (kcal/mol,
Angstrom, rad, e) after checking its dimension; :func:`format_quantity` writes an internal
value back in the file's customary unit such that reading it returns the identical float.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from ffparam.errors import InputError
from ffparam.io.atomic import write_text_atomic
from ffparam.units import KCAL_PER_KJ, RAD_PER_DEG

# --------------------------------------------------------------------------- units
# Base dimensions: E energy (kcal), N amount (mol), L length (Angstrom), A angle (rad),
# Q charge (e). A unit is (factor to the internal base, {dimension: power}).
_UNITS: dict[str, tuple[float, dict[str, int]]] = {
    "kilocalorie": (1.0, {"E": 1}),
    "kilocalories": (1.0, {"E": 1}),
    "calorie": (1e-3, {"E": 1}),
    "kilojoule": (KCAL_PER_KJ, {"E": 1}),
    "kilojoules": (KCAL_PER_KJ, {"E": 1}),
    "joule": (KCAL_PER_KJ * 1e-3, {"E": 1}),
    "mole": (1.0, {"N": 1}),
    "mol": (1.0, {"N": 1}),
    "kilocalorie_per_mole": (1.0, {"E": 1, "N": -1}),
    "kilocalories_per_mole": (1.0, {"E": 1, "N": -1}),
    "kilojoule_per_mole": (KCAL_PER_KJ, {"E": 1, "N": -1}),
    "kilojoules_per_mole": (KCAL_PER_KJ, {"E": 1, "N": -1}),
    "angstrom": (1.0, {"L": 1}),
    "angstroms": (1.0, {"L": 1}),
    "nanometer": (10.0, {"L": 1}),
    "nanometers": (10.0, {"L": 1}),
    "picometer": (0.01, {"L": 1}),
    "degree": (RAD_PER_DEG, {"A": 1}),
    "degrees": (RAD_PER_DEG, {"A": 1}),
    "radian": (1.0, {"A": 1}),
    "radians": (1.0, {"A": 1}),
    "elementary_charge": (1.0, {"Q": 1}),
    "dimensionless": (1.0, {}),
}

DIMENSIONS: dict[str, dict[str, int]] = {
    "energy": {"E": 1, "N": -1},
    "bond_k": {"E": 1, "N": -1, "L": -2},
    "angle_k": {"E": 1, "N": -1, "A": -2},
    "length": {"L": 1},
    "angle": {"A": 1},
    "charge": {"Q": 1},
    "dimensionless": {},
}
"""Named dimensions of SMIRNOFF fields (angle powers are not checked: pint treats the
radian as dimensionless, so files may omit ``radian ** -2``)."""

FILE_UNITS: dict[str, tuple[str, float]] = {
    "energy": ("kilocalorie_per_mole ** 1", 1.0),
    "bond_k": ("kilocalorie_per_mole ** 1 * angstrom ** -2", 1.0),
    "angle_k": ("kilocalorie_per_mole ** 1 * radian ** -2", 1.0),
    "length": ("angstrom ** 1", 1.0),
    "angle": ("degree ** 1", RAD_PER_DEG),
    "charge": ("elementary_charge ** 1", 1.0),
}
"""Unit written for each dimension and its factor to internal units."""

_FACTOR = re.compile(r"^([A-Za-z_]+)(?:\^([+-]?\d+))?$")


def parse_quantity(text: str) -> tuple[float, dict[str, int]]:
    """``"529.2 * angstrom**-2 * mole**-1 * kilocalorie"`` -> (value in internal base
    units, {dimension: power}). A bare number is dimensionless."""
    src = str(text).strip()
    tokens = re.split(r"\s*([*/])\s*", src.replace("**", "^").replace(" ^ ", "^")
                      .replace("^ ", "^").replace(" ^", "^"))
    try:
        value = float(tokens[0])
    except ValueError:
        raise InputError(f"cannot read quantity {src!r}: no leading number") from None
    dims: dict[str, int] = {}
    for op, factor in zip(tokens[1::2], tokens[2::2]):
        match = _FACTOR.match(factor)
        if match is None or match.group(1) not in _UNITS:
            raise InputError(f"unknown unit {factor!r} in quantity {src!r}")
        scale, unit_dims = _UNITS[match.group(1)]
        power = int(match.group(2) or 1) * (-1 if op == "/" else 1)
        value *= scale**power
        for dim, p in unit_dims.items():
            dims[dim] = dims.get(dim, 0) + p * power
    return value, {d: p for d, p in dims.items() if p}


def quantity_to_internal(text: str, dimension: str, what: str = "value") -> float:
    """Parse ``text`` and check it has ``dimension`` (a key of :data:`DIMENSIONS`);
    return the value in internal units (kcal/mol, Angstrom, rad, e)."""
    value, dims = parse_quantity(text)
    want = {d: p for d, p in DIMENSIONS[dimension].items() if d != "A"}
    got = {d: p for d, p in dims.items() if d != "A"}
    if got != want:
        raise InputError(f"{what}={text!r} does not have the dimension of {dimension}")
    return value


def format_quantity(value: float, dimension: str, to_stored=None, from_stored=None) -> str:
    """Internal ``value`` -> ``"<number> * <unit>"`` in the customary file unit
    (:data:`FILE_UNITS`).

    ``to_stored`` maps the file quantity (internal units) to the stored value (e.g. an
    rmin_half to sigma, a torsion k to k/idivf) and ``from_stored`` is its inverse; both
    default to identity. The decimal text is chosen so that reading it back
    (``to_stored(quantity_to_internal(text, dimension))``) gives ``value`` exactly; an
    angle whose degree text cannot is written in radians. Other values that no nearby
    text reproduces are written with the nearest text.
    """
    to_stored = to_stored or (lambda x: x)
    from_stored = from_stored or (lambda x: x)
    unit, factor = FILE_UNITS[dimension]
    guess = from_stored(value) / factor
    candidates = [guess]
    low = high = guess
    for _ in range(64):
        low, high = math.nextafter(low, -math.inf), math.nextafter(high, math.inf)
        candidates += [low, high]
    for cand in candidates:
        text = f"{cand!r} * {unit}"
        if to_stored(quantity_to_internal(text, dimension)) == value:
            return text
    if dimension == "angle":
        return f"{float(from_stored(value))!r} * radian ** 1"
    return f"{guess!r} * {unit}"


# --------------------------------------------------------------------------- document
METADATA_TAGS = ("Author", "Date")
@dataclass
class OffxmlElement:
    """One parameter element, e.g. ``<Bond smirks=... id=... k=...>``, attributes as
    written (strings, file order)."""

    tag: str
    attrib: dict[str, str]


@dataclass
class OffxmlHandler:
    """One parameter handler, e.g. ``<Bonds version="0.4" potential="harmonic">``."""

    tag: str
    attrib: dict[str, str]
    elements: list[OffxmlElement] = field(default_factory=list)


@dataclass
class OffxmlDocument:
    """A whole ``.offxml``: root attributes, metadata (tag, text) and handlers in file
    order. Several handlers with the same tag are kept separately (SMIRNOFF merges them)."""

    root_attrib: dict[str, str]
    metadata: list[tuple[str, str]]
    handlers: list[OffxmlHandler]
    source: str = ""

    def handlers_named(self, tag: str) -> list[OffxmlHandler]:
        return [h for h in self.handlers if h.tag == tag]


def read_offxml(path: str | Path) -> OffxmlDocument:
    """Parse an ``.offxml`` file into an :class:`OffxmlDocument`."""
    from ffparam.io.files import read_bytes

    path = Path(path)
    data = read_bytes(path, "force field (.offxml)")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise InputError(f"{path.name} is not valid XML: {exc}") from None
    return _document_from_root(root, str(path))


def parse_offxml_text(text: str, source: str = "<string>") -> OffxmlDocument:
    """Parse ``.offxml`` text into an :class:`OffxmlDocument`."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise InputError(f"{source} is not valid XML: {exc}") from None
    return _document_from_root(root, source)


def _document_from_root(root: ET.Element, source: str) -> OffxmlDocument:
    if root.tag != "SMIRNOFF":
        raise InputError(f"{source} is not a SMIRNOFF force field (root <{root.tag}>)")
    metadata, handlers = [], []
    for child in root:
        if not isinstance(child.tag, str):  # comments
            continue
        if child.tag in METADATA_TAGS or (len(child) == 0 and not child.attrib
                                          and (child.text or "").strip()):
            metadata.append((child.tag, (child.text or "").strip()))
            continue
        elements = [OffxmlElement(e.tag, dict(e.attrib)) for e in child
                    if isinstance(e.tag, str)]
        handlers.append(OffxmlHandler(child.tag, dict(child.attrib), elements))
    return OffxmlDocument(dict(root.attrib), metadata, handlers, source)


def write_offxml(document: OffxmlDocument, path: str | Path) -> Path:
    """Write ``document`` as an indented ``.offxml`` (atomically: temp file + rename)."""
    root = ET.Element("SMIRNOFF", document.root_attrib)
    for tag, text in document.metadata:
        ET.SubElement(root, tag).text = text
    for handler in document.handlers:
        node = ET.SubElement(root, handler.tag, handler.attrib)
        for element in handler.elements:
            ET.SubElement(node, element.tag, element.attrib)
    ET.indent(root, space="    ")
    text = '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode",
                                                            short_empty_elements=False)
    return write_text_atomic(path, text + "\n")


__all__ = [
    "OffxmlDocument",
    "OffxmlElement",
    "OffxmlHandler",
    "format_quantity",
    "parse_offxml_text",
    "parse_quantity",
    "quantity_to_internal",
    "read_offxml",
    "write_offxml",
]
