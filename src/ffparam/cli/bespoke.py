"""``ffparam bespoke`` (and ``ffparam demo``): molecule -> validated, exported force field."""

from __future__ import annotations

from pathlib import Path

import typer

from ffparam.cli.options import (
    ApiField,
    PlainHelpCommand,
    api_option,
    api_values,
    at_least,
    divides_180,
    positive,
    uses_api,
)

DEMO_SMILES = "COc1cccc(c1)C(N)=O"
"""3-Methoxybenzamide (a PARP-inhibitor tool compound): two rotatable bonds to scan (aryl-O
and aryl-C(=O)) besides the symmetric methyl and NH2 rotors; small enough for GFN2-xTB
scans on 2 cores in minutes."""


def _summary(result) -> None:
    metrics = result.metrics
    for rotor in metrics.rotors:
        bond = "-".join(map(str, rotor.bond))
        if rotor.bond2 is not None:
            bond += " x " + "-".join(map(str, rotor.bond2)) + " (2-D)"
        if rotor.rmse_fitted is not None:
            typer.echo(f"bond {bond}: torsion RMSE {rotor.rmse_start:.3f} -> "
                       f"{rotor.rmse_fitted:.3f} kcal/mol ({rotor.n_points} points, "
                       f"{rotor.mode})")
        else:
            typer.echo(f"bond {bond}: not fitted ({rotor.error or 'no data'})")
        if rotor.delta is not None:
            d = rotor.delta
            sigma = "" if d.max_sigma is None else f", max sigma {d.max_sigma:.2f} kcal/mol"
            typer.echo(f"  {d.n_high + d.n_failed} of {d.budget} {d.high_method} point(s) "
                       f"({d.n_failed} failed, stop: {d.stop}{sigma})")
            if d.n_branches is not None and d.n_branches > 1:
                taken = sorted(set(d.branch_of_point or []))
                typer.echo(f"  {d.n_branches} conformer branches; the profile follows "
                           f"branch {', '.join(map(str, taken))} (0: the LOW drive's own)")
            if d.high_relax != "none":
                typer.echo(f"  HIGH points relaxed ({d.high_relax}): "
                           f"{d.n_high_calculations} {d.high_method} gradient(s)")
    summary = metrics.summary
    if summary.median_rmse_fitted is not None:
        typer.echo(f"median torsion RMSE vs {summary.reference}: "
                   f"{summary.median_rmse_start:.3f} -> {summary.median_rmse_fitted:.3f} "
                   "kcal/mol")
    for warning in metrics.warnings:
        typer.echo(f"warning: {warning}", err=True)
    for name in ("report", "metrics"):
        if name in result.files:
            typer.echo(f"{name}: {result.files[name]}")
    typer.echo(f"total time {metrics.provenance.timings.get('total_s', 0):.0f} s")


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


def _parse_pairs(values: list[str] | None
                 ) -> list[tuple[tuple[int, int], tuple[int, int]]] | None:
    """``--drive-2d J-K,L-M`` values as bond pairs (InputError naming the option)."""
    if not values:
        return None
    from ffparam.errors import InputError

    pairs = []
    for text in values:
        bonds = [part.strip().split("-") for part in text.split(",")]
        if len(bonds) != 2 or not all(len(b) == 2 and all(a.strip().isdigit() for a in b)
                                      for b in bonds):
            raise InputError(f"--drive-2d {text!r}: give two bonds as 0-based atom indices "
                             "like 1-2,2-3")
        pairs.append(tuple((int(b[0]), int(b[1])) for b in bonds))
    return pairs


SETTINGS = "ffparam.workflows.bespoke:BespokeSettings"
FIELDS = {param: ApiField(SETTINGS, name) for param, name in (
    ("ff", "forcefield"), ("method", "method"), ("charges", "charges"),
    ("spacing", "spacing_deg"), ("workers", "workers"), ("dask", "dask"),
    ("fit_valence", "fit_valence"), ("include_symmetric", "include_symmetric_rotors"),
    ("fragment", "fragment"), ("mode", "mode"), ("conformers", "validation_conformers"),
    ("validate_geometry", "validate_geometry"), ("md_ps", "md_ps"),
    ("retry_failed", "retry_failed"), ("force", "force"), ("polarizable", "polarizable"),
    ("high_budget", "high_budget"), ("high_sigma", "high_sigma_kcal_mol"),
    ("spacing_2d", "spacing_2d_deg"))}
"""`ffparam bespoke` option -> the BespokeSettings field it sets (and takes its default
from)."""
FIELDS["prior_width"] = ApiField(SETTINGS, "prior_widths_kcal_mol", none_as=[])  # repeatable
FIELDS["high_relax"] = ApiField(SETTINGS, "high_relax")
FIELDS["high_branches"] = ApiField(SETTINGS, "high_branches")
FIELDS["high_minutes"] = ApiField(SETTINGS, "high_minutes")
FIELDS["polarizability_method"] = ApiField(SETTINGS, "polarizability_method")
FIELDS["field_strength"] = ApiField(SETTINGS, "field_strength_kcal_mol_e_a")
FIELDS["field_charges"] = ApiField(SETTINGS, "n_field_charges")


def register(app: typer.Typer) -> None:
    B = FIELDS

    @app.command("bespoke", cls=PlainHelpCommand)
    @uses_api(FIELDS)
    def bespoke_command(
        input: str = typer.Argument(..., help="SMILES or molecule file (sdf, mol, pdb, xyz)"),
        ff: str = api_option(B, "ff", "--ff", help="sage | gaff2 | openff-X.Y.Z | PATH.offxml "
                             "| an existing force field of the molecule: X.prmtop | X.top "
                             "| X.psf,PARAMS.prm,..."),
        method: str = api_option(B, "method", "--method",
                                 help="reference method, e.g. gfn2-xtb, b3lyp-d3bj/dzvp, or "
                                      "HIGH//LOW (b3lyp-d3bj/dzvp//gfn2-xtb)"),
        charges: str = api_option(B, "charges", "--charges",
                                  help="am1bcc | resp | ipolq | gasteiger"),
        reference: list[Path] = typer.Option(None, "--reference",
                                             help="import torsion scans (extxyz or QCFractal "
                                                  "JSON[.xz]) instead of computing them"),
        spacing: int = api_option(B, "spacing", "--spacing",
                                  help="torsion grid spacing, degrees (divides 180)"),
        bond: list[str] = typer.Option(None, "--bond",
                                       help="only these rotatable bonds, e.g. --bond 4,9"),
        workers: int = api_option(B, "workers", "--workers", help="local worker processes"),
        dask: str = api_option(B, "dask", "--dask", help="Dask scheduler address or 'local'"),
        out: Path = typer.Option(Path("bespoke_out"), "--out", "-o", help="output directory"),
        fit_valence: bool = api_option(B, "fit_valence", "--fit-valence",
                                       help="also fit bonds/angles to the QM Hessian"),
        include_symmetric: bool = api_option(B, "include_symmetric",
                                             "--include-symmetric-rotors",
                                             help="also scan methyl-like rotors"),
        fragment: bool = api_option(B, "fragment", "--fragment/--no-fragment",
                                    show_default=False,
                                    help="fragment around each bond (default: by size)"),
        mode: str = api_option(B, "mode", "--mode", help="relaxed | single_point"),
        conformers: int = api_option(B, "conformers", "--validation-conformers",
                                     help="held-out conformers for validation (0: none)"),
        validate_geometry: bool = api_option(
            B, "validate_geometry", "--validate-geometry/--no-validate-geometry",
            help="compare QM- and MM-optimized geometries"),
        md_ps: float = api_option(B, "md_ps", "--md-ps", help="gas-phase MD length, ps (0: none)"),
        retry_failed: bool = api_option(B, "retry_failed", "--retry-failed",
                                        help="recompute QM jobs stored as failed"),
        force: bool = api_option(B, "force", "--force",
                                 help="reuse an output dir of another molecule"),
        polarizable: bool = api_option(B, "polarizable", "--polarizable",
                                       help="fit and export a Drude polarizable model "
                                            "(alpha, Thole, charges to QM; System XML "
                                            "with DrudeForce + PDB with Drude particles)"),
        high_budget: int = api_option(
            B, "high_budget", "--high-budget", callback=at_least(1),
            help="with --method HIGH//LOW: learn HIGH - LOW along each LOW drive from at most "
                 "N actively chosen HIGH single points per rotor (default: HIGH everywhere)"),
        high_sigma: float = api_option(
            B, "high_sigma", "--high-sigma", callback=positive,
            help="with --high-budget: stop when the predicted sigma of the corrected profile "
                 "is below this everywhere, kcal/mol"),
        high_minutes: float = api_option(
            B, "high_minutes", "--high-minutes", callback=positive,
            help="with --high-budget: wall-clock minutes one rotor's HIGH calculations may "
                 "take; no round starts that would end later (default: no limit)"),
        prior_width: list[float] = api_option(
            B, "prior_width", "--prior-width",
            help="candidate prior width of the bespoke torsion barriers, kcal/mol (repeat "
                 "the option); each rotor gets the one whose fit best predicts the held-out "
                 "half of its grid (default: a fixed width)"),
        drive_2d: list[str] = typer.Option(
            None, "--drive-2d", help="drive two coupled rotors as one 2-D torsion drive and "
                                     "fit both to its surface, e.g. --drive-2d 1-2,2-3 "
                                     "(repeat for more pairs)"),
        spacing_2d: int = api_option(B, "spacing_2d", "--spacing-2d", callback=divides_180,
                                     help="grid spacing of the 2-D drives, degrees"),
        high_relax: str = api_option(
            B, "high_relax", "--high-relax",
            help="with --high-budget: relax each HIGH point from its LOW geometry: none "
                 "(single points), newton (one HIGH gradient + the LOW Hessian) or steps:N "
                 "(N constrained quasi-Newton steps with HIGH gradients)"),
        high_branches: bool = api_option(
            B, "high_branches", "--high-branches/--no-high-branches",
            help="with --high-budget: let HIGH choose among the rotamers of the other "
                 "rotatable bonds that the LOW drive meets (conformer branches)"),
        polarizability_method: str = api_option(
            B, "polarizability_method", "--polarizability-method",
            help="with --polarizable: QM level (PySCF) of the polarizability tensor and the "
                 "ESP in fields that alpha, Thole and charges are fitted to"),
        field_strength: float = api_option(
            B, "field_strength", "--field-strength", callback=positive,
            help="with --polarizable: uniform perturbing field, kcal/mol/(e A)"),
        field_charges: int = api_option(
            B, "field_charges", "--field-charges", callback=at_least(0),
            help="with --polarizable: also N perturbing +-0.5 e point charges 3.5 A from "
                 "the molecule, one QM ESP each (CHARMM's recipe)"),
        name: str = typer.Option(None, "--name", help="molecule name for files and report "
                                                      "(default: file stem or formula)"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress output"),
    ) -> None:
        """Fit bespoke torsions for a molecule, validate, export, and write a report."""
        values = dict(locals())
        from ffparam.chem import Molecule
        from ffparam.workflows.bespoke import BespokeSettings, run_bespoke

        settings = BespokeSettings(references=list(reference or []), bonds=_parse_bonds(bond),
                                   drives_2d=_parse_pairs(drive_2d),
                                   progress=not quiet, **api_values(FIELDS, values, SETTINGS))
        molecule = Molecule.from_input(input)
        if name:
            molecule.name = name
        _summary(run_bespoke(molecule, out, settings))

    @app.command("demo", cls=PlainHelpCommand)
    def demo_command(
        out: Path = typer.Option(Path("demo_out"), "--out", "-o", help="output directory"),
        workers: int = typer.Option(2, "--workers", callback=at_least(1),
                                    help="local worker processes (the demo's own default)"),
    ) -> None:
        """The built-in example: bespoke torsions for 3-methoxybenzamide with GFN2-xTB."""
        from ffparam.workflows.bespoke import BespokeSettings, run_bespoke

        typer.echo(f"ffparam demo: bespoke force field for 3-methoxybenzamide {DEMO_SMILES} "
                   "(GFN2-xTB reference, Sage start, AM1-BCC charges)")
        settings = BespokeSettings(workers=workers)  # otherwise `ffparam bespoke`'s defaults
        from ffparam.chem import Molecule

        _summary(run_bespoke(Molecule.from_smiles(DEMO_SMILES, name="3-methoxybenzamide"), out,
                             settings))
