"""Committees (ensembles) of potentials: mean prediction, spread as uncertainty.

For members m = 1..N the committee predicts E = mean_m E_m, F = mean_m F_m (a mean of
conservative force fields is conservative) and reports the committee standard deviation
sigma_E = sqrt(mean_m (E_m - E)^2), and likewise per force component, as its uncertainty.
Members differ by their random initialization and batch order (seed + m). The raw spread
underestimates the error of the mean (the members share their data), so a committee trained
with a validation set rescales its force and energy spreads by the factors that minimize the
miscalibration area there (:func:`ffparam.ml.calibration.area_scale`; the errors are heavy
tailed, so the unit-variance factor would over-cover the central intervals) (``metadata``
``forces_sigma_scale``, ``energy_sigma_scale``; committees saved without them use 1).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ffparam.errors import InputError
from ffparam.ml.batch import Batch
from ffparam.ml.calibration import area_scale
from ffparam.ml.checkpoint import read_model_json, write_model_dir
from ffparam.ml.data import MLDataset
from ffparam.ml.potential import Potential, Prediction, load_potential
from ffparam.ml.registry import TrainingJob


class Committee(Potential):
    """Several potentials trained on the same data, used together."""

    model_type = "committee"

    def __init__(self, members: list[Potential], metadata: dict | None = None) -> None:
        if len(members) < 2:
            raise InputError("a committee needs at least two members")
        if len({m.elements for m in members}) != 1:
            raise InputError("committee members were trained on different elements")
        self.members = members
        self.metadata = metadata or {}
        self.forces_sigma_scale = float(self.metadata.get("forces_sigma_scale", 1.0))
        self.energy_sigma_scale = float(self.metadata.get("energy_sigma_scale", 1.0))

    @property
    def elements(self) -> tuple[int, ...]:
        return self.members[0].elements

    @property
    def has_uncertainty(self) -> bool:
        return True

    def predict_batch(
        self, batch: Batch, forces: bool = True, uncertainty: bool = False,
        atom_energies: bool = True,
    ) -> Prediction:
        preds = [m.predict_batch(batch, forces=forces, atom_energies=atom_energies)
                 for m in self.members]
        energies = np.stack([p.energy for p in preds])
        atom_e = None if any(p.atom_energies is None for p in preds) else \
            np.stack([p.atom_energies for p in preds]).mean(0)
        out = Prediction(energy=energies.mean(0), atom_energies=atom_e,
                         energy_sigma=self.energy_sigma_scale * energies.std(0))
        if forces:
            stacked = np.stack([p.forces for p in preds])
            out.forces = stacked.mean(0)
            out.forces_sigma = self.forces_sigma_scale * stacked.std(0)
        return out

    def calibrate(self, valid: MLDataset) -> None:
        """Set the sigma scales that minimize the miscalibration area of the validation
        errors of the mean (forces; energies when ``valid`` has them)."""
        self.forces_sigma_scale = self.energy_sigma_scale = 1.0
        pred = self.predict(valid)
        if valid.forces is not None:
            self.forces_sigma_scale = area_scale(pred.forces - valid.forces, pred.forces_sigma)
        if valid.energies is not None:
            self.energy_sigma_scale = area_scale(pred.energy - valid.energies,
                                                 pred.energy_sigma)
        self.metadata.update(forces_sigma_scale=self.forces_sigma_scale,
                             energy_sigma_scale=self.energy_sigma_scale)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        names = []
        for k, member in enumerate(self.members):
            name = f"member_{k}"
            member.save(directory / name)
            names.append(name)
        return write_model_dir(directory, self.model_type, {"members": names}, None, self.metadata)

    @classmethod
    def load(cls, directory: str | Path, expected_type: str | None = None) -> Committee:
        info = read_model_json(directory, expected_type or cls.model_type)
        names = (info.get("config") or {}).get("members")
        if not isinstance(names, list) or not names or not all(
                isinstance(n, str) and n not in ("", ".", "..") and Path(n).name == n
                for n in names):  # members live in the directory itself, nowhere else
            raise InputError(f"{directory}: committee members must be a list of "
                             f"sub-directory names, got {names!r}")
        members = [load_potential(Path(directory) / name) for name in names]
        return cls(members, info.get("metadata"))


def train_committee(job: TrainingJob) -> Committee:
    """Train ``job.committee`` members of type ``job.model_type`` with seeds ``seed + k`` in
    ``job.out/member_k`` (each resumable, see :func:`ffparam.ml.registry.train_job`),
    calibrate its spread on ``job.valid`` and save the committee in ``job.out``."""
    from ffparam.ml.registry import train_job

    n = job.committee
    members = [
        train_job(replace(job, out=job.out / f"member_{k}", seed=job.seed + k, committee=1))
        for k in range(n)
    ]
    committee = Committee(members, {"n_members": n, "member_type": job.model_type})
    if job.valid is not None and len(job.valid):
        committee.calibrate(job.valid)
    write_model_dir(job.out, committee.model_type, {"members": [f"member_{k}" for k in range(n)]},
                    None, committee.metadata)
    return committee
