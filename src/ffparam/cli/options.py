"""Command-line options whose defaults are the Python API's (one place for every default).

A command lists, per option, the API field it stands for (:class:`ApiField`: a settings
dataclass field such as ``LiquidSettings.gas_replicas``, or a keyword of an API function
such as ``sample_md(n_frames=...)``). The option's default is read from that field, and the
command builds its settings from the same table (:func:`api_values`), so the CLI and the
API run the same protocol. ``tests/cli/test_defaults.py`` checks every table against the
API.

Defaults are read lazily (:class:`ApiDefault`): ``ffparam --help`` and the commands that do
not use a module do not import it (the liquid, ML and workflow modules import OpenMM and
PyTorch).

Help is formatted by click, not typer's rich tables (:class:`PlainHelpCommand`): rich
squeezes the option-name column at 80 columns and cuts names (``--include-symmetr…``);
click puts a long option on its own line and wraps only the help text.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from ffparam.errors import InputError


@dataclass(frozen=True)
class ApiField:
    """The API field behind one CLI option.

    Attributes:
        target: ``"module:Name"`` of a settings dataclass or an API function.
        name: the dataclass field or keyword argument; ``a.b`` reads field ``b`` of the
            default of field ``a`` (a nested settings object).
        api_per_cli: API value = CLI value x api_per_cli (e.g. 1000 for an option in ns
            of a field in ps).
        none_as: the CLI value that stands for the API's ``None`` (e.g. 0 threads).
    """

    target: str
    name: str
    api_per_cli: float = 1.0
    none_as: Any = None

    def resolve(self) -> Any:
        """The dataclass or function named by ``target``."""
        module, _, qualname = self.target.partition(":")
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj

    def api_default(self) -> Any:
        """The API's default of this field (dataclass default or keyword default)."""
        first, *rest = self.name.split(".")
        value = default_of(self.resolve(), first)
        for part in rest:
            value = getattr(value, part)
        return value

    def cli_default(self) -> Any:
        """The API default in the option's units."""
        return self.to_cli(self.api_default())

    def to_cli(self, value: Any) -> Any:
        if value is None:
            return self.none_as
        if self.api_per_cli != 1.0:
            return value / self.api_per_cli
        return value

    def to_api(self, value: Any) -> Any:
        """The option's value in the API's units (``none_as`` -> None)."""
        if self.none_as is not None and value == self.none_as:
            return None
        if self.api_per_cli != 1.0 and value is not None:
            return value * self.api_per_cli
        return value


def default_of(target: Any, name: str) -> Any:
    """Default of field ``name`` of a dataclass, or of keyword ``name`` of a function."""
    if dataclasses.is_dataclass(target):
        for item in dataclasses.fields(target):
            if item.name == name:
                if item.default is not dataclasses.MISSING:
                    return item.default
                if item.default_factory is not dataclasses.MISSING:
                    return item.default_factory()
                raise KeyError(f"{target.__name__}.{name} has no default")
        raise KeyError(f"{target.__name__} has no field {name}")
    parameter = inspect.signature(target).parameters[name]
    if parameter.default is inspect.Parameter.empty:
        raise KeyError(f"{target.__name__}({name}) has no default")
    return parameter.default


class ApiDefault:
    """A click default computed when click needs it: called when the command runs, shown
    (``str``) when its help is printed."""

    def __init__(self, field: ApiField) -> None:
        self.field = field

    def __call__(self) -> Any:
        return self.field.cli_default()

    def __bool__(self) -> bool:  # typer shows --flag/--no-flag defaults by truth value
        return bool(self())

    def __str__(self) -> str:
        value = self()
        return "" if value is None else str(value)

    def __repr__(self) -> str:
        return f"ApiDefault({self.field.target}.{self.field.name})"


def api_option(fields: Mapping[str, ApiField], param: str, *decls: str, **kwargs: Any) -> Any:
    """``typer.Option`` for parameter ``param`` whose default is ``fields[param]``'s."""
    return typer.Option(ApiDefault(fields[param]), *decls, **kwargs)


def uses_api(*tables: Mapping[str, ApiField]) -> Callable:
    """Record on a command function the API fields its options stand for (read by the
    tests through ``click_command.callback.__wrapped__.api_fields``)."""
    merged: dict[str, ApiField] = {}
    for table in tables:
        merged.update(table)

    def mark(function: Callable) -> Callable:
        function.api_fields = merged
        return function

    return mark


def api_values(fields: Mapping[str, ApiField], values: Mapping[str, Any],
               target: str) -> dict[str, Any]:
    """Keyword arguments for ``target`` from the command's parameter ``values`` (the
    options mapped to ``target`` in ``fields``, converted to the API's units)."""
    out = {}
    for param, item in fields.items():
        if item.target == target and "." not in item.name:
            out[item.name] = item.to_api(values[param])
    return out


def nested_values(fields: Mapping[str, ApiField], values: Mapping[str, Any], target: str,
                  outer: str) -> dict[str, Any]:
    """Like :func:`api_values` for the ``outer.NAME`` fields (a nested settings object)."""
    out = {}
    for param, item in fields.items():
        head, _, tail = item.name.partition(".")
        if item.target == target and head == outer and tail:
            out[tail] = item.to_api(values[param])
    return out


class PlainHelpCommand(TyperCommand):
    """A typer command whose ``--help`` is click's plain layout (see the module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["rich_markup_mode"] = None
        super().__init__(*args, **kwargs)


class PlainHelpGroup(TyperGroup):
    """A typer group whose ``--help`` is click's plain layout (see the module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["rich_markup_mode"] = None
        super().__init__(*args, **kwargs)



def _option_name(param: typer.CallbackParam) -> str:
    longs = [o for o in param.opts if o.startswith("--")]
    return (longs or list(param.opts) or [str(param.name)])[0]


def at_least(low: int) -> Callable:
    """Option callback: a count (if given) must be at least ``low``. Raises InputError (one
    ``error:`` line, exit 2) naming the option."""
    def check(param: typer.CallbackParam, value: Any) -> Any:
        if value is not None and value < low:
            raise InputError(f"{_option_name(param)} must be at least {low}, got {value}")
        return value

    return check


def positive(param: typer.CallbackParam, value: float | None) -> float | None:
    """Option callback: the value (if given) must be above 0."""
    if value is not None and not value > 0:
        raise InputError(f"{_option_name(param)} must be positive, got {value:g}")
    return value


def divides_180(param: typer.CallbackParam, value: int | None) -> int | None:
    """Option callback: a torsion grid spacing (degrees) must divide 180."""
    if value is not None and (not 0 < value <= 180 or 180 % value):
        raise InputError(f"{_option_name(param)} must divide 180 (degrees), got {value}")
    return value
