"""The record of a liquid fit (``fit_state.json``): typed, versioned, read back strictly.

:class:`LiquidFitState` (schema version :data:`FIT_STATE_SCHEMA_VERSION`) holds

* ``fingerprint``: SHA-256 of the liquids and of the settings the rounds depend on
  (:func:`fit_fingerprint`); a directory holding another fit is refused;
* ``rounds``: one :class:`FitRound` per simulated parameter vector x (round 0 = the start
  force field), with each liquid's :class:`~ffparam.liquid.properties.LiquidResult` or
  error, the objective and the trust-region verdict;
* ``centre``: index of the best accepted round (the next step starts there);
* ``validation``: the held-out liquids simulated at the best round (:class:`FitValidation`),
  or None.

A file without ``schema_version`` was written before it existed (version 0, the nested
dicts of the first liquid fits) and is read through :func:`migrate_fit_state_v0`; a newer
version is refused with one :class:`~ffparam.errors.InputError`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ffparam.errors import InputError
from ffparam.io.atomic import write_json_atomic
from ffparam.liquid.data import LiquidReference
from ffparam.liquid.properties import LiquidResult
from ffparam.liquid.schema import schema_version
from ffparam.liquid.settings import LiquidFitSettings

FIT_STATE_SCHEMA_VERSION = 1
STATE_FILE = "fit_state.json"


def fit_fingerprint(references: Sequence[LiquidReference], settings: LiquidFitSettings) -> str:
    """SHA-256 of the liquids and :meth:`LiquidFitSettings.fingerprint_data` (the same
    digest the first liquid fits stored, so their directories resume)."""
    data = {"options": settings.fingerprint_data(),
            "liquids": [dataclasses.asdict(r) for r in references]}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


class _Outcomes:
    """Per-liquid results and errors of one set of simulations (by liquid slug)."""

    results: Mapping[str, LiquidResult]
    errors: Mapping[str, str]

    def with_outcome(self, slug: str, result: LiquidResult | None, error: str | None):
        """A copy recording one liquid's result (clearing an earlier error) or error."""
        results, errors = dict(self.results), dict(self.errors)
        if result is None:
            errors[slug] = error or "unknown error"
        else:
            errors.pop(slug, None)
            results[slug] = result
        return dataclasses.replace(self, results=results, errors=errors)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["results"] = {slug: r.to_json() for slug, r in self.results.items()}
        data["errors"] = dict(self.errors)
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str):
        """Strict: every field present, no unknown one; results read by
        :meth:`LiquidResult.from_json` (which migrates their own schema)."""
        kwargs = _fields(cls, data, where)
        kwargs["results"] = {slug: LiquidResult.from_json(r, f"{where}.results.{slug}")
                             for slug, r in _mapping(kwargs["results"], where).items()}
        kwargs["errors"] = dict(_mapping(kwargs["errors"], where))
        return cls(**kwargs)


@dataclass(frozen=True, eq=False)
class FitRound(_Outcomes):
    """One simulated parameter vector of a fit.

    Attributes:
        index: round number (0: the start force field).
        x: mathematical parameters (:class:`~ffparam.fit.parameters.FitParameters`).
        trust_radius: radius the step to ``x`` was taken in (x units).
        from_round: the centre the step started from (None for round 0).
        status: ``pending`` until every liquid ran and the round was judged, ``done``.
        step_norm, predicted_change: |dx| and the model's change of the objective (None
            for round 0).
        results, errors: per training liquid (and, in round 0, held-out liquid).
        objective, objective_error, data_objective, prior_objective, gradient_norm: the
            objective at ``x`` (None until judged or when a liquid failed).
        accepted: the round became the centre. actual_change, model_ratio: against the
            centre (rounds after 0). next_trust_radius: radius of the next step.
    """

    index: int
    x: tuple[float, ...]
    trust_radius: float
    from_round: int | None
    status: Literal["pending", "done"] = "pending"
    step_norm: float | None = None
    predicted_change: float | None = None
    results: Mapping[str, LiquidResult] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    objective: float | None = None
    objective_error: float | None = None
    data_objective: float | None = None
    prior_objective: float | None = None
    gradient_norm: float | None = None
    accepted: bool | None = None
    actual_change: float | None = None
    model_ratio: float | None = None
    next_trust_radius: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "x", tuple(float(v) for v in self.x))

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["x"] = list(self.x)
        return data

    def summary(self) -> dict[str, Any]:
        """The round without its results and without the fields it has no value for,
        except ``from_round`` (None for round 0): the rows of ``fit_history.json``."""
        data = self.to_dict()
        data.pop("results")
        return {k: v for k, v in data.items() if v is not None or k == "from_round"}


@dataclass(frozen=True, eq=False)
class FitValidation(_Outcomes):
    """The held-out liquids simulated at round ``round`` (the best one)."""

    round: int
    results: Mapping[str, LiquidResult] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class LiquidFitState:
    """The whole record of a fit (see the module docstring)."""

    fingerprint: str
    rounds: tuple[FitRound, ...] = ()
    centre: int = 0
    validation: FitValidation | None = None
    schema_version: int = FIT_STATE_SCHEMA_VERSION

    def with_round(self, record: FitRound) -> LiquidFitState:
        """A copy with ``record`` replacing the round of its index, or appended."""
        rounds = list(self.rounds)
        if record.index < len(rounds):
            rounds[record.index] = record
        elif record.index == len(rounds):
            rounds.append(record)
        else:
            raise ValueError(f"round {record.index} after {len(rounds)} rounds")
        return dataclasses.replace(self, rounds=tuple(rounds))

    def replace(self, **changes: Any) -> LiquidFitState:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, "fingerprint": self.fingerprint,
                "rounds": [r.to_dict() for r in self.rounds], "centre": self.centre,
                "validation": None if self.validation is None else self.validation.to_dict()}

    @classmethod
    def from_dict(cls, data: Any, where: str = "liquid fit state") -> LiquidFitState:
        """Read any schema version up to :data:`FIT_STATE_SCHEMA_VERSION` (version 0
        through :func:`migrate_fit_state_v0`).

        Raises:
            InputError: a newer version, or a missing, unknown or malformed field.
        """
        if schema_version(data, FIT_STATE_SCHEMA_VERSION, where) == 0:
            data = migrate_fit_state_v0(data, where)
        kwargs = _fields(cls, data, where)
        rounds = [FitRound.from_dict(r, f"{where}.rounds[{i}]")
                  for i, r in enumerate(_sequence(kwargs["rounds"], where))]
        if [r.index for r in rounds] != list(range(len(rounds))):
            raise InputError(f"{where}: rounds are not numbered 0, 1, ...")
        validation = kwargs["validation"]
        return cls(fingerprint=str(kwargs["fingerprint"]), rounds=tuple(rounds),
                   centre=int(kwargs["centre"]),
                   validation=None if validation is None
                   else FitValidation.from_dict(validation, f"{where}.validation"))

    def save(self, path: str | Path) -> Path:
        """Write the state to ``path`` atomically."""
        return write_json_atomic(path, self.to_dict())


def migrate_fit_state_v0(data: dict[str, Any], where: str = "liquid fit state"
                         ) -> dict[str, Any]:
    """A state written before ``schema_version`` (version 0) as version 1.

    Version 0 wrote a round's fields only once they had a value (round 0 has no step
    norm; a round whose liquid failed has no objective error; a pending round has no
    verdict), ``centre`` only once round 0 existed, and ``validation`` as None or
    ``{round, results, errors}``. Version 1 writes every field (None: no value). The
    results keep their own schema version (:func:`~ffparam.liquid.properties.migrate_result_v0`
    reads theirs).
    """
    optional = [f.name for f in dataclasses.fields(FitRound)
                if f.default is not dataclasses.MISSING or f.name in ("results", "errors")]
    rounds = []
    for i, record in enumerate(_sequence(data.get("rounds", []), where)):
        filled = {name: None for name in optional} | {"status": "pending", "results": {},
                                                      "errors": {}}
        rounds.append(filled | dict(_mapping(record, f"{where}.rounds[{i}]")))
    validation = data.get("validation")
    if validation is not None:
        validation = {"results": {}, "errors": {}} | dict(_mapping(validation, where))
    return {"schema_version": 1, "fingerprint": data.get("fingerprint"), "rounds": rounds,
            "centre": data.get("centre", 0), "validation": validation}


def read_fit_state(path: str | Path) -> LiquidFitState:
    """The state stored in ``path`` (any known schema version).

    Raises:
        InputError: the file is not JSON, is of a newer schema version, or is malformed.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not a liquid fit state (invalid JSON: {exc})") from None
    return LiquidFitState.from_dict(data, str(path))


# ---------------------------------------------------------------------- strict reading
def _fields(cls: type, data: Any, where: str) -> dict[str, Any]:
    """Every init field of dataclass ``cls`` from ``data`` (a mapping), none missing or
    unknown (``schema_version`` is checked by the caller)."""
    data = dict(_mapping(data, where))
    data.pop("schema_version", None)
    names = [f.name for f in dataclasses.fields(cls) if f.init and f.name != "schema_version"]
    missing = [n for n in names if n not in data]
    unknown = sorted(set(data) - set(names))
    if missing or unknown:
        raise InputError(f"{where}: " + "; ".join(
            part for part in (f"missing field(s) {', '.join(missing)}" if missing else "",
                              f"unknown field(s) {', '.join(unknown)}" if unknown else "")
            if part))
    return data


def _check(kind: type, name: str) -> Callable[[Any, str], Any]:
    def check(value: Any, where: str) -> Any:
        if not isinstance(value, kind):
            raise InputError(f"{where} must be a JSON {name}, got {type(value).__name__}")
        return value

    return check


_mapping = _check(dict, "object")
_sequence = _check(list, "array")
