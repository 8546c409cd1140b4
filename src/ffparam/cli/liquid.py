"""``ffparam liquid run|fit``: condensed-phase properties in OpenMM and LJ fits to them."""

from __future__ import annotations

from pathlib import Path

import typer

from ffparam.cli.options import (
    ApiField,
    PlainHelpCommand,
    PlainHelpGroup,
    api_option,
    api_values,
    at_least,
    nested_values,
    uses_api,
)
from ffparam.units import KJ_PER_KCAL

SETTINGS = "ffparam.liquid.settings:LiquidSettings"
RUN = "ffparam.liquid.run:run_liquid"
FIT = "ffparam.liquid.settings:LiquidFitSettings"
EXECUTOR = "ffparam.runtime.executor:make_executor"


def _sampling(target: str, prefix: str = "") -> dict[str, ApiField]:
    """Options of the simulation settings shared by `liquid run` and `liquid fit` (the
    fit's are fields of ``LiquidFitSettings.simulation``)."""
    def field(name: str, **kw) -> ApiField:
        return ApiField(target, prefix + name, **kw)

    return {
        "n": field("n_molecules"),
        "ns": field("production_ps", api_per_cli=1000.0),
        "equil_ps": field("equilibration_ps"),
        "gas_ns": field("gas_production_ps", api_per_cli=1000.0),
        "cutoff_a": field("cutoff_a"),
        "switch_a": field("switch_a", none_as=0.0),
        "save_ps": field("save_interval_ps"),
        "checkpoint_ps": field("checkpoint_interval_ps"),
        "platform": field("platform"),
        "seed": field("seed"),
        "gas_replicas": field("gas_replicas"),
        "gas_max_k": field("gas_max_temperature_k"),
        "box_conformers": field("box_conformers"),
    }


RUN_FIELDS = {
    **_sampling(SETTINGS),
    "timestep_fs": ApiField(SETTINGS, "timestep_fs"),
    "threads": ApiField(SETTINGS, "threads", none_as=0),
    "ff": ApiField(RUN, "forcefield"),
    "charges": ApiField(RUN, "charges"),
    "temperature_k": ApiField(RUN, "temperature_k"),
    "pressure_atm": ApiField(RUN, "pressure_atm"),
    "density_guess_g_ml": ApiField(RUN, "density_guess_g_ml", none_as=0.0),
}
"""`liquid run` option -> the API field it sets (and takes its default from)."""

FIT_FIELDS = {
    **_sampling(FIT, "simulation."),
    "ff": ApiField(FIT, "forcefield"),
    "charges": ApiField(FIT, "charges"),
    "iterations": ApiField(FIT, "iterations"),
    "trust_radius": ApiField(FIT, "trust_radius"),
    "no_worse": ApiField(FIT, "no_worse_margin", none_as=-1.0),
    "model_safety": ApiField(FIT, "model_safety"),
    "step": ApiField(FIT, "step"),
    "min_eff": ApiField(FIT, "min_eff_fraction"),
    "prior_sigma_a": ApiField(FIT, "prior_sigma_a"),
    "prior_epsilon_kcal_mol": ApiField(FIT, "prior_epsilon_kcal_mol"),
    "workers": ApiField(EXECUTOR, "workers"),
    "threads": ApiField(EXECUTOR, "threads_per_worker"),
    "dask": ApiField(EXECUTOR, "dask", none_as=""),
}
"""`liquid fit` option -> the API field it sets (and takes its default from)."""
R, F = RUN_FIELDS, FIT_FIELDS  # short names for the option declarations below


def _gas_save_interval(save_ps: float) -> float:
    """Gas frames at most as far apart as the settings' default gas save interval (ps)."""
    from ffparam.cli.options import default_of
    from ffparam.liquid.settings import LiquidSettings

    return min(save_ps, default_of(LiquidSettings, "gas_save_interval_ps"))


@uses_api(RUN_FIELDS)
def run_command(
    ctx: typer.Context,
    molecule: str = typer.Argument(..., help="SMILES or molecule file"),
    ff: str = api_option(R, "ff", "--ff", help="force field (sage, path.offxml, gaff2)"),
    charges: str = api_option(R, "charges", "--charges",
                              help="am1bcc | gasteiger | mmff94"),
    n: int = api_option(R, "n", "--n", help="molecules in the box"),
    ns: float = api_option(R, "ns", "--ns", help="liquid production length, ns"),
    equil_ps: float = api_option(R, "equil_ps", "--equil-ps",
                                 help="liquid equilibration, ps"),
    gas_ns: float = api_option(R, "gas_ns", "--gas-ns",
                               help="gas-phase production (per replica), ns"),
    temperature_k: float = api_option(R, "temperature_k", "--temperature", help="K"),
    pressure_atm: float = api_option(R, "pressure_atm", "--pressure", help="atm"),
    density_guess_g_ml: float = api_option(R, "density_guess_g_ml", "--density-guess",
                                      help="g/mL for packing (0: estimate)"),
    cutoff_a: float = api_option(R, "cutoff_a", "--cutoff", help="LJ/PME cutoff, Angstrom"),
    switch_a: float = api_option(R, "switch_a", "--switch",
                               help="LJ switch distance, Angstrom (0: none)"),
    save_ps: float = api_option(R, "save_ps", "--save-ps", help="ps between saved frames"),
    checkpoint_ps: float = api_option(R, "checkpoint_ps", "--checkpoint-ps",
                                      help="ps between checkpoints"),
    timestep_fs: float = api_option(R, "timestep_fs", "--timestep",
                                 help="fs (H bonds constrained)"),
    threads: int = api_option(R, "threads", "--threads",
                              help="OpenMM CPU threads (0: OpenMM's default)"),
    platform: str = api_option(R, "platform", "--platform", help="OpenMM platform"),
    seed: int = api_option(R, "seed", "--seed", help="packmol and Langevin seed"),
    gas_replicas: int = api_option(
        R, "gas_replicas", "--gas-replicas",
        help="gas-phase replica exchange over temperatures (1: plain MD; slow torsions "
             "need tempering)"),
    gas_max_k: float = api_option(R, "gas_max_k", "--gas-max-k",
                                  help="top of the tempering ladder, K"),
    box_conformers: int = api_option(
        R, "box_conformers", "--box-conformers",
        help="pack the box from this many gas-phase conformers (0: copies of one "
             "conformer)"),
    polarizable: bool = typer.Option(
        False, "--polarizable",
        help="Drude oscillators on every heavy atom (alpha from --drude-params, else "
             "starting values by type); dual-thermostat dynamics; adds the dielectric "
             "constant. --timestep and --gas-replicas default to 1 fs and 1"),
    drude_params: Path = typer.Option(
        None, "--drude-params",
        help="ffparam parameter file (.yaml/.json): its Drude section gives alpha/Thole "
             "per type (C3H3 or C3), its other entries replace the force field's"),
    name: str = typer.Option("", "--name", help="label of the run (default: MOLECULE)"),
    out: Path = typer.Option(Path("liquid_run"), "--out", "-o",
                             help="run directory (rerun to resume)"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
) -> None:
    """Estimate density and Hvap (with standard errors and LJ derivatives); with
    --polarizable also the dielectric constant."""
    values = dict(locals())
    from ffparam.liquid.run import run_liquid
    from ffparam.liquid.settings import LiquidSettings

    settings = LiquidSettings(**{**api_values(RUN_FIELDS, values, SETTINGS),
                                 **_drude_defaults(ctx, polarizable)},
                              gas_save_interval_ps=_gas_save_interval(save_ps))
    drude, parameters = _polarizable_inputs(polarizable, drude_params)
    result = run_liquid(molecule, out, settings=settings, name=name or None,
                        progress=not quiet, drude=drude, parameters=parameters,
                        **api_values(RUN_FIELDS, values, RUN))
    _print_run(getattr(result, "liquid", result))
    if polarizable:
        _print_dielectric(result)
    typer.echo(f"wrote {Path(out) / 'result.json'}")


def _drude_defaults(ctx: typer.Context, polarizable: bool) -> dict:
    """With --polarizable, the Drude protocol's time step (1 fs) and untempered gas phase
    for the options left at their defaults (an explicit value is kept and checked)."""
    from ffparam.liquid.drude import MAX_DRUDE_TIMESTEP_FS

    if not polarizable:
        return {}
    chosen = {"timestep_fs": MAX_DRUDE_TIMESTEP_FS, "gas_replicas": 1}
    return {name: value for name, value in chosen.items()
            if ctx.get_parameter_source(name).name == "DEFAULT"}


def _polarizable_inputs(polarizable: bool, drude_params: Path | None) -> tuple:
    """(DrudeDynamicsSettings or None, ParameterSet or None) of the Drude options."""
    from ffparam.errors import InputError
    from ffparam.liquid.drude import DrudeDynamicsSettings
    from ffparam.params.parameter_set import ParameterSet

    parameters = None if drude_params is None else ParameterSet.load(drude_params)
    if parameters is not None and not polarizable:
        raise InputError("--drude-params needs --polarizable")
    return (DrudeDynamicsSettings() if polarizable else None), parameters


def _print_dielectric(result) -> None:
    """The dielectric constant of a Drude liquid and what it is made of."""
    eps = result.dielectric
    typer.echo(f"  eps     {eps.value:.3f} +/- {eps.error:.3f} (eps_inf {eps.eps_inf:.3f} "
               f"from alpha {result.alpha_a3:.3f} A^3 + fluctuation {eps.fluctuation:.3f}); "
               f"largest Drude displacement {result.max_drude_displacement_a:.3f} A")


def _print_run(result) -> None:
    """The estimate of `liquid run` (kcal/mol and kJ/mol) and its drifting torsions."""
    from ffparam.liquid.conformers import TorsionDrift, drift_message

    typer.echo(f"{result.name} ({result.smiles}) at {result.temperature_k:g} K, "
               f"{result.pressure_atm:g} atm, {result.n_molecules} molecules:")
    typer.echo(f"  density {result.density.value:.4f} +/- {result.density.error:.4f} g/mL")
    typer.echo(f"  Hvap    {result.hvap.value:.3f} +/- {result.hvap.error:.3f} kcal/mol "
               f"({result.hvap.value * KJ_PER_KCAL:.2f} +/- "
               f"{result.hvap.error * KJ_PER_KCAL:.2f} kJ/mol)")
    typer.echo(f"  {result.frames['liquid_used']} of {result.frames['liquid']} liquid "
               f"frames after equilibration; {result.ns_per_day:.1f} ns/day")
    warning = drift_message(result.name, [TorsionDrift.from_json(d)
                                          for d in result.torsion_drift or []])
    if warning:
        typer.echo(f"  WARNING {warning}")


@uses_api(FIT_FIELDS)
def fit_command(
    csv: Path = typer.Argument(..., help="liquids CSV (like liquids_train.csv)"),
    params: list[str] = typer.Option(..., "--params",
                                     help="vdw:PATTERN[:epsilon,sigma] (repeatable); "
                                          "PATTERN = SMIRKS, file id (n16, globs) or *"),
    iterations: int = api_option(F, "iterations", "--iterations",
                                 help="trust-region steps"),
    ff: str = api_option(F, "ff", "--ff", help="start SMIRNOFF force field"),
    charges: str = api_option(F, "charges", "--charges",
                              help="am1bcc | gasteiger | mmff94"),
    liquids: list[str] = typer.Option([], "--liquid", help="use only these (repeatable)"),
    holdout: list[str] = typer.Option([], "--holdout",
                                      help="simulate but do not fit (repeatable)"),
    n: int = api_option(F, "n", "--n", help="molecules per box"),
    ns: float = api_option(F, "ns", "--ns", help="liquid production per round, ns"),
    equil_ps: float = api_option(F, "equil_ps", "--equil-ps", help="equilibration, ps"),
    gas_ns: float = api_option(F, "gas_ns", "--gas-ns",
                               help="gas-phase production (per replica), ns"),
    cutoff_a: float = api_option(F, "cutoff_a", "--cutoff", help="Angstrom"),
    switch_a: float = api_option(F, "switch_a", "--switch", help="Angstrom (0: none)"),
    save_ps: float = api_option(F, "save_ps", "--save-ps", help="ps between saved frames"),
    checkpoint_ps: float = api_option(F, "checkpoint_ps", "--checkpoint-ps",
                                      help="ps between checkpoints"),
    trust_radius: float = api_option(F, "trust_radius", "--trust-radius",
                                     help="first step radius"),
    no_worse: float = api_option(
        F, "no_worse", "--no-worse",
        help="guard each step: no training property may be predicted to move away "
             "from experiment by more than this many error bars (negative: no guard)"),
    model_safety: float = api_option(
        F, "model_safety", "--model-safety",
        help="the guard assumes changes this many times the linear prediction"),
    step: str = api_option(
        F, "step", "--step",
        help="linear: trust-region step on the fluctuation-formula Jacobian; "
             "reweighted: minimize on MBAR estimates from every simulated round"),
    min_eff: float = api_option(
        F, "min_eff", "--min-eff", help="reweighted step: Kish size floor per phase, as "
                                        "a fraction of one run's frames"),
    prior_sigma_a: float = api_option(F, "prior_sigma_a", "--prior-sigma", help="Angstrom"),
    prior_epsilon_kcal_mol: float = api_option(F, "prior_epsilon_kcal_mol", "--prior-epsilon",
                                      help="kcal/mol"),
    workers: int = api_option(F, "workers", "--workers", callback=at_least(1),
                              help="parallel simulations (1: in this process)"),
    threads: int = api_option(F, "threads", "--threads", callback=at_least(1),
                              help="OpenMM threads per simulation"),
    dask: str = api_option(F, "dask", "--dask", help="Dask scheduler address or 'local'"),
    platform: str = api_option(F, "platform", "--platform", help="OpenMM platform"),
    seed: int = api_option(F, "seed", "--seed", help="packmol and Langevin seed"),
    gas_replicas: int = api_option(
        F, "gas_replicas", "--gas-replicas",
        help="gas-phase replica exchange over temperatures (1: plain MD)"),
    gas_max_k: float = api_option(F, "gas_max_k", "--gas-max-k",
                                  help="top of the tempering ladder, K"),
    box_conformers: int = api_option(
        F, "box_conformers", "--box-conformers",
        help="pack boxes from this many gas-phase conformers (0: one)"),
    out: Path = typer.Option(Path("liquid_fit"), "--out", "-o",
                             help="output directory (rerun to resume)"),
) -> None:
    """Fit LJ parameters to liquid densities and heats of vaporization."""
    values = dict(locals())
    from ffparam.liquid.data import read_liquids_csv
    from ffparam.runtime import make_executor
    from ffparam.workflows.liquid_fit import fit_liquids

    settings = fit_settings(values, params, holdout)
    references = read_liquids_csv(csv, liquids or None)
    run = api_values(FIT_FIELDS, values, EXECUTOR)
    if run["workers"] == 1 and not run["dask"]:
        run["workers"] = 0  # one simulation at a time runs in this process
    with make_executor(**run) as executor:
        outcome = fit_liquids(references, settings, out, executor=executor,
                              log=lambda text: typer.echo(text, err=True))
    _print_fit(outcome)


def fit_settings(values: dict, params: list[str], holdout: list[str]):
    """The :class:`~ffparam.liquid.settings.LiquidFitSettings` of `liquid fit`'s option
    ``values`` (by keyword from :data:`FIT_FIELDS`)."""
    from ffparam.liquid.settings import LiquidFitSettings, fit_round_settings

    simulation = fit_round_settings().replace(
        **nested_values(FIT_FIELDS, values, FIT, "simulation"), threads=values["threads"],
        gas_save_interval_ps=_gas_save_interval(values["save_ps"]))
    return LiquidFitSettings(params=tuple(params), holdout=tuple(holdout),
                             simulation=simulation, **api_values(FIT_FIELDS, values, FIT))


def _print_fit(outcome) -> None:
    """MAE before -> after per set and property, the best round and the files."""
    summary = outcome.metrics["summary"]
    for role in ("train", "holdout"):
        for prop, unit in (("density", "g/mL"), ("hvap", "kcal/mol")):
            before = summary.get(f"{role}_{prop}_before_mae")
            after = summary.get(f"{role}_{prop}_after_mae")
            if before is not None:
                shown = f"{after:.4f}" if after is not None else "not simulated"
                typer.echo(f"{role} {prop} MAE {before:.4f} -> {shown} {unit}")
    worse = outcome.metrics["worse_by_more_than_error_bar"]
    typer.echo(f"best round {outcome.best_round}; worse by more than the error bar: "
               f"{', '.join(worse) if worse else 'none'}")
    for label, path in outcome.files.items():
        typer.echo(f"wrote {path}" if label != "plot" else f"plot {path}")


def register(app: typer.Typer) -> None:
    """Add the `liquid` group (`run`, `fit`) to ``app``."""
    liquid = typer.Typer(help="Liquid density and heat of vaporization (OpenMM) and "
                              "Lennard-Jones fits to them.", no_args_is_help=True,
                         cls=PlainHelpGroup)
    liquid.command("run", cls=PlainHelpCommand)(run_command)
    liquid.command("fit", cls=PlainHelpCommand)(fit_command)
    app.add_typer(liquid, name="liquid")
