"""The one configuration style (ffparam.settings): strict from_dict, round trip, checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from ffparam.errors import InputError
from ffparam.settings import Settings, require_at_least, require_choice, require_positive


@dataclass(frozen=True)
class InnerSettings(Settings):
    width_a: float = 1.0
    mode: Literal["fast", "exact"] = "fast"

    def __post_init__(self) -> None:
        require_positive(self, "width_a")


@dataclass(frozen=True)
class OuterSettings(Settings):
    name: str
    inner: InnerSettings = field(default_factory=InnerSettings)
    maybe: InnerSettings | None = None
    many: list[InnerSettings] = field(default_factory=list)
    table: dict[str, InnerSettings] = field(default_factory=dict)
    pair: tuple[int, int] = (0, 1)
    steps: int = 3
    path: Path = Path(".")

    def __post_init__(self) -> None:
        require_at_least(self, 1, "steps")
        require_choice(self, "name", ("a", "b"))


def test_round_trip_through_plain_data():
    data = {"name": "a", "inner": {"width_a": 2.5, "mode": "exact"}, "maybe": {"width_a": 3.0},
            "many": [{"width_a": 4.0}], "table": {"x": {"mode": "exact"}}, "pair": [2, 3],
            "steps": 5, "path": "sub/dir"}
    built = OuterSettings.from_dict(data)
    assert built.inner == InnerSettings(2.5, "exact")
    assert built.many == [InnerSettings(4.0)]
    assert built.table["x"].mode == "exact"
    assert built.pair == (2, 3) and built.path == Path("sub/dir")
    assert OuterSettings.from_dict(built.to_dict()) == built


@pytest.mark.parametrize(("data", "message"), [
    ({"name": "a", "bogus": 1}, "unknown option(s) bogus"),
    ({"name": "a", "inner": {"mode": "slow"}}, "OuterSettings.inner.mode: 'slow' is not one"),
    ({"name": "a", "many": [{"width_a": -1.0}]}, "width_a must be positive, got -1.0"),
    ({"name": "c"}, "name must be one of a, b"),
    ({"name": "a", "steps": 0}, "steps must be at least 1, got 0"),
    ({"name": "a", "pair": [1, 2, 3]}, "expected 2 values, got 3"),
    ({}, "missing 1 required positional argument"),
    ({"name": "a", "inner": 3}, "inner must be a mapping"),
])
def test_bad_values_name_the_field(data, message):
    with pytest.raises(InputError, match=None) as info:
        OuterSettings.from_dict(data)
    assert message in str(info.value)


def test_replace_validates_again():
    base = OuterSettings(name="a")
    assert base.replace(steps=7).steps == 7
    with pytest.raises(InputError, match="steps must be at least 1"):
        base.replace(steps=0)
