"""``ffparam bespoke``: one command from a molecule to a validated, exported force field.

Steps (each timed, all data through one Store so a rerun resumes):

1. start force field (Sage by default) and charges (AM1-BCC by default);
2. the rotatable bonds to scan (symmetric terminal rotors skipped unless asked); scans are
   imported (``--reference``) or computed as torsion drives with the reference method,
   on a fragment when the molecule is large;
3. bespoke torsion parameters per torsion group (SMIRKS that match only that bond), fitted
   to all rotors at once with the restrained-relaxation torsion target;
4. validation on data not used in the fit, export with read-back energy checks, and the
   HTML report plus ``metrics.json``.

A failed grid point or scan is reported and skipped; the run still exports what it has.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ffparam.chem import Molecule, Topology
from ffparam.errors import CalculationError, FFParamError, InputError
from ffparam.fit.bespoke_torsions import BespokeTorsions, fitted_extra, make_bespoke_torsions
from ffparam.fit.objective import Objective
from ffparam.fit.optimizers import FitResult, optimize
from ffparam.fit.parameters import FitParameters
from ffparam.fit.targets.torsion import TorsionProfileTarget
from ffparam.io.atomic import write_json_atomic, write_text_atomic
from ffparam.params.parameter_set import ParameterSet, field_unit
from ffparam.params.system import ParameterizedSystem
from ffparam.workflows.bespoke_scans import (
    RotorScan,
    drive_rotor,
    imported_rotor,
    match_imported_scans,
    rotors_to_scan,
    store_imported_scan,
)

STATE_FILE = "ffparam_bespoke.json"
STORE_FILE = "ffparam.db"
GFN2_NOTE = ("RMSE is measured against the reference method's own scans: GFN2-xTB itself "
             "differs from B3LYP-D3BJ/DZVP by about 0.3 kcal/mol RMSE on a biaryl torsion, so "
             "a GFN2-xTB fit is only as good as GFN2-xTB.")


@dataclass
class BespokeSettings:
    """Options of a bespoke run (see ``ffparam bespoke --help``)."""

    forcefield: str = "sage"
    method: str = "gfn2-xtb"
    charges: str = "am1bcc"
    spacing: int = 15
    workers: int = 1
    dask: str | None = None
    references: list[Path] = field(default_factory=list)
    bonds: list[tuple[int, int]] | None = None
    include_symmetric_rotors: bool = False
    fragment: bool | None = None
    fit_valence: bool = False
    mode: str = "relaxed"
    max_iterations: int = 50
    validation_conformers: int = 10
    validate_geometry: bool = True
    md_ps: float = 100.0
    retry_failed: bool = False
    force: bool = False
    progress: bool = True
    seed: int = 20261125

    def __post_init__(self) -> None:
        if not 0 < self.spacing <= 180 or 180 % self.spacing:
            raise InputError(f"spacing must divide 180 (degrees), got {self.spacing}")
        if self.mode not in ("relaxed", "single_point"):
            raise InputError(f"mode must be relaxed or single_point, got {self.mode!r}")
        for name, low in (("workers", 0), ("validation_conformers", 0), ("md_ps", 0),
                          ("max_iterations", 1), ("seed", 0)):
            if getattr(self, name) < low:
                raise InputError(f"{name} must be at least {low}, got {getattr(self, name)}")


@dataclass
class BespokeResult:
    """What a run produced: the fitted system, metrics and written files."""

    molecule: Molecule
    start: ParameterizedSystem
    fitted: ParameterizedSystem
    extra: ParameterSet
    rotors: list[RotorScan]
    metrics: dict
    files: dict[str, Path] = field(default_factory=dict)
    fit: FitResult | None = None


class _Clock:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._start = time.perf_counter()

    def lap(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.timings[f"{name}_s"] = round(now - since, 3)
        return now

    def total(self) -> None:
        self.timings["total_s"] = round(time.perf_counter() - self._start, 3)


def _say(settings: BespokeSettings, text: str) -> None:
    if settings.progress:
        from rich.console import Console

        Console(stderr=True).print(text, highlight=False)


def check_output_dir(outdir: Path, molecule: Molecule, force: bool) -> None:
    """Refuse an output directory holding another molecule's results (unless ``force``)."""
    state = outdir / STATE_FILE
    if not state.exists():
        return
    try:
        previous = json.loads(state.read_text()).get("molecule_key")
    except (OSError, json.JSONDecodeError):
        previous = None
    if previous != molecule.canonical_key() and not force:
        raise InputError(f"{outdir} holds results of another molecule ({previous}); use --force "
                         "or another --out")


def prepare_molecule(text_or_molecule: str | Molecule, seed: int) -> Molecule:
    """Read the input and make sure it has a starting conformer (ETKDG + MMFF94)."""
    molecule = (text_or_molecule if isinstance(text_or_molecule, Molecule)
                else Molecule.from_input(text_or_molecule))
    if molecule.n_conformers == 0:
        name = molecule.name
        molecule = molecule.generate_conformers(1, seed=seed)
        molecule.name = name
    else:
        molecule = molecule.with_conformers(molecule.conformers[:1])
    return molecule


def precheck(molecule: Molecule, settings: BespokeSettings) -> None:
    """Everything that would fail later for bad input fails here, before expensive work."""
    from ffparam.reference.methods import get_calculator
    from ffparam.reference.records import Species
    from ffparam.reference.spec import MethodSpec

    molecule.require_closed_shell("ffparam bespoke")
    get_calculator(MethodSpec.parse(settings.method), Species.from_molecule(molecule))
    if settings.charges not in ("am1bcc", "gasteiger", "mmff94", "resp"):
        raise InputError(f"unknown charge method {settings.charges!r}")
    for path in settings.references:
        if not Path(path).exists():
            raise InputError(f"missing file: {path}")


def start_system(molecule: Molecule, settings: BespokeSettings, store, executor
                 ) -> ParameterizedSystem:
    """The starting force field with the requested charges (RESP from the reference ESP)."""
    from ffparam.assign import assign_parameters

    if settings.charges != "resp":
        return assign_parameters(molecule, settings.forcefield, charges=settings.charges)
    system = assign_parameters(molecule, settings.forcefield, charges="am1bcc")
    from ffparam.workflows.bespoke_charges import resp_system

    return resp_system(system, settings.method, store, executor)


def collect_scans(molecule: Molecule, settings: BespokeSettings, store, executor,
                  imported: dict | None = None) -> tuple[list[RotorScan], list[str]]:
    """Scans of every rotor to fit: ``imported`` (from :func:`match_imported_scans`) where
    given, torsion drives otherwise; plus notes on skipped bonds."""
    bonds, notes = rotors_to_scan(molecule, settings.include_symmetric_rotors)
    if settings.bonds is not None:
        wanted = {tuple(sorted(map(int, b))) for b in settings.bonds}
        rotatable = {tuple(sorted(b)) for b in Topology(molecule).find_rotatable_bonds(True)
                     .tolist()}
        unknown = wanted - rotatable
        if unknown:
            raise InputError(f"--bond {sorted(unknown)[0]} is not a rotatable bond of "
                             f"{molecule.name}")
        bonds = [tuple(b) for b in sorted(wanted)]
    if imported is None:
        imported = match_imported_scans(molecule, list(settings.references))
    rotors: list[RotorScan] = []
    fragmenter = _fragmenter(molecule, settings)
    for bond in bonds:
        key = tuple(sorted(bond))
        if key in imported:
            store_imported_scan(store, molecule, imported[key])
            rotors.append(imported_rotor(bond, imported[key]))
            continue
        fragment = fragmenter(bond) if fragmenter else None
        _say(settings, f"torsion drive of bond {bond[0]}-{bond[1]} with {settings.method}"
             + (f" on a {fragment.molecule.n_atoms}-atom fragment" if fragment else ""))
        rotors.append(drive_rotor(molecule, bond, settings.method, settings.spacing, store,
                                  executor, settings.retry_failed, settings.progress, fragment))
    for key in set(imported) - {tuple(sorted(b)) for b in bonds}:
        notes.append(f"imported scan of bond {key[0]}-{key[1]} is not a scanned rotatable bond;"
                     " ignored")
    return rotors, notes


def _fragmenter(molecule: Molecule, settings: BespokeSettings):
    if settings.fragment is False:
        return None
    try:
        from ffparam.workflows.fragment import fragment_for_bond, needs_fragmentation
    except ImportError:
        return None
    if settings.fragment is None and not needs_fragmentation(molecule):
        return None

    def fragment(bond):
        try:
            # Wiberg bond orders from GFN2-xTB whatever the scan method: cheap, and what the
            # fragmentation threshold was calibrated with
            result = fragment_for_bond(molecule, bond, method="gfn2-xtb")
        except FFParamError as exc:  # fall back to scanning the parent
            _say(settings, f"fragmentation of bond {bond[0]}-{bond[1]} failed ({exc}); "
                 "scanning the whole molecule")
            return None
        return None if result.is_whole_molecule else result

    return fragment



def fit_rotors(start: ParameterizedSystem, rotors: list[RotorScan], settings: BespokeSettings
               ) -> tuple[BespokeTorsions, list[TorsionProfileTarget], FitResult]:
    """Bespoke torsions for every usable rotor, fitted jointly (fragment scans are fitted on
    the fragment and the values transferred; see :mod:`ffparam.workflows.bespoke_fragments`)."""
    usable = [r for r in rotors if r.usable]
    parent_rotors = [r for r in usable if r.fragment is None]
    fragment_rotors = [r for r in usable if r.fragment is not None]
    bespoke = make_bespoke_torsions(start, [r.bond for r in usable])
    system = bespoke.system
    if fragment_rotors:
        from ffparam.workflows.bespoke_fragments import fit_fragments

        system = fit_fragments(bespoke, fragment_rotors, settings)
        bespoke = BespokeTorsions(system, bespoke.parameters, bespoke.bonds)
    if not parent_rotors:
        return bespoke, [], None
    targets = [TorsionProfileTarget(f"rotor_{r.bond[0]}-{r.bond[1]}", system, r.profile,
                                    mode=settings.mode) for r in parent_rotors]
    params = system.parameters
    fragment_keys = {k for r in fragment_rotors for k in params.free
                     if k.id in bespoke.bonds.get(r.bond, [])}
    for key in fragment_keys:  # already fitted on the fragment
        params.free.pop(key)
    fit = FitParameters.from_free(params)
    objective = Objective(targets, fit)
    progress = None
    if settings.progress:
        progress = lambda i, v: _say(settings, f"  fit iteration {i:3d}  objective {v:.5g}")  # noqa: E731
    result = optimize(objective, "least_squares", max_iterations=settings.max_iterations,
                      progress=progress)
    return bespoke, targets, result


def changed_parameter_rows(start: ParameterSet, fitted: ParameterSet, keys) -> list[dict]:
    rows = []
    for key in keys:
        before = start.get(key.section, key.id).values.get(key.field) \
            if (key.section, key.id) in start else None
        after = fitted.get(key.section, key.id).values[key.field]
        unit = field_unit(key.section, key.field)
        if unit == "rad":
            before = None if before is None else float(np.degrees(before))
            after, unit = float(np.degrees(after)), "degree"
        rows.append({"section": key.section, "id": key.id, "field": key.field,
                     "start": before, "fitted": after, "unit": unit})
    return rows


def rotor_warnings(rotors: list[RotorScan]) -> list[str]:
    """One warning per dropped rotor or missing grid points; raises
    :class:`~ffparam.errors.CalculationError` naming every rotor's reason when there were
    rotors to fit and none of them can be (a bespoke fit without its torsions is no result)."""
    warnings = []
    for r in rotors:
        if r.error:
            warnings.append(f"rotor {r.bond[0]}-{r.bond[1]}: {r.error}; not fitted")
        if r.missing:
            warnings.append(f"rotor {r.bond[0]}-{r.bond[1]}: no result at grid point(s) "
                            f"{[list(m) for m in r.missing][:6]}")
    if rotors and not any(r.usable for r in rotors):
        reasons = "; ".join(
            f"rotor {r.bond[0]}-{r.bond[1]}: "
            f"{r.error or f'{0 if r.profile is None else len(r.profile.energies)} scan point(s)'}"
            for r in rotors)
        raise CalculationError(f"no rotor could be fitted ({reasons}); nothing exported, "
                               "rerun to resume from the store")
    return warnings


def run_bespoke(input: str | Molecule, outdir: str | Path,
                settings: BespokeSettings | None = None) -> BespokeResult:
    """Run the whole pipeline for ``input`` (SMILES, file or Molecule) into ``outdir``."""
    from ffparam.io.files import check_output_dir as check_output_location
    from ffparam.reference.store import Store
    from ffparam.runtime import make_executor

    settings = settings or BespokeSettings()
    outdir = check_output_location(outdir)
    clock = _Clock()
    molecule = prepare_molecule(input, settings.seed)
    precheck(molecule, settings)
    check_output_dir(outdir, molecule, settings.force)
    imported = match_imported_scans(molecule, list(settings.references))  # atom order checked
    t = time.perf_counter()
    start = None
    if settings.charges != "resp":  # typing errors surface before anything is written
        start = start_system(molecule, settings, None, None)
    outdir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(outdir / STATE_FILE, json.dumps({"molecule_key": molecule.canonical_key(),
                                                       "smiles": molecule.to_smiles()}))
    warnings: list[str] = []
    with make_executor(settings.workers, settings.dask) as executor, \
            Store(outdir / STORE_FILE) as store:
        if start is None:
            start = start_system(molecule, settings, store, executor)
        t = clock.lap("charges", t)
        base, valence_extra, valence_note = start, ParameterSet(), None
        if settings.fit_valence:
            from ffparam.workflows.bespoke_valence import fit_valence

            _say(settings, f"valence: {settings.method} Hessian, Seminario, frequency fit")
            base, valence_extra, valence_note = fit_valence(start, settings, store, executor)
            t = clock.lap("valence", t)
        rotors, notes = collect_scans(molecule, settings, store, executor, imported)
        warnings += notes
        t = clock.lap("scans", t)
        warnings += rotor_warnings(rotors)
        if not rotors:
            warnings.append("the molecule has no rotatable bonds to scan; the starting force "
                            "field is exported")
            bespoke, targets, fit_result = None, [], None
            fitted, extra = base, ParameterSet()
        else:
            bespoke, targets, fit_result = fit_rotors(base, rotors, settings)
            fitted_params = (fit_result.parameters if fit_result is not None
                             else bespoke.system.parameters)
            fitted = bespoke.system.with_parameters(fitted_params)
            extra = fitted_extra(bespoke, fitted_params)
        for section, par in valence_extra:
            extra.add(section, par)
        t = clock.lap("fit", t)
        scanned = [r.profile.geometries for r in rotors
                   if r.profile is not None and r.fragment is None]
        validation = _validate(molecule, start, fitted, settings, store, executor, outdir,
                               warnings, np.concatenate(scanned) if scanned else None)
        t = clock.lap("validation", t)
    exports = _export(fitted, extra, outdir, molecule, settings)
    clock.lap("export", t)
    metrics = _metrics(molecule, settings, start, fitted, bespoke, rotors, targets, fit_result,
                       validation, exports, warnings, clock, outdir)
    if valence_note:
        metrics["valence"] = {"note": valence_note, "n_parameters": len(valence_extra)}
    files = _write_outputs(outdir, metrics, settings)
    return BespokeResult(molecule, start, fitted, extra, rotors, metrics, files, fit_result)


def _validate(molecule, start, fitted, settings, store, executor, outdir, warnings,
              fitted_geometries=None) -> dict:
    """Held-out conformers (never near a scan geometry used in the fit), QM vs MM optimized
    geometry, and gas-phase MD; each failure becomes a warning."""
    out: dict = {}
    try:
        from ffparam import validate
    except ImportError:  # pragma: no cover - the package is part of ffparam
        warnings.append("validation module unavailable; validation skipped")
        return out
    systems = {"start": start, "bespoke": fitted}
    steps = {
        "conformers": lambda: validate.held_out_conformers(
            molecule, systems, settings.method, store, executor,
            n_conformers=settings.validation_conformers, seed=settings.seed + 1,
            exclude_geometries=fitted_geometries),
        "geometry": lambda: validate.optimized_geometry_rmsd(
            molecule, systems, settings.method, store, executor),
        "md": lambda: validate.md_stability(fitted, molecule, length_ps=settings.md_ps,
                                            seed=settings.seed),
    }
    wanted = {"conformers": settings.validation_conformers > 0,
              "geometry": settings.validate_geometry, "md": settings.md_ps > 0}
    for name, step in steps.items():
        if not wanted[name]:
            continue
        _say(settings, f"validation: {name}")
        try:
            out[name] = step()
        except Exception as exc:  # a validation failure is reported, not fatal
            from ffparam.errors import FFParamError

            if not isinstance(exc, FFParamError):
                raise
            warnings.append(f"validation {name} failed: {exc}")
    return out


def _export(fitted, extra, outdir, molecule, settings):
    from ffparam.export import export_system

    smirnoff = None if settings.forcefield.lower() in ("gaff2", "gaff") else settings.forcefield
    formats = ("openmm", "ffxml", "gromacs", "amber") + (("offxml",) if smirnoff else ())
    return export_system(fitted, outdir, formats=formats, smirnoff=smirnoff, extra=extra,
                         basename=_basename(molecule), on_unsupported="skip")


def _basename(molecule: Molecule) -> str:
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in molecule.name).strip("_")
    return name[:40] or "molecule"


def _rotor_metrics(rotors, targets, fit_result, plots: Path) -> list[dict]:
    from ffparam.report.plots import torsion_profile_plot

    by_name = {t.name: (t, fit_result) for t in targets}
    for rotor in rotors:
        if rotor.fit_target is not None:
            by_name[rotor.fit_target.name] = (rotor.fit_target, rotor.fit_result)
    out = []
    for n, rotor in enumerate(rotors, start=1):
        entry = {"bond": list(rotor.bond), "dihedral": list(rotor.dihedral),
                 "source": rotor.source, "missing": [list(m) for m in rotor.missing],
                 "n_points": 0 if rotor.profile is None else len(rotor.profile.energies),
                 "n_jobs": rotor.n_jobs, "n_cached": rotor.n_cached, "n_failed": rotor.n_failed,
                 "error": rotor.error, "fragment": None}
        if rotor.fragment is not None:
            entry["fragment"] = {"n_atoms": rotor.fragment.molecule.n_atoms,
                                 "smiles": rotor.fragment.molecule.to_smiles()}
        name = f"rotor_{rotor.bond[0]}-{rotor.bond[1]}"
        target, fit_result = by_name.get(name, (None, None))
        if target is not None and fit_result is not None:
            fit = fit_result.fit
            x0 = torch.zeros(fit.size, dtype=torch.float64)
            x1 = torch.as_tensor(fit_result.x, dtype=torch.float64)
            start, final = target.profile_table(fit, x0), target.profile_table(fit, x1)
            rmse_start = fit_result.metrics_before[name]["rmse [kcal/mol]"]
            rmse_fitted = fit_result.metrics_after[name]["rmse [kcal/mol]"]
            plot = torsion_profile_plot(
                plots / f"rotor_{n}.png", start["angles"][:, 0],
                {"reference": start["qm"], "start": start["mm"], "bespoke": final["mm"]},
                f"bond {rotor.bond[0]}-{rotor.bond[1]} ({target.mode} MM)",
                {"start": rmse_start, "bespoke": rmse_fitted})
            entry.update({"rmse_start": rmse_start, "rmse_fitted": rmse_fitted,
                          "mode": target.mode, "plot": f"plots/{plot.name}",
                          "profile": {"angles": start["angles"][:, 0].tolist(),
                                      "reference": start["qm"].tolist(),
                                      "start": start["mm"].tolist(),
                                      "fitted": final["mm"].tolist()}})
            if rotor.fragment is not None:
                entry["fragment"].update({"wbo_parent": rotor.fragment.parent_wbo,
                                          "wbo_fragment": rotor.fragment.wbo,
                                          "note": "RMSE measured on the fragment"})
        out.append(entry)
    return out


def _metrics(molecule, settings, start, fitted, bespoke, rotors, targets, fit_result,
             validation, exports, warnings, clock, outdir) -> dict:
    import ffparam
    from ffparam.reference.jobs import package_versions

    plots = outdir / "plots"
    plots.mkdir(exist_ok=True)
    rotor_rows = _rotor_metrics(rotors, targets, fit_result, plots)
    fit_block = None
    changed: list[dict] = []
    if fit_result is not None:
        fit_block = {"objective_before": fit_result.objective_before,
                     "objective_after": fit_result.objective_after,
                     "optimizer": fit_result.optimizer, "wall_time_s": fit_result.wall_time,
                     "n_iterations": len(fit_result.history) - 1}
    if bespoke is not None:
        keys = [k for k in fitted.parameters.keys()
                if k.section == "ProperTorsions" and k.id in bespoke.parameters.sections.get(
                    "ProperTorsions", {}) and k.field.startswith("k")]
        changed = changed_parameter_rows(bespoke.parameters, fitted.parameters, keys)
    clock.total()
    rmse_start = [r["rmse_start"] for r in rotor_rows if r.get("rmse_start") is not None]
    rmse_fitted = [r["rmse_fitted"] for r in rotor_rows if r.get("rmse_fitted") is not None]
    return {
        "molecule": {"name": molecule.name, "smiles": molecule.to_smiles(),
                     "mapped_smiles": molecule.to_smiles(mapped=True),
                     "formula": molecule.formula, "n_atoms": molecule.n_atoms},
        "settings": {"forcefield": settings.forcefield, "method": settings.method,
                     "charges": settings.charges, "spacing": settings.spacing,
                     "mode": settings.mode, "workers": settings.workers,
                     "references": [str(p) for p in settings.references]},
        "summary": {"n_rotors": len(rotors), "n_fitted": len(rmse_fitted),
                    "median_rmse_start": float(np.median(rmse_start)) if rmse_start else None,
                    "median_rmse_fitted": float(np.median(rmse_fitted)) if rmse_fitted
                    else None, "reference": settings.method,
                    "incomplete": any(r.error or r.missing for r in rotors)},
        "rotors": rotor_rows,
        "fit": fit_block,
        "changed_parameters": changed,
        "validation": {k: v.to_json() for k, v in validation.items()},
        "exports": exports.to_dict(),
        "provenance": {"ffparam_version": ffparam.__version__, "packages": package_versions(),
                       "method": settings.method, "forcefield": start.source,
                       "timings": clock.timings,
                       "reference_note": GFN2_NOTE if "xtb" in settings.method else
                       f"RMSE is measured against {settings.method} scans."},
        "warnings": warnings,
    }


def _write_outputs(outdir: Path, metrics: dict, settings: BespokeSettings) -> dict[str, Path]:
    files = {}
    path = write_json_atomic(outdir / "metrics.json", metrics)
    files["metrics"] = path
    try:
        from ffparam.report.html import write_report
    except ImportError:
        return files
    files["report"] = write_report(outdir / "report.html", metrics, outdir / "plots")
    return files


