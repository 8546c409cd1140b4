"""``ffparam liquid run|fit``: condensed-phase properties in OpenMM and LJ fits to them."""

from __future__ import annotations

from pathlib import Path

import typer

from ffparam.units import KJ_PER_KCAL


def _settings(n: int, ns: float, equil_ps: float, gas_ns: float, cutoff: float,
              switch: float, save_ps: float, threads: int | None, platform: str, seed: int,
              checkpoint_ps: float, timestep_fs: float, gas_replicas: int = 1,
              gas_max_k: float = 1000.0, box_conformers: int = 0):
    from ffparam.liquid.settings import LiquidSettings

    return LiquidSettings(
        n_molecules=n, production_ps=ns * 1000.0, equilibration_ps=equil_ps,
        gas_production_ps=gas_ns * 1000.0, cutoff_a=cutoff,
        switch_a=switch if switch > 0 else None, save_interval_ps=save_ps,
        gas_save_interval_ps=min(save_ps, 0.5), threads=threads, platform=platform,
        seed=seed, checkpoint_interval_ps=checkpoint_ps, timestep_fs=timestep_fs,
        gas_replicas=gas_replicas, gas_max_temperature_k=gas_max_k,
        box_conformers=box_conformers)


# sampling options shared by `liquid run` and `liquid fit`
GAS_REPLICAS_OPTION = typer.Option(
    6, "--gas-replicas", help="gas-phase replica exchange over temperatures (1: plain MD; "
                              "slow torsions need tempering)")
GAS_MAX_K_OPTION = typer.Option(1000.0, "--gas-max-k", help="top of the tempering ladder, K")
BOX_CONFORMERS_OPTION = typer.Option(
    16, "--box-conformers", help="pack the box from this many gas-phase conformers (0: "
                                 "copies of one conformer)")


def register(app: typer.Typer) -> None:
    liquid = typer.Typer(help="Liquid density and heat of vaporization (OpenMM) and "
                              "Lennard-Jones fits to them.", no_args_is_help=True)

    @liquid.command("run")
    def run_command(
        molecule: str = typer.Argument(..., help="SMILES or molecule file"),
        ff: str = typer.Option("sage", "--ff", help="force field (sage, path.offxml, gaff2)"),
        charges: str = typer.Option("am1bcc", "--charges", help="am1bcc | gasteiger | mmff94"),
        n: int = typer.Option(256, "--n", help="molecules in the box"),
        ns: float = typer.Option(2.0, "--ns", help="liquid production length, ns"),
        equil_ps: float = typer.Option(200.0, "--equil-ps", help="liquid equilibration, ps"),
        gas_ns: float = typer.Option(10.0, "--gas-ns", help="gas-phase production, ns"),
        temperature: float = typer.Option(298.15, "--temperature", help="K"),
        pressure: float = typer.Option(1.0, "--pressure", help="atm"),
        density_guess: float = typer.Option(0.0, "--density-guess",
                                            help="g/mL for packing (0: estimate)"),
        cutoff: float = typer.Option(9.0, "--cutoff", help="LJ/PME cutoff, Angstrom"),
        switch: float = typer.Option(8.0, "--switch", help="LJ switch distance (0: none)"),
        save_ps: float = typer.Option(1.0, "--save-ps", help="ps between saved frames"),
        checkpoint_ps: float = typer.Option(20.0, "--checkpoint-ps",
                                            help="ps between checkpoints"),
        timestep: float = typer.Option(2.0, "--timestep", help="fs (H bonds constrained)"),
        threads: int = typer.Option(0, "--threads", help="OpenMM CPU threads (0: default)"),
        platform: str = typer.Option("CPU", "--platform", help="OpenMM platform"),
        seed: int = typer.Option(2024, "--seed"),
        gas_replicas: int = GAS_REPLICAS_OPTION,
        gas_max_k: float = GAS_MAX_K_OPTION,
        box_conformers: int = BOX_CONFORMERS_OPTION,
        name: str = typer.Option("", "--name", help="label of the run (default: MOLECULE)"),
        out: Path = typer.Option(Path("liquid_run"), "--out", "-o",
                                 help="run directory (rerun to resume)"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
    ) -> None:
        """Estimate density and Hvap (with standard errors and LJ derivatives)."""
        from ffparam.liquid.run import run_liquid

        settings = _settings(n, ns, equil_ps, gas_ns, cutoff, switch, save_ps,
                             threads or None, platform, seed, checkpoint_ps, timestep,
                             gas_replicas, gas_max_k, box_conformers)
        result = run_liquid(molecule, out, ff, charges, settings, temperature, pressure,
                            density_guess or None, name or None, progress=not quiet)
        typer.echo(f"{result.name} ({result.smiles}) at {result.temperature_k:g} K, "
                   f"{result.pressure_atm:g} atm, {result.n_molecules} molecules:")
        typer.echo(f"  density {result.density.value:.4f} +/- {result.density.error:.4f} g/mL")
        typer.echo(f"  Hvap    {result.hvap.value:.3f} +/- {result.hvap.error:.3f} kcal/mol "
                   f"({result.hvap.value * KJ_PER_KCAL:.2f} +/- "
                   f"{result.hvap.error * KJ_PER_KCAL:.2f} kJ/mol)")
        typer.echo(f"  {result.frames['liquid_used']} of {result.frames['liquid']} liquid "
                   f"frames after equilibration; {result.ns_per_day:.1f} ns/day")
        from ffparam.liquid.conformers import TorsionDrift, drift_message

        warning = drift_message(result.name,
                                [TorsionDrift.from_json(d) for d in result.torsion_drift])
        if warning:
            typer.echo(f"  WARNING {warning}")
        typer.echo(f"wrote {Path(out) / 'result.json'}")

    @liquid.command("fit")
    def fit_command(
        csv: Path = typer.Argument(..., help="liquids CSV (like liquids_train.csv)"),
        params: list[str] = typer.Option(..., "--params",
                                         help="vdw:PATTERN[:epsilon,sigma] (repeatable); "
                                              "PATTERN = SMIRKS, file id (n16, globs) or *"),
        iterations: int = typer.Option(3, "--iterations", help="trust-region steps"),
        ff: str = typer.Option("sage", "--ff", help="start SMIRNOFF force field"),
        charges: str = typer.Option("am1bcc", "--charges"),
        liquids: list[str] = typer.Option([], "--liquid", help="use only these (repeatable)"),
        holdout: list[str] = typer.Option([], "--holdout",
                                          help="simulate but do not fit (repeatable)"),
        n: int = typer.Option(256, "--n", help="molecules per box"),
        ns: float = typer.Option(0.5, "--ns", help="liquid production per round, ns"),
        equil_ps: float = typer.Option(100.0, "--equil-ps", help="equilibration, ps"),
        gas_ns: float = typer.Option(5.0, "--gas-ns", help="gas-phase production, ns"),
        cutoff: float = typer.Option(9.0, "--cutoff", help="Angstrom"),
        switch: float = typer.Option(8.0, "--switch", help="Angstrom (0: none)"),
        save_ps: float = typer.Option(1.0, "--save-ps", help="ps between saved frames"),
        checkpoint_ps: float = typer.Option(20.0, "--checkpoint-ps",
                                            help="ps between checkpoints"),
        trust_radius: float = typer.Option(0.3, "--trust-radius", help="first step radius"),
        no_worse: float = typer.Option(
            -1.0, "--no-worse",
            help="guard each step: no training property may be predicted to move away "
                 "from experiment by more than this many error bars (negative: no guard)"),
        model_safety: float = typer.Option(
            1.5, "--model-safety", help="the guard assumes changes this many times the "
                                        "linear prediction"),
        step: str = typer.Option(
            "linear", "--step",
            help="linear: trust-region step on the fluctuation-formula Jacobian; "
                 "reweighted: minimize on MBAR estimates from every simulated round"),
        min_eff: float = typer.Option(
            0.2, "--min-eff", help="reweighted step: Kish size floor per phase, as a "
                                   "fraction of one run's frames"),
        prior_sigma: float = typer.Option(0.1, "--prior-sigma", help="Angstrom"),
        prior_epsilon: float = typer.Option(0.05, "--prior-epsilon", help="kcal/mol"),
        workers: int = typer.Option(1, "--workers", help="parallel simulations"),
        threads: int = typer.Option(1, "--threads", help="OpenMM threads per simulation"),
        dask: str = typer.Option("", "--dask", help="Dask scheduler address or 'local'"),
        platform: str = typer.Option("CPU", "--platform"),
        seed: int = typer.Option(2024, "--seed"),
        gas_replicas: int = GAS_REPLICAS_OPTION,
        gas_max_k: float = GAS_MAX_K_OPTION,
        box_conformers: int = BOX_CONFORMERS_OPTION,
        out: Path = typer.Option(Path("liquid_fit"), "--out", "-o",
                                 help="output directory (rerun to resume)"),
    ) -> None:
        """Fit LJ parameters to liquid densities and heats of vaporization."""
        from ffparam.liquid.data import read_liquids_csv
        from ffparam.liquid.fit import LiquidFitOptions, fit_liquids

        references = read_liquids_csv(csv, liquids or None)
        settings = _settings(n, ns, equil_ps, gas_ns, cutoff, switch, save_ps, threads,
                             platform, seed, checkpoint_ps, 2.0, gas_replicas, gas_max_k,
                             box_conformers)
        options = LiquidFitOptions(
            forcefield=ff, charges=charges, params=tuple(params), iterations=iterations,
            trust_radius=trust_radius, prior_sigma_a=prior_sigma,
            no_worse_margin=no_worse if no_worse >= 0 else None, model_safety=model_safety,
            step=step, min_eff_fraction=min_eff,
            prior_epsilon_kcal_mol=prior_epsilon, holdout=tuple(holdout), workers=workers,
            threads_per_worker=threads, dask=dask or None, settings=settings)
        outcome = fit_liquids(references, options, out, log=lambda text: typer.echo(text,
                                                                                     err=True))
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

    app.add_typer(liquid, name="liquid")
