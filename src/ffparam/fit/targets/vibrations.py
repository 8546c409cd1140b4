"""Hessian and vibrational-frequency targets.

:class:`HessianTarget` compares Cartesian Hessians (kcal/mol/A^2) at the reference geometry.
Both Hessians are projected with the unit-mass Eckart projector P (translations and rigid
rotations removed: P H P) unless ``project=False``; at a non-stationary geometry the MM
Hessian has rotational components proportional to the MM gradient that a QM Hessian at its
own minimum lacks, and comparing them would fit noise. The residuals are the upper triangle
(diagonal included) of P H_MM P - P H_ref P.

:class:`FrequencyTarget` compares harmonic MM wavenumbers (cm^-1) with reference ones:

* reference from a QM Hessian (:meth:`FrequencyTarget.from_hessian`): modes are matched by
  the Hungarian algorithm on squared overlaps of mass-weighted normal modes (MM modes at
  the MM geometry vs QM modes at the QM geometry, same frame);
* reference from experiment (:meth:`FrequencyTarget.from_experiment`): fundamentals with
  degenerate modes listed once in the file are expanded by their symmetry label (e/E/Pi/Delta
  twice, t/f three times) and matched in ascending order (sorted MM vs sorted experiment).

Residual_i = scale * nu_MM[match_i] - nu_ref,i. ``scale`` multiplies the *MM* harmonic
wavenumbers (e.g. 0.96 when a harmonic MM model is compared with anharmonic fundamentals);
with the default 1.0 the MM model is fitted to reproduce the reference numbers directly.

Geometry (``geometry="relaxed"``, the default): harmonic frequencies are only meaningful at
a stationary point, so at every new parameter vector the MM energy is minimized from the
reference geometry (Newton steps, |g| < 1e-8 kcal/mol/A). The derivative of the minimum
with respect to the parameters follows from the implicit-function theorem: the positions
enter the residuals as r(x) = r* - H*^+ g(r*, p(x)), where r* is the minimum at the current
x, H*^+ the inverse of the MM Hessian on the internal subspace, and g the MM gradient. At
r*, g = 0 so r(x) = r* (the value is exact) and dr/dp = -H*^+ dg/dp (the IFT derivative), so
autograd gives the exact Jacobian of the relaxed frequencies. ``geometry="reference"``
instead evaluates the MM Hessian at the fixed reference geometry (faster; the MM gradient
there is ignored apart from the Eckart projection).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from ffparam.errors import InputError, MissingFileError
from ffparam.fit.normal_modes import (
    eckart_projector,
    internal_inverse,
    match_modes,
    minimize_mm,
    mm_hessian,
    normal_modes,
    stretched_bond,
    vibrational_basis,
)
from ffparam.fit.parameters import FitParameters
from ffparam.fit.targets.base import Target
from ffparam.mm.engine import MMEngine
from ffparam.params.system import ParameterizedSystem

Tensor = torch.Tensor

# ---------------------------------------------------------------------- input checks
def check_reference_geometry(system: ParameterizedSystem, geometry, what: str,
                             numbers=None) -> np.ndarray:
    """Validate one reference geometry (N, 3) Angstrom for ``system``; with ``numbers``
    (atomic numbers of the reference) also check the element order."""
    geometry = np.asarray(geometry, dtype=np.float64)
    n = system.n_atoms
    if geometry.shape != (n, 3):
        raise InputError(f"{what}: geometry has shape {geometry.shape}, molecule "
                         f"{system.molecule.name} needs ({n}, 3)")
    if not np.all(np.isfinite(geometry)):
        raise InputError(f"{what}: non-finite reference geometry")
    if numbers is not None:
        numbers = np.asarray(numbers, dtype=np.int64)
        mine = system.molecule.atomic_numbers
        if numbers.shape != mine.shape or np.any(numbers != mine):
            bad = int(np.argmax(numbers != mine)) if numbers.shape == mine.shape else -1
            raise InputError(f"{what}: reference atom order/elements differ from molecule "
                             f"{system.molecule.name} (first mismatch at atom {bad})")
    bad = stretched_bond(system.topology, geometry)
    if bad is not None:
        raise InputError(f"{what}: atoms {bad[0]} and {bad[1]} are bonded in the molecule but "
                         f"{bad[2]:.2f} A apart in the reference; the reference atom order "
                         "does not match the molecule")
    return geometry


def check_hessian(system: ParameterizedSystem, hessian, what: str) -> np.ndarray:
    """Validate a reference Hessian (3N, 3N) kcal/mol/A^2: shape, finite, symmetric."""
    hessian = np.asarray(hessian, dtype=np.float64)
    n3 = 3 * system.n_atoms
    if hessian.shape != (n3, n3):
        raise InputError(f"{what}: Hessian has shape {hessian.shape}, molecule "
                         f"{system.molecule.name} needs ({n3}, {n3})")
    if not np.all(np.isfinite(hessian)):
        raise InputError(f"{what}: non-finite reference Hessian")
    scale = max(np.abs(hessian).max(), 1e-12)
    if np.abs(hessian - hessian.T).max() > 1e-3 * scale:
        raise InputError(f"{what}: reference Hessian is not symmetric")
    return 0.5 * (hessian + hessian.T)


# ---------------------------------------------------------------------- experiment files
def degeneracy(symmetry: str) -> int:
    """Degeneracy of a vibration from its symmetry label: E/e and Pi/Delta -> 2,
    T/t/F/f -> 3, everything else (A, B, Sigma, blank) -> 1."""
    label = symmetry.strip()
    if not label:
        return 1
    first = label[0]
    if first in "eEΠΔ" or label.lower().startswith(("pi", "delta")):
        return 2
    if first in "tTfF":
        return 3
    return 1


def read_experimental_frequencies(path: str | Path) -> dict[str, np.ndarray]:
    """Experimental fundamentals per molecule from a CSV with columns ``smiles``,
    ``frequency_cm1`` and ``symmetry`` (like ``vib_frequencies_train.csv``), each
    degenerate mode expanded by :func:`degeneracy`. Returns SMILES -> sorted (n,) cm^-1."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"missing file: {path}")
    out: dict[str, list[float]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"smiles", "frequency_cm1", "symmetry"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            try:
                value = float(row["frequency_cm1"])
            except ValueError:
                raise InputError(f"{path}: bad frequency {row['frequency_cm1']!r}") from None
            out.setdefault(row["smiles"], []).extend([value] * degeneracy(row["symmetry"]))
    if not out:
        raise InputError(f"{path}: no frequencies")
    return {k: np.sort(np.array(v)) for k, v in out.items()}


def _hessian_record(name: str, record) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(geometry, Hessian, atomic numbers) of a reference-layer ``Record``."""
    if not getattr(record, "ok", False):
        raise InputError(f"{name}: the reference record is not complete "
                         f"({getattr(record, 'error', None) or 'no result'})")
    if record.hessian is None:
        raise InputError(f"{name}: the reference record has no Hessian (task "
                         f"{record.task_kind!r})")
    return (np.asarray(record.result_geometry), np.asarray(record.hessian),
            np.asarray(record.species.numbers))


# ---------------------------------------------------------------------- Hessian target
class HessianTarget(Target):
    """MM vs reference Cartesian Hessian at the reference geometry (kcal/mol/A^2).

    Args:
        system: the parameterized molecule.
        geometry: (N, 3) Angstrom, the geometry the reference Hessian belongs to.
        hessian: (3N, 3N) kcal/mol/A^2, atom-major.
        project: compare P H P with P the unit-mass Eckart projector (default) or raw H.
        numbers: atomic numbers of the reference, to check the atom order (optional).
    """

    unit = "kcal/mol/A^2"

    def __init__(self, name: str, system: ParameterizedSystem, geometry, hessian,
                 project: bool = True, numbers=None, hessian_method: str = "auto",
                 weight: float = 1.0, denominator: float = 1.0) -> None:
        super().__init__(name, weight, denominator)
        self.system = system
        self.geometry = check_reference_geometry(system, geometry, name, numbers)
        ref = check_hessian(system, hessian, name)
        n3 = ref.shape[0]
        proj = (eckart_projector(self.geometry, system.molecule.masses, mass_weighted=False)
                if project else np.eye(n3))
        self._projector = torch.as_tensor(proj)
        rows, cols = np.triu_indices(n3)
        self._rows, self._cols = torch.as_tensor(rows), torch.as_tensor(cols)
        self.reference = (self._projector @ torch.as_tensor(ref) @ self._projector)[
            self._rows, self._cols]
        self.engine = MMEngine(system)
        self.hessian_method = hessian_method
        self._positions = torch.as_tensor(self.geometry)

    @classmethod
    def from_record(cls, name: str, system: ParameterizedSystem, record,
                    **kwargs) -> HessianTarget:
        """From a complete reference-layer Hessian record (its geometry, Hessian and the
        species' atomic numbers, which are checked against the molecule)."""
        geometry, hessian, numbers = _hessian_record(name, record)
        return cls(name, system, geometry, hessian, numbers=numbers, **kwargs)

    @property
    def systems(self) -> list[ParameterizedSystem]:
        return [self.system]

    def mm_hessian(self, fit: FitParameters, x: Tensor) -> Tensor:
        """P H_MM P (3N, 3N) kcal/mol/A^2 at the reference geometry."""
        values = fit.system_values(self.system, x)
        hess = mm_hessian(self.engine, self._positions, values, self.hessian_method)
        return self._projector @ hess @ self._projector

    def residuals(self, fit: FitParameters, x: Tensor) -> Tensor:
        return self.mm_hessian(fit, x)[self._rows, self._cols] - self.reference


# ---------------------------------------------------------------------- frequency target
class FrequencyTarget(Target):
    """MM harmonic wavenumbers vs reference wavenumbers (cm^-1); see the module docstring.

    Args:
        system: the parameterized molecule.
        geometry: (N, 3) Angstrom reference geometry (start of the MM minimization, or the
            evaluation geometry when ``geometry_mode="reference"``).
        frequencies: (n,) reference wavenumbers, cm^-1 (negative = imaginary).
        modes: (n, N, 3) mass-weighted reference modes for overlap matching, or None for
            matching in ascending order (then n must be the number of vibrations).
        scale: factor on the MM wavenumbers before comparison.
        geometry_mode: ``relaxed`` (MM minimum, IFT derivative) or ``reference``.
        hessian_method: see :func:`ffparam.fit.normal_modes.mm_hessian`.
    """

    unit = "cm^-1"

    def __init__(self, name: str, system: ParameterizedSystem, geometry, frequencies,
                 modes=None, scale: float = 1.0, geometry_mode: str = "relaxed",
                 hessian_method: str = "auto", numbers=None, weight: float = 1.0,
                 denominator: float = 1.0) -> None:
        super().__init__(name, weight, denominator)
        if geometry_mode not in ("relaxed", "reference"):
            raise InputError(f"{name}: geometry_mode must be 'relaxed' or 'reference', "
                             f"got {geometry_mode!r}")
        if not scale > 0:
            raise InputError(f"{name}: scale must be positive, got {scale}")
        self.system = system
        self.geometry = check_reference_geometry(system, geometry, name, numbers)
        freqs = np.asarray(frequencies, dtype=np.float64).reshape(-1)
        if freqs.size == 0:
            raise InputError(f"{name}: no reference frequencies")
        if not np.all(np.isfinite(freqs)):
            raise InputError(f"{name}: non-finite reference frequency")
        self.engine = MMEngine(system)
        masses = system.molecule.masses
        n_vib = vibrational_basis(self.geometry, masses).shape[1]
        if modes is None:
            if freqs.size != n_vib:
                raise InputError(f"{name}: {freqs.size} reference frequencies but "
                                 f"{system.molecule.name} has {n_vib} vibrations (expand "
                                 "degenerate modes; sorted matching needs all of them)")
            order = np.argsort(freqs)
            self.reference_modes = None
        else:
            modes = np.asarray(modes, dtype=np.float64)
            if modes.shape != (freqs.size, system.n_atoms, 3):
                raise InputError(f"{name}: modes have shape {modes.shape}, want "
                                 f"({freqs.size}, {system.n_atoms}, 3)")
            if freqs.size > n_vib:
                raise InputError(f"{name}: {freqs.size} reference modes but only {n_vib} "
                                 "vibrations")
            order = np.arange(freqs.size)
            self.reference_modes = modes
        self.reference = torch.as_tensor(freqs[order])
        self.scale = float(scale)
        self.geometry_mode = geometry_mode
        self.hessian_method = hessian_method
        self._masses = masses
        self._cache_key: bytes | None = None
        self._state: dict = {}

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_hessian(cls, name: str, system: ParameterizedSystem, geometry, hessian,
                     reference_scale: float = 1.0, **kwargs) -> FrequencyTarget:
        """Reference = normal modes of a (QM) Hessian (3N, 3N) kcal/mol/A^2 at ``geometry``;
        its wavenumbers are multiplied by ``reference_scale``; modes matched by overlap."""
        geometry = check_reference_geometry(system, geometry, name, kwargs.get("numbers"))
        hessian = check_hessian(system, hessian, name)
        modes = normal_modes(hessian, geometry, system.molecule.masses)
        return cls(name, system, geometry, modes.frequencies.numpy() * reference_scale,
                   modes=modes.modes.numpy(), **kwargs)

    @classmethod
    def from_record(cls, name: str, system: ParameterizedSystem, record,
                    **kwargs) -> FrequencyTarget:
        """:meth:`from_hessian` with a complete reference-layer Hessian record."""
        geometry, hessian, numbers = _hessian_record(name, record)
        return cls.from_hessian(name, system, geometry, hessian, numbers=numbers, **kwargs)

    @classmethod
    def from_experiment(cls, name: str, system: ParameterizedSystem, geometry, frequencies,
                        **kwargs) -> FrequencyTarget:
        """Reference = experimental fundamentals (all 3N-6 or 3N-5, degeneracies expanded),
        matched in ascending order."""
        return cls(name, system, geometry, frequencies, modes=None, **kwargs)

    @property
    def systems(self) -> list[ParameterizedSystem]:
        return [self.system]

    # ------------------------------------------------------------------ geometry
    def prepare(self, fit: FitParameters, x: Tensor) -> None:
        self._update(fit, x)

    def _update(self, fit: FitParameters, x: Tensor) -> dict:
        """Minimum, Hessian inverse and mode matching at ``x`` (cached per x)."""
        key = x.detach().numpy().tobytes()
        if key == self._cache_key:
            return self._state
        values = fit.system_values(self.system, x.detach()).detach()
        if self.geometry_mode == "relaxed":
            positions = minimize_mm(self.engine, self.geometry, values)
            hess = mm_hessian(self.engine, torch.as_tensor(positions), values,
                              self.hessian_method).detach().numpy()
            inverse = torch.as_tensor(internal_inverse(hess, positions, self._masses))
        else:
            positions = self.geometry
            hess = mm_hessian(self.engine, torch.as_tensor(positions), values,
                              self.hessian_method).detach().numpy()
            inverse = None
        order = None
        if self.reference_modes is not None:
            mm_modes = normal_modes(hess, positions, self._masses).modes
            order = torch.as_tensor(match_modes(self.reference_modes, mm_modes))
        self._state = {"positions": torch.as_tensor(positions), "inverse": inverse,
                       "order": order}
        self._cache_key = key
        return self._state

    def mm_positions(self, fit: FitParameters, x: Tensor, values: Tensor) -> Tensor:
        """MM geometry (N, 3) A: the minimum, differentiable by the IFT (or the reference)."""
        state = self._update(fit, x)
        r0 = state["positions"]
        if state["inverse"] is None or not values.requires_grad:
            return r0
        pos = r0.clone().requires_grad_(True)
        energy = self.engine.energy(pos[None], values)[0]
        (grad,) = torch.autograd.grad(energy, pos, create_graph=True)
        return r0 - (state["inverse"] @ grad.reshape(-1)).reshape(r0.shape)

    def mm_frequencies(self, fit: FitParameters, x: Tensor) -> Tensor:
        """Unscaled MM wavenumbers (n_vib,) cm^-1, ascending."""
        values = fit.system_values(self.system, x)
        positions = self.mm_positions(fit, x, values)
        hess = mm_hessian(self.engine, positions, values, self.hessian_method)
        return normal_modes(hess, positions.detach(), self._masses).frequencies

    def residuals(self, fit: FitParameters, x: Tensor) -> Tensor:
        freqs = self.mm_frequencies(fit, x)
        order = self._state["order"]
        matched = freqs if order is None else freqs[order]
        return self.scale * matched - self.reference

    def metrics(self, fit: FitParameters, x: Tensor) -> dict[str, float]:
        r = self.residuals(fit, x.detach()).detach()
        return {"rmse [cm^-1]": float(torch.sqrt(torch.mean(r**2))),
                "mae [cm^-1]": float(torch.mean(r.abs())),
                "max [cm^-1]": float(r.abs().max())}
