"""Numbers out of range are refused with one line naming the option, exit 2, no traceback
and nothing written, from the command line and from the API alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from ffparam.cli.main import main
from ffparam.errors import InputError

LIQUIDS = Path(__file__).parents[1] / "data" / "liquid" / "liquids_subset.csv"
FIT = ["liquid", "fit", str(LIQUIDS), "--params", "vdw:*"]
TRAIN = ["mlp", "train", "--model", "ani", "--train", "frames.xyz", "--out", "model"]
MD = ["mlp", "md", "model", "start.xyz", "-o", "traj.xyz"]

CASES = [
    (["sample", "CCO", "--normal-modes", "-5"], "--normal-modes"),
    (["sample", "CCO", "--md", "-1"], "--md"),
    (["sample", "CCO", "--md", "0"], "--md"),
    (["sample", "CCO", "--conformers", "0"], "--conformers"),
    (["sample", "CCO", "--md", "300", "--frames", "0"], "--frames"),
    (["sample", "CCO", "--normal-modes", "3", "--temperature", "-3"], "--temperature"),
    (["sample", "CCO", "--md", "300", "--seed", "-1"], "--seed"),
    (["sample", "CCO", "--conformers", "2", "--workers", "-1"], "--workers"),
    (["torsiondrive", "CCO", "--all-rotatable", "--spacing", "7"], "--spacing"),
    (["torsiondrive", "CCO", "--all-rotatable", "--spacing", "0"], "--spacing"),
    (["torsiondrive", "CCO", "--all-rotatable", "--spacing", "72"], "--spacing"),
    (["torsiondrive", "CCO", "--all-rotatable", "--conformers", "0"], "--conformers"),
    (["qm", "CCO", "--conformers", "0"], "--conformers"),
    (["qm", "CCO", "--max-scf-cycles", "0"], "--max-scf-cycles"),
    (["qm", "CCO", "--workers", "-2"], "--workers"),
    (["energy", "CCO", "--conformers", "0"], "--conformers"),
    (["bespoke", "CCO", "--validation-conformers", "-3"], "validation_conformers"),
    (["bespoke", "CCO", "--spacing", "72"], "spacing"),
    (["bespoke", "CCO", "--md-ps", "-1"], "md_ps"),
    (["bespoke", "CCO", "--workers", "-1"], "workers"),
    (["demo", "--workers", "0"], "--workers"),
    (["liquid", "run", "CO", "--n", "1"], "2 molecules"),
    (["liquid", "run", "CO", "--ns", "-1"], "production"),
    (["liquid", "run", "CO", "--gas-ns", "0"], "gas-phase production"),
    (["liquid", "run", "CO", "--equil-ps", "-5"], "equilibration_ps"),
    (["liquid", "run", "CO", "--temperature", "-5"], "temperature"),
    (["liquid", "run", "CO", "--pressure", "0"], "pressure"),
    (["liquid", "run", "CO", "--density-guess", "-1"], "density guess"),
    (["liquid", "run", "CO", "--cutoff", "-1"], "cutoff"),
    (["liquid", "run", "CO", "--switch", "-1"], "switching distance"),
    (["liquid", "run", "CO", "--save-ps", "0"], "save_interval_ps"),
    (["liquid", "run", "CO", "--timestep", "0"], "timestep_fs"),
    (["liquid", "run", "CO", "--threads", "-2"], "threads"),
    (["liquid", "run", "CO", "--seed", "-1"], "seed"),
    (["liquid", "run", "CO", "--gas-replicas", "0"], "gas_replicas"),
    (["liquid", "run", "CO", "--gas-max-k", "200"], "tempering ladder"),
    (["liquid", "run", "CO", "--box-conformers", "-1"], "box_conformers"),
    ([*FIT, "--iterations", "-1"], "iterations"),
    ([*FIT, "--trust-radius", "0"], "trust_radius"),
    ([*FIT, "--workers", "0"], "workers"),
    ([*FIT, "--threads", "0"], "threads"),
    ([*FIT, "--min-eff", "2"], "min_eff_fraction"),
    ([*FIT, "--model-safety", "-1"], "model_safety"),
    ([*FIT, "--prior-sigma", "0"], "prior_sigma_a"),
    ([*FIT, "--step", "newton"], "unknown step"),
    ([*FIT, "--n", "1"], "2 molecules"),
    ([*TRAIN, "--committee", "0"], "--committee"),
    ([*TRAIN, "--max-epochs", "0"], "--max-epochs"),
    ([*TRAIN, "--time-budget", "-1"], "--time-budget"),
    ([*TRAIN, "--seed", "-1"], "--seed"),
    ([*MD, "--steps", "0"], "--steps"),
    ([*MD, "--steps", "5", "--timestep", "0"], "--timestep"),
    ([*MD, "--steps", "5", "--interval", "0"], "--interval"),
    ([*MD, "--steps", "5", "--max-force", "-1"], "--max-force"),
    ([*MD, "--steps", "5", "--max-force-sigma", "0"], "--max-force-sigma"),
    ([*MD, "--steps", "5", "--frame", "-1"], "--frame"),
    ([*MD, "--steps", "5", "--seed", "-1"], "--seed"),
]


@pytest.mark.parametrize("args,named", CASES, ids=[" ".join(a[:2] + a[-2:]) for a, _ in CASES])
def test_out_of_range_option_is_one_error_line(args, named, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = main(args)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert rc == 2, captured
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], lines
    assert list(tmp_path.iterdir()) == [], "nothing may be written"


def test_samplers_refuse_out_of_range_values_from_the_api():
    from ffparam.chem import Molecule
    from ffparam.reference.sampling import sample_conformers, sample_md, sample_normal_modes

    ethanol = Molecule.from_smiles("CCO")
    with pytest.raises(InputError, match="n_frames must be at least 1"):
        sample_normal_modes(ethanol, n_frames=-5)
    with pytest.raises(InputError, match="temperature_k must be positive"):
        sample_md(ethanol, temperature_k=-1.0)
    with pytest.raises(InputError, match="seed must not be negative"):
        sample_md(ethanol, seed=-1)
    with pytest.raises(InputError, match="n_conformers must be at least 1"):
        sample_conformers(ethanol, n_conformers=0)


def test_settings_refuse_out_of_range_values():
    from ffparam.liquid.settings import LiquidFitSettings, LiquidSettings
    from ffparam.workflows.bespoke import BespokeSettings

    with pytest.raises(InputError, match="validation_conformers"):
        BespokeSettings(validation_conformers=-3)
    with pytest.raises(InputError, match="spacing_deg must divide 180"):
        BespokeSettings(spacing_deg=72)
    with pytest.raises(InputError, match="gas_max_temperature_k"):
        LiquidSettings(gas_max_temperature_k=0.0)
    with pytest.raises(InputError, match="tempering ladder"):
        LiquidSettings().check_state(1200.0, 1.0)
    LiquidSettings(gas_replicas=1).check_state(1200.0, 1.0)  # no ladder without tempering
    with pytest.raises(InputError, match="min_eff_fraction"):
        LiquidFitSettings(min_eff_fraction=0.0)
