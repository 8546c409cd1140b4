"""SMIRNOFF parameter elements <-> ffparam :class:`~ffparam.params.Parameter` objects.

Conversions (file -> internal; the writer inverts them exactly):

* ``<Bond k length>``: E = k/2 (r - r0)^2 in both, so k is copied (kcal/mol/A^2);
* ``<Angle k angle>``: E = k/2 (theta - theta0)^2 in both (kcal/mol/rad^2, rad);
* ``<Proper k# phase# periodicity# idivf#>``: internal per-term k# = k#_file / idivf#
  (idivf# missing: the handler's numeric ``default_idivf``, else 1 for ``auto``);
* ``<Improper ...>``: SMIRNOFF applies each improper to the three cyclic permutations of
  the non-central atoms with k#_file / idivf# each (idivf ``auto`` = 3). Internally k# is
  the total over the three permutations, k# = k#_file * (3 / idivf#), and each
  permutation term is built with scale 1/3 (so a file k with idivf 3 is stored as is);
* ``<Atom epsilon sigma|rmin_half>``: sigma = 2 rmin_half / 2^(1/6).

``Parameter.fixed`` holds ``offxml_id`` (the file's ``id``), ``periodicity#`` and the
resolved ``idivf#`` of torsions.
"""

from __future__ import annotations

import re

from ffparam.assign.smirnoff_offxml import OffxmlElement, format_quantity, quantity_to_internal
from ffparam.errors import InputError
from ffparam.params.conventions import lj_size_from_sigma, lj_size_to_sigma
from ffparam.params.parameter_set import Parameter

SECTION_ELEMENTS: dict[str, str] = {
    "Bonds": "Bond",
    "Angles": "Angle",
    "ProperTorsions": "Proper",
    "ImproperTorsions": "Improper",
    "vdW": "Atom",
}
"""Sections of the ParameterSet that come from SMIRNOFF handlers, and their element tag."""

VALUE_ATTRIBUTES = re.compile(r"^(k|length|angle|epsilon|sigma|rmin_half|"
                              r"(k|phase|periodicity|idivf)\d+)$")
"""Attributes that hold parameter values (everything else on an element is kept as is)."""

IMPROPER_PERMUTATIONS = 3
"""SMIRNOFF impropers are applied to 3 cyclic permutations of the non-central atoms."""


def torsion_idivf_default(section: str, default_idivf: str | None) -> float:
    """idivf used when a torsion term names none: a numeric ``default_idivf``, else 3 for
    impropers and 1 for propers (``auto``)."""
    if default_idivf not in (None, "auto"):
        try:
            return float(default_idivf)
        except ValueError:
            raise InputError(f"bad default_idivf {default_idivf!r} in {section}") from None
    return float(IMPROPER_PERMUTATIONS) if section == "ImproperTorsions" else 1.0


def element_to_parameter(section: str, element: OffxmlElement,
                         default_idivf: str | None = None) -> Parameter:
    """Convert one ``<Bond>/<Angle>/<Proper>/<Improper>/<Atom>`` element (internal units)."""
    att = element.attrib
    smirks = att.get("smirks")
    if not smirks:
        raise InputError(f"{section} parameter without smirks: {att}")
    where = f"{section} {att.get('id', smirks)}"
    fixed: dict = {"offxml_id": att.get("id", "")}

    def q(name: str, dimension: str) -> float:
        if name not in att:
            raise InputError(f"{where} has no {name}")
        return quantity_to_internal(att[name], dimension, f"{where} {name}")

    if section == "Bonds":
        if any(re.fullmatch(r"k_bondorder\d+", a) for a in att):
            raise InputError(f"{where}: bond-order interpolated bonds are not supported")
        values = {"k": q("k", "bond_k"), "length": q("length", "length")}
    elif section == "Angles":
        values = {"k": q("k", "angle_k"), "angle": q("angle", "angle")}
    elif section in ("ProperTorsions", "ImproperTorsions"):
        if any(re.fullmatch(r"k_bondorder\d+", a) for a in att):
            raise InputError(f"{where}: bond-order interpolated torsions are not supported")
        terms = sorted(int(m.group(1)) for a in att if (m := re.fullmatch(r"k(\d+)", a)))
        if not terms or terms != list(range(1, len(terms) + 1)):
            raise InputError(f"{where}: torsion terms must be numbered k1..kN")
        values = {}
        default = torsion_idivf_default(section, default_idivf)
        for n in terms:
            idivf = float(att[f"idivf{n}"]) if f"idivf{n}" in att else default
            if idivf <= 0:
                raise InputError(f"{where}: idivf{n} must be positive")
            k = q(f"k{n}", "energy")
            values[f"k{n}"] = (k * (IMPROPER_PERMUTATIONS / idivf)
                               if section == "ImproperTorsions" else k / idivf)
            values[f"phase{n}"] = q(f"phase{n}", "angle")
            if f"periodicity{n}" not in att:
                raise InputError(f"{where} has no periodicity{n}")
            fixed[f"periodicity{n}"] = int(att[f"periodicity{n}"])
            fixed[f"idivf{n}"] = idivf
    elif section == "vdW":
        has_sigma, has_rmin = "sigma" in att, "rmin_half" in att
        if has_sigma == has_rmin:
            raise InputError(f"{where} needs exactly one of sigma and rmin_half")
        sigma = (q("sigma", "length") if has_sigma
                 else lj_size_to_sigma(q("rmin_half", "length"), "rmin_half"))
        values = {"epsilon": q("epsilon", "energy"), "sigma": sigma}
    else:
        raise InputError(f"section {section} has no SMIRNOFF element form")
    return Parameter(smirks, values, fixed)


def parameter_to_attributes(section: str, parameter: Parameter, default_idivf: str | None,
                            template: dict[str, str] | None = None,
                            prefer_rmin_half: bool = True) -> dict[str, str]:
    """Attributes of the element that :func:`element_to_parameter` reads back as
    ``parameter`` exactly. ``template`` (the original element's attributes) supplies the
    non-value attributes (cosmetic ones included) and their order."""
    att: dict[str, str] = {"smirks": parameter.id, "id": str(parameter.fixed["offxml_id"])}
    for name, text in (template or {}).items():
        if name not in att and not VALUE_ATTRIBUTES.match(name):
            att[name] = text
    v = parameter.values
    if section == "Bonds":
        att["length"] = format_quantity(v["length"], "length")
        att["k"] = format_quantity(v["k"], "bond_k")
    elif section == "Angles":
        att["angle"] = format_quantity(v["angle"], "angle")
        att["k"] = format_quantity(v["k"], "angle_k")
    elif section in ("ProperTorsions", "ImproperTorsions"):
        default = torsion_idivf_default(section, default_idivf)
        for n in range(1, parameter.n_terms() + 1):
            idivf = float(parameter.fixed.get(f"idivf{n}", default))
            if section == "ImproperTorsions":
                ratio = IMPROPER_PERMUTATIONS / idivf
                k_text = format_quantity(v[f"k{n}"], "energy", lambda k, r=ratio: k * r,
                                         lambda k, r=ratio: k / r)
            else:
                k_text = format_quantity(v[f"k{n}"], "energy", lambda k, d=idivf: k / d,
                                         lambda k, d=idivf: k * d)
            att[f"periodicity{n}"] = str(int(parameter.fixed[f"periodicity{n}"]))
            att[f"phase{n}"] = format_quantity(v[f"phase{n}"], "angle")
            att[f"k{n}"] = k_text
            att[f"idivf{n}"] = repr(idivf)
    elif section == "vdW":
        att["epsilon"] = format_quantity(v["epsilon"], "energy")
        sigma = v["sigma"]
        if prefer_rmin_half:
            text = format_quantity(sigma, "length",
                                   lambda r: lj_size_to_sigma(r, "rmin_half"),
                                   lambda s: lj_size_from_sigma(s, "rmin_half"))
            if lj_size_to_sigma(quantity_to_internal(text, "length"), "rmin_half") == sigma:
                att["rmin_half"] = text
                return att
        att["sigma"] = format_quantity(sigma, "length")
    else:
        raise InputError(f"section {section} cannot be written to an .offxml")
    return att


def check_parameter(section: str, parameter: Parameter) -> None:
    """Raise :class:`InputError` unless ``parameter`` can be written to ``section``."""
    needed = {"Bonds": ("k", "length"), "Angles": ("k", "angle"),
              "vdW": ("epsilon", "sigma")}.get(section)
    if section not in SECTION_ELEMENTS:
        raise InputError(f"section {section} cannot be written to an .offxml "
                         f"(SMIRNOFF sections: {', '.join(SECTION_ELEMENTS)})")
    if needed:
        missing = [f for f in needed if f not in parameter.values]
    else:
        n = parameter.n_terms()
        missing = [f"{name}{i}" for i in range(1, n + 1) for name in ("k", "phase")
                   if f"{name}{i}" not in parameter.values]
        missing += [f"periodicity{i}" for i in range(1, n + 1)
                    if f"periodicity{i}" not in parameter.fixed]
        if n == 0:
            missing.append("k1")
    if missing:
        raise InputError(f"{section} parameter {parameter.id!r} lacks {', '.join(missing)}")


__all__ = [
    "IMPROPER_PERMUTATIONS",
    "SECTION_ELEMENTS",
    "check_parameter",
    "element_to_parameter",
    "parameter_to_attributes",
    "torsion_idivf_default",
]
