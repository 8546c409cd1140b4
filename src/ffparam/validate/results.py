"""JSON form of validation results: plain types, and never a NaN passed off as a number.

Every validation result is a dataclass whose ``to_json()`` goes through :func:`json_safe`:
numpy scalars and arrays become Python numbers and lists, and non-finite floats (NaN,
infinity) become ``None`` so that ``metrics.json`` holds only real numbers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def json_safe(value: Any, digits: int | None = None) -> Any:
    """``value`` as plain JSON data; non-finite floats -> None; floats rounded to ``digits``
    significant decimals when given (for long parity arrays)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: json_safe(getattr(value, f.name), digits)
                for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, digits) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist(), digits)
    if isinstance(value, (list, tuple)):
        return [json_safe(v, digits) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            return None
        return round(number, digits) if digits is not None else number
    if isinstance(value, Path):
        return str(value)
    return value


def finite_or_none(value: float | None) -> float | None:
    """``float(value)`` if it is a finite number, else None."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def rmse(error: np.ndarray) -> float:
    """Root-mean-square of an error array (any shape), same unit as the input."""
    error = np.asarray(error, dtype=np.float64)
    return float(np.sqrt(np.mean(error**2)))


def mae(error: np.ndarray) -> float:
    """Mean absolute value of an error array (any shape), same unit as the input."""
    return float(np.mean(np.abs(np.asarray(error, dtype=np.float64))))


def summarize_failures(messages: list[str], limit: int = 5) -> list[str]:
    """Distinct failure messages with their counts (``"message (x3)"``), at most ``limit``."""
    counts: dict[str, int] = {}
    for message in messages:
        counts[message] = counts.get(message, 0) + 1
    return [f"{m} (x{n})" if n > 1 else m for m, n in list(counts.items())[:limit]]
