"""``ffparam fit SPEC.yaml``: fit parameters as a YAML spec describes."""

from __future__ import annotations

from pathlib import Path

import typer

from ffparam.cli.options import PlainHelpCommand


def register(app: typer.Typer) -> None:
    @app.command("fit", cls=PlainHelpCommand)
    def fit_command(
        spec: Path = typer.Argument(..., help="fit spec (YAML); see ffparam.fit.spec"),
        out: Path = typer.Option(Path("fit_out"), "--out", "-o", help="output directory"),
        quiet: bool = typer.Option(False, "--quiet", help="no per-iteration output"),
        cv: bool = typer.Option(False, "--cv", help="leave-one-molecule-out cross-validation "
                                "(refits without each molecule; table and plot)"),
        ff: str = typer.Option(None, "--ff",
                               help="start force field instead of the spec's: sage | gaff2 "
                                    "| PATH.offxml | an existing force field of the "
                                    "molecule: X.prmtop | X.top | X.psf,PARAMS.prm,..."),
    ) -> None:
        """Fit force-field parameters to reference data (torsion scans, energies, forces)."""
        from ffparam.fit.spec import load_fit_spec
        from ffparam.workflows.fit import run_fit

        settings = load_fit_spec(spec)
        if ff is not None:  # files named on the command line are relative to the cwd
            items = [str(Path(i.strip()).resolve()) if Path(i.strip()).exists() else i.strip()
                     for i in ff.split(",")]
            settings = settings.replace(forcefield=",".join(items))
        outcome = run_fit(settings, out, progress=not quiet, cv=cv)
        result = outcome.result
        for name, after in result.metrics_after.items():
            before = result.metrics_before.get(name, {})
            shown = [f"{k}: {before.get(k, float('nan')):.4g} -> {v:.4g}"
                     for k, v in after.items() if k != "objective"]
            if shown:
                typer.echo(f"{name}: " + "; ".join(shown))
        typer.echo(f"objective {result.objective_before:.6g} -> {result.objective_after:.6g} "
                   f"in {result.wall_time:.1f} s ({result.optimizer})")
        if outcome.cv is not None:
            typer.echo(outcome.cv.table())
        for label, path in outcome.files.items():
            if not label.startswith("plot_"):
                typer.echo(f"wrote {path}")
