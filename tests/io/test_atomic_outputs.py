"""A process SIGKILLed while it writes an output file never leaves a half-written file
under the final name: each test runs a real ffparam writer in a subprocess whose low-level
write puts out the first half of the data and then kills the process with SIGKILL, the
moment a kill -9 would do the most harm."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ffparam.io.atomic import atomic_output, write_text_atomic

ROOT = Path(__file__).parents[2]

# Installed in the subprocess before the code under test runs: a write of a file whose
# name contains TARGET writes half of its data and then SIGKILLs the process.
KILL_MID_WRITE = textwrap.dedent("""
    import os, pathlib, signal, sys
    TARGET = sys.argv[1]

    def _die_half_way(path, data):
        with open(path, "wb") as handle:
            handle.write(data[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)

    _write_text = pathlib.Path.write_text
    def write_text(self, data, *args, **kwargs):
        if TARGET in self.name:
            _die_half_way(self, data.encode())
        return _write_text(self, data, *args, **kwargs)
    pathlib.Path.write_text = write_text

    import ase.io
    _ase_write = ase.io.write
    def ase_write(filename, images, *args, **kwargs):
        if TARGET in str(filename):
            import io
            buffer = io.StringIO()
            _ase_write(buffer, images, *args, **kwargs)
            _die_half_way(filename, buffer.getvalue().encode())
        return _ase_write(filename, images, *args, **kwargs)
    ase.io.write = ase_write

    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    _savefig = Figure.savefig
    def savefig(self, fname, *args, **kwargs):
        if TARGET in str(fname):
            import io
            buffer = io.BytesIO()
            kwargs.setdefault("format", "png")
            _savefig(self, buffer, *args, **kwargs)
            _die_half_way(fname, buffer.getvalue())
        return _savefig(self, fname, *args, **kwargs)
    Figure.savefig = savefig
""")


def run_killed(code: str, target: str, cwd: Path) -> None:
    """Run ``code`` after :data:`KILL_MID_WRITE`; it must die by SIGKILL mid-write."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", KILL_MID_WRITE + textwrap.dedent(code), target],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


def visible_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


STORE_WITH_ONE_RECORD = """
    import numpy as np
    from ffparam.chem import Molecule
    from ffparam.reference import Store
    from ffparam.reference.compute import make_jobs
    mol = Molecule.from_smiles("O").generate_conformers(1, seed=1)
    job = make_jobs(mol, mol.conformers, "gfn2-xtb", "gradient")[0]
    record = job.record("complete", energy=-3.0, gradient=np.zeros((3, 3)))
    store = Store("s.db")
    store.put(record)
"""


def test_store_export_killed_mid_write_leaves_no_partial_xyz_or_json(tmp_path):
    store = textwrap.dedent(STORE_WITH_ONE_RECORD)
    run_killed(store + "store.export_extxyz('frames.xyz')\n", "frames.xyz", tmp_path)
    run_killed(store + "store.export_json('frames.json')\n", "frames.json", tmp_path)
    assert visible_files(tmp_path) == ["s.db", "s.db-shm", "s.db-wal"]


def test_torsion_profile_killed_mid_write_leaves_no_partial_xyz_or_png(tmp_path):
    code = """
        import numpy as np
        from ffparam.chem import Molecule
        from ffparam.reference.plots import plot_torsion_profile, write_torsiondrive_extxyz
        from ffparam.reference.compute import make_jobs
        from ffparam.reference.torsiondrive import TorsionDriveResult
        mol = Molecule.from_smiles("CCCC").generate_conformers(1, seed=1)
        job = make_jobs(mol, mol.conformers, "gfn2-xtb", "gradient")[0]
        records = [job.record("complete", energy=e, gradient=np.zeros((mol.n_atoms, 3)))
                   for e in (0.0, 1.0, 2.0)]
        result = TorsionDriveResult(mol, [(0, 1, 2, 3)], [120], "gfn2-xtb",
                                    np.array([[-120.0], [0.0], [120.0]]),
                                    np.array([0.0, 1.0, 2.0]),
                                    np.repeat(mol.conformers[:1], 3, axis=0), records)
        if sys.argv[1] == "scan.xyz":
            write_torsiondrive_extxyz(result, "scan.xyz")
        else:
            plot_torsion_profile(result, "scan.png")
    """
    run_killed(code, "scan.xyz", tmp_path)
    run_killed(code, "scan.png", tmp_path)
    assert visible_files(tmp_path) == []


def test_ml_dataset_killed_mid_write_leaves_no_partial_xyz(tmp_path):
    code = f"""
        from ffparam.ml.data import read_frames
        read_frames({str(ROOT / "tests/data/ml/ethanol_60.xyz")!r}).write_extxyz("train.xyz")
    """
    run_killed(code, "train.xyz", tmp_path)
    assert visible_files(tmp_path) == []


def test_bespoke_killed_while_writing_its_state_file_can_be_rerun(tmp_path):
    """The state file names the molecule of an output folder; a truncated one made the
    rerun refuse the folder as another molecule's."""
    code = """
        from ffparam.workflows.bespoke import BespokeSettings, run_bespoke
        run_bespoke("CCO", "out", BespokeSettings(charges="gasteiger", progress=False))
    """
    run_killed(code, "ffparam_bespoke.json", tmp_path)
    from ffparam.workflows.bespoke import STATE_FILE, check_output_dir, prepare_molecule

    state = tmp_path / "out" / STATE_FILE
    if state.exists():
        json.loads(state.read_text())
    check_output_dir(tmp_path / "out", prepare_molecule("CCO", 1), force=False)


def test_atomic_output_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = write_text_atomic(tmp_path / "a.json", '{"old": 1}')
    with pytest.raises(RuntimeError), atomic_output(path) as tmp:
        tmp.write_text('{"new": ')
        raise RuntimeError("writer failed")
    assert json.loads(path.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
