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
from typing import Any, Literal

import numpy as np

from ffparam.chem import Molecule, Topology
from ffparam.errors import CalculationError, FFParamError, InputError
from ffparam.fit.bespoke_torsions import BespokeTorsions, fitted_extra, make_bespoke_torsions
from ffparam.fit.objective import Objective
from ffparam.fit.optimizers import FitResult, optimize
from ffparam.fit.parameters import FitParameters
from ffparam.fit.targets.torsion import TorsionProfileTarget
from ffparam.io.atomic import write_json_atomic, write_text_atomic
from ffparam.params.parameter_set import ParameterSet
from ffparam.params.system import ParameterizedSystem
from ffparam.reference.esp_field import DEFAULT_FIELD_KCAL_MOL_E_A
from ffparam.reference.spec import energy_method, geometry_method
from ffparam.report.bespoke_metrics import BespokeMetrics, ValenceSummary
from ffparam.settings import Settings, require_at_least, require_choice, require_positive
from ffparam.workflows.bespoke_results import Clock, build_metrics, population_validation
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
CHARGE_METHODS = ("am1bcc", "gasteiger", "mmff94", "resp", "ipolq")
QM_CHARGE_METHODS = ("resp", "ipolq")
"""Charges fitted to QM ESP (computed once the Store is open)."""


@dataclass(frozen=True)
class BespokeSettings(Settings):
    """Options of a bespoke run (see ``ffparam bespoke --help``); invalid values raise
    InputError when the object is made.

    Attributes:
        forcefield: start force field (``sage``, ``gaff2``, ``openff-X.Y.Z``, a .offxml).
        method: reference method (``gfn2-xtb``, ``b3lyp-d3bj/dzvp``, ...), or a composite
            ``HIGH//LOW`` (``b3lyp-d3bj/dzvp//gfn2-xtb``): torsion drives with LOW and HIGH
            single points on their geometries; valence and RESP geometries with LOW,
            held-out conformers scored against HIGH.
        charges: ``am1bcc``, ``gasteiger``, ``mmff94``, ``resp`` (from the method's ESP) or
            ``ipolq`` (RESP to the mean of the gas and QM/MM-in-water ESP).
        spacing_deg: torsion grid spacing, degrees (divides 180).
        workers, dask: local worker processes; or a Dask scheduler address / ``local``.
        references: imported torsion scans (extxyz or QCFractal JSON) used instead of drives.
        bonds: only these rotatable bonds (parent atom indices); None = all.
        include_symmetric_rotors: also scan methyl-like rotors.
        fragment: scan on WBO fragments (True), never (False), by size (None).
        fit_valence: also fit bonds/angles to the QM Hessian.
        mode: torsion target ``relaxed`` or ``single_point``.
        max_iterations: optimizer iterations.
        validation_conformers: held-out conformers (0: none); validate_geometry: QM vs MM
            optimized geometry; md_ps: gas-phase MD length, ps (0: none).
        population_mc_steps: Monte Carlo steps per chain for the rotamer populations at
            300 K of the start and fitted force field (0: none).
        retry_failed: recompute QM jobs stored as failed; force: reuse an output directory
            of another molecule; progress: progress output; seed: random seed.
        polarizable: export a Drude polarizable model (``ffparam.params.drude``: a Drude
            on every heavy atom, starting polarizabilities) as ``<name>.system.xml`` with
            ``DrudeForce`` and ``<name>.pdb`` with the Drude particles, instead of the
            fixed-charge files.
        high_budget: with a ``HIGH//LOW`` method, learn HIGH - LOW along each LOW drive
            from at most this many actively chosen HIGH single points per rotor
            (:mod:`ffparam.workflows.bespoke_delta`); None: HIGH at every grid point.
        high_sigma_kcal_mol: stop asking for HIGH points once the predicted sigma of every
            point of the corrected relative profile is below this, kcal/mol.
        high_minutes: with ``high_budget``: wall-clock minutes one rotor's HIGH rounds may
            take; no round starts that would, at the previous round's time per point, end
            later (the fit then uses what was computed, the report says ``time``). None: no
            limit. A resumed run counts only its own time.
        prior_widths_kcal_mol: candidate prior widths of the bespoke torsion barriers; each
            rotor gets the one whose fit best predicts every other grid point from the rest
            (:func:`~ffparam.fit.crossval.choose_prior_width`; one fit per candidate more).
            None or empty: the fixed default width.
        drives_2d: pairs of rotatable bonds, each driven as one 2-D torsion drive and fitted
            to its surface (with ``high_budget``: the Delta-learned ``HIGH//LOW`` surface;
            :mod:`ffparam.workflows.bespoke_delta2d`); their bonds are not scanned in 1-D.
        spacing_2d_deg: grid spacing of the 2-D drives, degrees (divides 180).
        high_relax: with ``high_budget``: how each chosen HIGH point is relaxed from its
            LOW geometry (:mod:`ffparam.reference.relax_high`): ``none`` (HIGH single
            points), ``newton`` (one HIGH gradient + the LOW Hessian: constrained Newton
            estimate of the relaxed energy) or ``steps:N`` (N constrained quasi-Newton
            steps with HIGH gradients).
        high_branches: with ``high_budget`` and ``high_relax`` ``none``: let HIGH choose
            among the conformer branches of other rotatable bonds that the LOW drive met
            (:mod:`ffparam.reference.drive_branches`,
            :mod:`ffparam.fit.profile_gp_branches`); False: the LOW drive's own branch.
        polarizability_method: with ``polarizable``, the QM level of the Drude fit's
            reference (polarizability tensor and ESP in uniform fields; a PySCF method,
            default HF/aug-cc-pVDZ; :mod:`ffparam.workflows.bespoke_drude`).
        field_strength_kcal_mol_e_a: the uniform perturbing field of that fit,
            kcal/mol/(e Angstrom) (default 0.005 au).
        n_field_charges: with ``polarizable``, also this many perturbing +-0.5 e point
            charges 3.5 A from the molecule, one QM ESP each (CHARMM's recipe; 0: none).
    """

    forcefield: str = "sage"
    method: str = "gfn2-xtb"
    charges: Literal["am1bcc", "gasteiger", "mmff94", "resp", "ipolq"] = "am1bcc"
    spacing_deg: int = 15
    workers: int = 1
    dask: str | None = None
    references: list[Path] = field(default_factory=list)
    bonds: list[tuple[int, int]] | None = None
    include_symmetric_rotors: bool = False
    fragment: bool | None = None
    fit_valence: bool = False
    mode: Literal["relaxed", "single_point"] = "relaxed"
    max_iterations: int = 50
    validation_conformers: int = 10
    validate_geometry: bool = True
    md_ps: float = 100.0
    population_mc_steps: int = 2000
    retry_failed: bool = False
    force: bool = False
    progress: bool = True
    seed: int = 20261125
    polarizable: bool = False
    high_budget: int | None = None
    high_sigma_kcal_mol: float = 0.1
    high_minutes: float | None = None
    prior_widths_kcal_mol: list[float] | None = None
    drives_2d: list[tuple[tuple[int, int], tuple[int, int]]] | None = None
    spacing_2d_deg: int = 30
    high_relax: str = "none"
    high_branches: bool = False
    polarizability_method: str = "hf/aug-cc-pvdz"
    field_strength_kcal_mol_e_a: float = DEFAULT_FIELD_KCAL_MOL_E_A
    n_field_charges: int = 0

    def __post_init__(self) -> None:
        from ffparam.reference.spec import parse_method

        if not 0 < self.spacing_deg <= 180 or 180 % self.spacing_deg:
            raise InputError(f"spacing_deg must divide 180 (degrees), got {self.spacing_deg}")
        require_choice(self, "mode", ("relaxed", "single_point"))
        require_choice(self, "charges", CHARGE_METHODS)
        require_at_least(self, 0, "workers", "validation_conformers", "md_ps", "seed",
                         "population_mc_steps")
        require_at_least(self, 1, "max_iterations")
        parse_method(self.method)
        self._check_high_budget()
        if self.prior_widths_kcal_mol and min(self.prior_widths_kcal_mol) <= 0:
            raise InputError("prior_widths_kcal_mol must be positive widths, got "
                             f"{self.prior_widths_kcal_mol}")
        self._check_polarizable()

    def _check_polarizable(self) -> None:
        from ffparam.reference.spec import MethodSpec

        require_positive(self, "field_strength_kcal_mol_e_a")
        require_at_least(self, 0, "n_field_charges")
        if self.polarizable and MethodSpec.parse(self.polarizability_method).backend != "pyscf":
            raise InputError(f"polarizability_method must be a PySCF method (hf/<basis> or "
                             f"<functional>/<basis>), got {self.polarizability_method!r}")
        for path in self.references:
            if not Path(path).exists():
                raise InputError(f"missing file: {path}")
        self._check_drives_2d()

    def _check_drives_2d(self) -> None:
        from ffparam.workflows.bespoke_delta2d import check_pairs

        if not 0 < self.spacing_2d_deg <= 180 or 180 % self.spacing_2d_deg:
            raise InputError(f"spacing_2d_deg must divide 180 (degrees), got "
                             f"{self.spacing_2d_deg}")
        check_pairs(self.drives_2d)


    def _check_high_budget(self) -> None:
        from ffparam.reference.spec import is_composite

        require_positive(self, "high_sigma_kcal_mol", "high_minutes")
        from ffparam.reference.relax_high import parse_high_relax

        parse_high_relax(self.high_relax)
        if self.high_budget is None:
            return
        require_at_least(self, 1, "high_budget")
        if not is_composite(self.method):
            raise InputError(f"high_budget needs a HIGH//LOW method (e.g. "
                             f"b3lyp-d3bj/dzvp//gfn2-xtb), got {self.method!r}")


@dataclass
class BespokeResult:
    """What a run produced: the fitted system, metrics and written files."""

    molecule: Molecule
    start: ParameterizedSystem
    fitted: ParameterizedSystem
    extra: ParameterSet
    rotors: list[RotorScan]
    metrics: BespokeMetrics
    files: dict[str, Path] = field(default_factory=dict)
    fit: FitResult | None = None


@dataclass
class BespokeRun:
    """What the steps of a run produced so far (read by
    :func:`~ffparam.workflows.bespoke_results.build_metrics`)."""

    molecule: Molecule
    settings: BespokeSettings
    start: ParameterizedSystem
    fitted: ParameterizedSystem | None = None
    extra: ParameterSet = field(default_factory=ParameterSet)
    rotors: list[RotorScan] = field(default_factory=list)
    bespoke: BespokeTorsions | None = None
    targets: list[TorsionProfileTarget] = field(default_factory=list)
    fit_result: FitResult | None = None
    validation: dict[str, Any] = field(default_factory=dict)
    exports: Any = None
    warnings: list[str] = field(default_factory=list)
    valence: ValenceSummary | None = None


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


def check_molecule_supported(molecule: Molecule, settings: BespokeSettings) -> None:
    """InputError (before any expensive work) unless ``molecule`` is closed-shell and the
    reference method covers its elements, charge and spin (and, for PySCF, its basis)."""
    from ffparam.reference.methods import get_calculator
    from ffparam.reference.records import Species
    molecule.require_closed_shell("ffparam bespoke")
    species = Species.from_molecule(molecule)
    for method in {energy_method(settings.method), geometry_method(settings.method)}:
        get_calculator(method, species)


def start_system(molecule: Molecule, settings: BespokeSettings, store, executor
                 ) -> ParameterizedSystem:
    """The starting force field with the requested charges (RESP from the reference ESP)."""
    from ffparam.assign import assign_parameters
    from ffparam.assign.import_files import is_force_field_files

    # an existing force field (prmtop/top/psf) keeps its own charges unless QM charges
    # (RESP, IPolQ) are asked
    own = is_force_field_files(settings.forcefield)
    if settings.charges not in QM_CHARGE_METHODS:
        return assign_parameters(molecule, settings.forcefield,
                                 charges=None if own else settings.charges)
    system = assign_parameters(molecule, settings.forcefield, charges=None if own else "am1bcc")
    from ffparam.workflows.bespoke_charges import ipolq_bespoke_system, resp_system

    if settings.charges == "ipolq":
        return ipolq_bespoke_system(system, geometry_method(settings.method), store, executor)

    return resp_system(system, geometry_method(settings.method), store, executor)


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
    if settings.drives_2d:  # the bonds of a 2-D drive are fitted to its surface instead
        from ffparam.workflows.bespoke_delta2d import unpaired_bonds

        bonds = unpaired_bonds(molecule, bonds, settings.drives_2d)
    if imported is None:
        imported = match_imported_scans(molecule, list(settings.references))
    rotors: list[RotorScan] = []
    fragmenter = _fragmenter(molecule, settings, store, executor)
    for bond in bonds:
        key = tuple(sorted(bond))
        if key in imported:
            store_imported_scan(store, molecule, imported[key])
            rotors.append(imported_rotor(bond, imported[key]))
            continue
        fragment = fragmenter(bond) if fragmenter else None
        _say(settings, f"torsion drive of bond {bond[0]}-{bond[1]} with {settings.method}"
             + (f" on a {fragment.molecule.n_atoms}-atom fragment" if fragment else ""))
        if settings.high_budget is not None:
            from ffparam.workflows.bespoke_delta import delta_rotor

            rotors.append(delta_rotor(molecule, bond, settings, store, executor, fragment))
            continue
        rotors.append(drive_rotor(molecule, bond, settings.method, settings.spacing_deg, store,
                                  executor, settings.retry_failed, settings.progress, fragment))
    if settings.drives_2d:
        from ffparam.workflows.bespoke_delta2d import pair_rotors

        rotors += pair_rotors(molecule, settings, store, executor,
                              lambda text: _say(settings, text))
    for key in set(imported) - {tuple(sorted(b)) for b in bonds}:
        notes.append(f"imported scan of bond {key[0]}-{key[1]} is not a scanned rotatable bond;"
                     " ignored")
    return rotors, notes


def _fragmenter(molecule: Molecule, settings: BespokeSettings, store, executor):
    """None, or a function bond -> Fragment | None (bond orders through ``store``)."""
    from ffparam.assign.import_files import is_force_field_files
    from ffparam.fragment import fragment_for_bond, needs_fragmentation

    if settings.fragment is False:
        return None
    if is_force_field_files(settings.forcefield):  # the file has no fragment parameters
        if settings.fragment:
            raise InputError(f"fragmentation needs a force field that types any molecule; "
                             f"{settings.forcefield} holds only this molecule")
        return None
    if settings.fragment is None and not needs_fragmentation(molecule):
        return None

    def fragment(bond):
        try:
            # Wiberg bond orders from GFN2-xTB whatever the scan method: cheap, and what the
            # fragmentation threshold was calibrated with
            result = fragment_for_bond(molecule, bond, method="gfn2-xtb", store=store,
                                       executor=executor)
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
    bespoke = make_bespoke_torsions(start, [b for r in usable for b in r.bonds])
    system = bespoke.system
    if fragment_rotors:
        from ffparam.workflows.bespoke_fragments import fit_fragments

        system = fit_fragments(bespoke, fragment_rotors, settings)
        bespoke = BespokeTorsions(system, bespoke.parameters, bespoke.bonds)
    if not parent_rotors:
        return bespoke, [], None
    targets = [TorsionProfileTarget(f"rotor_{r.bond[0]}-{r.bond[1]}", system, r.profile,
                                    mode=settings.mode) for r in parent_rotors]
    for target, rotor in zip(targets, parent_rotors):
        if rotor.delta is not None:  # points the GP is unsure of pull less
            from ffparam.workflows.bespoke_delta import weigh_by_sigma

            weigh_by_sigma(target, rotor.delta)
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
    if settings.prior_widths_kcal_mol:  # regularization chosen by cross-validation
        from ffparam.fit.bespoke_torsions import choose_rotor_priors

        choice = choose_rotor_priors(
            bespoke, params, targets, [r.bonds for r in parent_rotors],
            settings.prior_widths_kcal_mol,
            lambda o: optimize(o, "least_squares", max_iterations=settings.max_iterations))
        for rotor, target in zip(parent_rotors, targets):
            rotor.prior_width = choice.widths[target.name]
        return bespoke, targets, choice.result
    result = optimize(objective, "least_squares", max_iterations=settings.max_iterations,
                      progress=progress)
    return bespoke, targets, result


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
    clock = Clock()
    molecule = prepare_molecule(input, settings.seed)
    check_molecule_supported(molecule, settings)
    check_output_dir(outdir, molecule, settings.force)
    imported = match_imported_scans(molecule, list(settings.references))  # atom order checked
    if settings.drives_2d:
        from ffparam.workflows.bespoke_delta2d import check_pairs_in_molecule

        check_pairs_in_molecule(molecule, settings.drives_2d)
    t = time.perf_counter()
    start = None
    if settings.charges not in QM_CHARGE_METHODS:  # typing errors surface before any write
        start = start_system(molecule, settings, None, None)
    outdir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(outdir / STATE_FILE, json.dumps({"molecule_key": molecule.canonical_key(),
                                                       "smiles": molecule.to_smiles()}))
    with make_executor(settings.workers, settings.dask) as executor, \
            Store(outdir / STORE_FILE) as store:
        if start is None:
            start = start_system(molecule, settings, store, executor)
        t = clock.lap("charges", t)
        run = BespokeRun(molecule, settings, start)
        t = _fit_steps(run, store, executor, imported, clock, t)
        t = clock.lap("fit", t)
        scanned = [r.profile.geometries for r in run.rotors
                   if r.profile is not None and r.fragment is None]
        run.validation = _validate(molecule, start, run.fitted, settings, store, executor,
                                   outdir, run.warnings,
                                   np.concatenate(scanned) if scanned else None)
        t = clock.lap("validation", t)
        if settings.polarizable:
            from ffparam.workflows.bespoke_drude import fit_drude

            _say(settings, f"Drude: alpha + charges to {settings.polarizability_method} "
                           "polarizability and ESP in fields")
            run.fitted, run.validation["drude_fit"] = fit_drude(
                run.fitted, settings.polarizability_method,
                settings.field_strength_kcal_mol_e_a, store, executor, settings.max_iterations,
                n_field_charges=settings.n_field_charges)
            t = clock.lap("drude", t)
    run.exports = _export(run.fitted, run.extra, outdir, molecule, settings)
    clock.lap("export", t)
    metrics = build_metrics(run, clock, outdir)
    files = _write_outputs(outdir, metrics)
    return BespokeResult(molecule, start, run.fitted, run.extra, run.rotors, metrics, files,
                         run.fit_result)


def _fit_steps(run: BespokeRun, store, executor, imported: dict, clock: Clock,
               t: float) -> float:
    """Valence fit (if asked), torsion scans and the torsion fit; fills ``run`` and returns
    when the fit step started (``time.perf_counter``)."""
    settings, base, valence_extra = run.settings, run.start, ParameterSet()
    if settings.fit_valence:
        from ffparam.workflows.bespoke_valence import fit_valence

        # a HIGH//LOW composite: minimum and Hessian with LOW (a Hessian belongs at a
        # stationary point of its own method)
        valence = settings.replace(method=geometry_method(settings.method))
        _say(settings, f"valence: {valence.method} Hessian, Seminario, frequency fit")
        base, valence_extra, note = fit_valence(run.start, valence, store, executor)
        run.valence = ValenceSummary(note, len(valence_extra))
        t = clock.lap("valence", t)
    run.rotors, notes = collect_scans(run.molecule, settings, store, executor, imported)
    run.warnings += notes
    t = clock.lap("scans", t)
    run.warnings += rotor_warnings(run.rotors)
    if settings.high_budget is not None:
        from ffparam.workflows.bespoke_delta import delta_warnings

        run.warnings += delta_warnings(run.rotors)
    if not run.rotors:
        run.warnings.append("the molecule has no rotatable bonds to scan; the starting force "
                            "field is exported")
        run.fitted, run.extra = base, ParameterSet()
    else:
        run.bespoke, run.targets, run.fit_result = fit_rotors(base, run.rotors, settings)
        fitted_params = (run.fit_result.parameters if run.fit_result is not None
                         else run.bespoke.system.parameters)
        run.fitted = run.bespoke.system.with_parameters(fitted_params)
        run.extra = fitted_extra(run.bespoke, fitted_params)
    for section, par in valence_extra:
        run.extra.add(section, par)
    return t


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
            molecule, systems, energy_method(settings.method), store, executor,
            n_conformers=settings.validation_conformers, seed=settings.seed + 1,
            exclude_geometries=fitted_geometries),
        "geometry": lambda: validate.optimized_geometry_rmsd(
            molecule, systems, geometry_method(settings.method), store, executor),
        "md": lambda: validate.md_stability(fitted, molecule, length_ps=settings.md_ps,
                                            seed=settings.seed),
        "populations": lambda: population_validation(
            molecule, systems, settings.population_mc_steps, settings.seed,
            out.get("conformers")),
    }
    wanted = {"conformers": settings.validation_conformers > 0,
              "geometry": settings.validate_geometry, "md": settings.md_ps > 0,
              "populations": settings.population_mc_steps > 0}
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
    from ffparam.assign.import_files import is_force_field_files
    from ffparam.export import export_system

    if settings.polarizable:
        from ffparam.export.drude import export_drude
        from ffparam.params.drude import add_drude

        drude = fitted if fitted.drude is not None else add_drude(fitted)
        return export_drude(drude, outdir, basename=_basename(molecule))
    smirnoff = None if settings.forcefield.lower() in ("gaff2", "gaff") \
        or is_force_field_files(settings.forcefield) else settings.forcefield
    formats = ("openmm", "ffxml", "gromacs", "amber") + (("offxml",) if smirnoff else ())
    return export_system(fitted, outdir, formats=formats, smirnoff=smirnoff, extra=extra,
                         basename=_basename(molecule), on_unsupported="skip")


def _basename(molecule: Molecule) -> str:
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in molecule.name).strip("_")
    return name[:40] or "molecule"


def _write_outputs(outdir: Path, metrics: BespokeMetrics) -> dict[str, Path]:
    """``metrics.json`` and ``report.html``; returns their paths."""
    from ffparam.report.html import write_report

    return {"metrics": write_json_atomic(outdir / "metrics.json", metrics),
            "report": write_report(outdir / "report.html", metrics, outdir / "plots")}
