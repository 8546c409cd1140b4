"""The one table of ML model types: how each is trained and how a saved one is loaded.

:data:`MODELS` maps the ``model_type`` written in a model directory's ``model.json`` (and
the ``--model`` of ``ffparam mlp train``) to a :class:`ModelType`: the
:class:`~ffparam.ml.potential.Potential` class that loads it, the trainer that builds it
from a :class:`TrainingJob`, and for native PyTorch networks the network class. Targets are
``"module:name"`` strings imported on first use, so reading the table imports neither
PyTorch models nor mace-torch. The workflow (:mod:`ffparam.workflows.mlp`), loading
(:func:`ffparam.ml.potential.load_potential`) and the CLI (``ffparam mlp``) read only this
table.

Adding a model type: its module (a ``Potential`` subclass with ``save``/``load``, its
``...Settings`` and a trainer ``train_xxx(job: TrainingJob) -> Potential`` that saves the
model in ``job.out``), one :class:`ModelType` row here, and its tests.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ffparam.errors import InputError

if TYPE_CHECKING:
    from ffparam.ml.data import MLDataset
    from ffparam.ml.potential import Potential


@dataclass(frozen=True)
class TrainingJob:
    """One training request, the same for every model type (eV, Angstrom, CPU seconds).

    Attributes:
        model_type: a key of :data:`MODELS` (the member type when ``committee`` > 1).
        train, valid: frames with energies (eV) and forces (eV/Angstrom).
        out: the model directory (written by the trainer).
        reference_energies: per-element energies (eV) subtracted before learning.
        seed: random seed (committee member k gets ``seed + k``).
        time_budget_s: CPU seconds per model (networks, MACE; the GP has no budget).
        max_epochs: epoch limit (networks, MACE).
        options: model or training options by name (the model type's settings fields).
        resume: continue an interrupted run in ``out``; a finished model is reused.
        progress: show a progress bar.
        committee: number of members; > 1 trains a committee.
    """

    model_type: str
    train: MLDataset
    valid: MLDataset
    out: Path
    reference_energies: dict[int, float]
    seed: int = 0
    time_budget_s: float | None = None
    max_epochs: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    resume: bool = True
    progress: bool = False
    committee: int = 1


def _resolve(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class ModelType:
    """How one model type is trained and loaded.

    Attributes:
        name: the ``model_type`` of its ``model.json``.
        potential: ``"module:Class"``, a :class:`~ffparam.ml.potential.Potential` whose
            ``load(directory)`` reads a saved model.
        trainer: ``"module:function"`` taking a :class:`TrainingJob`, returning the
            trained potential after saving it in ``job.out``.
        network: ``"module:Class"`` of the PyTorch network (native networks only).
        default_options: model options every run records unless given (native networks:
            their architecture; recorded in ``training.json``, which a resumed run must
            match, so they stay as they are for old runs to resume).
        reuse_saved: resuming, a finished model in ``job.out`` is returned as it is
            (models without a checkpoint to resume from).
        committee_member: may be trained as a member of a committee.
        selectable: trained by name (``--model``); a committee is asked for with
            ``--committee N`` instead.
    """

    name: str
    potential: str
    trainer: str
    network: str | None = None
    default_options: dict[str, Any] = field(default_factory=dict)
    reuse_saved: bool = False
    committee_member: bool = True
    selectable: bool = True

    def potential_class(self) -> type[Potential]:
        return _resolve(self.potential)

    def network_class(self) -> type:
        if self.network is None:
            raise InputError(f"{self.name} is not a native network")
        return _resolve(self.network)

    def train(self, job: TrainingJob) -> Potential:
        """Run this type's trainer on ``job`` (see :func:`train_job` for resuming)."""
        return _resolve(self.trainer)(job)


_NETWORK_TRAINER = "ffparam.ml.training:train_network_job"

MODELS: dict[str, ModelType] = {
    m.name: m
    for m in (
        ModelType("ani", "ffparam.ml.potential:NetworkPotential", _NETWORK_TRAINER,
                  network="ffparam.ml.models.ani:ANIModel",
                  default_options={"hidden": [128, 96, 64]}),
        ModelType("schnet", "ffparam.ml.potential:NetworkPotential", _NETWORK_TRAINER,
                  network="ffparam.ml.models.schnet:SchNetModel",
                  default_options={"cutoff": 5.0, "n_features": 64, "n_rbf": 32,
                                   "n_interactions": 3}),
        ModelType("gpr", "ffparam.ml.models.gp.model:GaussianProcessPotential",
                  "ffparam.ml.models.gp.fit:train_gp", reuse_saved=True,
                  committee_member=False),
        ModelType("mace", "ffparam.ml.models.mace:MacePotential",
                  "ffparam.ml.models.mace:train_mace_job", reuse_saved=True),
        ModelType("committee", "ffparam.ml.committee:Committee",
                  "ffparam.ml.committee:train_committee", selectable=False),
        ModelType("delta", "ffparam.ml.delta:DeltaPotential",
                  "ffparam.ml.delta:train_delta_job", committee_member=False,
                  selectable=False),
    )
}
"""Model type name -> how to train and load it."""


def selectable_models() -> tuple[str, ...]:
    """The model types trained by name (``ffparam mlp train --model``)."""
    return tuple(name for name, kind in MODELS.items() if kind.selectable)


def lookup_model(name: str, where: str = "model type") -> ModelType:
    """The registry row of ``name``; InputError naming the known ones otherwise."""
    if not isinstance(name, str) or name not in MODELS:
        raise InputError(f"unknown {where} {name!r} (known: {', '.join(MODELS)})")
    return MODELS[name]


def train_job(job: TrainingJob) -> Potential:
    """Train the model ``job`` asks for (a committee when ``job.committee`` > 1) and save it
    in ``job.out``; resuming, a finished model of a ``reuse_saved`` type is loaded instead.

    An ``out`` that holds a model of another type is an error (nothing is overwritten).
    """
    from ffparam.io.files import check_output_dir
    from ffparam.ml.checkpoint import MODEL_JSON, read_model_json
    from ffparam.ml.potential import load_potential

    if job.model_type not in selectable_models():
        raise InputError(f"unknown model {job.model_type!r} (choose "
                         f"{', '.join(selectable_models())})")
    member = MODELS[job.model_type]
    kind = MODELS["committee"] if job.committee > 1 else member
    if kind is not member and not member.committee_member:
        raise InputError(f"a {member.name} model cannot be a committee member; train it "
                         "without --committee")
    out = check_output_dir(job.out)
    if (out / MODEL_JSON).is_file():
        saved = read_model_json(out)["model_type"]
        if saved != kind.name:
            raise InputError(f"{out} holds a {saved} model, not {kind.name}; "
                             "use another --out directory")
        if job.resume and member.reuse_saved:
            return load_potential(out)
    return kind.train(replace(job, out=out))


__all__ = ["MODELS", "ModelType", "TrainingJob", "lookup_model", "selectable_models",
           "train_job"]
