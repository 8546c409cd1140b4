"""Run a fit described by a :class:`~ffparam.fit.spec.FitSettings` and write its outputs
(the ``ffparam fit SPEC.yaml`` workflow).

Outputs in the output directory: ``fitted_parameters.yaml`` (every parameter of the fitted
molecules, fitted values written in), ``fitted.offxml`` (SMIRNOFF start force field plus the
changed and bespoke parameters, when the start is SMIRNOFF), ``fit_history.json``
(objective and parameters per iteration), ``metrics.json`` (per-target metrics before and
after) and ``plots/`` (torsion profiles, energy parity, objective history).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule, Topology
from ffparam.errors import InputError
from ffparam.fit.bespoke_torsions import make_bespoke_torsions
from ffparam.fit.objective import Objective
from ffparam.fit.optimizers import FitResult, optimize
from ffparam.fit.parameters import FitParameters
from ffparam.fit.spec import FitSettings, ParameterSettings, TargetSettings
from ffparam.fit.targets.base import Target
from ffparam.fit.targets.energies import ForceTarget, RelativeEnergyTarget
from ffparam.fit.targets.torsion import TorsionProfile, TorsionProfileTarget
from ffparam.fit.transferable import LeaveOneOut
from ffparam.io.atomic import write_json_atomic
from ffparam.io.torsion_scans import check_atom_order, read_torsion_scans
from ffparam.params.parameter_set import FreeSpec, ParameterKey, ParameterSet
from ffparam.params.system import ParameterizedSystem
from ffparam.units import EV_KCAL_MOL


@dataclass
class FitOutcome:
    """What a spec fit produced: the optimizer result, the objective and written files."""

    result: FitResult
    objective: Objective
    systems: dict[str, ParameterizedSystem]
    extra: ParameterSet
    files: dict[str, Path] = field(default_factory=dict)
    cv: LeaveOneOut | None = None


def load_spec_molecule(spec: FitSettings, name: str) -> Molecule:
    entry = spec.molecules[name]
    path = spec.resolve(entry.input)
    text = str(path) if path.exists() else entry.input
    molecule = Molecule.from_input(text, charge=entry.charge)
    molecule.name = name
    if molecule.n_conformers == 0:
        molecule = molecule.generate_conformers(1)
        molecule.name = name
    return molecule


def _start_system(spec: FitSettings, molecule: Molecule) -> ParameterizedSystem:
    """The start force field of one molecule: ``spec.forcefield`` assigned, or an existing
    force field file of it (prmtop/top/psf, relative to the spec) with its own charges."""
    from ffparam.assign.import_files import is_force_field_files, system_for_molecule

    if is_force_field_files(spec.forcefield):
        return system_for_molecule(molecule, spec.forcefield, spec.base_dir)
    return assign_parameters(molecule, spec.forcefield, charges=spec.charges)


def build_systems(spec: FitSettings) -> tuple[dict[str, ParameterizedSystem], ParameterSet]:
    """Assign start parameters (the spec's force field or an existing force-field file),
    bind the spec's shared types, add bespoke torsions; returns systems and the extra
    parameters (SMIRKS-keyed: shared types, then bespoke torsions, the order in which
    ``fitted.offxml`` appends them)."""
    from ffparam.fit.transferable import apply_shared_types

    systems = {name: _start_system(spec, load_spec_molecule(spec, name))
               for name in spec.molecules}
    systems, extra = apply_shared_types(systems, spec.types,
                                        forcefield_smirks(spec) if spec.types else set())
    add_spec_drudes(spec, systems)
    for entry in spec.parameters:
        if entry.bespoke_torsions is None:
            continue
        b = entry.bespoke_torsions
        if b.molecule not in systems:
            raise InputError(f"bespoke_torsions names unknown molecule {b.molecule!r}")
        system = systems[b.molecule]
        bonds = (Topology(system.molecule).rotatable_bonds.tolist() if b.bonds == "rotatable"
                 else [list(x) for x in b.bonds])
        if not bonds:
            raise InputError(f"molecule {b.molecule} has no rotatable bonds for bespoke torsions")
        bespoke = make_bespoke_torsions(system, bonds, b.max_periodicity, b.prior_width)
        systems[b.molecule] = bespoke.system
        for section, par in bespoke.parameters:
            extra.add(section, par)
    return systems, extra


def forcefield_smirks(spec: FitSettings) -> set[tuple[str, str]]:
    """(section, SMIRKS) of every parameter of a SMIRNOFF start force field (empty for
    GAFF and imported force-field files): a shared type must not reuse one (it would
    override it in place)."""
    from ffparam.assign.import_files import is_force_field_files

    if spec.forcefield.lower() in ("gaff2", "gaff") or is_force_field_files(spec.forcefield):
        return set()
    from ffparam.assign.smirnoff import SmirnoffForceField

    forcefield = SmirnoffForceField.load(spec.forcefield)
    return {(section, par.id) for section, par in forcefield.parameters}


def add_spec_drudes(spec: FitSettings, systems: dict[str, ParameterizedSystem]) -> None:
    """Drude particles (element/hybridization/hydrogen-count types, starting values,
    :func:`ffparam.params.drude.add_drude`) on the molecules of polarizability targets."""
    from ffparam.params.drude import add_drude, element_drude_types

    for name in dict.fromkeys(t.molecule for t in spec.targets
                              if t.type in ("polarizability", "esp_field")
                              and t.molecule in systems):
        system = systems[name]
        systems[name] = add_drude(system, element_drude_types(system, hydrogens=True))


def master_parameters(systems: dict[str, ParameterizedSystem],
                      entries: list[ParameterSettings],
                      skip_unmatched: bool = False,
                      aliases: dict[str, str] | None = None) -> ParameterSet:
    """Union of the systems' parameters (one copy per key) with the spec's free flags;
    ``skip_unmatched`` ignores entries that match no parameter of these systems (a fit to
    part of the spec's molecules); ``aliases``: id -> parameter id (a shared type's id ->
    its SMIRKS)."""
    aliases = aliases or {}
    master = ParameterSet()
    first = next(iter(systems.values()))
    master.settings.update(first.parameters.settings)
    for system in systems.values():
        for section, par in system.parameters:
            if (section, par.id) not in master:
                master.add(section, par)
        master.free.update(system.parameters.free)
    for entry in entries:
        if entry.bespoke_torsions is not None:
            continue
        if entry.section is None:
            raise InputError("a parameters entry needs 'section' (or 'bespoke_torsions')")
        if entry.section == "Charges" and len(systems) > 1:
            raise InputError("fitting Charges is supported for one molecule per spec")
        try:
            keys = master.set_free(entry.section, aliases.get(entry.id, entry.id),
                                   entry.fields)
        except InputError:
            if skip_unmatched:
                continue
            raise
        for key in keys:
            default = master.free[key]
            master.free[key] = FreeSpec(
                entry.lower if entry.lower is not None else default.lower,
                entry.upper if entry.upper is not None else default.upper,
                entry.prior_width if entry.prior_width is not None else default.prior_width,
                entry.transform or default.transform)
    return master


def _frames(path: Path, symbols: list[str], bonds: np.ndarray, need_forces: bool):
    from ffparam.io.xyz import read_extxyz_frames

    frames = read_extxyz_frames(path)
    geoms = np.array([f.get_positions() for f in frames])
    energies, forces = [], []
    for n, atoms in enumerate(frames):
        if atoms.get_chemical_symbols() != symbols:
            raise InputError(f"{path.name} frame {n}: atom order does not match the molecule")
        try:
            energies.append(atoms.get_potential_energy() * EV_KCAL_MOL)
            if need_forces:
                forces.append(atoms.get_forces() * EV_KCAL_MOL)
        except Exception:  # no calculator results in the frame
            raise InputError(f"{path.name} frame {n}: no energy"
                             f"{' and forces' if need_forces else ''}") from None
    return geoms, np.array(energies), (np.array(forces) if need_forces else None)


STORE_TASKS = {"hessian": "hessian", "frequencies": "hessian", "esp": "esp", "dipole": "esp",
               "polarizability": "polarizability", "esp_field": "esp_field"}


def store_records(path: Path, system: ParameterizedSystem, entry: TargetSettings) -> list:
    """Complete records of ``entry.method`` for the target's molecule (same atom order)."""
    from ffparam.reference.spec import MethodSpec
    from ffparam.reference.store import Store

    if not entry.method:
        raise InputError(f"target {entry.name}: a Store reference needs 'method'")
    with Store(path, readonly=True) as store:
        records = list(store.records(status="complete",
                                     method=MethodSpec.parse(entry.method).canonical(),
                                     molecule_key=system.molecule.canonical_key(),
                                     task_kind=STORE_TASKS[entry.type]))
    if not records:
        raise InputError(f"target {entry.name}: no complete {STORE_TASKS[entry.type]} records "
                         f"of {entry.method} for {system.molecule.name} in {path.name}")
    return records


def build_physics_target(entry: TargetSettings, system: ParameterizedSystem, path: Path) -> Target:
    """Hessian, frequency, ESP and dipole targets from Store records (or, for frequencies, an
    experimental CSV like vib_frequencies_train.csv)."""
    from ffparam.fit.targets.dipole import dipole_target_from_records
    from ffparam.fit.targets.esp import esp_target_from_records
    from ffparam.fit.targets.vibrations import (
        FrequencyTarget,
        HessianTarget,
        read_experimental_frequencies,
    )

    common = {"weight": entry.weight, "denominator": entry.denominator}
    if entry.type == "frequencies" and path.suffix.lower() == ".csv":
        table = read_experimental_frequencies(path)
        smiles = system.molecule.to_smiles()
        from ffparam.chem import Molecule

        match = [k for k in table if Molecule.from_smiles(k).to_smiles() == smiles]
        if not match:
            raise InputError(f"target {entry.name}: {path.name} has no frequencies for {smiles}")
        return FrequencyTarget.from_experiment(entry.name, system,
                                               system.molecule.conformers[0],
                                               table[match[0]], scale=entry.scale, **common)
    records = store_records(path, system, entry)
    if entry.type == "hessian":
        return HessianTarget.from_record(entry.name, system, records[-1], **common)
    if entry.type == "frequencies":
        return FrequencyTarget.from_record(entry.name, system, records[-1], scale=entry.scale,
                                           **common)
    if entry.type == "esp":
        return esp_target_from_records(entry.name, system, records, **common)
    if entry.type == "polarizability":
        from ffparam.fit.targets.polarizability import polarizability_target_from_records

        return polarizability_target_from_records(entry.name, system, records, **common)
    if entry.type == "esp_field":
        from ffparam.fit.targets.esp_field import field_esp_target_from_records

        return field_esp_target_from_records(entry.name, system, records, **common)
    return dipole_target_from_records(entry.name, system, records, **common)


def build_target(spec: FitSettings, entry: TargetSettings, system: ParameterizedSystem) -> Target:
    path = spec.resolve(entry.reference)
    if entry.type in STORE_TASKS:
        return build_physics_target(entry, system, path)
    if entry.type == "solvated_torsion":
        from ffparam.fit.targets.solvated_torsion import solvated_torsion_target_from_file

        return solvated_torsion_target_from_file(entry.name, system, path,
                                                 entry.energy_reference, entry.weight,
                                                 entry.denominator)
    molecule = system.molecule
    bonds = system.topology.bonds
    if entry.type == "torsion_profile":
        scans = read_torsion_scans(path)
        if len(scans) != 1:
            raise InputError(f"{path.name} holds {len(scans)} scans; give one per target")
        scan = scans[0]
        check_atom_order(scan, molecule.symbols, bonds, path.name)
        profile = TorsionProfile(scan.dihedrals, scan.angles, scan.geometries, scan.energies,
                                 entry.name)
        return TorsionProfileTarget(entry.name, system, profile, mode=entry.mode,
                                    reference=entry.energy_reference,
                                    energy_upper_kcal_mol=entry.energy_upper_kcal_mol,
                                    attenuate=entry.attenuate,
                                    weight=entry.weight, denominator=entry.denominator)
    geoms, energies, forces = _frames(path, molecule.symbols, bonds, entry.type == "forces")
    if entry.type == "relative_energy":
        return RelativeEnergyTarget(entry.name, system, geoms, energies,
                                    reference=entry.energy_reference,
                                    boltzmann_temperature_k=entry.boltzmann_temperature_k,
                                    weight=entry.weight, denominator=entry.denominator)
    return ForceTarget(entry.name, system, geoms, forces, remove_net=entry.remove_net_force,
                       weight=entry.weight, denominator=entry.denominator)


def _ties(entries: list[list[str]], aliases: dict[str, str] | None = None
          ) -> list[list[ParameterKey]]:
    aliases = aliases or {}
    groups = []
    for group in entries:
        keys = []
        for text in group:
            parts = text.split("/")
            if len(parts) < 3:
                raise InputError(f"tie entry {text!r} must be 'Section/id/field'")
            pid = "/".join(parts[1:-1])
            keys.append(ParameterKey(parts[0], aliases.get(pid, pid), parts[-1]))
        groups.append(keys)
    return groups


def run_fit(spec: FitSettings, outdir: str | Path, progress: bool = True,
            cv: bool = False) -> FitOutcome:
    """Build systems and targets, optimize, and write fitted parameters, history, metrics
    and plots to ``outdir``. ``cv``: also leave-one-molecule-out cross-validation
    (:func:`ffparam.fit.transferable.leave_one_out`; ``metrics.json`` ``leave_one_out``,
    ``leave_one_out.md``, ``plots/leave_one_out.png``)."""
    from ffparam.io.files import check_output_dir

    outdir = check_output_dir(outdir)
    systems, extra = build_systems(spec)
    objective = molecules_objective(spec, systems, list(systems))
    report = _progress_printer() if progress else None
    result = optimize_spec(spec, objective, report)
    outcome = FitOutcome(result, objective, systems, extra)
    if cv:
        from ffparam.fit.transferable import first_metrics

        outcome.cv = spec_leave_one_out(spec, systems, first_metrics(result.metrics_after))
    outdir.mkdir(parents=True, exist_ok=True)
    outcome.files = write_fit_outputs(outcome, spec, outdir)
    return outcome


def molecules_objective(spec: FitSettings, systems: dict[str, ParameterizedSystem],
                        names: list[str], part: bool = False) -> Objective:
    """The spec's objective over the targets of molecules ``names`` (fresh targets).

    ``part``: a fit to part of the spec's molecules (cross-validation): parameter entries
    and ties that touch none of these molecules are left out, and the objective may have
    no free parameter (``objective.fit.size == 0``)."""
    subset = {name: systems[name] for name in names}
    aliases = {entry.id: entry.smirks for entry in spec.types}
    master = master_parameters(subset, spec.parameters, skip_unmatched=part, aliases=aliases)
    ties = _ties(spec.ties, aliases)
    if part:
        ties = [group for group in ties if all(key in master.free for key in group)]
    targets = [build_target(spec, t, systems[t.molecule]) for t in spec.targets
               if t.molecule in subset]
    fit = (FitParameters.from_free(master, ties) if master.free_keys() or not part
           else FitParameters(master, []))
    return Objective(targets, fit, use_priors=spec.priors)


def spec_leave_one_out(spec: FitSettings, systems: dict[str, ParameterizedSystem],
                       fitted: dict[str, tuple[str, float]] | None = None) -> LeaveOneOut:
    """Leave-one-molecule-out cross-validation of ``spec`` over the systems
    :func:`build_systems` made (:func:`ffparam.fit.transferable.leave_one_out`); ``fitted``:
    the all-molecule fit's first metrics per target, refitted when None."""
    from ffparam.fit.transferable import leave_one_out

    names = [n for n in spec.molecules if any(t.molecule == n for t in spec.targets)]
    return leave_one_out(names, lambda part: molecules_objective(spec, systems, part, True),
                         lambda objective: optimize_spec(spec, objective), fitted)


def optimize_spec(spec: FitSettings, objective: Objective, progress=None) -> FitResult:
    """Run the spec's optimizer (with its options) on ``objective``."""
    options = {k: v for k, v in spec.optimizer.to_dict().items()
               if k != "name" and v is not None}
    return optimize(objective, spec.optimizer.name, progress=progress, **options)


def _progress_printer():
    from rich.console import Console

    console = Console(stderr=True)

    def show(iteration: int, value: float) -> None:
        console.print(f"  iteration {iteration:3d}  objective {value:.6g}", highlight=False)

    return show


def changed_parameters(outcome: FitOutcome) -> ParameterSet:
    """Bespoke parameters plus every parameter with a fitted field, fitted values in."""
    fitted = outcome.result.parameters
    changed = ParameterSet(settings=dict(fitted.settings))
    free_ids = {(k.section, k.id) for g in outcome.objective.fit.groups for k in g}
    ids = free_ids | {(s, p.id) for s, p in outcome.extra}
    for section, pid in sorted(ids):
        if section in ("Charges", "Drude"):  # molecule-specific / no SMIRNOFF section
            continue
        par = fitted.get(section, pid)
        changed.add(section, type(par)(par.id, dict(par.values), dict(par.fixed)))
    return changed


def write_fit_outputs(outcome: FitOutcome, spec: FitSettings, outdir: Path) -> dict[str, Path]:
    from ffparam.report.plots import history_plot, parity_plot, torsion_profile_plot

    files: dict[str, Path] = {}
    result = outcome.result
    fitted = result.parameters.copy()
    files["parameters"] = fitted.save(outdir / "fitted_parameters.yaml")
    from ffparam.assign.import_files import is_force_field_files

    if spec.forcefield.lower() not in ("gaff2", "gaff") and \
            not is_force_field_files(spec.forcefield):
        from ffparam.assign.smirnoff import SmirnoffForceField

        files["offxml"] = SmirnoffForceField.load(spec.forcefield).to_offxml(
            outdir / "fitted.offxml", extra=changed_parameters(outcome))
    history = result.to_json()
    history["parameters"] = outcome.objective.fit.labels
    files["history"] = _write_json(outdir / "fit_history.json", history)
    metrics = {"before": result.metrics_before, "after": result.metrics_after,
               "objective_before": result.objective_before,
               "objective_after": result.objective_after, "wall_time_s": result.wall_time,
               "optimizer": result.optimizer}
    if outcome.cv is not None:
        metrics["leave_one_out"] = outcome.cv.to_json()
    files["metrics"] = _write_json(outdir / "metrics.json", metrics)
    plots = outdir / "plots"
    plots.mkdir(exist_ok=True)
    if outcome.cv is not None:
        from ffparam.fit.transferable import leave_one_out_plot
        from ffparam.io.atomic import write_text_atomic

        files["leave_one_out"] = write_text_atomic(outdir / "leave_one_out.md",
                                                   outcome.cv.table() + "\n")
        files["plot_leave_one_out"] = leave_one_out_plot(plots / "leave_one_out.png",
                                                         outcome.cv)
    fit = outcome.objective.fit
    x0 = torch.zeros(fit.size, dtype=torch.float64)
    x1 = torch.as_tensor(result.x, dtype=torch.float64)
    for target in outcome.objective.targets:
        if isinstance(target, TorsionProfileTarget):
            start, final = target.profile_table(fit, x0), target.profile_table(fit, x1)
            rmse = {"start": result.metrics_before[target.name]["rmse [kcal/mol]"],
                    "fitted": result.metrics_after[target.name]["rmse [kcal/mol]"]}
            files[f"plot_{target.name}"] = torsion_profile_plot(
                plots / f"{target.name}.png", start["angles"][:, 0],
                {"reference": start["qm"], "start": start["mm"], "fitted": final["mm"]},
                f"{target.name} ({target.mode})", rmse)
        elif isinstance(target, RelativeEnergyTarget):
            with torch.no_grad():
                before = target.mm_relative(fit, x0).numpy()
                after = target.mm_relative(fit, x1).numpy()
            files[f"plot_{target.name}"] = parity_plot(
                plots / f"{target.name}.png", target.reference.numpy(),
                {"start": before, "fitted": after}, f"{target.name} relative energies")
    files["plot_history"] = history_plot(plots / "objective.png",
                                         [h["objective"] for h in result.history], "objective")
    from ffparam.workflows.fit_report import write_fit_report

    files.update(write_fit_report(outdir, outcome, files))
    return files


def _write_json(path: Path, data) -> Path:
    return write_json_atomic(path, data)
