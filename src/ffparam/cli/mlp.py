"""``ffparam mlp train | eval | md``: machine-learned potentials from extended XYZ data."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ffparam.cli.options import (
    ApiField,
    PlainHelpCommand,
    PlainHelpGroup,
    api_option,
    api_values,
    at_least,
    positive,
    uses_api,
)
from ffparam.errors import CalculationError, InputError
from ffparam.ml.registry import selectable_models

MODEL_HELP = " | ".join(selectable_models())


TRAIN = "ffparam.workflows.mlp:train_model"
TRAIN_FIELDS = {
    "committee": ApiField(TRAIN, "committee"),
    "time_budget": ApiField(TRAIN, "time_budget_s"),
    "max_epochs": ApiField(TRAIN, "max_epochs"),
    "seed": ApiField(TRAIN, "seed"),
    "baseline": ApiField(TRAIN, "baseline"),
    "baseline_workers": ApiField(TRAIN, "baseline_workers"),
}
"""`mlp train` option -> the :func:`~ffparam.workflows.mlp.train_model` keyword it sets."""

EVAL_FIELDS = {"compare": ApiField("ffparam.workflows.mlp:evaluate", "compare")}
"""`mlp eval` option -> the :func:`~ffparam.workflows.mlp.evaluate` keyword it sets."""

RUN_MD = "ffparam.ml.md:run_md"
MD_FIELDS = {
    "temperature_k": ApiField(RUN_MD, "temperature_k"),
    "timestep_fs": ApiField(RUN_MD, "timestep_fs"),
    "ensemble": ApiField(RUN_MD, "ensemble"),
    "interval": ApiField(RUN_MD, "interval"),
    "max_force": ApiField(RUN_MD, "max_force"),
    "max_sigma": ApiField(RUN_MD, "max_force_sigma"),
    "seed": ApiField(RUN_MD, "seed"),
    "frame": ApiField("ffparam.workflows.mlp:md_from_files", "frame"),
}
"""`mlp md` option -> the :func:`~ffparam.ml.md.run_md` keyword it sets."""


def parse_options(pairs: list[str] | None) -> dict:
    """KEY=VALUE pairs; VALUE is read as JSON when it parses (numbers, lists), else text."""
    options = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise InputError(f"--option expects KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def _metrics_table(metrics: dict) -> Table:
    table = Table(
        title=f"{metrics['model_type']} on {metrics['test']} ({metrics['n_frames']} frames)"
    )
    table.add_column("quantity")
    table.add_column("MAE", justify="right")
    table.add_column("RMSE", justify="right")
    if "energy_mae_mev" in metrics:
        table.add_row(
            "energy (meV)", f"{metrics['energy_mae_mev']:.2f}", f"{metrics['energy_rmse_mev']:.2f}"
        )
    if "forces_mae_mev_a" in metrics:
        table.add_row(
            "forces (meV/A)",
            f"{metrics['forces_mae_mev_a']:.2f}",
            f"{metrics['forces_rmse_mev_a']:.2f}",
        )
    return table


def register(app: typer.Typer) -> None:
    mlp = typer.Typer(
        help="Machine-learned potentials: train, evaluate, run MD.",
        no_args_is_help=True,
        cls=PlainHelpGroup,
    )
    app.add_typer(mlp, name="mlp")
    mlp.command("train", cls=PlainHelpCommand)(train_command)
    mlp.command("eval", cls=PlainHelpCommand)(eval_command)
    mlp.command("md", cls=PlainHelpCommand)(md_command)
    mlp.command("active", cls=PlainHelpCommand)(active_command)


@uses_api(TRAIN_FIELDS)
def train_command(
    model: str = typer.Option(..., "--model", help=MODEL_HELP),
    train: Path = typer.Option(
        ..., "--train", help="training frames (extended XYZ, eV/A, or a reference Store .db)"
    ),
    out: Path = typer.Option(..., "--out", help="output model directory"),
    valid: Path = typer.Option(
        None, "--valid", help="validation frames (default: 10% of --train, seeded)"
    ),
    isolated_atoms: Path = typer.Option(
        None, "--isolated-atoms", help="isolated-atom energies (default: linear regression)"
    ),
    committee: int = api_option(TRAIN_FIELDS, "committee", "--committee", callback=at_least(1),
                                help="train N members as a committee"),
    time_budget: float = api_option(TRAIN_FIELDS, "time_budget", "--time-budget",
                                    callback=positive, help="CPU seconds per model"),
    max_epochs: int = api_option(TRAIN_FIELDS, "max_epochs", "--max-epochs",
                                 callback=at_least(1), help="epoch limit (networks, MACE)"),
    seed: int = api_option(TRAIN_FIELDS, "seed", "--seed", callback=at_least(0),
                           help="random seed (split, initial weights)"),
    option: list[str] = typer.Option(
        None, "--option", help="KEY=VALUE model/training option, repeatable"
    ),
    restart: bool = typer.Option(
        False, "--restart", help="ignore an interrupted run in --out instead of resuming it"
    ),
    baseline: str = api_option(
        TRAIN_FIELDS, "baseline", "--baseline",
        help="Δ-learning: learn E - E_baseline of gfn2-xtb (any reference method), "
             "PATH.system.xml or PATH.offxml/sage; prediction adds it back"),
    baseline_workers: int = api_option(
        TRAIN_FIELDS, "baseline_workers", "--baseline-workers", callback=at_least(0),
        help="processes computing a reference baseline (0: this process)"),
) -> None:
    """Train a model; an interrupted run in --out resumes from its last checkpoint."""
    values = dict(locals())
    from ffparam.workflows.mlp import load_training_sets, reference_energies, train_model

    train_set, valid_set = load_training_sets(train, valid, seed=seed)
    refs = reference_energies(train_set, isolated_atoms)
    potential = train_model(model, train_set, valid_set, out, refs,
                            options=parse_options(option), resume=not restart, progress=True,
                            **api_values(TRAIN_FIELDS, values, TRAIN))
    kind = potential.model_type if baseline is None else \
        f"{potential.correction.model_type} Δ-model on {baseline}"
    Console().print(
        f"{kind} model saved in {out} "
        f"({len(train_set)} training, {len(valid_set)} validation frames)"
    )


@uses_api(EVAL_FIELDS)
def eval_command(
    model_dir: Path = typer.Argument(..., help="model directory"),
    test: Path = typer.Argument(..., help="test frames (extended XYZ)"),
    plot: Path = typer.Option(
        None, "--plot", help="parity PNG (default: MODEL_DIR/parity_TEST.png)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
    report: Path = typer.Option(
        None, "--report", help="HTML report (default: MODEL_DIR/report_TEST.html)"),
    compare: str = api_option(
        EVAL_FIELDS, "compare", "--compare",
        help="force field (PATH.system.xml, PATH.offxml, sage) scored beside the model"),
) -> None:
    """MAE and RMSE of energies and forces on TEST, with a parity plot and an HTML report
    (per-atom energies and uncertainties on the structure, calibration, error distribution,
    and with --compare a force field beside the model and the reference)."""
    from ffparam.workflows.mlp import evaluate

    plot = plot or Path(model_dir) / f"parity_{Path(test).stem}.png"
    report = report or Path(model_dir) / f"report_{Path(test).stem}.html"
    metrics = evaluate(model_dir, test, plot=plot, report=report, compare=compare)
    if as_json:
        typer.echo(json.dumps(metrics, indent=2))
        return
    console = Console()
    console.print(_metrics_table(metrics))
    if "comparison" in metrics:
        console.print(_comparison_table(metrics["comparison"]))
    for key in ("energy_calibration", "forces_calibration"):
        if key in metrics:
            c = metrics[key]
            console.print(
                f"{key.split('_')[0]} uncertainty: Spearman(|err|, sigma) "
                f"{c['spearman']:.2f}, miscalibration area "
                f"{c['miscalibration_area']:.3f}"
            )
    console.print(f"parity plot: {metrics['parity_plot']}")
    console.print(f"report: {metrics['report']}")


def _comparison_table(comparison: dict) -> Table:
    table = Table(title=f"force field vs ML vs reference ({comparison['n_conformers']} frames, "
                        "relative energies)")
    for column in ("model", "E RMSE kcal/mol", "F RMSE kcal/mol/A", "F MAE kcal/mol/A"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, s in comparison["models"].items():
        if s.get("error"):
            table.add_row(name, s["error"], "", "")
            continue
        table.add_row(name, *(f"{s[k]:.3f}" if s.get(k) is not None else "-" for k in (
            "energy_rmse_kcal_mol", "force_rmse_kcal_mol_a", "force_mae_kcal_mol_a")))
    return table


M = MD_FIELDS


@uses_api(MD_FIELDS)
def md_command(
    model_dir: Path = typer.Argument(..., help="model directory"),
    start: Path = typer.Argument(..., help="starting structure (extended XYZ)"),
    steps: int = typer.Option(..., "--steps", callback=at_least(1), help="number of MD steps"),
    temperature_k: float = api_option(M, "temperature_k", "--temperature", help="K"),
    output: Path = typer.Option(..., "-o", "--output", help="trajectory (extended XYZ)"),
    timestep_fs: float = api_option(M, "timestep_fs", "--timestep", callback=positive, help="fs"),
    ensemble: str = api_option(M, "ensemble", "--ensemble", help="langevin | nve"),
    interval: int = api_option(
        M, "interval", "--interval", callback=at_least(1), help="write every N steps"
    ),
    max_force: float = api_option(
        M, "max_force", "--max-force", callback=positive, help="stop above (eV/A)"
    ),
    max_sigma: float = api_option(
        M, "max_sigma", "--max-force-sigma", callback=positive,
        help="stop when the model's force uncertainty exceeds this (eV/A)",
    ),
    frame: int = api_option(
        M, "frame", "--frame", callback=at_least(0), help="frame of START to begin from"
    ),
    seed: int = api_option(
        M, "seed", "--seed", callback=at_least(0), help="random seed (velocities, Langevin noise)"
    ),
) -> None:
    """Molecular dynamics with a trained model (ASE Langevin or velocity Verlet)."""
    values = dict(locals())
    from ffparam.workflows.mlp import md_from_files

    kwargs = api_values(MD_FIELDS, values, RUN_MD)
    result = md_from_files(
        model_dir, start, steps, kwargs.pop("temperature_k"), output, frame=frame, **kwargs
    )
    if result.stopped:
        raise CalculationError(
            f"MD stopped: {result.reason}; frames up to step "
            f"{result.steps_done} are in {output}"
        )
    _print_md_summary(result, output)


def _print_md_summary(result, output: Path) -> None:
    console = Console()
    console.print(
        f"{result.steps_done} steps, mean T {result.temperature_k.mean():.1f} K, "
        f"trajectory {output}"
    )
    if result.drift_ok is not None:
        state = "ok" if result.drift_ok else "TOO LARGE"
        console.print(
            f"NVE drift {result.drift_ev_per_atom_ps:.2e} eV/atom/ps ({state}), "
            f"fluctuation {result.fluctuation_ev_per_atom:.2e} eV/atom"
        )


LOOP = "ffparam.ml.active.loop:ActiveSettings"
ACTIVE = "ffparam.workflows.mlp_active:MlpActiveSettings"
ACTIVE_FIELDS = {
    "model": ApiField(ACTIVE, "model"),
    "method": ApiField(ACTIVE, "method"),
    "md_steps": ApiField(ACTIVE, "md_steps"),
    "committee": ApiField(ACTIVE, "committee", none_as=0),
    "time_budget": ApiField(ACTIVE, "time_budget_s", none_as=0.0),
    "budget": ApiField(LOOP, "budget"),
    "initial": ApiField(LOOP, "initial"),
    "per_round": ApiField(LOOP, "per_round"),
    "threshold": ApiField(LOOP, "threshold_ev_a", none_as=0.0),
    "seed": ApiField(LOOP, "seed"),
    "criterion": ApiField(LOOP, "criterion"),
}
"""`mlp active` option -> the :class:`MlpActiveSettings` / :class:`ActiveSettings` field."""
A = ACTIVE_FIELDS


@uses_api(ACTIVE_FIELDS)
def active_command(
    molecule: str = typer.Argument(None, help="SMILES or molecule file (not with --pool)"),
    out: Path = typer.Option(..., "--out", help="run directory; holds the final model"),
    model: str = api_option(A, "model", "--model", help=MODEL_HELP),
    method: str = api_option(A, "method", "--method", help="reference method, e.g. gfn2-xtb "
                             "or HIGH//LOW"),
    budget: int = api_option(A, "budget", "--budget", callback=at_least(1),
                             help="labels in all (reference calculations or pool frames)"),
    temperature: list[float] = typer.Option(None, "--temperature",
                                            help="MD temperature (K), repeatable (default: "
                                            "MlpActiveSettings.temperatures_k, 300)"),
    md_steps: int = api_option(A, "md_steps", "--md-steps", callback=at_least(1),
                               help="candidate MD steps per temperature and round"),
    initial: int = api_option(A, "initial", "--initial", callback=at_least(3),
                              help="labels of the first round"),
    per_round: int = api_option(A, "per_round", "--per-round", callback=at_least(1),
                                help="labels added per round"),
    threshold: float = api_option(A, "threshold", "--threshold", callback=at_least(0),
                                  help="stop when no candidate's RMS force sigma reaches "
                                  "this (eV/A; 0: never)"),
    committee: int = api_option(A, "committee", "--committee", callback=at_least(0),
                                help="committee members (0: 1 for gpr, 5 otherwise)"),
    time_budget: float = api_option(A, "time_budget", "--time-budget", callback=at_least(0),
                                    help="training CPU s per model (0: none)"),
    seed: int = api_option(A, "seed", "--seed", callback=at_least(0), help="random seed"),
    criterion: str = api_option(A, "criterion", "--criterion", help="batch choice: "
                                "integrated (largest reduction of the summed variance over "
                                "the candidates), weighted (the same, weighted by the "
                                "model's sigma^2) or variance (most uncertain, diverse)"),
    pool: Path = typer.Option(None, "--pool", help="choose from these labelled frames "
                              "(extended XYZ or Store) instead of computing labels"),
    test: Path = typer.Option(None, "--test", help="frames scored after every round"),
    isolated_atoms: Path = typer.Option(None, "--isolated-atoms",
                                        help="isolated-atom energies (default: regression)"),
    store: Path = typer.Option(None, "--store", help="reference Store (default OUT/"
                               "reference.db)"),
    charge: int = typer.Option(None, "--charge", help="net charge (default: from input)"),
    workers: int = typer.Option(0, "--workers", callback=at_least(0),
                                help="local worker processes for the labels (0: this one)"),
    dask: str = typer.Option(None, "--dask", help="Dask scheduler address or 'local'"),
    option: list[str] = typer.Option(None, "--option", help="KEY=VALUE model option"),
) -> None:
    """Active learning: label the frames the model is least sure about, retrain, repeat."""
    values = dict(locals())
    from ffparam.ml.active import ActiveSettings
    from ffparam.workflows.mlp_active import (
        MlpActiveSettings,
        active_from_pool,
        active_on_the_fly,
    )

    if (molecule is None) == (pool is None):
        raise InputError("give either MOLECULE (labels computed) or --pool FILE, not both")
    settings = MlpActiveSettings(**api_values(A, values, ACTIVE))
    if temperature:
        settings = settings.replace(temperatures_k=tuple(temperature))
    loop = ActiveSettings(**api_values(A, values, LOOP))
    options = parse_options(option)
    if pool is not None:
        summary = active_from_pool(pool, out, settings, loop, test, isolated_atoms,
                                   options=options)
    else:
        summary = active_on_the_fly(molecule, out, settings, loop, workers, dask, store,
                                    charge, options, test=test)
    last = summary["rounds"][-1]
    Console().print(f"{summary['n_labels']} labels ({summary['labels_spent']} spent), "
                    f"{len(summary['rounds'])} rounds; stopped: {summary['stop']}; model in "
                    f"{out}, plot {summary['plot']}"
                    + (f"; test force MAE {last['test_force_mae_mev_a']:.1f} meV/A"
                       if "test_force_mae_mev_a" in last else ""))
