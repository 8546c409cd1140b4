"""``ffparam qm``, ``ffparam torsiondrive`` and ``ffparam sample``: thin layers over
:mod:`ffparam.reference`. Every command records its calculations in a Store (``--store``),
skips what is already there, prints a summary of failures and exits with code 1 when the
result is incomplete."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from ffparam.cli.options import (
    ApiField,
    PlainHelpCommand,
    api_option,
    at_least,
    divides_180,
    positive,
    uses_api,
)
from ffparam.errors import InputError

console = Console(stderr=True)

METHOD_HELP = "reference method, e.g. gfn2-xtb, gfn1-xtb, b3lyp-d3bj/dzvp, hf/sto-3g"
TD_METHOD_HELP = (METHOD_HELP + ", or HIGH//LOW (e.g. b3lyp-d3bj/dzvp//gfn2-xtb): drive with "
                  "LOW, HIGH single points on its geometries")
WORKERS_HELP = "local worker processes (0 = run in this process)"
DASK_HELP = "Dask scheduler address (tcp://host:8786), or 'local' for a LocalCluster"


COMPUTE = "ffparam.reference.compute:compute"
QM_FIELDS = {
    "method": ApiField(COMPUTE, "method"),
    "task": ApiField(COMPUTE, "task"),
    "retry_failed": ApiField(COMPUTE, "retry_failed"),
}
"""`ffparam qm` option -> the :func:`~ffparam.reference.compute` keyword it sets."""

DRIVE = "ffparam.reference.torsiondrive:run_torsiondrive"
TD_FIELDS = {
    "spacing_deg": ApiField(DRIVE, "spacing_deg"),
    "method": ApiField(DRIVE, "method"),
    "retry_failed": ApiField(DRIVE, "retry_failed"),
    "include_terminal": ApiField(
        "ffparam.reference.torsiondrive:rotatable_dihedrals", "include_terminal_rotors"
    ),
    "high_relax": ApiField(DRIVE, "high_relax"),
}
"""`ffparam torsiondrive` option -> the API keyword it sets."""

MD = "ffparam.reference.sampling:sample_md"
SAMPLE_FIELDS = {
    "frames": ApiField(MD, "n_frames"),
    "method": ApiField(MD, "method"),
    "retry_failed": ApiField(MD, "retry_failed"),
    "forcefield": ApiField("ffparam.reference.sampling:sample_mm_md", "forcefield"),
    "temperature_k": ApiField("ffparam.reference.sampling:sample_normal_modes", "temperature_k"),
}
"""`ffparam sample` option -> the sampler keyword it sets (the samplers share these
defaults; ``tests/cli/test_defaults.py`` checks that they do)."""


def _method(method: str, solvent: str | None, max_scf_cycles: int | None, density_fit: bool):
    from ffparam.reference.spec import parse_method

    return parse_method(
        method, solvent=solvent, max_scf_cycles=max_scf_cycles, density_fit=density_fit
    )


def _executor(workers: int, dask: str | None):
    """``--workers N`` local processes (0: this process), or ``--dask`` (N workers)."""
    from ffparam.runtime import make_executor

    return make_executor(workers, dask)


def _molecule(text: str, charge: int | None, n_conformers: int = 1):
    from ffparam.chem import Molecule

    molecule = Molecule.from_input(text, charge=charge)
    if molecule.n_conformers == 0:
        molecule = molecule.generate_conformers(n_conformers)
    return molecule


def _finish(summary, complete: bool) -> None:
    console.print(summary.text())
    if not complete:
        console.print(
            "[red]incomplete result[/red]: failed jobs are in the store; rerun "
            "with --retry-failed to try them again"
        )
        raise typer.Exit(code=1)


@uses_api(QM_FIELDS)
def qm(
    input: str = typer.Argument(..., help="SMILES or molecule file (SDF, MOL, PDB, XYZ)"),
    method: str = api_option(QM_FIELDS, "method", "--method", help=METHOD_HELP),
    task: str = api_option(
        QM_FIELDS, "task", "--task",
        help="energy | gradient | hessian | optimize | esp | polarizability",
    ),
    store: Path = typer.Option(Path("ffparam.db"), help="SQLite store of all calculations"),
    output: Path | None = typer.Option(None, "-o", "--output", help="write .xyz or .json"),
    conformers: int = typer.Option(
        1, callback=at_least(1), help="conformers to generate if INPUT has no 3-D"
    ),
    charge: int | None = typer.Option(None, help="net charge (default: from the input)"),
    solvent: str | None = typer.Option(None, help="implicit solvent (xtb ALPB), e.g. water"),
    max_scf_cycles: int | None = typer.Option(
        None, callback=at_least(1), help="SCF iteration limit"
    ),
    density_fit: bool = typer.Option(False, help="PySCF density fitting"),
    workers: int = typer.Option(1, callback=at_least(0), help=WORKERS_HELP),
    dask: str | None = typer.Option(None, help=DASK_HELP),
    retry_failed: bool = api_option(
        QM_FIELDS, "retry_failed", "--retry-failed", help="recompute jobs stored as failed"
    ),
) -> None:
    """Run one reference calculation per conformer and record it in the store."""
    from ffparam.reference import Store, make_jobs, run_jobs
    from ffparam.reference.export import write_extxyz, write_json

    molecule = _molecule(input, charge, conformers)
    spec = _method(method, solvent, max_scf_cycles, density_fit)
    jobs = make_jobs(molecule, molecule.conformers, spec, task)
    with Store(store) as db, _executor(workers, dask) as executor:
        records, summary = run_jobs(jobs, db, executor, retry_failed, True, task)
    table = Table(title=f"{molecule.name} {spec.canonical()} {task}")
    for column in ("conformer", "status", "energy (kcal/mol)", "relative", "max |grad|", "note"):
        table.add_column(column)
    energies = [r.energy for r in records if r.ok]
    lowest = min(energies) if energies else 0.0
    for index, record in enumerate(records):
        grad = "" if record.gradient is None else f"{np.abs(record.gradient).max():.3f}"
        row = [str(index), record.status]
        if record.ok:
            row += [
                f"{record.energy:.4f}",
                f"{record.energy - lowest:.3f}",
                grad,
                "stored" if record.cached else "",
            ]
        else:
            row += ["", "", "", record.error or ""]
        table.add_row(*row)
    Console().print(table)
    if output is not None:
        count = (
            write_json(records, output)
            if output.suffix == ".json"
            else write_extxyz(records, output)
        )
        console.print(f"wrote {count} record(s) to {output}")
    _finish(summary, summary.complete)


def _parse_dihedral(text: str) -> tuple[int, int, int, int]:
    try:
        values = tuple(int(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise InputError(
            f"--dihedral needs four comma-separated atom indices, got {text!r}"
        ) from None
    if len(values) != 4:
        raise InputError(f"--dihedral needs four atom indices (0-based), got {text!r}")
    return values


@uses_api(TD_FIELDS)
def torsiondrive(
    input: str = typer.Argument(..., help="SMILES or molecule file (SDF, MOL, PDB, XYZ)"),
    dihedral: list[str] = typer.Option(
        [], "--dihedral", help="i,j,k,l (0-based); give twice for a 2-D scan"
    ),
    all_rotatable: bool = typer.Option(False, help="one 1-D drive per rotatable bond"),
    include_terminal: bool = api_option(
        TD_FIELDS,
        "include_terminal",
        "--include-terminal",
        help="with --all-rotatable: methyl, OH...",
    ),
    spacing_deg: int = api_option(
        TD_FIELDS,
        "spacing_deg",
        "--spacing",
        callback=divides_180,
        help="grid spacing in degrees (a divisor of 180)",
    ),
    method: str = api_option(TD_FIELDS, "method", "--method", help=TD_METHOD_HELP),
    store: Path = typer.Option(Path("ffparam.db"), help="SQLite store of all calculations"),
    output: Path = typer.Option(Path("scan.xyz"), "-o", "--output", help="extxyz of the profile"),
    charge: int | None = typer.Option(None, help="net charge (default: from the input)"),
    conformers: int = typer.Option(
        1, callback=at_least(1), help="starting conformers to generate if no 3-D"
    ),
    solvent: str | None = typer.Option(None, help="implicit solvent (xtb ALPB)"),
    max_scf_cycles: int | None = typer.Option(
        None, callback=at_least(1), help="SCF iteration limit"
    ),
    workers: int = typer.Option(1, callback=at_least(0), help=WORKERS_HELP),
    dask: str | None = typer.Option(None, help=DASK_HELP),
    retry_failed: bool = api_option(
        TD_FIELDS, "retry_failed", "--retry-failed", help="recompute optimizations stored as failed"
    ),
    high_relax: str = api_option(
        TD_FIELDS, "high_relax", "--high-relax",
        help="with a HIGH//LOW method: none (HIGH single points on the LOW geometries), "
             "newton (one HIGH gradient + the LOW Hessian per point: constrained Newton "
             "estimate of the relaxed HIGH energy) or steps:N (N constrained quasi-Newton "
             "steps with HIGH gradients)",
    ),
) -> None:
    """Torsion drive(s) with torsiondrive + geomeTRIC; writes the profile (.xyz) and a PNG."""
    from ffparam.reference import Store, run_torsiondrive

    molecule = _molecule(input, charge, conformers)
    scans = _scans(molecule, dihedral, all_rotatable, include_terminal)
    spec = _method(method, solvent, max_scf_cycles, False)
    complete, total = True, None
    with Store(store) as db, _executor(workers, dask) as executor:
        for dihedrals in scans:
            result = run_torsiondrive(
                molecule,
                dihedrals,
                spec,
                spacing_deg,
                db,
                executor,
                retry_failed=retry_failed,
                progress=True,
                high_relax=high_relax,
            )
            _write_scan(result, output, len(scans))
            complete = complete and result.complete
            if total is None:
                total = result.summary
            else:
                total.merge(result.summary)
    _finish(total, complete)


def _scans(molecule, dihedral: list[str], all_rotatable: bool,
           include_terminal: bool) -> list[list[tuple[int, int, int, int]]]:
    """The drives asked for: one 1-D drive per rotatable bond, or the given dihedral(s)."""
    from ffparam.reference.torsiondrive import rotatable_dihedrals

    if bool(dihedral) == all_rotatable:
        raise InputError("give --dihedral i,j,k,l (once or twice) or --all-rotatable")
    if all_rotatable:
        scans = [[d] for d in rotatable_dihedrals(molecule, include_terminal)]
        if not scans:
            raise InputError(f"{molecule.name} has no rotatable bonds (try --include-terminal)")
        return scans
    if len(dihedral) > 2:
        raise InputError("a torsion drive scans at most two dihedrals")
    return [[_parse_dihedral(d) for d in dihedral]]


def _write_scan(result, output: Path, n_scans: int) -> None:
    """The profile as extxyz (``output``, or one file per drive) and PNG, and a table."""
    from ffparam.reference.plots import plot_torsion_profile, write_torsiondrive_extxyz

    name = "_".join("-".join(map(str, d)) for d in result.dihedrals)
    target = output if n_scans == 1 else output.with_name(f"{output.stem}_{name}{output.suffix}")
    write_torsiondrive_extxyz(result, target)
    if len(result.energies):
        plot_torsion_profile(result, target.with_suffix(".png"))
    _print_profile(result)
    console.print(f"wrote {target} and {target.with_suffix('.png')}")


def _print_profile(result) -> None:
    table = Table(
        title=f"{result.molecule.name} {result.method} dihedral(s) "
        f"{' '.join('-'.join(map(str, d)) for d in result.dihedrals)}"
    )
    table.add_column("angle(s) (deg)")
    table.add_column("relative energy (kcal/mol)")
    for angles, energy in zip(result.angles, result.relative_energies):
        table.add_row(", ".join(f"{a:g}" for a in angles), f"{energy:.3f}")
    for point in result.missing:
        table.add_row(", ".join(f"{a:g}" for a in point), "[red]missing[/red]")
    Console().print(table)


@uses_api(SAMPLE_FIELDS)
def sample(
    input: str = typer.Argument(..., help="SMILES or molecule file (SDF, MOL, PDB, XYZ)"),
    conformers: int | None = typer.Option(
        None, callback=at_least(1), help="N: ETKDG + prune + optimize"
    ),
    md: float | None = typer.Option(
        None, callback=positive, help="TEMP (K): Langevin MD, frames labelled"
    ),
    md_engine: str = typer.Option(
        "reference", help="--md dynamics: 'reference' (the method via ASE) or 'mm' (OpenMM)"
    ),
    forcefield: str = api_option(
        SAMPLE_FIELDS, "forcefield", "--forcefield", help="force field for --md-engine mm "
        "and --mc"
    ),
    frames: int = api_option(
        SAMPLE_FIELDS, "frames", "--frames", callback=at_least(1),
        help="frames to keep (--md, --mc)"
    ),
    normal_modes: int | None = typer.Option(
        None, callback=at_least(1), help="N: normal-mode sampling frames"
    ),
    mc: int | None = typer.Option(
        None, callback=at_least(1),
        help="N: Monte Carlo with --forcefield, N steps per chain; --frames spread over "
        "the chains, acceptance rates printed"
    ),
    temperature_k: float = api_option(
        SAMPLE_FIELDS,
        "temperature_k",
        "--temperature",
        callback=positive,
        help="K, for --normal-modes and --mc",
    ),
    method: str = api_option(SAMPLE_FIELDS, "method", "--method", help=METHOD_HELP),
    store: Path = typer.Option(Path("ffparam.db"), help="SQLite store of all calculations"),
    output: Path = typer.Option(Path("frames.xyz"), "-o", "--output", help="extxyz output"),
    charge: int | None = typer.Option(None, help="net charge (default: from the input)"),
    seed: int | None = typer.Option(
        None,
        callback=at_least(0),
        help="random seed (ETKDG, MD velocities and noise, normal modes; "
        "default: each sampler's own)",
    ),
    workers: int = typer.Option(1, callback=at_least(0), help=WORKERS_HELP),
    dask: str | None = typer.Option(None, help=DASK_HELP),
    retry_failed: bool = api_option(
        SAMPLE_FIELDS, "retry_failed", "--retry-failed", help="recompute jobs stored as failed"
    ),
) -> None:
    """Sample geometries with reference energies and forces; writes extended XYZ (eV, A)."""
    from ffparam.reference import Store

    chosen = [x is not None for x in (conformers, md, normal_modes, mc)]
    if sum(chosen) != 1:
        raise InputError("choose one of --conformers N, --md TEMP, --normal-modes N, --mc N")
    if md_engine not in ("reference", "mm"):
        raise InputError(f"--md-engine must be 'reference' or 'mm', not {md_engine!r}")
    molecule = _molecule(input, charge)
    common = {"retry_failed": retry_failed, "progress": True}
    if seed is not None:
        common["seed"] = seed
    with Store(store) as db, _executor(workers, dask) as executor:
        result = _sample(molecule, method, db, executor, common, conformers=conformers, md=md,
                         md_engine=md_engine, forcefield=forcefield, frames=frames,
                         normal_modes=normal_modes, temperature_k=temperature_k, mc=mc)
    if "mc_summary" in result.info:
        console.print(f"Monte Carlo {result.info['mc_summary']}")
    count = result.write_extxyz(output)
    console.print(f"wrote {count} frame(s) with energies and forces to {output}")
    _finish(result.summary, result.complete)


def _sample(molecule, method: str, db, executor, common: dict, *, conformers: int | None,
            md: float | None, md_engine: str, forcefield: str, frames: int,
            normal_modes: int | None, temperature_k: float, mc: int | None = None):
    """Run the one sampler chosen (``common``: keywords every sampler takes)."""
    from ffparam.reference.sampling import (
        sample_conformers,
        sample_mc,
        sample_md,
        sample_mm_md,
        sample_normal_modes,
    )

    if mc is not None:
        return sample_mc(molecule, mc, frames, method, db, executor,
                         temperature_k=temperature_k, forcefield=forcefield, **common)
    if conformers is not None:
        return sample_conformers(molecule, conformers, method, db, executor, **common)
    if md is not None and md_engine == "mm":
        return sample_mm_md(molecule, md, frames, method, db, executor,
                            forcefield=forcefield, **common)
    if md is not None:
        return sample_md(molecule, md, frames, method, db, executor, **common)
    return sample_normal_modes(molecule, normal_modes, temperature_k, method, db, executor,
                               **common)


def register(app: typer.Typer) -> None:
    """Add ``qm``, ``torsiondrive`` and ``sample`` to the ``ffparam`` command."""
    app.command("qm", cls=PlainHelpCommand)(qm)
    app.command("torsiondrive", cls=PlainHelpCommand)(torsiondrive)
    app.command("sample", cls=PlainHelpCommand)(sample)
