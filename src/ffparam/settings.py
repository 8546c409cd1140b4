"""The one configuration style: frozen, validating dataclasses named ``...Settings``.

Every configuration object of the API (simulation, training, fitting, workflow settings
and the YAML fit spec) is a ``@dataclass(frozen=True)`` that subclasses :class:`Settings`:

* fields carry their unit in their name (``temperature_k``, ``cutoff_a``, ``time_budget_s``)
  and defaults live here, in the API; the CLI reads them (``ffparam.cli.options``);
* ``__post_init__`` validates and raises one :class:`~ffparam.errors.InputError` naming
  the field and the bad value (so an invalid object cannot exist);
* :meth:`Settings.from_dict` builds one from plain data (YAML, JSON, ``model.json``),
  refusing unknown keys and checking ``Literal`` choices, recursing into nested settings
  (``X``, ``X | None``, ``list[X]``, ``tuple[X, ...]``, ``dict[str, X]``);
* :meth:`Settings.to_dict` gives the plain data back (round trip), :meth:`Settings.replace`
  a validated copy.

Example::

    @dataclass(frozen=True)
    class GridSettings(Settings):
        spacing_deg: float = 15.0

        def __post_init__(self) -> None:
            require_positive(self, "spacing_deg")
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, Union

from ffparam.errors import InputError

S = TypeVar("S", bound="Settings")


class Settings:
    """Mixin of every configuration dataclass (see the module docstring)."""

    what: ClassVar[str] = ""
    """How errors name this object (default: the class name)."""

    @classmethod
    def from_dict(cls: type[S], values: dict[str, Any] | None, where: str = "") -> S:
        """Build from plain data; unknown keys, wrong nesting and bad ``Literal`` values
        raise :class:`InputError` naming ``where.key``."""
        values = {} if values is None else values
        label = where or cls.what or cls.__name__
        if not isinstance(values, dict):
            raise InputError(f"{label} must be a mapping, got {type(values).__name__}")
        known = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise InputError(f"{label}: unknown option(s) {', '.join(map(str, unknown))} "
                             f"(known: {', '.join(known)})")
        hints = typing.get_type_hints(cls)
        kwargs = {name: _convert(hints[name], value, f"{label}.{name}")
                  for name, value in values.items()}
        try:
            return cls(**kwargs)
        except TypeError as exc:  # a required field is missing
            raise InputError(f"{label}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (nested settings as dicts, tuples as lists, paths as strings)."""
        return {f.name: _plain(getattr(self, f.name))
                for f in dataclasses.fields(self) if f.init}  # type: ignore[arg-type]

    def replace(self: S, **changes: Any) -> S:
        """A copy with ``changes`` applied and validated again."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def _plain(value: Any) -> Any:
    if isinstance(value, Settings):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def _is_settings(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, Settings)


def _convert(tp: Any, value: Any, where: str) -> Any:
    """``value`` converted to annotation ``tp`` where that means building settings or a
    tuple; ``Literal`` choices checked; anything else is left to ``__post_init__``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for option in options:  # nested settings or a Literal among the options
            if _is_settings(option) and isinstance(value, dict):
                return option.from_dict(value, where)
        if len(options) == 1:
            return _convert(options[0], value, where)
        return value
    if origin is Literal:
        if value not in args:
            raise InputError(f"{where}: {value!r} is not one of "
                             f"{', '.join(repr(a) for a in args)}")
        return value
    if _is_settings(tp):
        return value if isinstance(value, tp) else tp.from_dict(value, where)
    if origin in (list, tuple) and isinstance(value, (list, tuple)):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise InputError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_convert(a, v, f"{where}[{i}]")
                         for i, (a, v) in enumerate(zip(args, value)))
        inner = args[0] if args else Any
        items = [_convert(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        return {k: _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if tp is Path and isinstance(value, str):
        return Path(value)
    return value


# ---------------------------------------------------------------------- validators
def require_positive(obj: Any, *names: str) -> None:
    """InputError unless every named field is > 0 (None allowed: "not set")."""
    for name in names:
        value = getattr(obj, name)
        if value is not None and not value > 0:
            raise InputError(f"{_label(obj)}: {name} must be positive, got {value}")


def require_at_least(obj: Any, minimum: float, *names: str) -> None:
    """InputError unless every named field is >= ``minimum`` (None allowed)."""
    for name in names:
        value = getattr(obj, name)
        if value is not None and not value >= minimum:
            raise InputError(f"{_label(obj)}: {name} must be at least {minimum}, got {value}")


def require_choice(obj: Any, name: str, choices: typing.Iterable[Any]) -> None:
    """InputError unless field ``name`` is one of ``choices``."""
    choices = tuple(choices)
    value = getattr(obj, name)
    if value not in choices:
        raise InputError(f"{_label(obj)}: {name} must be one of "
                         f"{', '.join(map(str, choices))}, got {value!r}")


def _label(obj: Any) -> str:
    return getattr(obj, "what", "") or type(obj).__name__


__all__ = ["Settings", "require_at_least", "require_choice", "require_positive"]
