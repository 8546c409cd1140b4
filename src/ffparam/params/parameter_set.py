"""The :class:`ParameterSet`: named force-field parameters in internal units.

A parameter lives in a *section* (``Bonds``, ``Angles``, ``ProperTorsions``, ...) under an
*id* (a SMIRKS pattern, an atom-type key such as ``ca-c3`` or ``atom:3`` for a
molecule-specific charge) and has named float *fields* (``k``, ``length``, ``k1``,
``phase1``, ...). Non-fittable data (periodicities, names) sit in ``Parameter.fixed``.

Every float field is one entry of a flat vector (:meth:`ParameterSet.vector`), addressed by a
:class:`ParameterKey` (section, id, field). The MM engine gathers its term parameters from
that vector, so energies are differentiable with respect to every parameter.

Units (internal) by field: see :data:`SECTION_FIELDS`; files store angles in degrees and
convert on load/save. Conventions: see :mod:`ffparam.params.conventions`.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ffparam.errors import InputError
from ffparam.forms import FORMS

FORMAT_TAG = "ffparam-parameters/1"

NONBONDED_SECTION_FIELDS: dict[str, dict[str, str]] = {
    "vdW": {"epsilon": "kcal/mol", "sigma": "A"},
    "NBFix": {"epsilon": "kcal/mol", "sigma": "A"},
    "Charges": {"charge": "e"},
    "LJ14": {"epsilon": "kcal/mol", "sigma": "A"},
    "Drude": {"alpha": "A^3", "thole": "1", "hbond_thole": "1"},
}
"""Internal unit of each field of the per-atom and per-pair sections (``LJ14``: the LJ of
1-4 pairs of two atom types, already scaled, for imported force fields that set it per
pair: GROMACS ``[ pairtypes ]``, CHARMM 1-4 LJ)."""


class _SectionFields(Mapping):
    """Section -> field -> internal unit: the bonded sections of every registered
    functional form (:data:`ffparam.forms.FORMS`) and :data:`NONBONDED_SECTION_FIELDS`."""

    def _table(self) -> dict[str, dict[str, str]]:
        bonded = {s: dict(form.section_fields) for s, form in FORMS.sections().items()}
        return {**bonded, **NONBONDED_SECTION_FIELDS}

    def __getitem__(self, section: str) -> dict[str, str]:
        return self._table()[section]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


SECTION_FIELDS: Mapping[str, dict[str, str]] = _SectionFields()
"""Internal unit of each field; ``#`` stands for the term number 1, 2, ... of a torsion."""

CONVENTIONS: dict[str, str] = {
    "harmonic": "E = k/2 (x - x0)^2 (bonds, angles, Urey-Bradley, harmonic impropers)",
    "morse": "E = D [1 - exp(-a (r - r0))]^2",
    "periodic_torsion": "E = sum_n k_n (1 + cos(n phi - phase_n)); idivf already applied",
    "improper_torsion": "periodic form; k is the total over the 3 SMIRNOFF permutations "
                        "(each gets k/3)",
    "lennard_jones": "E = 4 epsilon [(sigma/r)^12 - (sigma/r)^6]",
    "coulomb": "E = 332.0637 q_i q_j / r",
    "drude": "E = k/2 d^2 with k = settings drude_k_kcal_mol_a2 (default 1000); "
             "q_D = -sqrt(k alpha / 332.0637); Thole a_ij = thole_i + thole_j",
}

ANGLE_UNIT = "rad"


class ParameterKey(NamedTuple):
    """Address of one float field: (section, id, field)."""

    section: str
    id: str
    field: str

    def __str__(self) -> str:
        return f"{self.section}/{self.id}/{self.field}"


def field_unit(section: str, name: str) -> str:
    """Internal unit of ``section``'s field ``name`` (e.g. ``k2`` of ProperTorsions)."""
    fields = SECTION_FIELDS.get(section)
    if fields is None:
        raise InputError(f"unknown parameter section {section!r}; known: "
                         f"{', '.join(SECTION_FIELDS)}")
    if name in fields:
        return fields[name]
    generic = re.sub(r"\d+$", "#", name)
    if generic in fields:
        return fields[generic]
    raise InputError(f"unknown field {name!r} in section {section}")


@dataclass
class Parameter:
    """One parameter: float ``values`` (internal units) and non-fittable ``fixed`` data."""

    id: str
    values: dict[str, float]
    fixed: dict[str, Any] = field(default_factory=dict)

    def n_terms(self) -> int:
        """Number of periodic terms (torsions): count of ``k#`` fields."""
        return sum(1 for name in self.values if re.fullmatch(r"k\d+", name))


@dataclass(frozen=True)
class FreeSpec:
    """How a free parameter is fitted.

    Attributes:
        lower, upper: bounds in internal units (None = unbounded).
        prior_width: width of the Gaussian prior (internal units) centred on the start
            value; None means no prior.
        transform: ``"linear"`` or ``"log"`` (force constants and epsilon, keeps them > 0).
    """

    lower: float | None = None
    upper: float | None = None
    prior_width: float | None = None
    transform: str = "linear"

    def __post_init__(self) -> None:
        if self.transform not in ("linear", "log"):
            raise InputError(f"unknown transform {self.transform!r}; use 'linear' or 'log'")
        if self.prior_width is not None and not self.prior_width > 0:
            raise InputError(f"prior width must be positive, got {self.prior_width}")


@dataclass
class ParameterSet:
    """Sections of parameters, global settings, and the free/fitted subset.

    ``settings`` holds global nonbonded choices: ``coulomb_14_scale`` (default 1/1.2),
    ``lj_14_scale`` (0.5), ``combining_rule`` (``lorentz-berthelot``), and provenance such
    as ``name`` and ``charge_method``.
    """

    sections: dict[str, dict[str, Parameter]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    free: dict[ParameterKey, FreeSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.settings.setdefault("coulomb_14_scale", 1.0 / 1.2)
        self.settings.setdefault("lj_14_scale", 0.5)
        self.settings.setdefault("combining_rule", "lorentz-berthelot")

    # ------------------------------------------------------------------ access
    def add(self, section: str, parameter: Parameter, replace: bool = True) -> Parameter:
        """Add ``parameter`` to ``section`` (validating field names)."""
        for name in parameter.values:
            field_unit(section, name)
        bucket = self.sections.setdefault(section, {})
        if parameter.id in bucket and not replace:
            raise InputError(f"duplicate parameter {section}/{parameter.id}")
        bucket[parameter.id] = parameter
        self._keys_cache = None
        return parameter

    def get(self, section: str, pid: str) -> Parameter:
        try:
            return self.sections[section][pid]
        except KeyError:
            raise InputError(f"no parameter {pid!r} in section {section}") from None

    def __contains__(self, item: tuple[str, str]) -> bool:
        section, pid = item
        return pid in self.sections.get(section, {})

    def parameters(self, section: str) -> list[Parameter]:
        return list(self.sections.get(section, {}).values())

    def keys(self) -> list[ParameterKey]:
        """All float fields in a stable order (sections, then ids, then fields)."""
        cache = getattr(self, "_keys_cache", None)
        if cache is None:
            cache = [
                ParameterKey(section, pid, name)
                for section, bucket in self.sections.items()
                for pid, par in bucket.items()
                for name in par.values
            ]
            self._keys_cache = cache
            self._index_cache = {k: i for i, k in enumerate(cache)}
        return cache

    def index(self, key: ParameterKey) -> int:
        """Position of ``key`` in :meth:`vector`."""
        self.keys()
        try:
            return self._index_cache[key]
        except KeyError:
            raise InputError(f"no parameter field {key}") from None

    def vector(self) -> np.ndarray:
        """All float fields as a float64 vector in :meth:`keys` order (internal units)."""
        return np.array([self.sections[k.section][k.id].values[k.field] for k in self.keys()],
                        dtype=np.float64)

    def with_vector(self, vector: Iterable[float]) -> ParameterSet:
        """A copy whose float fields are replaced by ``vector`` (internal units)."""
        vector = np.asarray(list(vector), dtype=np.float64)
        keys = self.keys()
        if vector.shape != (len(keys),):
            raise InputError(f"vector has {vector.size} entries, parameter set has {len(keys)}")
        out = self.copy()
        for key, value in zip(keys, vector, strict=True):
            out.sections[key.section][key.id].values[key.field] = float(value)
        return out

    def copy(self) -> ParameterSet:
        return copy.deepcopy(self)

    def __iter__(self) -> Iterator[tuple[str, Parameter]]:
        for section, bucket in self.sections.items():
            for par in bucket.values():
                yield section, par

    def __len__(self) -> int:
        return sum(len(b) for b in self.sections.values())

    # ------------------------------------------------------------------ free parameters
    def set_free(
        self,
        section: str,
        pattern: str = "*",
        fields: str | Iterable[str] = "*",
        spec: FreeSpec | None = None,
    ) -> list[ParameterKey]:
        """Mark fields free by section, id glob/exact pattern and field glob(s).

        ``pattern`` is an exact id or an ``fnmatch`` glob; ``fields`` like ``"k*"``.
        Returns the keys made free; raises if nothing matched.
        """
        field_globs = [fields] if isinstance(fields, str) else list(fields)
        matched = []
        for pid, par in self.sections.get(section, {}).items():
            if pid != pattern and not fnmatch.fnmatchcase(pid, pattern):
                continue
            for name in par.values:
                if any(fnmatch.fnmatchcase(name, g) for g in field_globs):
                    key = ParameterKey(section, pid, name)
                    self.free[key] = spec or default_free_spec(key, par.values[name])
                    matched.append(key)
        if not matched:
            raise InputError(f"no parameter matched {section}/{pattern}/{fields}")
        return matched

    def free_keys(self) -> list[ParameterKey]:
        """Free keys in :meth:`keys` order."""
        return [k for k in self.keys() if k in self.free]

    # ------------------------------------------------------------------ I/O
    def to_dict(self) -> dict[str, Any]:
        """Plain-data form with units; angles and phases written in degrees."""
        sections = {}
        for section, bucket in self.sections.items():
            rows = []
            for par in bucket.values():
                values, units = {}, {}
                for name, value in par.values.items():
                    unit = field_unit(section, name)
                    if unit == ANGLE_UNIT:  # angles and phases are written in degrees
                        values[name], units[name] = math.degrees(value), "degree"
                    else:
                        values[name], units[name] = value, unit
                row: dict[str, Any] = {"id": par.id, "values": values, "units": units}
                if par.fixed:
                    row["fixed"] = dict(par.fixed)
                free = {
                    k.field: _spec_to_dict(spec)
                    for k, spec in self.free.items()
                    if k.section == section and k.id == par.id
                }
                if free:
                    row["free"] = free
                rows.append(row)
            sections[section] = rows
        return {
            "format": FORMAT_TAG,
            "conventions": CONVENTIONS,
            "settings": dict(self.settings),
            "sections": sections,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParameterSet:
        if data.get("format") != FORMAT_TAG:
            raise InputError(f"not an ffparam parameter file (format tag {data.get('format')!r})")
        out = cls(settings=dict(data.get("settings", {})))
        for section, rows in data.get("sections", {}).items():
            for row in rows:
                values = {}
                for name, value in row["values"].items():
                    unit = row.get("units", {}).get(name, field_unit(section, name))
                    values[name] = math.radians(value) if unit == "degree" else float(value)
                out.add(section, Parameter(row["id"], values, dict(row.get("fixed", {}))))
                for name, spec in row.get("free", {}).items():
                    out.free[ParameterKey(section, row["id"], name)] = FreeSpec(**spec)
        return out

    def save(self, path: str | Path) -> Path:
        """Write YAML (``.yaml``/``.yml``) or JSON (``.json``), atomically."""
        path = Path(path)
        data = self.to_dict()
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            text = yaml.safe_dump(data, sort_keys=False)
        elif path.suffix.lower() == ".json":
            text = json.dumps(data, indent=1)
        else:
            raise InputError(f"unknown parameter file type {path.suffix}; use .yaml or .json")
        from ffparam.io.atomic import atomic_output

        with atomic_output(path) as tmp:
            tmp.write_text(text)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ParameterSet:
        import yaml

        from ffparam.io.files import read_text

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".yaml", ".yml", ".json"):
            raise InputError(f"unknown parameter file type {path.suffix}; use .yaml or .json")
        text = read_text(path, "parameter file")
        try:
            data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
        except RecursionError:
            raise InputError(f"{path.name}: nested too deeply") from None
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise InputError(f"{path.name} is not valid {suffix[1:].upper()}: {exc}") from None
        if not isinstance(data, dict):
            raise InputError(f"{path.name} must hold a mapping of parameters")
        return cls.from_dict(data)


def _spec_to_dict(spec: FreeSpec) -> dict[str, Any]:
    return {"lower": spec.lower, "upper": spec.upper, "prior_width": spec.prior_width,
            "transform": spec.transform}


DEFAULT_PRIOR_WIDTHS: dict[str, float] = {
    "Bonds/k": 100.0,
    "Bonds/length": 0.05,
    "Angles/k": 20.0,
    "Angles/angle": math.radians(5.0),
    "ProperTorsions/k": 1.0,
    "ProperTorsions/phase": math.pi,
    "ImproperTorsions/k": 1.0,
    "vdW/epsilon": 0.05,
    "vdW/sigma": 0.1,
    "Charges/charge": 0.3,
    "Drude/alpha": 1.0,
    "Drude/thole": 1.0,
    "Drude/hbond_thole": 1.0,
}
"""Default Gaussian prior widths (internal units), chosen like ForceBalance/OpenFF priors."""


def default_free_spec(key: ParameterKey, value: float) -> FreeSpec:
    """Sensible bounds/prior/transform for a freshly freed field."""
    generic = re.sub(r"\d+$", "", key.field)
    width = DEFAULT_PRIOR_WIDTHS.get(f"{key.section}/{generic}")
    if key.section in ("ProperTorsions", "ImproperTorsions") and generic == "k":
        return FreeSpec(None, None, width, "linear")
    if key.section == "Drude" and value > 0:  # alpha and Thole stay positive
        return FreeSpec(0.0, None, width, "log")
    if generic in ("k", "epsilon", "well_depth", "a", "sigma", "length") and value > 0:
        return FreeSpec(0.0, None, width, "log" if generic in ("k", "epsilon") else "linear")
    return FreeSpec(None, None, width, "linear")
