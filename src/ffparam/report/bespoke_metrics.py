"""Typed results of a bespoke run: what ``metrics.json`` holds and the HTML report shows.

:class:`BespokeMetrics` is the one place that knows the keys of ``metrics.json``: the
bespoke workflow builds it, :func:`ffparam.io.atomic.write_json_atomic` writes its
:meth:`~BespokeMetrics.to_dict`, the report (:mod:`ffparam.report.html`) reads its fields,
and :func:`read_bespoke_metrics` reads a file back, passing it through
:func:`migrate_metrics` first. It lives in ``report`` (a leaf every box may use) so that the
report reads it without importing the workflow.

Units: RMSEs and torsion profiles kcal/mol, angles degrees, times seconds, Wiberg bond
orders dimensionless. ``validation`` holds each validation step's own ``to_json()``
(:mod:`ffparam.validate`), ``exports`` the export report's ``to_dict()``.

Schema versions: 1 added ``schema_version`` and renamed the setting ``spacing`` to
``spacing_deg``; 2 (this one) added the Laplace posterior standard deviations
(:mod:`ffparam.fit.uncertainty`): ``sigma`` of each changed parameter and ``fitted_sigma``
of each fitted profile (the propagated +/-1 sigma band), and each rotor's cross-validated
RMSE ``rmse_cv``, all optional (None when not computed); 3 (this one) added each rotor's
``delta`` (:class:`DeltaInfo`: the Delta-learned ``HIGH//LOW`` profile of ``--high-budget``:
which points were computed at which level, the predicted sigma, the budget used) and
``prior_width_kcal_mol`` (the torsion prior chosen by cross-validation), both optional;
4 added the 2-D drives (``--drive-2d``): each rotor's optional ``bond2`` and ``dihedral2``
(the second rotor of a 2-D drive) and each profile's optional ``angles2`` (the second
dihedral's grid angles, degrees); 5 added the conformer branches of a Delta-learned rotor
(``--high-branches``): ``delta.n_branches``, ``delta.branch_of_point`` (the branch the
profile takes at each grid point, 0 = the LOW drive's own) and ``delta.held_points``;
6 added the HIGH time limit (``--high-minutes``): ``delta.high_seconds`` (wall time of the
HIGH rounds) and ``delta.time_limit_s``.
Older files (version 0 without ``schema_version``, versions 1 to 5) are migrated; a newer
file is refused by an ffparam that reads only older versions, which would otherwise fail on
the new keys.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ffparam.errors import InputError

SCHEMA_VERSION = 6
"""Version of the ``metrics.json`` layout this code writes and reads."""


@dataclass
class MoleculeInfo:
    """The molecule of the run."""

    name: str = ""
    smiles: str = ""
    mapped_smiles: str = ""
    formula: str = ""
    n_atoms: int = 0


@dataclass
class FragmentInfo:
    """The fragment a rotor was scanned on; central-bond Wiberg bond orders in the parent
    and the fragment (dimensionless)."""

    n_atoms: int
    smiles: str
    wbo_parent: float | None = None
    wbo_fragment: float | None = None
    note: str | None = None


@dataclass
class TorsionProfileData:
    """A torsion profile: ``angles`` degrees, energies kcal/mol (reference, MM with the
    start parameters, MM with the fitted ones, and the posterior standard deviation of the
    fitted MM profile propagated from the parameter covariance, None when not computed);
    ``angles2``: the second dihedral's angle of each point of a 2-D drive (None: 1-D)."""

    angles: list[float]
    reference: list[float]
    start: list[float]
    fitted: list[float]
    fitted_sigma: list[float] | None = None
    angles2: list[float] | None = None


@dataclass
class DeltaInfo:
    """A rotor whose profile is a LOW drive corrected by a Gaussian process of HIGH - LOW
    learned from actively chosen HIGH single points (``ffparam bespoke --high-budget``).

    Attributes:
        high_method, low_method: canonical methods. budget: HIGH calculations allowed.
        threshold_kcal_mol: the sigma goal. n_high, n_failed: HIGH points computed (or
            taken from the Store) and failed; n_cached: of those, taken from the Store.
        high_angles, failed_angles: their grid angles (degrees), in the order asked.
        levels: per profile point ``high``, ``failed`` or ``low`` (LOW + correction).
        stop: ``threshold``, ``budget``, ``time`` (``--high-minutes`` reached), ``grid``
            or ``no_data``.
        sigma_history: max predicted sigma (kcal/mol) after each GP update.
        correction: the GP mean of HIGH - LOW relative to its mean, kcal/mol, per point.
        sigma: predicted sigma of each point of the corrected relative profile, kcal/mol.
        max_sigma: its maximum. amplitude_kcal_mol, length_scales: GP hyperparameters.
        plot: the correction plot, relative to the output directory.
        high_relax: how the HIGH points were relaxed from their LOW geometries (``none``:
            single points; ``newton``; ``steps:N``: :mod:`ffparam.reference.relax_high`).
        relax_kcal_mol: with relaxation: per computed HIGH point (order of
            ``high_angles``) the relaxed HIGH estimate minus the single point, kcal/mol.
        n_high_calculations: HIGH calculations spent, relaxation steps included.
        n_branches: with ``--high-branches``: conformer branches HIGH chose among (1: the
            LOW drive's own only); branch_of_point: the branch of each profile point;
            held_points: grid angles (degrees) of profile points whose LOW geometry had its
            signature dihedrals held (:mod:`ffparam.reference.drive_branches`).
        high_seconds: wall time of this run's HIGH rounds, seconds (rounds answered by the
            Store take ~0). time_limit_s: the ``--high-minutes`` limit, seconds, or None.
    """

    high_method: str
    low_method: str
    budget: int
    threshold_kcal_mol: float
    n_high: int = 0
    n_failed: int = 0
    n_cached: int = 0
    high_angles: list[list[float]] = field(default_factory=list)
    failed_angles: list[list[float]] = field(default_factory=list)
    levels: list[str] = field(default_factory=list)
    stop: str = "no_data"
    sigma_history: list[float] = field(default_factory=list)
    correction: list[float] | None = None
    sigma: list[float] | None = None
    max_sigma: float | None = None
    amplitude_kcal_mol: float | None = None
    length_scales: list[float] | None = None
    plot: str | None = None
    high_relax: str = "none"
    relax_kcal_mol: list[float] | None = None
    n_high_calculations: int | None = None
    n_branches: int | None = None
    branch_of_point: list[int] | None = None
    held_points: list[float] | None = None
    high_seconds: float | None = None
    time_limit_s: float | None = None


@dataclass
class RotorResult:
    """One rotatable bond: its scan and, when fitted, the torsion RMSE (kcal/mol) before and
    after the fit over the scan's points.

    Attributes:
        bond, dihedral: parent atom indices. source: ``computed`` or the imported file.
        missing: grid points (degrees) without a result. n_points: scan points used.
        n_jobs, n_cached, n_failed: optimizations asked, taken from the Store, failed.
        error: why the rotor was not fitted. fragment: the fragment it was scanned on.
        smirks: SMIRKS of its bespoke torsions. mode: ``relaxed`` or ``single_point``.
        rmse_cv: cross-validated RMSE (kcal/mol): every other grid point predicted by the
            fit to the rest (:mod:`ffparam.fit.crossval`), None when not computed.
        plot: its profile plot, relative to the output directory.
        delta: the Delta-learned ``HIGH//LOW`` profile (:class:`DeltaInfo`), if any.
        prior_width_kcal_mol: the prior width of its bespoke torsion barriers chosen by
            cross-validation (None: the fixed default).
        bond2, dihedral2: the second bond and dihedral of a 2-D drive (None: 1-D).
    """

    bond: list[int]
    dihedral: list[int] = field(default_factory=list)
    source: str = "computed"
    missing: list[list[float]] = field(default_factory=list)
    n_points: int = 0
    n_jobs: int = 0
    n_cached: int = 0
    n_failed: int = 0
    error: str | None = None
    fragment: FragmentInfo | None = None
    smirks: list[str] = field(default_factory=list)
    rmse_start: float | None = None
    rmse_fitted: float | None = None
    rmse_cv: float | None = None
    mode: str | None = None
    plot: str | None = None
    profile: TorsionProfileData | None = None
    delta: DeltaInfo | None = None
    prior_width_kcal_mol: float | None = None
    bond2: list[int] | None = None
    dihedral2: list[int] | None = None

    @property
    def fitted(self) -> bool:
        return self.rmse_fitted is not None


@dataclass
class BespokeSummary:
    """Headline numbers: rotors scanned and fitted, median torsion RMSE (kcal/mol) before
    and after, against which reference method, and whether data are missing."""

    n_rotors: int = 0
    n_fitted: int = 0
    median_rmse_start: float | None = None
    median_rmse_fitted: float | None = None
    reference: str | None = None
    incomplete: bool = False


@dataclass
class FitSummary:
    """The joint torsion fit: objective before/after, optimizer, wall time (s)."""

    objective_before: float | None = None
    objective_after: float | None = None
    optimizer: str | None = None
    wall_time_s: float | None = None
    n_iterations: int | None = None
    plot: str | None = None


@dataclass
class ChangedParameter:
    """One fitted parameter field, start and fitted value in ``unit`` (angles degrees);
    ``sigma``: its Laplace posterior standard deviation in ``unit`` (None when not
    computed, e.g. for values fitted on a fragment and transferred)."""

    section: str
    id: str
    field: str
    start: float | None
    fitted: float | None
    unit: str | None = None
    sigma: float | None = None


@dataclass
class Provenance:
    """Versions, method, start force field, wall time per step (``<step>_s``, seconds)."""

    ffparam_version: str | None = None
    packages: dict[str, str] = field(default_factory=dict)
    method: str | None = None
    forcefield: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    reference_note: str | None = None


@dataclass
class ValenceSummary:
    """``--fit-valence``: the frequency-fit note and the number of bespoke parameters."""

    note: str
    n_parameters: int


@dataclass
class BespokeMetrics:
    """Everything a bespoke run measured (see the module docstring)."""

    schema_version: int = SCHEMA_VERSION
    molecule: MoleculeInfo = field(default_factory=MoleculeInfo)
    settings: dict[str, Any] = field(default_factory=dict)
    summary: BespokeSummary = field(default_factory=BespokeSummary)
    rotors: list[RotorResult] = field(default_factory=list)
    fit: FitSummary | None = None
    changed_parameters: list[ChangedParameter] = field(default_factory=list)
    validation: dict[str, dict[str, Any]] = field(default_factory=dict)
    exports: dict[str, Any] = field(default_factory=dict)
    provenance: Provenance = field(default_factory=Provenance)
    warnings: list[str] = field(default_factory=list)
    valence: ValenceSummary | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (what ``metrics.json`` holds)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BespokeMetrics:
        """From plain data of any known schema version (:func:`migrate_metrics`); unknown
        keys and wrong shapes raise InputError naming the key."""
        return _build(cls, migrate_metrics(data), "metrics")


def migrate_metrics(data: dict[str, Any]) -> dict[str, Any]:
    """``metrics.json`` data in the current schema: a file without ``schema_version``
    (written before it existed) gets it, and its setting ``spacing`` becomes
    ``spacing_deg``; version 1 has no posterior sigmas (they read as None), versions 1 and
    2 no Delta-learned rotors (``delta`` None), versions 1 to 3 no 2-D drives, versions 1 to
    4 no conformer branches, versions 1 to 5 no HIGH time limit; a newer schema
    than this code reads raises InputError."""
    if not isinstance(data, dict):
        raise InputError(f"metrics must be a mapping, got {type(data).__name__}")
    version = data.get("schema_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise InputError(f"metrics schema_version must be a whole number, got {version!r}")
    if version > SCHEMA_VERSION:
        raise InputError(f"metrics schema_version {version} is newer than this ffparam reads "
                         f"({SCHEMA_VERSION}); use a newer ffparam")
    if version == 0:
        settings = dict(data.get("settings") or {})
        if "spacing" in settings:
            settings["spacing_deg"] = settings.pop("spacing")
        data = {**data, "settings": settings, "schema_version": 1}
    if data["schema_version"] in (1, 2, 3, 4, 5):  # versions 2 to 6 added optional fields
        data = {**data, "schema_version": SCHEMA_VERSION}
    return data


def read_bespoke_metrics(path: str | Path) -> BespokeMetrics:
    """A run's ``metrics.json`` (any known schema version) as :class:`BespokeMetrics`."""
    from ffparam.io.files import read_text

    path = Path(path)
    try:
        data = json.loads(read_text(path, "bespoke metrics (JSON)"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path.name} is not valid JSON: {exc}") from None
    try:
        return BespokeMetrics.from_dict(data)
    except InputError as exc:
        raise InputError(f"{path.name}: {exc}") from None


def _build(tp: Any, value: Any, where: str) -> Any:
    """``value`` (plain data) as annotation ``tp``: dataclasses, ``X | None``, lists and
    dicts recursively; numbers, strings and ``Any`` as they are."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        inner = [a for a in args if a is not type(None)]
        return _build(inner[0], value, where) if len(inner) == 1 else value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise InputError(f"{where} must be a mapping, got {type(value).__name__}")
        hints = typing.get_type_hints(tp)
        known = {f.name for f in dataclasses.fields(tp)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise InputError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}")
        try:
            return tp(**{k: _build(hints[k], v, f"{where}.{k}") for k, v in value.items()})
        except TypeError as exc:  # a required key is missing
            raise InputError(f"{where}: {exc}") from None
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise InputError(f"{where} must be a list, got {type(value).__name__}")
        return [_build(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise InputError(f"{where} must be a mapping, got {type(value).__name__}")
        return {k: _build(args[1], v, f"{where}.{k}") for k, v in value.items()}
    return value


__all__ = [
    "SCHEMA_VERSION",
    "BespokeMetrics",
    "BespokeSummary",
    "ChangedParameter",
    "DeltaInfo",
    "FitSummary",
    "FragmentInfo",
    "MoleculeInfo",
    "Provenance",
    "RotorResult",
    "TorsionProfileData",
    "ValenceSummary",
    "migrate_metrics",
    "read_bespoke_metrics",
]
