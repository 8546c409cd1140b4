"""The CLI runs the API's protocol: every option that stands for an API field (a settings
dataclass field or an API function's keyword) defaults to that field's default, and every
other option is declared CLI-only here, so an option added later must be classified."""

from __future__ import annotations

from typing import Any

import pytest
from typer.main import get_command

from ffparam.cli.main import app
from ffparam.cli.options import ApiField

CLI_ONLY = {
    "energy": {"input", "conformers", "charge", "as_json", "coords", "params"},
    "assign": {"input", "output", "openmm_xml", "charge", "from_file", "params"},
    "qm": {"input", "store", "output", "conformers", "charge", "solvent", "max_scf_cycles",
           "density_fit", "workers", "dask"},
    "torsiondrive": {"input", "dihedral", "all_rotatable", "store", "output", "charge",
                     "conformers", "solvent", "max_scf_cycles", "workers", "dask"},
    "sample": {"input", "conformers", "md", "md_engine", "normal_modes", "store", "output",
               "charge", "seed", "workers", "dask", "mc"},
    "fit": {"spec", "out", "quiet", "cv", "ff"},
    "bespoke": {"input", "reference", "bond", "drive_2d", "out", "name", "quiet"},
    "demo": {"out", "workers"},
    "mlp train": {"model", "train", "out", "valid", "isolated_atoms", "option", "restart"},
    "mlp eval": {"model_dir", "test", "plot", "as_json", "report"},
    "mlp md": {"model_dir", "start", "steps", "output"},
    "mlp active": {"molecule", "out", "temperature", "pool", "test", "isolated_atoms",
                   "store", "charge", "workers", "dask", "option"},
    "liquid run": {"molecule", "name", "out", "quiet", "polarizable", "drude_params"},
    "liquid fit": {"csv", "params", "liquids", "holdout", "out"},
    "qmmm": {"molecule", "store", "out", "quiet", "torsion", "spacing", "polarizable",
             "drude_params"},
}
"""Parameters that set no API field (inputs, outputs, modes chosen per run), per command."""


def _commands(group: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf commands of a (typer-vendored) click group by their path, e.g. ``liquid run``."""
    found = {}
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if hasattr(command, "commands"):
            found.update(_commands(command, path + " "))
        else:
            found[path] = command
    return found


COMMANDS = _commands(get_command(app))


def _api_fields(command: Any) -> dict[str, ApiField]:
    function = getattr(command.callback, "__wrapped__", command.callback)
    return getattr(function, "api_fields", {})


def test_every_command_is_classified():
    assert set(COMMANDS) == set(CLI_ONLY)


@pytest.mark.parametrize("path", sorted(CLI_ONLY))
def test_every_option_is_an_api_field_or_declared_cli_only(path):
    command = COMMANDS[path]
    params = {p.name for p in command.params} - {"help"}
    fields = _api_fields(command)
    assert set(fields) <= params, f"{path}: table names no option {set(fields) - params}"
    assert not set(fields) & CLI_ONLY[path]
    unclassified = params - set(fields) - CLI_ONLY[path]
    assert not unclassified, (f"`ffparam {path}` options {sorted(unclassified)} are neither "
                              "API fields (cli/options.py ApiField) nor declared CLI-only")


@pytest.mark.parametrize("path", sorted(p for p in CLI_ONLY if _api_fields(COMMANDS[p])))
def test_cli_defaults_are_the_api_defaults(path):
    """Parse the command with no arguments (resilient: required ones may be missing) and
    compare each option's value, converted to the API's units, with the API default."""
    command = COMMANDS[path]
    ctx = command.make_context(path, [], resilient_parsing=True)
    for param, field in _api_fields(command).items():
        api = field.api_default()
        parsed = ctx.params[param]
        assert parsed == pytest.approx(field.cli_default()) if isinstance(api, float) \
            else parsed == field.cli_default(), (path, param)
        back = field.to_api(parsed)
        if isinstance(api, float):
            assert back == pytest.approx(api, rel=1e-12), (path, param, back, api)
        else:
            assert back == api and type(back) is type(api), (path, param, back, api)


def test_liquid_cli_runs_the_validated_protocol():
    """`ffparam liquid run` and `LiquidSettings()` both temper the gas phase (6 replicas to
    1000 K) and pack the box from 16 gas conformers (benchmarks/RESULTS.md, docs/liquid.md)."""
    from ffparam.liquid.settings import LiquidFitSettings, LiquidSettings

    ctx = COMMANDS["liquid run"].make_context("run", [], resilient_parsing=True)
    settings = LiquidSettings()
    assert (settings.gas_replicas, settings.gas_max_temperature_k,
            settings.box_conformers) == (6, 1000.0, 16)
    assert (ctx.params["gas_replicas"], ctx.params["gas_max_k"],
            ctx.params["box_conformers"]) == (6, 1000.0, 16)
    fit = LiquidFitSettings().simulation
    assert (fit.gas_replicas, fit.box_conformers) == (6, 16)
    assert (fit.production_ps, fit.gas_production_ps) == (500.0, 5000.0)


def test_samplers_share_the_defaults_sample_shows():
    """`ffparam sample` has one --frames/--method for every sampler: they must agree."""
    from ffparam.cli.options import default_of
    from ffparam.reference.sampling import (
        sample_conformers,
        sample_mc,
        sample_md,
        sample_mm_md,
        sample_normal_modes,
    )

    for name in ("n_frames", "temperature_k", "method", "retry_failed"):
        values = {default_of(f, name)
                  for f in (sample_md, sample_mm_md, sample_normal_modes, sample_mc)}
        assert len(values) == 1, (name, values)
    assert default_of(sample_conformers, "method") == default_of(sample_md, "method")
    assert default_of(sample_mc, "forcefield") == default_of(sample_mm_md, "forcefield")


def test_option_table_conversions():
    """ns options of ps fields and `0 = None` options convert both ways."""
    ns = ApiField("ffparam.liquid.settings:LiquidSettings", "production_ps", api_per_cli=1000.0)
    assert ns.cli_default() == 2.0 and ns.to_api(0.5) == 500.0
    threads = ApiField("ffparam.liquid.settings:LiquidSettings", "threads", none_as=0)
    assert threads.cli_default() == 0 and threads.to_api(0) is None and threads.to_api(3) == 3
    nested = ApiField("ffparam.liquid.settings:LiquidFitSettings", "simulation.gas_production_ps")
    assert nested.api_default() == 5000.0
