"""``ffparam bespoke`` (and ``ffparam demo``): molecule -> validated, exported force field."""

from __future__ import annotations

from pathlib import Path

import typer

DEMO_SMILES = "COc1cccc(c1)C(N)=O"
"""3-Methoxybenzamide (a PARP-inhibitor tool compound): two rotatable bonds to scan (aryl-O
and aryl-C(=O)) besides the symmetric methyl and NH2 rotors; small enough for GFN2-xTB
scans on 2 cores in minutes."""


def _summary(result) -> None:
    metrics = result.metrics
    for rotor in metrics["rotors"]:
        bond = "-".join(map(str, rotor["bond"]))
        if rotor.get("rmse_fitted") is not None:
            typer.echo(f"bond {bond}: torsion RMSE {rotor['rmse_start']:.3f} -> "
                       f"{rotor['rmse_fitted']:.3f} kcal/mol ({rotor['n_points']} points, "
                       f"{rotor.get('mode')})")
        else:
            typer.echo(f"bond {bond}: not fitted ({rotor.get('error') or 'no data'})")
    summary = metrics["summary"]
    if summary["median_rmse_fitted"] is not None:
        typer.echo(f"median torsion RMSE vs {summary['reference']}: "
                   f"{summary['median_rmse_start']:.3f} -> {summary['median_rmse_fitted']:.3f} "
                   "kcal/mol")
    for warning in metrics["warnings"]:
        typer.echo(f"warning: {warning}", err=True)
    for name in ("report", "metrics"):
        if name in result.files:
            typer.echo(f"{name}: {result.files[name]}")
    typer.echo(f"total time {metrics['provenance']['timings'].get('total_s', 0):.0f} s")


def _parse_bonds(values: list[str] | None) -> list[tuple[int, int]] | None:
    if not values:
        return None
    from ffparam.errors import InputError

    bonds = []
    for text in values:
        parts = text.replace("-", ",").split(",")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise InputError(f"--bond {text!r}: give two 0-based atom indices like 4,9")
        bonds.append((int(parts[0]), int(parts[1])))
    return bonds


def register(app: typer.Typer) -> None:
    @app.command("bespoke")
    def bespoke_command(
        input: str = typer.Argument(..., help="SMILES or molecule file (sdf, mol, pdb, xyz)"),
        ff: str = typer.Option("sage", "--ff", help="sage | gaff2 | openff-X.Y.Z | PATH.offxml"),
        method: str = typer.Option("gfn2-xtb", "--method",
                                   help="reference method, e.g. gfn2-xtb, b3lyp-d3bj/dzvp"),
        charges: str = typer.Option("am1bcc", "--charges", help="am1bcc | resp | gasteiger"),
        reference: list[Path] = typer.Option(None, "--reference",
                                             help="import torsion scans (extxyz or QCFractal "
                                                  "JSON[.xz]) instead of computing them"),
        spacing: int = typer.Option(15, "--spacing", help="torsion grid spacing, degrees"),
        bond: list[str] = typer.Option(None, "--bond",
                                       help="only these rotatable bonds, e.g. --bond 4,9"),
        workers: int = typer.Option(1, "--workers", help="local worker processes"),
        dask: str = typer.Option(None, "--dask", help="Dask scheduler address or 'local'"),
        out: Path = typer.Option(Path("bespoke_out"), "--out", "-o", help="output directory"),
        fit_valence: bool = typer.Option(False, "--fit-valence",
                                         help="also fit bonds/angles to the QM Hessian"),
        include_symmetric: bool = typer.Option(False, "--include-symmetric-rotors",
                                               help="also scan methyl-like rotors"),
        fragment: bool = typer.Option(None, "--fragment/--no-fragment",
                                      help="fragment around each bond (default: by size)"),
        mode: str = typer.Option("relaxed", "--mode", help="relaxed | single_point"),
        conformers: int = typer.Option(10, "--validation-conformers",
                                       help="held-out conformers for validation"),
        validate_geometry: bool = typer.Option(True, "--validate-geometry/--no-validate-geometry",
                                               help="compare QM- and MM-optimized geometries"),
        md_ps: float = typer.Option(100.0, "--md-ps", help="gas-phase MD length, ps"),
        retry_failed: bool = typer.Option(False, "--retry-failed",
                                          help="recompute QM jobs stored as failed"),
        force: bool = typer.Option(False, "--force", help="reuse an output dir of another "
                                                          "molecule"),
        name: str = typer.Option(None, "--name", help="molecule name for files and report "
                                                      "(default: file stem or formula)"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress output"),
    ) -> None:
        """Fit bespoke torsions for a molecule, validate, export, and write a report."""
        from ffparam.chem import Molecule
        from ffparam.workflows.bespoke import BespokeSettings, run_bespoke

        settings = BespokeSettings(
            forcefield=ff, method=method, charges=charges, spacing=spacing, workers=workers,
            dask=dask, references=list(reference or []), include_symmetric_rotors=include_symmetric,
            bonds=_parse_bonds(bond),
            fragment=fragment, fit_valence=fit_valence, mode=mode,
            validation_conformers=conformers, validate_geometry=validate_geometry, md_ps=md_ps,
            retry_failed=retry_failed,
            force=force, progress=not quiet)
        molecule = Molecule.from_input(input)
        if name:
            molecule.name = name
        _summary(run_bespoke(molecule, out, settings))

    @app.command("demo")
    def demo_command(
        out: Path = typer.Option(Path("demo_out"), "--out", "-o", help="output directory"),
        workers: int = typer.Option(2, "--workers", help="local worker processes"),
    ) -> None:
        """The built-in example: bespoke torsions for 3-methoxybenzamide with GFN2-xTB."""
        from ffparam.workflows.bespoke import BespokeSettings, run_bespoke

        typer.echo(f"ffparam demo: bespoke force field for 3-methoxybenzamide {DEMO_SMILES} "
                   "(GFN2-xTB reference, Sage start, AM1-BCC charges)")
        settings = BespokeSettings(workers=workers, spacing=15, validation_conformers=10,
                                   md_ps=100.0)
        from ffparam.chem import Molecule

        _summary(run_bespoke(Molecule.from_smiles(DEMO_SMILES, name="3-methoxybenzamide"), out,
                             settings))
