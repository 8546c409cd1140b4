"""The ``ffparam fit SPEC.yaml`` file: what to fit, to which data, with which optimizer.

Example::

    forcefield: sage            # sage | openff-X.Y.Z | path.offxml | gaff2
    charges: am1bcc             # am1bcc | gasteiger | mmff94
    molecules:
      butane: {input: "CCCC"}   # SMILES or a file path (relative to the spec file)
    targets:
      - name: butane_scan
        type: torsion_profile   # torsion_profile | relative_energy | forces | hessian |
                                # frequencies | esp | dipole
        molecule: butane
        reference: scans/butane.xyz   # extxyz (or QCFractal JSON) torsion scan
        mode: relaxed           # relaxed | single_point
        weight: 1.0
      - {name: vib, type: frequencies, molecule: butane, reference: ffparam.db,
         method: gfn2-xtb}      # QM Hessian records from a Store (or an experiment CSV)
      - {name: q, type: esp, molecule: butane, reference: ffparam.db, method: hf/6-31g*}
    parameters:
      - bespoke_torsions: {molecule: butane, bonds: rotatable}   # or [[1, 2]]
      - {section: Angles, id: "[*:1]~[#6X4:2]-[*:3]", fields: [k], prior_width: 10.0}
    ties: []                    # lists of "Section/id/field" sharing one value
    optimizer: {name: least_squares, max_iterations: 50}
    priors: true
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ffparam.errors import InputError
from ffparam.io.files import read_text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MoleculeSpec(_Strict):
    input: str
    charge: int | None = None


class TargetSpec(_Strict):
    name: str
    type: Literal["torsion_profile", "relative_energy", "forces", "hessian", "frequencies",
                  "esp", "dipole"]
    molecule: str
    reference: str
    weight: float = 1.0
    denominator: float = 1.0
    mode: Literal["relaxed", "single_point"] = "relaxed"
    energy_reference: Literal["mean", "min"] = "mean"
    energy_upper: float | None = None
    attenuate: bool = False
    boltzmann_temperature: float | None = None
    remove_net_force: bool = False
    method: str | None = None
    scale: float = 1.0

    @field_validator("name")
    @classmethod
    def _file_safe_name(cls, value: str) -> str:
        from ffparam.io.files import check_file_name_part

        try:  # the name becomes plots/<name>.png inside the output directory
            return check_file_name_part(value, "target name")
        except InputError as exc:
            raise ValueError(str(exc)) from None


class BespokeSpec(_Strict):
    molecule: str
    bonds: Literal["rotatable"] | list[tuple[int, int]] = "rotatable"
    max_periodicity: int = 4
    prior_width: float = 6.0


class ParameterSpec(_Strict):
    section: str | None = None
    id: str = "*"
    fields: str | list[str] = "*"
    prior_width: float | None = None
    transform: Literal["linear", "log"] | None = None
    lower: float | None = None
    upper: float | None = None
    bespoke_torsions: BespokeSpec | None = None

    @field_validator("section")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        from ffparam.params.parameter_set import SECTION_FIELDS

        if value is not None and value not in SECTION_FIELDS:
            raise ValueError(f"unknown section {value!r}; known: {', '.join(SECTION_FIELDS)}")
        return value


class OptimizerSpec(_Strict):
    name: str = "least_squares"
    max_iterations: int | None = None
    n_trials: int | None = None


class FitSpec(_Strict):
    forcefield: str = "sage"
    charges: str = "am1bcc"
    molecules: dict[str, MoleculeSpec]
    targets: list[TargetSpec] = Field(min_length=1)
    parameters: list[ParameterSpec] = Field(min_length=1)
    ties: list[list[str]] = Field(default_factory=list)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    priors: bool = True
    base_dir: Path = Path(".")

    def resolve(self, path: str) -> Path:
        candidate = Path(path)
        return candidate if candidate.is_absolute() else self.base_dir / candidate


def load_fit_spec(path: str | Path) -> FitSpec:
    """Read and validate a fit spec; errors name the offending field."""
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
    try:
        spec = FitSpec(**data, base_dir=path.parent)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{path.name}: {where}: {first['msg']}") from None
    for target in spec.targets:
        if target.molecule not in spec.molecules:
            raise InputError(f"{path.name}: target {target.name} names unknown molecule "
                             f"{target.molecule!r}")
    return spec
