"""The fitted-parameter space: free keys, ties, transforms, bounds and priors.

Optimizers work on a "mathematical" vector ``x`` kept apart from physical values (as in
ForceBalance). Each entry of ``x`` drives one free parameter or one tied group:

* ``linear``: p = p0 + s x, with s the prior width (or 1 when there is no prior);
* ``log``:    p = p0 exp(x), keeping force constants and well depths positive.

``x = 0`` is the starting force field. Priors are Gaussian in physical units:
residual (p - p0) / prior_width, added to the objective like ForceBalance's
regularization.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ffparam.errors import InputError
from ffparam.params.parameter_set import FreeSpec, ParameterKey, ParameterSet
from ffparam.params.system import ParameterizedSystem

Tensor = torch.Tensor


@dataclass
class FitParameters:
    """Maps the mathematical vector ``x`` to parameter values of one or more systems.

    Attributes:
        parameters: the master parameter set (start values and free specs).
        groups: each group is a list of keys sharing one entry of ``x`` (ties); a group's
            physical value is driven by its first key's start value and spec, and all its
            keys get the same value.
    """

    parameters: ParameterSet
    groups: list[list[ParameterKey]] = field(default_factory=list)

    @classmethod
    def from_free(cls, parameters: ParameterSet,
                  ties: Sequence[Sequence[ParameterKey]] = ()) -> FitParameters:
        """One group per free key, except keys listed together in ``ties``."""
        free = parameters.free_keys()
        if not free:
            raise InputError("no free parameters: mark some with ParameterSet.set_free")
        tied = {k: i for i, group in enumerate(ties) for k in group}
        for key in tied:
            if key not in parameters.free:
                raise InputError(f"tied parameter {key} is not free")
        groups: list[list[ParameterKey]] = [list(g) for g in ties]
        groups += [[k] for k in free if k not in tied]
        return cls(parameters, groups)

    def __post_init__(self) -> None:
        self._start = np.array([self.parameters.vector()[self.parameters.index(g[0])]
                                for g in self.groups])
        self._specs = [self.parameters.free.get(g[0], FreeSpec()) for g in self.groups]
        self._scale = np.array([s.prior_width if (s.prior_width and s.transform == "linear")
                                else 1.0 for s in self._specs])
        self._log = np.array([s.transform == "log" for s in self._specs])
        for group, spec, start in zip(self.groups, self._specs, self._start):
            if spec.transform == "log" and start <= 0:
                raise InputError(f"{group[0]} starts at {start}; a log transform needs > 0")

    @property
    def size(self) -> int:
        return len(self.groups)

    @property
    def labels(self) -> list[str]:
        return [str(g[0]) if len(g) == 1 else f"{g[0]} (+{len(g) - 1} tied)" for g in self.groups]

    def physical(self, x: Tensor) -> Tensor:
        """Physical values of the groups (size,) from ``x`` (size,), differentiable."""
        start = torch.as_tensor(self._start, dtype=x.dtype)
        scale = torch.as_tensor(self._scale, dtype=x.dtype)
        is_log = torch.as_tensor(self._log)
        return torch.where(is_log, start * torch.exp(x), start + scale * x)

    def to_x(self, physical: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`physical` (numpy)."""
        physical = np.asarray(physical, dtype=float)
        with np.errstate(divide="ignore"):
            return np.where(self._log, np.log(np.maximum(physical, 1e-300) / self._start),
                            (physical - self._start) / self._scale)

    def bounds_x(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower/upper bounds of ``x`` from the physical bounds of each group."""
        lower, upper = [], []
        for spec, start, scale, is_log in zip(self._specs, self._start, self._scale, self._log):
            if is_log:
                lo = -np.inf if not spec.lower or spec.lower <= 0 else math.log(spec.lower / start)
                hi = np.inf if spec.upper is None else math.log(spec.upper / start)
            else:
                lo = -np.inf if spec.lower is None else (spec.lower - start) / scale
                hi = np.inf if spec.upper is None else (spec.upper - start) / scale
            lower.append(lo)
            upper.append(hi)
        return np.array(lower), np.array(upper)

    def prior_residuals(self, x: Tensor) -> Tensor:
        """(p - p0) / prior_width for groups with a prior (empty tensor if none)."""
        widths = [s.prior_width for s in self._specs]
        has = [i for i, w in enumerate(widths) if w]
        if not has:
            return x.new_zeros(0)
        idx = torch.as_tensor(has)
        p = self.physical(x)[idx]
        start = torch.as_tensor(self._start[has], dtype=x.dtype)
        width = torch.as_tensor([widths[i] for i in has], dtype=x.dtype)
        return (p - start) / width

    def system_values(self, system: ParameterizedSystem, x: Tensor) -> Tensor:
        """The full parameter vector of ``system`` with the free entries set from ``x``."""
        base, src, dst = self._system_map(system)
        if x.dtype != torch.float64:  # parameters are always evaluated in double precision
            x = x.to(torch.float64)
        values = torch.as_tensor(base, dtype=x.dtype)
        if len(dst) == 0:
            return values
        return values.index_put((torch.as_tensor(dst),), self.physical(x)[torch.as_tensor(src)])

    def _system_map(self, system: ParameterizedSystem):
        cache = self.__dict__.setdefault("_maps", {})
        key = id(system)
        if key not in cache:
            keys = system.parameters.keys()
            where = {k: i for i, k in enumerate(keys)}
            src, dst = [], []
            for g, group in enumerate(self.groups):
                for k in group:
                    if k in where:
                        src.append(g)
                        dst.append(where[k])
            cache[key] = (system.parameters.vector(), np.array(src, dtype=np.int64),
                          np.array(dst, dtype=np.int64))
        return cache[key]

    def check_used(self, systems: Sequence[ParameterizedSystem]) -> None:
        """Raise if some free key is read by no term of any system (it could not move)."""
        used: set[ParameterKey] = set()
        for system in systems:
            used |= system.used_keys()
        unused = [str(k) for g in self.groups for k in g if k not in used]
        if unused:
            raise InputError(f"free parameter(s) used by no term of the fitted molecules: "
                             f"{', '.join(unused[:5])}")

    def updated_parameters(self, x: np.ndarray) -> ParameterSet:
        """The master parameter set with the fitted values written in."""
        out = self.parameters.copy()
        phys = self.physical(torch.as_tensor(x, dtype=torch.float64)).numpy()
        for group, value in zip(self.groups, phys):
            for key in group:
                out.sections[key.section][key.id].values[key.field] = float(value)
        return out
