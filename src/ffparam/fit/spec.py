"""The ``ffparam fit SPEC.yaml`` file: what to fit, to which data, with which optimizer.

Example::

    forcefield: sage            # sage | openff-X.Y.Z | path.offxml | gaff2 | an existing
                                # force field of the molecules: X.prmtop | X.top |
                                # "X.psf,PARAMS.prm,..." (same atoms in the same order)
    charges: am1bcc             # am1bcc | gasteiger | mmff94
    molecules:
      butane: {input: "CCCC"}   # SMILES or a file path (relative to the spec file)
    targets:
      - name: butane_scan
        type: torsion_profile   # torsion_profile | relative_energy | forces | hessian |
                                # frequencies | esp | dipole | polarizability |
                                # esp_field | solvated_torsion
        molecule: butane
        reference: scans/butane.xyz   # extxyz (or QCFractal JSON) torsion scan
        mode: relaxed           # relaxed | single_point
        weight: 1.0
        # relative_energy only: boltzmann_temperature_k: 500 (Boltzmann weights, K)
      - {name: vib, type: frequencies, molecule: butane, reference: ffparam.db,
         method: gfn2-xtb}      # QM Hessian records from a Store (or an experiment CSV)
      - {name: q, type: esp, molecule: butane, reference: ffparam.db, method: hf/6-31g*}
      - {name: a, type: polarizability, molecule: butane, reference: ffparam.db,
         method: hf/aug-cc-pvdz}  # QM tensors; the molecule gets Drude particles
      - {name: s, type: solvated_torsion, molecule: butane,   # QM/MM drive in solvent
         reference: solv/solvated_torsion.json}  # workflows.solvated_torsion writes it
      - {name: qa, type: esp_field, molecule: butane, reference: ffparam.db,
         method: hf/aug-cc-pvdz}  # QM ESP in uniform fields: charges + Drude alpha
    types:                      # new SMIRKS types shared by every molecule they match
      - {section: ProperTorsions, id: t-aryl-amide,   # appended after the force field's
         smirks: "[*:1]~[c:2]-[$([CX3](=O)[NX3]):3]~[*:4]",   # torsions: wins by last match
         periodicities: [1, 2, 3], start: forcefield}   # forcefield | zero; k* freed
    parameters:
      - bespoke_torsions: {molecule: butane, bonds: rotatable}   # or [[1, 2]]
      - {section: Angles, id: "[*:1]~[#6X4:2]-[*:3]", fields: [k], prior_width: 10.0}
      - {section: Drude, id: "*", fields: [alpha, thole]}   # Drude types: params.drude
    ties: []                    # lists of "Section/id/field" sharing one value
    optimizer: {name: least_squares, max_iterations: 50}
    priors: true
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from ffparam.errors import InputError
from ffparam.io.files import read_text
from ffparam.settings import Settings, require_positive

TargetType = Literal["torsion_profile", "relative_energy", "forces", "hessian", "frequencies",
                     "esp", "dipole", "polarizability", "solvated_torsion",
                     "esp_field"]


class SpecSettings(Settings):
    """Settings of the spec file: an error raised while building one from plain data is
    prefixed with where it is (``spec.yaml.targets[0]: ...``)."""

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None, where: str = "") -> Any:
        try:
            return super().from_dict(values, where)
        except InputError as exc:
            label, message = where or cls.what or cls.__name__, str(exc)
            raise InputError(message if message.startswith(label)
                             else f"{label}: {message}") from None


def check_types(obj: Any) -> None:
    """InputError unless every field of dataclass ``obj`` holds its annotated type (ints
    pass as floats, bools pass only as bools; ``Literal`` and nested settings are checked
    by :meth:`Settings.from_dict`)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if not _matches(hints[f.name], value):
            raise InputError(f"{f.name} must be {_type_name(hints[f.name])}, got {value!r}")


def _matches(tp: Any, value: Any) -> bool:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(a, value) for a in args)
    if origin is Literal:
        return value in args
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(args) == len(value) and all(map(_matches, args, value))
        return all(_matches(args[0], v) for v in value) if args else True
    if origin is dict:
        return isinstance(value, dict) and all(_matches(args[1], v) for v in value.values())
    return isinstance(value, tp) if isinstance(tp, type) else True


_TYPE_NAMES = {float: "a number", int: "an integer", str: "a string", bool: "true or false",
               type(None): "null"}


def _type_name(tp: Any) -> str:
    if tp in _TYPE_NAMES:
        return _TYPE_NAMES[tp]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    return str(tp).replace("typing.", "").replace("ffparam.fit.spec.", "")


@dataclass(frozen=True, kw_only=True)
class MoleculeSettings(SpecSettings):
    """A molecule of the spec: ``input`` is a SMILES or a file path (relative to the spec
    file); ``charge`` its net charge in e when the input does not fix it."""

    what: ClassVar[str] = "molecule"

    input: str
    charge: int | None = None

    def __post_init__(self) -> None:
        check_types(self)


@dataclass(frozen=True, kw_only=True)
class TargetSettings(SpecSettings):
    """One fit target: its type, molecule, reference data and weighting.

    ``energy_upper_kcal_mol`` drops scan points above it (kcal/mol above the minimum);
    ``boltzmann_temperature_k`` Boltzmann-weights relative energies at that temperature (K);
    ``scale`` multiplies computed frequencies (dimensionless).
    """

    what: ClassVar[str] = "target"

    name: str
    type: TargetType
    molecule: str
    reference: str
    weight: float = 1.0
    denominator: float = 1.0
    mode: Literal["relaxed", "single_point"] = "relaxed"
    energy_reference: Literal["mean", "min"] = "mean"
    energy_upper_kcal_mol: float | None = None
    attenuate: bool = False
    boltzmann_temperature_k: float | None = None
    remove_net_force: bool = False
    method: str | None = None
    scale: float = 1.0

    def __post_init__(self) -> None:
        from ffparam.io.files import check_file_name_part

        check_types(self)
        # the name becomes plots/<name>.png inside the output directory
        check_file_name_part(self.name, "target name")
        require_positive(self, "boltzmann_temperature_k")


@dataclass(frozen=True, kw_only=True)
class BespokeTorsionSettings(SpecSettings):
    """Bespoke torsions for ``molecule``: every rotatable bond or the listed (j, k) bonds;
    periodicities 1..``max_periodicity``; prior width in kcal/mol."""

    what: ClassVar[str] = "bespoke_torsions"

    molecule: str
    bonds: Literal["rotatable"] | list[tuple[int, int]] = "rotatable"
    max_periodicity: int = 4
    prior_width: float = 6.0

    def __post_init__(self) -> None:
        check_types(self)


@dataclass(frozen=True, kw_only=True)
class ParameterSettings(SpecSettings):
    """Parameters to fit: ``section``/``id``/``fields`` (``*`` = all), with optional prior
    width, transform and bounds (the field's units); or ``bespoke_torsions``."""

    what: ClassVar[str] = "parameters entry"

    section: str | None = None
    id: str = "*"
    fields: str | list[str] = "*"
    prior_width: float | None = None
    transform: Literal["linear", "log"] | None = None
    lower: float | None = None
    upper: float | None = None
    bespoke_torsions: BespokeTorsionSettings | None = None

    def __post_init__(self) -> None:
        from ffparam.params.parameter_set import SECTION_FIELDS

        check_types(self)
        if self.section is not None and self.section not in SECTION_FIELDS:
            raise InputError(f"unknown section {self.section!r}; known: "
                             f"{', '.join(SECTION_FIELDS)}")


@dataclass(frozen=True, kw_only=True)
class TypeSettings(SpecSettings):
    """A new SMIRKS type the spec defines, shared by every molecule it matches.

    Appended after the start force field's parameters of ``section`` (so it wins by the
    SMIRNOFF last-match rule) and written to ``fitted.offxml`` with the file id ``id``.
    ``periodicities`` are its torsion terms; ``start``: ``forcefield`` copies k and phase
    of the parameter the start force field gives most of its matched torsions (keeping that
    parameter's own periodicities too, so the start reproduces the force field there), or
    ``zero`` (every k = 0 kcal/mol, phase 0). ``fields`` are freed with a Gaussian prior of
    ``prior_width`` kcal/mol (``[]`` keeps the type fixed). ``parameters`` entries and
    ``ties`` may name the type by ``id`` (``ProperTorsions/t-aryl-amide/k2``)."""

    what: ClassVar[str] = "types entry"

    section: Literal["ProperTorsions"] = "ProperTorsions"
    id: str
    smirks: str
    periodicities: list[int] = field(default_factory=lambda: [1, 2, 3, 4])
    start: Literal["forcefield", "zero"] = "forcefield"
    fields: str | list[str] = "k*"
    prior_width: float = 6.0

    def __post_init__(self) -> None:
        from ffparam.assign.smirnoff_matching import compile_smirks

        check_types(self)
        require_positive(self, "prior_width")
        if not self.periodicities or any(p < 1 for p in self.periodicities) \
                or len(set(self.periodicities)) != len(self.periodicities):
            raise InputError(f"type {self.id}: periodicities must be distinct integers >= 1, "
                             f"got {self.periodicities}")
        try:
            order = compile_smirks(self.smirks)[1]
        except InputError as exc:
            raise InputError(f"type {self.id}: {exc}") from None
        if len(order) != 4:
            raise InputError(f"type {self.id}: SMIRKS {self.smirks!r} tags {len(order)} "
                             "atoms; a torsion type tags :1 to :4")


def check_shared_types(types_: list[TypeSettings]) -> None:
    """InputError when two entries define the same type id or the same SMIRKS (a shared
    type has one definition for every molecule)."""
    by_id: dict[str, TypeSettings] = {}
    by_smirks: dict[str, str] = {}
    for entry in types_:
        other = by_id.get(entry.id)
        if other is not None:
            what = ("SMIRKS " + repr(other.smirks) + " and " + repr(entry.smirks)
                    if other.smirks != entry.smirks else "two definitions")
            raise InputError(f"type {entry.id} is defined twice ({what}); one shared "
                             "type has one definition")
        if entry.smirks in by_smirks:
            raise InputError(f"types {by_smirks[entry.smirks]} and {entry.id} have the same "
                             f"SMIRKS {entry.smirks!r}")
        by_id[entry.id] = entry
        by_smirks[entry.smirks] = entry.id


@dataclass(frozen=True, kw_only=True)
class OptimizerSettings(SpecSettings):
    """The optimizer (``ffparam.fit.optimizers.OPTIMIZERS``) and its options."""

    what: ClassVar[str] = "optimizer"

    name: str = "least_squares"
    max_iterations: int | None = None
    n_trials: int | None = None

    def __post_init__(self) -> None:
        check_types(self)


@dataclass(frozen=True, kw_only=True)
class FitSettings(SpecSettings):
    """A whole fit spec (see the module docstring); ``base_dir`` is the spec file's folder,
    against which relative paths resolve."""

    what: ClassVar[str] = "fit spec"

    forcefield: str = "sage"
    charges: str = "am1bcc"
    molecules: dict[str, MoleculeSettings]
    targets: list[TargetSettings]
    parameters: list[ParameterSettings] = field(default_factory=list)
    types: list[TypeSettings] = field(default_factory=list)
    ties: list[list[str]] = field(default_factory=list)
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    priors: bool = True
    base_dir: Path = Path(".")

    def __post_init__(self) -> None:
        check_types(self)
        for name in ("targets", "parameters"):
            if not getattr(self, name) and not (name == "parameters" and self.types):
                raise InputError(f"{name}: list at least one entry")
        for target in self.targets:
            if target.molecule not in self.molecules:
                raise InputError(f"target {target.name} names unknown molecule "
                                 f"{target.molecule!r}")
        check_shared_types(self.types)

    def resolve(self, path: str) -> Path:
        candidate = Path(path)
        return candidate if candidate.is_absolute() else self.base_dir / candidate


def load_fit_spec(path: str | Path) -> FitSettings:
    """Read and validate a fit spec; errors name the file, the offending field and why."""
    import yaml

    path = Path(path)
    text = read_text(path, "fit spec (YAML)")
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{path.name} is not valid YAML: {exc}") from None
    except RecursionError:
        raise InputError(f"{path.name}: YAML nested too deeply") from None
    if not isinstance(data, dict):
        raise InputError(f"{path.name} must hold a mapping")
    if "base_dir" in data:
        raise InputError(f"{path.name}: unknown option(s) base_dir (paths resolve against "
                         "the spec file's folder)")
    try:
        return FitSettings.from_dict({**data, "base_dir": path.parent}, where=path.name)
    except InputError as exc:
        message = str(exc)
        raise InputError(message if message.startswith(path.name)
                         else f"{path.name}: {message}") from None
