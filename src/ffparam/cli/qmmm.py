"""``ffparam qmmm``: QM/MM single points of a molecule in snapshots of a solvent box
(:mod:`ffparam.workflows.qmmm`). Calculations go to a Store (``--store``, default
``OUT/qmmm.sqlite``) and the MD is checkpointed in ``OUT/md``: a rerun computes nothing
again."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ffparam.cli.options import (
    ApiField,
    PlainHelpCommand,
    api_option,
    api_values,
    at_least,
    positive,
    uses_api,
)

if TYPE_CHECKING:
    from ffparam.params.parameter_set import ParameterSet
    from ffparam.workflows.qmmm import QMMMSettings

SETTINGS = "ffparam.workflows.qmmm:QMMMSettings"
EXECUTOR = "ffparam.runtime.executor:make_executor"
QMMM_FIELDS = {
    name: ApiField(SETTINGS, name)
    for name in ("solvent", "method", "task", "cutoff_a", "md_cutoff_a", "temperature_k",
                 "equilibration_ps", "interval_ps", "forcefield", "charges", "freeze_solute",
                 "seed", "platform")
} | {
    "frames": ApiField(SETTINGS, "n_frames"),
    "n_solvent": ApiField(SETTINGS, "n_solvent"),
    "threads": ApiField(SETTINGS, "threads", none_as=0),
    "workers": ApiField(EXECUTOR, "workers"),
}
"""`ffparam qmmm` option -> the API field it sets (and takes its default from)."""
Q = QMMM_FIELDS


@uses_api(QMMM_FIELDS)
def qmmm(
    molecule: str = typer.Argument(..., help="solute: SMILES or molecule file"),
    solvent: str = api_option(Q, "solvent", "--solvent", help="water (TIP3P) or a SMILES"),
    method: str = api_option(Q, "method", "--method",
                             help="PySCF method of the solute, e.g. hf/6-31g*, b3lyp/def2-svp"),
    task: str = api_option(Q, "task", "--task", help="energy | gradient | esp"),
    frames: int = api_option(Q, "frames", "--frames", callback=at_least(1),
                             help="snapshots (one QM/MM calculation each)"),
    n_solvent: int = api_option(Q, "n_solvent", "--n-solvent", callback=at_least(2),
                                help="solvent molecules packed around the solute"),
    cutoff_a: float = api_option(Q, "cutoff_a", "--cutoff", callback=positive,
                                 help="QM/MM cutoff, Angstrom (whole solvent molecules)"),
    md_cutoff_a: float = api_option(Q, "md_cutoff_a", "--md-cutoff", callback=positive,
                                    help="MD PME/LJ cutoff, Angstrom"),
    temperature_k: float = api_option(Q, "temperature_k", "--temperature", callback=positive,
                                      help="K"),
    equilibration_ps: float = api_option(Q, "equilibration_ps", "--equil-ps",
                                         help="MD before the first snapshot, ps"),
    interval_ps: float = api_option(Q, "interval_ps", "--interval-ps", callback=positive,
                                    help="MD between snapshots, ps"),
    forcefield: str = api_option(Q, "forcefield", "--ff", help="force field (sage, gaff2...)"),
    charges: str = api_option(Q, "charges", "--charges", help="solute charges (am1bcc...)"),
    freeze_solute: bool = api_option(Q, "freeze_solute", "--freeze-solute/--flexible-solute",
                                     help="hold the solute rigid at its conformer"),
    seed: int = api_option(Q, "seed", "--seed", help="packmol and Langevin seed"),
    platform: str = api_option(Q, "platform", "--platform", help="OpenMM platform"),
    threads: int = api_option(Q, "threads", "--threads", callback=at_least(0),
                              help="OpenMM CPU threads (0: OpenMM's default)"),
    workers: int = api_option(Q, "workers", "--workers", callback=at_least(0),
                              help="QM worker processes (0: this process)"),
    store: Path | None = typer.Option(None, "--store",
                                      help="SQLite store (default OUT/qmmm.sqlite)"),
    out: Path = typer.Option(Path("qmmm"), "--out", "-o", help="output directory"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
    torsion: str | None = typer.Option(
        None, "--torsion", help="I,J,K,L (0-based): a solvated torsion profile instead: "
        "the MM-relaxed drive of this dihedral, each geometry frozen in its own box "
        "(--frames snapshots) -> OUT/solvated_torsion.json (a solvated_torsion fit target)"),
    spacing: int = typer.Option(30, "--spacing", callback=at_least(1),
                                help="drive spacing with --torsion, degrees (divides 360)"),
    polarizable: bool = typer.Option(
        False, "--polarizable",
        help="Drude-polarizable solvent: a Drude on every heavy atom of the solvent "
             "molecules within the cutoff (alpha/Thole by type from --drude-params, else "
             "starting values), QM density and Drudes self-consistent per snapshot "
             "(task energy or gradient)"),
    drude_params: Path | None = typer.Option(
        None, "--drude-params",
        help="ffparam parameter file (.yaml/.json) whose Drude section gives alpha (A^3) "
             "and Thole per type (O3H2 or O3) with --polarizable"),
) -> None:
    """QM/MM calculations of MOLECULE in snapshots of a solvent box."""
    values = dict(locals())
    from ffparam.chem import Molecule
    from ffparam.reference.store import Store
    from ffparam.runtime import make_executor
    from ffparam.workflows.qmmm import QMMMSettings, box_edge_a, run_qmmm
    from ffparam.workflows.qmmm_drude import run_qmmm_drude

    settings = QMMMSettings(**api_values(QMMM_FIELDS, values, SETTINGS))
    box_edge_a(settings)  # a box under twice the cutoff: one line, nothing written
    Molecule.from_input(molecule)  # an unreadable solute: one line, nothing written
    drude_source = _drude_inputs(polarizable, drude_params, torsion, settings)
    if torsion is not None:
        _torsion_profile(molecule, _quad(torsion), spacing, settings, store, out, workers)
        return
    out.mkdir(parents=True, exist_ok=True)
    runner = run_qmmm
    if polarizable:  # the same snapshots, each QM/MM self-consistent in a Drude solvent
        runner = partial(run_qmmm_drude, drude_source=drude_source)
    with Store(store or out / "qmmm.sqlite") as db, make_executor(workers) as executor:
        result = runner(molecule, out, settings, store=db, executor=executor,
                        progress=not quiet)
    _report(result)
    if not all(r.ok for r in [*result.records, result.gas]):
        raise typer.Exit(code=1)


def _report(result) -> None:
    """One line per snapshot and the gas-phase line (and the Drude solvent's types)."""
    data = result.to_json()
    typer.echo(result.summary_text)
    typer.echo(f"{data['solute']} {data['method']}: gas energy "
               f"{_number(data['gas']['energy_kcal_mol'], '.4f')} kcal/mol, dipole "
               f"{_number(data['gas']['dipole_debye'], '.3f')} D")
    if data.get("polarizable"):
        types = ", ".join(f"{tid} alpha {v['alpha_a3']:.3f} A^3 Thole {v['thole']:.2f}"
                          for tid, v in data["drude"]["types"].items())
        typer.echo(f"polarizable solvent: Drude types {types}; QM/MM self-consistent with "
                   f"the Drudes (tolerance {data['drude']['energy_tolerance_kcal_mol']:g} "
                   "kcal/mol)")
    for frame in data["frames"]:
        drude = (f", {frame['n_drudes']} Drudes, {frame['drude_iterations']} QM/MM SCFs, "
                 f"E_pol {_number(frame['polarization_energy_kcal_mol'], '.4f')} kcal/mol"
                 if data.get("polarizable") and frame["status"] == "complete" else "")
        typer.echo(f"  frame {frame['frame']}: {frame['status']}, "
                   f"{frame['n_mm_molecules']} MM molecules, energy "
                   f"{_number(frame['energy_kcal_mol'], '.4f')} kcal/mol, dipole "
                   f"{_number(frame['dipole_debye'], '.3f')} D" + drude
                   + (f" ({frame['error']})" if frame["error"] else ""))


def _drude_inputs(polarizable: bool, drude_params: Path | None, torsion: str | None,
                  settings: QMMMSettings) -> ParameterSet | None:
    """The ParameterSet of ``--drude-params`` (or None), every Drude option combination
    and the solvent's Drude types checked (one-line InputError) before anything runs."""
    from ffparam.errors import InputError
    from ffparam.params.parameter_set import ParameterSet
    from ffparam.workflows.qmmm import prepare_solvent
    from ffparam.workflows.qmmm_drude import check_drude_task, drude_solvent

    if not polarizable:
        if drude_params is not None:
            raise InputError("--drude-params needs --polarizable")
        return None
    if torsion is not None:
        raise InputError("--polarizable is not supported with --torsion")
    check_drude_task(settings)
    source = None if drude_params is None else ParameterSet.load(drude_params)
    drude_solvent(prepare_solvent(settings), source)  # a type without alpha: one line
    return source


def _quad(text: str) -> tuple[int, ...]:
    """``I,J,K,L`` as four ints (InputError otherwise)."""
    from ffparam.errors import InputError

    try:
        quad = tuple(int(part) for part in text.split(","))
    except ValueError:
        quad = ()
    if len(quad) != 4:
        raise InputError(f"--torsion must be four atom indices I,J,K,L, got {text!r}")
    return quad


def _torsion_profile(molecule: str, quad: tuple[int, ...], spacing: int, settings,
                     store: Path | None, out: Path, workers: int) -> None:
    """``ffparam qmmm --torsion``: the solvated profile, a table of gas and mean QM/MM
    energies (kcal/mol, each from its minimum) with the standard error."""
    import numpy as np

    from ffparam.errors import InputError
    from ffparam.liquid.prepare import prepare_system
    from ffparam.reference.store import Store
    from ffparam.runtime import make_executor
    from ffparam.workflows.solvated_torsion import (
        PROFILE_FILE,
        check_dihedral,
        solvated_torsion_profile,
    )

    if 360 % spacing or spacing > 180:
        raise InputError(f"--spacing must divide 360 (degrees, at most 180), got {spacing}")
    system = prepare_system(molecule, settings.forcefield, settings.charges)
    check_dihedral(system, quad)  # bad atoms: one line, nothing written
    angles = np.arange(-180 + spacing, 180 + 1, spacing, dtype=float)
    out.mkdir(parents=True, exist_ok=True)
    with Store(store or out / "qmmm.sqlite") as db, make_executor(workers) as executor:
        profile = solvated_torsion_profile(system, quad, angles, out, settings, db, executor)
    mean, error = profile.qmmm_mean()
    gas = profile.gas_energies - profile.gas_energies.min()
    typer.echo(f"{profile.label}, {profile.method}: relative energies, kcal/mol "
               f"(QM/MM: mean of the snapshots +- standard error) -> {out / PROFILE_FILE}")
    for angle, e_gas, e_qmmm, e_err in zip(angles, gas, mean - mean.min(), error):
        typer.echo(f"  {angle:7.1f} deg  gas {e_gas:8.3f}  in solvent {e_qmmm:8.3f} "
                   f"+- {e_err:.3f}")


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def register(app: typer.Typer) -> None:
    """Add ``qmmm`` to the ``ffparam`` command."""
    app.command("qmmm", cls=PlainHelpCommand)(qmmm)
