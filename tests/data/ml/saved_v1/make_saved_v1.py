"""Wrote this folder with the code of commit 7fe0052 (``ffparam.ml.workflow`` no longer
exists: kept as the record of how the files were made; see README.md)."""

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from ffparam.ml.workflow import train_model  # the API of commit 7fe0052

from ffparam.ml.data import read_extxyz, read_isolated_atoms

torch.set_num_threads(1)
root = Path("tests/data/ml/saved_v1")
shutil.rmtree(root, ignore_errors=True)
d = read_extxyz("tests/data/ml/ethanol_60.xyz")
refs = read_isolated_atoms("tests/data/ml/ethanol_isolated_atoms.xyz")
train, valid, test = d.subset(np.arange(0, 12)), d.subset(np.arange(40, 46)), d.subset(
    np.arange(57, 60))
aev = {"radial_cutoff": 5.2, "radial_eta": 16.0, "radial_shifts": [0.9, 2.0, 3.1, 4.2],
       "angular_cutoff": 3.5, "angular_eta": 8.0, "angular_zeta": 32.0,
       "angular_shifts": [0.9, 2.2], "angular_sections": [0.2, 1.8], "angle_damping": 0.95}
net = {"aev": aev, "hidden": [4], "max_epochs": 2, "batch_size": 6, "dtype": "float64"}
models = {
    "gpr": train_model("gpr", train, valid, root / "gpr", refs, seed=0,
                       options={"length_scale": 1.6, "weight_steps": 2, "weight_frames": 8}),
    "ani": train_model("ani", train, valid, root / "ani", refs, seed=0, options=net),
    "schnet": train_model("schnet", train, valid, root / "schnet", refs, seed=0,
                          options={"n_features": 4, "n_rbf": 4, "n_interactions": 1,
                                   "max_epochs": 1, "batch_size": 6, "dtype": "float64"}),
    "committee": train_model("ani", train, valid, root / "committee", refs, committee=2,
                             seed=0, options=net),
}
for d_ in root.rglob("checkpoint.pt"):
    if d_.parent.name != "ani":
        d_.unlink()  # keep one checkpoint (ani) to test resuming an old run
expected = {}
for name, pot in models.items():
    p = pot.predict(test, uncertainty=pot.has_uncertainty)
    expected[name] = {
        k: None if getattr(p, k) is None else np.asarray(getattr(p, k)).tolist()
        for k in ("energy", "forces", "atom_energies", "energy_sigma", "forces_sigma")
    }
(root / "expected.json").write_text(json.dumps(expected))
test.write_extxyz(root / "test_frames.xyz")
print("ok")
