"""Method specifications: one string names a reference method and its options.

Grammar (case-insensitive)::

    spec    := name [ "[" option ("," option)* "]" ]
    name    := "gfn2-xtb" | "gfn1-xtb" | functional ["-" dispersion] "/" basis
    option  := key "=" value

    method  := spec | spec "//" spec          (HIGH//LOW composite)

Examples: ``gfn2-xtb``, ``gfn2-xtb[solvent=water]``, ``b3lyp-d3bj/dzvp``,
``hf/sto-3g[max_scf_cycles=1]``, ``pbe0-d4/def2-svp[density_fit=true]``.

A composite ``HIGH//LOW`` (e.g. ``b3lyp-d3bj/dzvp//gfn2-xtb``,
``hf/sto-3g[max_scf_cycles=50]//gfn2-xtb[solvent=water]``) is the chemists' notation for
"geometries optimized with LOW, energies with HIGH on them": each part is one full ``spec``
with its own options in brackets; composites do not nest. :class:`CompositeSpec` holds it;
:func:`parse_method` returns a :class:`MethodSpec` or a :class:`CompositeSpec`.

``dzvp`` is the DGauss DZVP basis (Godbout, Salahub, Andzelm, Wimmer, Can. J. Chem. 70, 560
(1992)) with spherical d functions: the same exponents and contractions as Psi4's
``dzvp.gbs`` that OpenFF's ``B3LYP-D3BJ/DZVP`` uses (PySCF's basis library names it
``dzvp``). The canonical string of a spec is part of every Store key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from ffparam.errors import InputError

XTB_METHODS: dict[str, str] = {"gfn2-xtb": "GFN2-xTB", "gfn1-xtb": "GFN1-xTB"}
"""ffparam name -> tblite method name."""

DISPERSION_SUFFIXES: tuple[str, ...] = ("d3bj", "d3zero", "d3bjm", "d3zerom", "d3op", "d4")
"""Dispersion corrections PySCF applies through the pyscf-dispersion package."""



@dataclass(frozen=True)
class Backend:
    """One reference backend: which method names it computes and its Calculator.

    Attributes:
        name: backend name (``MethodSpec.backend``), e.g. ``tblite``.
        calculator: ``module:Class`` of its :class:`~ffparam.reference.methods.base.Calculator`
            subclass, imported on first use (so a missing package only matters when used).
        names: exact method names it computes (None: decided by ``pattern``).
        pattern: regular expression a method name must match fully (None: ``names`` only).
        spelling: how error messages and ``available_methods`` show its names.
    """

    name: str
    calculator: str
    names: tuple[str, ...] | None = None
    pattern: str | None = None
    spelling: str = ""

    def accepts(self, method: str) -> bool:
        """True when this backend computes method name ``method`` (lower case)."""
        if self.names is not None and method in self.names:
            return True
        return self.pattern is not None and re.fullmatch(self.pattern, method) is not None


BACKENDS: tuple[Backend, ...] = (
    Backend("tblite", "ffparam.reference.methods.xtb:XTBCalculator", names=tuple(XTB_METHODS),
            spelling=", ".join(XTB_METHODS)),
    Backend("pyscf", "ffparam.reference.methods.pyscf_backend:PySCFCalculator",
            pattern=r"[^/]+/[^/]+", spelling="hf/<basis>, <functional>[-d3bj|-d4]/<basis>"),
)
"""Every reference backend, tried in order. Adding a method family is one entry here plus
its Calculator module in :mod:`ffparam.reference.methods`."""

_OPTION_TYPES: dict[str, type] = {
    "solvent": str,
    "density_fit": bool,
    "max_scf_cycles": int,
    "scf_tolerance": float,
    "grid_level": int,
}


@dataclass(frozen=True)
class MethodSpec:
    """A reference method and the options that change its numbers.

    Attributes:
        name: normalized method name, e.g. ``gfn2-xtb`` or ``b3lyp-d3bj/dzvp``.
        solvent: implicit solvent name (tblite ALPB, e.g. ``water``); None = gas phase.
        density_fit: PySCF density fitting (RI-J/K) with PySCF's default auxiliary basis.
        max_scf_cycles: SCF iteration limit (None = backend default).
        scf_tolerance: SCF energy convergence threshold in Hartree (PySCF ``conv_tol``;
            tblite ``accuracy`` = value / 1e-6, its energy threshold at accuracy 1).
        grid_level: PySCF DFT integration grid level (0-9; None = PySCF default 3).
    """

    name: str
    solvent: str | None = None
    density_fit: bool = False
    max_scf_cycles: int | None = None
    scf_tolerance: float | None = None
    grid_level: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.name.strip().lower())
        if self.backend == "pyscf":
            functional, _, basis = self.name.partition("/")
            if not functional or not basis:
                raise InputError(f"method {self.name!r} needs the form functional/basis")
            if self.solvent:
                raise InputError(f"implicit solvent is for xtb methods only, not {self.name}")
        elif self.density_fit or self.grid_level is not None:
            raise InputError(f"density_fit and grid_level apply to PySCF methods, not {self.name}")
        if self.max_scf_cycles is not None and self.max_scf_cycles < 1:
            raise InputError("max_scf_cycles must be at least 1")

    @property
    def backend(self) -> str:
        """The name of the first :data:`BACKENDS` entry that accepts this method name."""
        for backend in BACKENDS:
            if backend.accepts(self.name):
                return backend.name
        raise InputError(f"unknown method {self.name!r}: use one of "
                         f"{', '.join(b.spelling for b in BACKENDS)}")

    @property
    def functional(self) -> str:
        """PySCF exchange-correlation name without dispersion (``hf`` for Hartree-Fock)."""
        return split_dispersion(self.name.partition("/")[0])[0]

    @property
    def dispersion(self) -> str | None:
        """Dispersion correction (``d3bj``, ``d4``...) or None."""
        return split_dispersion(self.name.partition("/")[0])[1]

    @property
    def basis(self) -> str:
        return self.name.partition("/")[2]

    def canonical(self) -> str:
        """The unique string of this spec: name plus non-default options, sorted."""
        cached = self.__dict__.get("_canonical")
        if cached is None:
            cached = self._canonical_text()
            object.__setattr__(self, "_canonical", cached)  # memo on a frozen instance
        return cached

    def _canonical_text(self) -> str:
        opts = []
        for f in fields(self):
            if f.name == "name":
                continue
            value = getattr(self, f.name)
            if value != f.default:
                text = str(value).lower() if isinstance(value, bool) else str(value)
                opts.append(f"{f.name}={text}")
        return self.name + (f"[{','.join(sorted(opts))}]" if opts else "")

    def __str__(self) -> str:
        return self.canonical()

    @classmethod
    def parse(cls, text: str | MethodSpec, **overrides: object) -> MethodSpec:
        """Parse ``name[key=value,...]``; keyword ``overrides`` win over the string."""
        if isinstance(text, MethodSpec) and not any(
            v is not None and v is not False for v in overrides.values()
        ):
            return text
        if isinstance(text, MethodSpec):
            base = {f.name: getattr(text, f.name) for f in fields(text)}
        elif isinstance(text, CompositeSpec) or COMPOSITE_SEPARATOR in str(text):
            raise InputError(f"{text}: a composite HIGH//LOW method is for torsion drives "
                             "and bespoke fits; this calculation takes a single method")
        else:
            match = re.fullmatch(r"\s*([^\[\]\s]+)\s*(?:\[(.*)\])?\s*", str(text))
            if not match:
                raise InputError(f"cannot parse method spec {text!r}")
            base = {"name": match.group(1)}
            for item in filter(None, (s.strip() for s in (match.group(2) or "").split(","))):
                key, sep, value = item.partition("=")
                base[key.strip()] = _convert_option(key.strip(), value.strip(), sep)
        for key, value in overrides.items():
            if key not in _OPTION_TYPES:
                raise InputError(f"unknown method option {key!r}")
            if value is not None and value is not False:
                base[key] = value
        return cls(**base)


COMPOSITE_SEPARATOR: str = "//"
"""Separates HIGH from LOW in a composite method string."""


@dataclass(frozen=True)
class CompositeSpec:
    """``HIGH//LOW``: optimizations with ``low``, single points (energy, gradient) with
    ``high`` on the optimized geometries. Every calculation is a normal single-method Store
    record; the composite itself is never a Store key.

    Attributes:
        high: the method of the single points.
        low: the method of the (constrained) optimizations.
    """

    high: MethodSpec
    low: MethodSpec

    def __post_init__(self) -> None:
        for part in (self.high, self.low):
            if not isinstance(part, MethodSpec):
                raise InputError("a composite HIGH//LOW method takes two single methods; "
                                 "composites do not nest")
            part.backend  # noqa: B018 - InputError on an unknown method name

    @property
    def name(self) -> str:
        return f"{self.high.name}{COMPOSITE_SEPARATOR}{self.low.name}"

    def canonical(self) -> str:
        """``HIGH//LOW`` with each part's canonical string."""
        return f"{self.high.canonical()}{COMPOSITE_SEPARATOR}{self.low.canonical()}"

    def __str__(self) -> str:
        return self.canonical()

    @classmethod
    def parse(cls, text: str | CompositeSpec) -> CompositeSpec:
        """Parse ``HIGH[options]//LOW[options]``; InputError unless exactly two parts."""
        if isinstance(text, CompositeSpec):
            return text
        parts = str(text).split(COMPOSITE_SEPARATOR)
        if len(parts) != 2:
            raise InputError(f"method {text!r}: a composite is HIGH//LOW, two single methods "
                             "(composites do not nest)")
        if not all(p.strip() for p in parts):
            raise InputError(f"method {text!r}: HIGH//LOW needs a method on each side")
        return cls(MethodSpec.parse(parts[0]), MethodSpec.parse(parts[1]))


def is_composite(text: str | MethodSpec | CompositeSpec) -> bool:
    """True for a ``HIGH//LOW`` method (string or spec)."""
    return isinstance(text, CompositeSpec) or (
        isinstance(text, str) and COMPOSITE_SEPARATOR in text)


def parse_method(text: str | MethodSpec | CompositeSpec, **overrides: object
                 ) -> MethodSpec | CompositeSpec:
    """A single :class:`MethodSpec` or a ``HIGH//LOW`` :class:`CompositeSpec`. Keyword
    ``overrides`` (CLI options such as ``solvent``) apply to a single method; for a
    composite they go in brackets on the part they are meant for, so they are refused."""
    if not is_composite(text):
        return MethodSpec.parse(text, **overrides)  # type: ignore[arg-type]
    if any(v is not None and v is not False for v in overrides.values()):
        raise InputError(f"method options {sorted(k for k, v in overrides.items() if v)} are "
                         "ambiguous for a composite HIGH//LOW method: put them in brackets on "
                         "the part they are for, e.g. hf/sto-3g[max_scf_cycles=50]//gfn2-xtb")
    return CompositeSpec.parse(text)  # type: ignore[arg-type]


def geometry_method(method: str) -> str:
    """The method that optimizes geometries: LOW of a ``HIGH//LOW`` composite, else
    ``method`` itself (unchanged)."""
    return CompositeSpec.parse(method).low.canonical() if is_composite(method) else method


def energy_method(method: str) -> str:
    """The method of single-point energies and gradients: HIGH of a ``HIGH//LOW``
    composite, else ``method`` itself (unchanged)."""
    return CompositeSpec.parse(method).high.canonical() if is_composite(method) else method


def split_dispersion(functional: str) -> tuple[str, str | None]:
    """``b3lyp-d3bj`` -> (``b3lyp``, ``d3bj``); ``pbe0`` -> (``pbe0``, None)."""
    for suffix in sorted(DISPERSION_SUFFIXES, key=len, reverse=True):
        if functional.endswith("-" + suffix):
            return functional[: -len(suffix) - 1], suffix
    return functional, None


def _convert_option(key: str, value: str, sep: str) -> object:
    if key not in _OPTION_TYPES:
        raise InputError(f"unknown method option {key!r} (known: {', '.join(_OPTION_TYPES)})")
    kind = _OPTION_TYPES[key]
    if kind is bool:
        if not sep:
            return True
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise InputError(f"method option {key} needs true/false, got {value!r}")
    try:
        return kind(value)
    except ValueError:
        raise InputError(f"method option {key} needs a {kind.__name__}, got {value!r}") from None
