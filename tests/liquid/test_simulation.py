"""Short liquid + gas simulations of methanol on tiny boxes: units of the box density,
Hvap sign and magnitude, error bars present, resume after SIGKILL, NaN handling, and a
force field that cannot type the molecule."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ffparam.cli.main import main
from ffparam.errors import NonFiniteError
from ffparam.liquid.job import LiquidJob, lj_keys, run_liquid_jobs, simulate_liquid
from ffparam.liquid.simulate import load_trajectory
from ffparam.runtime import make_executor
from ffparam.units import AVOGADRO, GAS_CONSTANT_KCAL_MOL_K
from tests.liquid.conftest import tiny_settings

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def methanol_run(methanol_am1bcc, tmp_path_factory, seed):
    """40 methanol molecules, 20 ps (100 frames) of liquid and 200 ps of gas, seeded by
    the session seed."""
    directory = tmp_path_factory.mktemp("methanol")
    settings = tiny_settings(seed=seed)
    job = LiquidJob("methanol", methanol_am1bcc, 298.15, 1.0, directory, settings,
                    density_guess_g_ml=0.79)
    return job, simulate_liquid(job)


@pytest.mark.stochastic
def test_density_is_mass_over_box_volume_in_g_per_ml(methanol_run):
    job, result = methanol_run
    frames = load_trajectory(job.directory / "liquid", job.settings.save_interval_ps)
    assert len(frames) == 100 and frames.box_lengths.shape == (100, 3)
    # cubic box from the isotropic barostat
    assert np.allclose(frames.box_lengths[:, 0], frames.box_lengths[:, 2])
    # independent density: 40 x CH3OH (12.011 + 4 x 1.008 + 15.999 g/mol) / (N_A V), 1 A^3 =
    # 1e-24 mL; averaged over the frames the result used
    mass = 40 * (12.011 + 4 * 1.008 + 15.999)
    used = result.frames["liquid_used"]
    volume_ml = np.prod(frames.box_lengths[-used:], axis=1) * 1e-24
    assert result.density.value == pytest.approx(np.mean(mass / AVOGADRO / volume_ml),
                                                 rel=2e-4)
    # experiment 0.787 g/mL; a 20-ps 40-molecule box fluctuates by ~0.02 g/mL (> 8 sigma)
    assert 0.6 < result.density.value < 0.95
    assert 0 < result.density.error < 0.05


@pytest.mark.stochastic
def test_hvap_sign_magnitude_and_errors(methanol_run):
    _, result = methanol_run
    rt = GAS_CONSTANT_KCAL_MOL_K * 298.15
    assert rt == pytest.approx(0.5925, abs=1e-4)
    assert result.hvap.value == pytest.approx(
        result.gas_energy.value - result.liquid_energy_per_molecule.value + rt)
    # experiment 37.43 kJ/mol = 8.95 kcal/mol; hydrogen-bonded liquid, clearly positive
    assert 5.0 < result.hvap.value < 13.0
    assert 0 < result.hvap.error < 1.0
    assert result.hvap.error >= result.gas_energy.error
    assert result.frames["gas"] == 1000 and 0 < result.frames["liquid_used"] <= 100
    assert result.frames["gas_used"] == 1000  # gas: every production frame, no detection
    data = json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert data["density_g_ml"]["error"] > 0 and data["ns_per_day"] > 0


@pytest.mark.stochastic
def test_gradients_cover_every_lj_parameter(methanol_run, methanol_am1bcc):
    _, result = methanol_run
    keys = [str(k) for k in lj_keys(methanol_am1bcc)]
    assert result.keys == keys and len(keys) == 8  # four vdW types x (sigma, epsilon)
    for array in (result.density_gradient, result.density_gradient_error,
                  result.hvap_gradient, result.hvap_gradient_error):
        assert array.shape == (8,) and np.all(np.isfinite(array))
    assert np.all(result.hvap_gradient_error > 0)
    # a deeper methyl-carbon well (its contacts lie beyond sigma, in the attractive range)
    # binds the liquid more: dHvap/d(epsilon_C) > 0, resolved even in this short run
    i = keys.index("vdW/[#6X4:1]/epsilon")
    assert result.hvap_gradient[i] > 3 * result.hvap_gradient_error[i]


def test_a_finished_run_is_not_simulated_again(methanol_run):
    job, result = methanol_run
    stamp = (job.directory / "liquid" / "progress.json").stat().st_mtime_ns
    again = simulate_liquid(job)
    assert again.density.value == result.density.value
    assert (job.directory / "liquid" / "progress.json").stat().st_mtime_ns == stamp


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_killed_run_resumes_from_its_checkpoint(tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "ffparam.cli.main", "liquid", "run", "CO", "--charges",
            "gasteiger", "--n", "40", "--cutoff", "6", "--switch", "5", "--ns", "0.03",
            "--equil-ps", "1", "--gas-ns", "0.05", "--save-ps", "0.5", "--checkpoint-ps", "10",
            "--threads", "1", "--out", str(out), "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    progress = out / "liquid" / "progress.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        if progress.exists() and json.loads(progress.read_text())["chunks"] >= 1:
            break
        if proc.poll() is not None:
            pytest.fail(f"run ended before the first checkpoint: {proc.stderr.read()}")
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = json.loads(progress.read_text())
    assert 1 <= state["chunks"] < 3 and state["stage"] != "done"
    first = _digest(out / "liquid" / "frames_00000.npz")
    assert not (out / "result.json").exists()
    assert main(args[3:]) == 0
    resumed = json.loads(progress.read_text())
    assert resumed["stage"] == "done" and resumed["frames"] == 60 and resumed["chunks"] == 3
    assert resumed["checkpoints"] > state["checkpoints"]
    # frames written before the kill are kept, not recomputed
    assert _digest(out / "liquid" / "frames_00000.npz") == first
    result = json.loads((out / "result.json").read_text())
    assert result["frames"]["liquid"] == 60


def test_nan_stops_the_run_and_stores_nothing(methanol_am1bcc, tmp_path, capsys):
    settings = tiny_settings(timestep_fs=60.0, equilibration_ps=30.0, production_ps=60.0,
                             save_interval_ps=1.2, checkpoint_interval_ps=12.0)
    job = LiquidJob("methanol", methanol_am1bcc, 298.15, 1.0, tmp_path / "nan", settings,
                    density_guess_g_ml=0.79)
    # the gas phase runs first (the box may be packed from its conformers) and a 60 fs
    # step blows it up: the run stops there, the liquid is never started
    with pytest.raises(NonFiniteError, match=r"methanol gas: .*NaN"):
        simulate_liquid(job)
    assert (tmp_path / "nan" / "gas" / "failed.json").exists()
    assert not list((tmp_path / "nan" / "gas").glob("frames_*.npz"))
    assert not (tmp_path / "nan" / "liquid").exists()
    # the liquid phase on its own stops the same way
    from ffparam.liquid.box import pack_box
    from ffparam.liquid.openmm_system import build_box_system
    from ffparam.liquid.simulate import PhaseSpec, run_phase

    box = pack_box(methanol_am1bcc.molecule, 40, 0.79 * 0.85, workdir=tmp_path)
    spec = PhaseSpec(build_box_system(methanol_am1bcc, 40, box.box_length_a, settings,
                                      methanol_am1bcc.parameters.vector()),
                     box.positions, box.box_length_a, 298.15, 1.0, 30.0, 60.0, 1.2,
                     "methanol liquid")
    with pytest.raises(NonFiniteError, match=r"methanol liquid: .*NaN"):
        run_phase(tmp_path / "liquid_only", spec, settings)
    assert (tmp_path / "liquid_only" / "failed.json").exists()
    assert not list((tmp_path / "liquid_only").glob("frames_*.npz"))
    # through the executor: an error message, no result
    ((_, result, error),) = list(run_liquid_jobs([job]))
    assert result is None and error.startswith("NonFiniteError: methanol gas")
    # through the CLI: one line on stderr, exit code 1, no result.json
    rc = main(["liquid", "run", "CO", "--charges", "gasteiger", "--n", "40", "--cutoff", "6",
               "--switch", "5", "--timestep", "60", "--equil-ps", "30", "--ns", "0.06",
               "--save-ps", "1.2", "--out", str(tmp_path / "cli"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "NaN" in err[0]
    assert not (tmp_path / "cli" / "result.json").exists()


def test_untypable_molecule_is_one_clear_error(tmp_path, capsys):
    rc = main(["liquid", "run", "C[Si](C)(C)C", "--n", "40", "--out", str(tmp_path / "si"),
               "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "no Bonds parameter in openff-2.2.1 matches atoms 0-1 (C-Si)" in err[0]
    assert not (tmp_path / "si").exists()


@pytest.mark.parametrize("how", ["pool", "dask"])
def test_parallel_executors_return_every_outcome(methanol_am1bcc, tmp_path, how):
    """Two liquids at once through the process pool and through a local Dask cluster: one
    outcome per job, a good run gives its result (the same numbers as the serial run of the
    same seeded job), a NaN run gives its one-line error and never stops the other."""
    settings = tiny_settings(equilibration_ps=2.0, production_ps=6.0, gas_production_ps=40.0)
    good = LiquidJob("methanol", methanol_am1bcc, 298.15, 1.0, tmp_path / "good", settings,
                     density_guess_g_ml=0.79)
    bad = LiquidJob("methanol-nan", methanol_am1bcc, 298.15, 1.0, tmp_path / "nan",
                    tiny_settings(timestep_fs=60.0, equilibration_ps=30.0,
                                  production_ps=60.0, save_interval_ps=1.2,
                                  checkpoint_interval_ps=12.0), density_guess_g_ml=0.79)
    with make_executor(2, dask="local" if how == "dask" else None) as executor:
        outcomes = {job.name: (result, error) for job, result, error in
                    run_liquid_jobs([good, bad], executor)}
    assert set(outcomes) == {"methanol", "methanol-nan"}
    result, error = outcomes["methanol"]
    assert error is None and 0.6 < result.density.value < 0.95 and result.hvap.error > 0
    result_bad, error_bad = outcomes["methanol-nan"]
    assert result_bad is None and error_bad.startswith("NonFiniteError: methanol-nan gas")
    serial = simulate_liquid(LiquidJob("methanol", methanol_am1bcc, 298.15, 1.0,
                                       tmp_path / "serial", settings, density_guess_g_ml=0.79))
    assert serial.density.value == pytest.approx(result.density.value, rel=1e-9)
    assert serial.hvap.value == pytest.approx(result.hvap.value, rel=1e-9)


def test_pool_workers_exit_when_the_fit_is_killed(tmp_path):
    """SIGKILL of the process that runs the pool: its spawned workers (mid-simulation)
    exit within seconds instead of running their liquids to the end."""
    import psutil

    script = tmp_path / "pool.py"
    script.write_text(
        "from pathlib import Path\n"
        "from ffparam.liquid.job import run_liquid_jobs\n"
        "from ffparam.runtime import LocalExecutor\n"
        "from ffparam.liquid.job import LiquidJob\n"
        "from ffparam.liquid.prepare import prepare_system\n"
        "from tests.liquid.conftest import tiny_settings\n"
        "if __name__ == '__main__':\n"
        "    system = prepare_system('CO', 'sage', 'gasteiger', name='methanol')\n"
        "    settings = tiny_settings(production_ps=5000.0)\n"
        f"    root = Path({str(tmp_path)!r})\n"
        "    jobs = [LiquidJob(f'm{k}', system, 298.15, 1.0, root / f'm{k}', settings, 0.79)\n"
        "            for k in range(2)]\n"
        "    with LocalExecutor(2) as executor:\n"
        "        for outcome in run_liquid_jobs(jobs, executor):\n"
        "            pass\n")
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT,
                            env=dict(os.environ, OMP_NUM_THREADS="1",
                                     PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")])),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parent = psutil.Process(proc.pid)
    deadline = time.time() + 240
    while time.time() < deadline:
        if all((tmp_path / f"m{k}" / "liquid" / "progress.json").exists() for k in range(2)):
            break
        if proc.poll() is not None:
            pytest.fail("the pool script ended before its workers started the liquids")
        time.sleep(0.2)
    workers = [c for c in parent.children(recursive=True)
               if "spawn_main" in " ".join(c.cmdline())]
    assert len(workers) == 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _gone, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive, [p.pid for p in alive]
