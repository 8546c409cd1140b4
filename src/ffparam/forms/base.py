"""The :class:`Form` declaration and the registry every layer looks functional forms up in.

A form is the energy of one term as a function of one internal coordinate (a distance, an
angle or a dihedral, see :data:`GEOMETRIES`) and of the term's parameters, in internal
units (kcal/mol, Angstrom, radians, e). It declares, in one place, everything the rest of
ffparam needs to know about it:

* ``name``, ``n_atoms``, ``geometry``, ``fields`` (parameter field -> internal unit) and
  the parameter ``sections`` whose terms use it (what :mod:`ffparam.params` builds from);
* :meth:`Form.energy` and :meth:`Form.derivative` (dE/dx of the coordinate), batched over
  terms and conformers (what the MM engine's autograd and closed-form paths evaluate);
* :meth:`Form.openmm_force` (the OpenMM System export) and ``standard``: the standard
  harmonic / periodic table its terms are written to in AMBER, GROMACS and ffxml files,
  or None when those formats cannot carry it (their writers then raise one
  :class:`~ffparam.errors.ConventionError` naming ``label`` and the format);
* ``kernel``: the kind of the optional compiled kernel (:mod:`ffparam.mm.kernel`) with
  fast code for it, or None: systems using the form run on the pure-PyTorch path.

Forms are written with tensor methods and operators (``x.cos()``, ``%``), so declaring
them imports neither torch nor OpenMM (the latter is imported by :meth:`openmm_force`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ffparam.errors import ConventionError, InputError

if TYPE_CHECKING:
    import openmm
    import torch

GEOMETRIES: dict[str, int] = {"distance": 2, "angle": 3, "dihedral": 4}
"""Internal coordinate -> atoms per term: distance |x_j - x_i| (Angstrom), angle i-j-k at
apex j (radians, [0, pi]) and dihedral i-j-k-l (radians, (-pi, pi], IUPAC sign)."""

CATEGORIES = ("bonds", "angles", "torsions")
"""Energy categories of export checks (:mod:`ffparam.export.verify`) a form belongs to."""

STANDARD_TABLES: dict[str, tuple[str, ...]] = {
    "bond": ("k", "length"), "angle": ("k", "angle"), "torsion": ("k", "phase")}
"""Standard tables of AMBER/GROMACS/ffxml files and the fields a form written to them
must have: harmonic E = k/2 (x - x0)^2 bonds and angles, periodic torsions
E = k (1 + cos(n phi - phase))."""


@dataclass(frozen=True)
class Form:
    """One functional form (subclass it and override the energy methods).

    Attributes:
        name: registry key (``TermGroup.form``), e.g. ``harmonic_bond``.
        geometry: key of :data:`GEOMETRIES` the energy is a function of.
        fields: parameter field -> internal unit, in the order the form reads them.
        sections: parameter sections (``ParameterSet``) whose terms use this form.
        label: plural noun for messages (``"Morse bonds"``).
        category: energy category of export checks (``bonds``, ``angles``, ``torsions``).
        scaled_fields: fields the energy is jointly proportional to (E(s f) = s E(f) for
            these fields f), so a term's energy scale is folded into them (k; D of Morse).
        periodic: fields are numbered per term (``k1``, ``phase1``, ...) with an integer
            ``periodicity#`` in ``Parameter.fixed``; one term row per number, and the
            energy methods get ``periodicity`` as a parameter.
        standard: key of :data:`STANDARD_TABLES` for AMBER/GROMACS/ffxml, or None.
        kernel: kind of :mod:`ffparam.mm.kernel`, or None (pure-PyTorch path).
    """

    name: str
    geometry: str
    fields: dict[str, str]
    sections: tuple[str, ...]
    label: str
    category: str
    scaled_fields: tuple[str, ...] = ("k",)
    periodic: bool = False
    standard: str | None = None
    kernel: str | None = None
    section_fields: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.geometry not in GEOMETRIES:
            raise InputError(f"form {self.name}: geometry {self.geometry!r} is not one of "
                             f"{', '.join(GEOMETRIES)}")
        if self.category not in CATEGORIES:
            raise InputError(f"form {self.name}: category {self.category!r} is not one of "
                             f"{', '.join(CATEGORIES)}")
        if not self.scaled_fields or not set(self.scaled_fields) <= set(self.fields):
            raise InputError(f"form {self.name}: scaled fields {self.scaled_fields} must be "
                             "some of its fields")
        if self.standard is not None and \
                tuple(STANDARD_TABLES.get(self.standard, ())) != tuple(self.fields):
            raise InputError(f"form {self.name}: standard table {self.standard!r} needs "
                             f"fields {STANDARD_TABLES.get(self.standard)}")
        suffix = "#" if self.periodic else ""
        object.__setattr__(self, "section_fields",
                           {f"{name}{suffix}": unit for name, unit in self.fields.items()})

    @property
    def n_atoms(self) -> int:
        """Atoms per term."""
        return GEOMETRIES[self.geometry]

    @property
    def parameters(self) -> tuple[str, ...]:
        """Names of the energy methods' parameters: the fields, plus ``periodicity``."""
        return (*self.fields, "periodicity") if self.periodic else tuple(self.fields)

    def scaled(self, p: dict[str, Any], scale: Any) -> dict[str, Any]:
        """``p`` with the energy ``scale`` (per term) folded into :attr:`scaled_fields`."""
        return {name: value * scale if name in self.scaled_fields else value
                for name, value in p.items()}

    def energy(self, x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        """Energy kcal/mol of every term at coordinate ``x`` (any shape broadcasting with
        the parameters ``p``, field -> tensor, internal units)."""
        raise NotImplementedError(f"form {self.name} declares no energy")

    def derivative(self, x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        """dE/dx (kcal/mol per Angstrom or radian), same shapes as :meth:`energy`."""
        raise NotImplementedError(f"form {self.name} declares no derivative")

    def energy_and_derivative(self, x: torch.Tensor, p: dict[str, torch.Tensor]
                              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(:meth:`energy`, :meth:`derivative`); override to share intermediate values."""
        return self.energy(x, p), self.derivative(x, p)

    def openmm_force(self, atoms: list[tuple[int, ...]], p: dict[str, np.ndarray]
                     ) -> openmm.Force:
        """An OpenMM Force holding the terms on ``atoms`` with parameters ``p`` (field ->
        (n_terms,) in internal units, energy scale applied; kJ/mol and nm inside)."""
        raise ConventionError(f"{self.label} cannot be exported to OpenMM")


class FormRegistry:
    """Name -> :class:`Form`, and parameter section -> form."""

    def __init__(self) -> None:
        self._forms: dict[str, Form] = {}

    def register(self, form: Form) -> Form:
        """Add ``form``; its name and sections must be new. Returns it."""
        if form.name in self._forms:
            raise InputError(f"functional form {form.name!r} is already registered")
        taken = [s for s in form.sections if self.section_form(s, None) is not None]
        if taken:
            raise InputError(f"section {taken[0]!r} already belongs to form "
                             f"{self.section_form(taken[0]).name!r}")
        self._forms[form.name] = form
        return form

    def unregister(self, name: str) -> None:
        """Remove the form ``name`` (e.g. one a test registered)."""
        self.get(name)
        del self._forms[name]

    def get(self, name: str) -> Form:
        """The form ``name``; InputError naming the known ones if there is none."""
        try:
            return self._forms[name]
        except KeyError:
            raise InputError(f"unknown functional form {name!r}; known: "
                             f"{', '.join(self._forms)}") from None

    def section_form(self, section: str, default: Any = ...) -> Form:
        """The form of ``section``'s terms (InputError, or ``default`` if given, if none)."""
        for form in self._forms.values():
            if section in form.sections:
                return form
        if default is not ...:
            return default
        raise InputError(f"no functional form uses parameter section {section!r}")

    def sections(self) -> dict[str, Form]:
        """Every bonded parameter section -> its form."""
        return {s: form for form in self._forms.values() for s in form.sections}

    def __iter__(self) -> Iterator[Form]:
        return iter(list(self._forms.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._forms


FORMS = FormRegistry()
"""The registry: every built-in form module registers itself here on import."""


def register(form: Form) -> Form:
    """Register ``form`` in :data:`FORMS` (returns it, for ``FORM = register(...)``)."""
    return FORMS.register(form)
