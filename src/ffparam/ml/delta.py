"""Δ-learning: an ML correction on top of a cheap physical baseline.

The correction model learns E_ref - E_baseline (and F_ref - F_baseline); a
:class:`DeltaPotential` adds the baseline back at prediction time, so the result is a
:class:`~ffparam.ml.potential.Potential` like any other and the ASE calculator, ``mlp md``
and ``mlp eval`` use it unchanged. The sum itself is :class:`ffparam.energy.DeltaModel`
(baseline + :class:`~ffparam.ml.energy_model.PotentialEnergyModel` of the correction).

Baselines (:class:`Baseline`):

* a reference method (``gfn2-xtb``, ``gfn1-xtb``, any single method of
  :mod:`ffparam.reference`): it treats any molecule of its elements (neutral, lowest
  spin); the training set's baseline labels are computed once through the reference
  :class:`~ffparam.reference.Store` (``baseline.db`` in the model directory) and an
  executor, so a rerun takes them from the Store;
* an OpenMM System XML (gas phase) of the molecule: atom count and masses must match it;
  the file is copied into the model directory with its SHA-256;
* a SMIRNOFF force field (a ``.offxml`` path, or ``sage``/``openff-X.Y.Z``): applied to the
  training molecule (bonds and bond orders perceived from its first frame), written as the
  System XML above; the ``.offxml`` given is copied next to it for the record.

Model directory: ``model.json`` (type ``delta``; config: the baseline record and the
correction's sub-directory), ``correction/`` (any saved model type), the baseline file(s).
Units: eV and Angstrom inside ``ml``, kcal/mol at the :mod:`ffparam.energy` edge.
"""

from __future__ import annotations

import hashlib
import itertools
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ffparam.energy import BoundModel, DeltaModel, EnergyModel, ModelOutput
from ffparam.errors import CalculationError, InputError, UnsupportedChemistryError
from ffparam.io.atomic import write_text_atomic
from ffparam.ml.batch import Batch
from ffparam.ml.checkpoint import MODEL_JSON, read_model_json, write_model_dir
from ffparam.ml.data import MLDataset, fit_reference_energies
from ffparam.ml.energy_model import PotentialEnergyModel
from ffparam.ml.potential import Potential, Prediction, load_potential
from ffparam.ml.registry import TrainingJob
from ffparam.units import EV_KCAL_MOL

MODEL_TYPE = "delta"
CORRECTION_DIR = "correction"
BASELINE_XML = "baseline.system.xml"
BASELINE_OFFXML = "baseline.offxml"
BASELINE_STORE = "baseline.db"
MASS_TOLERANCE_AMU = 0.5
"""Largest difference between a System particle's mass and its element's standard mass."""


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class OpenMMSystemModel(BoundModel):
    """A gas-phase OpenMM System (from its XML) bound to one molecule's atoms.

    Args:
        xml: the serialized ``openmm.System``.
        atomic_numbers: the molecule's atoms, in the System's particle order.
        name: label for reports.

    Raises:
        InputError: not a System XML, a periodic System, or particles that do not map
            onto the atoms (count, or a mass off its element's by more than 0.5 amu).
    """

    def __init__(self, xml: str, atomic_numbers, name: str = "openmm") -> None:
        import openmm

        super().__init__(atomic_numbers, name)
        try:
            system = openmm.XmlSerializer.deserialize(xml)
        except Exception as exc:
            raise InputError(f"{name}: not an OpenMM System XML "
                             f"({str(exc).strip().splitlines()[0][:120]})") from None
        if not isinstance(system, openmm.System):
            raise InputError(f"{name}: the XML holds a {type(system).__name__}, not a System")
        if system.usesPeriodicBoundaryConditions():
            raise InputError(f"{name}: a baseline System must be gas phase (non-periodic)")
        self.system = system
        self._check_atoms()

    def _check_atoms(self) -> None:
        from openmm import unit
        from openmm.app import element

        n = self.system.getNumParticles()
        if n != len(self.atomic_numbers):
            raise UnsupportedChemistryError(
                f"baseline {self.name} has {n} particles but the molecule has "
                f"{len(self.atomic_numbers)} atoms")
        for i, z in enumerate(self.atomic_numbers):
            mass = self.system.getParticleMass(i).value_in_unit(unit.dalton)
            expected = element.Element.getByAtomicNumber(z)
            if abs(mass - expected.mass.value_in_unit(unit.dalton)) > MASS_TOLERANCE_AMU:
                raise UnsupportedChemistryError(
                    f"baseline {self.name}: particle {i} has mass {mass:.3f} amu, the "
                    f"molecule's atom {i} is {expected.symbol} (atom order or molecule "
                    "differs)")

    def evaluate(self, positions: np.ndarray, forces: bool = True) -> ModelOutput:
        """Energies (n_conf,) kcal/mol and forces (n_conf, n_atoms, 3) kcal/mol/Angstrom of
        ``positions`` (n_conf, n_atoms, 3) or (n_atoms, 3) Angstrom (OpenMM Reference)."""
        from ffparam.mm.openmm_export import evaluate_openmm

        energy, force, _ = evaluate_openmm(self.system, self.batch(positions))
        return ModelOutput(energy_kcal_mol=energy, forces_kcal_mol_a=force if forces else None)


@dataclass(frozen=True)
class Baseline:
    """The physical model a Δ-potential adds its correction to.

    Attributes:
        kind: ``"method"`` (a reference method) or ``"openmm"`` (a System XML).
        label: what the user gave (method name, file path or force-field name).
        method: canonical method string (``kind == "method"``).
        xml: the System XML text (``kind == "openmm"``).
        atomic_numbers: the molecule the System belongs to (``kind == "openmm"``).
        offxml: the SMIRNOFF force field text it was built from, if any.
    """

    kind: str
    label: str
    method: str | None = None
    xml: str | None = None
    atomic_numbers: tuple[int, ...] | None = None
    offxml: str | None = None

    @property
    def name(self) -> str:
        return self.method if self.kind == "method" else Path(self.label).name

    def model(self, atomic_numbers) -> EnergyModel:
        """The baseline as an EnergyModel of the molecule with ``atomic_numbers``.

        Raises:
            UnsupportedChemistryError: a molecule the baseline cannot treat (an element
                the method lacks, another molecule than the System's).
        """
        numbers = tuple(int(z) for z in atomic_numbers)
        if self.kind == "method":
            from ffparam.reference import get_calculator

            try:
                return get_calculator(self.method, neutral_species(numbers))
            except UnsupportedChemistryError:
                raise
            except InputError as exc:
                raise UnsupportedChemistryError(f"baseline {self.method}: {exc}") from None
        if numbers != self.atomic_numbers:
            raise UnsupportedChemistryError(
                f"baseline {self.name} is a System of another molecule ({len(self.atomic_numbers)}"
                f" atoms); this one has {len(numbers)} atoms or another atom order")
        return OpenMMSystemModel(self.xml, numbers, self.name)

    def record(self) -> dict:
        """What ``model.json`` keeps (the files themselves are written by :meth:`write`)."""
        if self.kind == "method":
            return {"kind": "method", "method": self.method, "label": self.label}
        out = {"kind": "openmm", "label": self.label, "file": BASELINE_XML,
               "sha256": sha256_text(self.xml), "atomic_numbers": list(self.atomic_numbers)}
        if self.offxml is not None:
            out.update(offxml_file=BASELINE_OFFXML, offxml_sha256=sha256_text(self.offxml))
        return out

    def write(self, directory: Path) -> None:
        """Copy the baseline file(s) into the model ``directory``."""
        if self.xml is not None:
            write_text_atomic(directory / BASELINE_XML, self.xml)
        if self.offxml is not None:
            write_text_atomic(directory / BASELINE_OFFXML, self.offxml)

    @classmethod
    def from_record(cls, record: dict, directory: Path) -> Baseline:
        """The baseline of a saved Δ-model; a baseline file that changed is an error."""
        if not isinstance(record, dict) or record.get("kind") not in ("method", "openmm"):
            raise InputError(f"{directory}: malformed baseline record {record!r}")
        if record["kind"] == "method":
            return cls("method", str(record.get("label")), method=str(record["method"]))
        if record.get("file", BASELINE_XML) != BASELINE_XML:  # nothing outside the model
            raise InputError(f"{directory}: the baseline System must be {BASELINE_XML}, "
                             f"model.json names {record.get('file')!r}")
        path = directory / BASELINE_XML
        if not path.is_file():
            raise InputError(f"{directory}: baseline file {path.name} is missing")
        xml = path.read_text()
        if sha256_text(xml) != record.get("sha256"):
            raise InputError(f"{path} was modified after training (SHA-256 differs from "
                             "model.json); the correction belongs to the original baseline")
        return cls("openmm", str(record.get("label")), xml=xml,
                   atomic_numbers=tuple(int(z) for z in record["atomic_numbers"]))


def neutral_species(numbers: tuple[int, ...]):
    """A reference :class:`~ffparam.reference.Species` of a neutral molecule with
    ``numbers`` at its lowest spin (ML frames carry no charge or connectivity)."""
    from ffparam.chem.molecule import PERIODIC_SYMBOLS
    from ffparam.reference import Species

    formula = "".join(PERIODIC_SYMBOLS[z] for z in numbers)
    return Species(numbers=numbers, charge=0, multiplicity=1 + sum(numbers) % 2, bonds=(),
                   key=f"atoms:{'-'.join(map(str, numbers))}", name=formula)


FORCE_FIELD_NAMES = ("sage", "openff")


def resolve_baseline(text: str, data: MLDataset) -> Baseline:
    """The baseline named by ``text`` for the molecule of ``data``: a reference method,
    a System XML path, an ``.offxml`` path or an OpenFF force-field name; checked against
    every molecule in ``data`` before anything is computed.

    Raises:
        InputError: an unknown baseline or one that cannot treat the molecule.
    """
    text = str(text).strip()
    lower = text.lower()
    if lower.endswith(".offxml") or lower.split("-")[0].split("_")[0] in FORCE_FIELD_NAMES:
        baseline = _force_field_baseline(text, data)
    elif lower.endswith(".xml"):
        from ffparam.io.files import read_text, require_file

        xml = read_text(require_file(text, "baseline System XML"), "baseline System XML")
        baseline = Baseline("openmm", text, xml=xml,
                            atomic_numbers=_single_molecule(data, text))
    else:
        from ffparam.reference import MethodSpec

        baseline = Baseline("method", text, method=MethodSpec.parse(text).canonical())
    check_baseline(baseline, data)
    return baseline


def _single_molecule(data: MLDataset, label: str) -> tuple[int, ...]:
    molecules = _molecules(data)
    if len(molecules) != 1:
        raise InputError(f"baseline {label} is a force field of one molecule; the frames hold "
                         f"{len(molecules)} different molecules")
    return molecules[0]


def _molecules(data: MLDataset) -> list[tuple[int, ...]]:
    """The distinct atomic-number sequences of ``data``'s frames, first appearance first."""
    seen: dict[tuple[int, ...], None] = {}
    for i in range(len(data)):
        seen.setdefault(tuple(int(z) for z in data.frame_numbers(i)), None)
    return list(seen)


def _force_field_baseline(text: str, data: MLDataset) -> Baseline:
    """A SMIRNOFF force field applied to the molecule of ``data`` (bond orders from its
    first frame), as a System XML."""
    import openmm

    from ffparam.assign import assign_parameters
    from ffparam.chem.readers import read_molecule
    from ffparam.mm.openmm_export import to_openmm

    numbers = _single_molecule(data, text)
    with tempfile.TemporaryDirectory() as tmp:
        xyz = Path(tmp) / "molecule.xyz"
        data.subset([0]).write_extxyz(xyz)
        molecule = read_molecule(xyz, charge=0)
    system = assign_parameters(molecule, forcefield=text)
    xml = openmm.XmlSerializer.serialize(to_openmm(system))
    offxml = Path(text).read_text() if Path(text).is_file() else None
    return Baseline("openmm", text, xml=xml, atomic_numbers=numbers, offxml=offxml)


def check_baseline(baseline: Baseline, data: MLDataset) -> None:
    """UnsupportedChemistryError unless ``baseline`` treats every molecule of ``data``."""
    for numbers in _molecules(data):
        baseline.model(numbers)


def baseline_labels(baseline: Baseline, data: MLDataset, store_path: Path | None = None,
                    executor=None, progress: bool = False
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Baseline energies (n_frames,) eV and forces (n_atoms_total, 3) eV/Angstrom of every
    frame of ``data``, and a mask of the frames it succeeded on.

    A reference method runs through :func:`ffparam.reference.run_jobs` (``store_path``:
    the Store that caches it, in memory when None; ``executor``: where it runs); a failed
    calculation is recorded there and its frame masked out. A System is evaluated here.
    """
    energies = np.zeros(len(data))
    forces = np.zeros_like(data.positions)
    ok = np.ones(len(data), dtype=bool)
    if baseline.kind == "method":
        records = _reference_records(baseline, data, store_path, executor, progress)
        for i, record in enumerate(records):
            ok[i] = record.ok
            if record.ok:
                energies[i] = record.energy
                forces[data.offsets[i]:data.offsets[i + 1]] = record.forces
    else:
        for numbers in _molecules(data):
            idx = [i for i in range(len(data)) if tuple(data.frame_numbers(i)) == numbers]
            pos = np.stack([data.frame_positions(i) for i in idx])
            out = baseline.model(numbers).evaluate(pos)
            energies[idx] = out.energy_kcal_mol
            for k, i in enumerate(idx):
                forces[data.offsets[i]:data.offsets[i + 1]] = out.forces_kcal_mol_a[k]
    return energies / EV_KCAL_MOL, forces / EV_KCAL_MOL, ok


def _reference_records(baseline: Baseline, data: MLDataset, store_path: Path | None,
                       executor, progress: bool) -> list:
    from ffparam.reference import Job, Store, run_jobs

    jobs = [Job.create(neutral_species(tuple(int(z) for z in data.frame_numbers(i))),
                       baseline.method, "gradient", data.frame_positions(i))
            for i in range(len(data))]
    store = Store(store_path if store_path is not None else ":memory:")
    try:
        records, _ = run_jobs(jobs, store, executor, progress=progress,
                              description=f"baseline {baseline.method}")
    finally:
        store.close()
    return records


def delta_dataset(data: MLDataset, energies_ev: np.ndarray, forces_ev_a: np.ndarray,
                  ok: np.ndarray) -> MLDataset:
    """``data`` with the baseline subtracted (E - E_base eV, F - F_base eV/Angstrom), the
    frames where the baseline failed left out."""
    data.require_energies()
    data.require_forces()
    delta = MLDataset(data.numbers, data.positions, data.n_atoms,
                      data.energies - energies_ev, data.forces - forces_ev_a,
                      source=f"{data.source} - baseline")
    return delta.subset(np.nonzero(ok)[0])


class DeltaPotential(Potential):
    """``baseline`` + ``correction``: a Potential whose predictions are the sum.

    Energies and forces add; the correction's uncertainty is the model's (the baseline is
    exact for itself); per-atom energies are the correction's plus the baseline energy
    spread evenly over the atoms (the baseline has no atomic decomposition), so they still
    sum to the total.
    """

    model_type = MODEL_TYPE

    def __init__(self, correction: Potential, baseline: Baseline,
                 metadata: dict | None = None) -> None:
        self.correction = correction
        self.baseline = baseline
        self.metadata = metadata or {}
        self._models: dict[tuple, DeltaModel] = {}

    @property
    def elements(self) -> tuple[int, ...]:
        return self.correction.elements

    @property
    def has_uncertainty(self) -> bool:
        return self.correction.has_uncertainty

    def energy_model(self, atomic_numbers, uncertainty: bool = True,
                     atom_energies: bool = True) -> DeltaModel:
        """The sum as an :class:`~ffparam.energy.EnergyModel` of one molecule (cached);
        ``atom_energies=False`` spares the correction's per-atom energies (MD)."""
        numbers = tuple(int(z) for z in atomic_numbers)
        key = (numbers, bool(uncertainty), bool(atom_energies))
        if key not in self._models:
            correction = PotentialEnergyModel(self.correction, numbers, uncertainty,
                                              name=f"delta-{self.correction.model_type}",
                                              atom_energies=atom_energies)
            self._models[key] = DeltaModel(self.baseline.model(numbers), correction)
        return self._models[key]

    def predict_batch(self, batch: Batch, forces: bool = True, uncertainty: bool = False,
                      atom_energies: bool = True) -> Prediction:
        numbers = batch.numbers.numpy()
        positions = batch.positions.detach().double().numpy()
        starts = np.concatenate([[0], np.cumsum(batch.n_atoms.numpy())])
        frames = [(tuple(numbers[a:b].tolist()), positions[a:b])
                  for a, b in itertools.pairwise(starts)]
        parts: list[Prediction | None] = [None] * len(frames)
        for molecule in dict.fromkeys(f[0] for f in frames):
            idx = [i for i, f in enumerate(frames) if f[0] == molecule]
            out = self.energy_model(molecule, uncertainty, atom_energies).evaluate(
                np.stack([frames[i][1] for i in idx]), forces=forces)
            for k, i in enumerate(idx):
                parts[i] = _frame_prediction(out, k, len(molecule))
        return Prediction.concatenate(parts)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        self.correction.save(directory / CORRECTION_DIR)
        return write_delta_dir(directory, self.baseline, self.correction.model_type,
                               self.metadata)

    @classmethod
    def load(cls, directory: str | Path, expected_type: str | None = None) -> DeltaPotential:
        directory = Path(directory)
        info = read_model_json(directory, expected_type or MODEL_TYPE)
        config = info.get("config") or {}
        if config.get("correction") != CORRECTION_DIR:
            raise InputError(f"{directory}: a Δ-model's correction lives in "
                             f"{CORRECTION_DIR}/, model.json says {config.get('correction')!r}")
        baseline = Baseline.from_record(config.get("baseline"), directory)
        return cls(load_potential(directory / CORRECTION_DIR), baseline, info.get("metadata"))


def _frame_prediction(out: ModelOutput, k: int, n_atoms: int) -> Prediction:
    """Frame ``k`` of ``out`` (kcal/mol) as a :class:`Prediction` (eV)."""
    def ev(values):
        return None if values is None else np.asarray(values[k]) / EV_KCAL_MOL

    energy = out.energy_kcal_mol[k] / EV_KCAL_MOL
    atom_e = ev(out.atom_energies_kcal_mol)
    # the baseline has no atomic decomposition: its energy is spread evenly over the atoms
    atom_e = np.full(n_atoms, energy / n_atoms) if atom_e is None else \
        atom_e + (energy - atom_e.sum()) / n_atoms
    sigma = None if out.energy_sigma_kcal_mol is None else \
        np.array([out.energy_sigma_kcal_mol[k] / EV_KCAL_MOL])
    return Prediction(np.array([energy]), ev(out.forces_kcal_mol_a), atom_e, sigma,
                      ev(out.forces_sigma_kcal_mol_a))


def write_delta_dir(directory: Path, baseline: Baseline, correction_type: str,
                    metadata: dict | None = None) -> Path:
    """``model.json`` of a Δ-model and its baseline file(s) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    baseline.write(directory)
    config = {"correction": CORRECTION_DIR, "baseline": baseline.record()}
    meta = {"correction_type": correction_type, "baseline": baseline.name, **(metadata or {})}
    return write_model_dir(directory, MODEL_TYPE, config, None, meta)


@dataclass(frozen=True)
class DeltaTraining:
    """What :func:`train_delta` did: the model, and the frames it learned on."""

    potential: DeltaPotential
    train: MLDataset
    valid: MLDataset
    n_failed: int


def train_delta(job: TrainingJob, baseline: Baseline, executor=None) -> DeltaTraining:
    """Train ``job``'s model on E - E_baseline and save the Δ-model in ``job.out``.

    Baseline labels of the training and validation frames come from
    :func:`baseline_labels` (a reference method: cached in ``job.out/baseline.db``); a
    frame the baseline failed on is left out. The correction's per-element energies are
    refitted on the differences (``job.reference_energies`` belong to the reference).
    The correction is trained (resumably) in ``job.out/correction``.

    Raises:
        InputError: ``job.out`` holds another model type; UnsupportedChemistryError: the
            baseline cannot treat the molecule; CalculationError: the baseline failed on
            every training frame.
    """
    from ffparam.io.files import check_output_dir
    from ffparam.ml.registry import train_job

    out = check_output_dir(job.out)
    if (out / MODEL_JSON).is_file() and read_model_json(out)["model_type"] != MODEL_TYPE:
        raise InputError(f"{out} holds a {read_model_json(out)['model_type']} model, not a "
                         "Δ-model; use another --out directory")
    check_baseline(baseline, job.train)
    check_baseline(baseline, job.valid)
    out.mkdir(parents=True, exist_ok=True)
    store = out / BASELINE_STORE if baseline.kind == "method" else None
    sets, failed = [], 0
    for data in (job.train, job.valid):
        labels = baseline_labels(baseline, data, store, executor, job.progress)
        failed += int((~labels[2]).sum())
        sets.append(delta_dataset(data, *labels))
    if len(sets[0]) == 0:
        raise CalculationError(f"baseline {baseline.name} failed on every training frame")
    refs = fit_reference_energies(sets[0])
    correction = train_job(replace(job, train=sets[0], valid=sets[1], out=out / CORRECTION_DIR,
                                   reference_energies=refs))
    write_delta_dir(out, baseline, correction.model_type,
                    {"n_train": len(sets[0]), "n_valid": len(sets[1]),
                     "n_baseline_failed": failed})
    potential = DeltaPotential(correction, baseline)
    return DeltaTraining(potential, sets[0], sets[1], failed)


def train_delta_job(job: TrainingJob) -> DeltaPotential:
    """The registry trainer of the ``delta`` type: ``job.options["baseline"]`` names the
    baseline (see :func:`resolve_baseline`), the other options and ``job.model_type`` are
    the correction's."""
    options = dict(job.options)
    if "baseline" not in options:
        raise InputError("a Δ-model needs a baseline (option baseline=gfn2-xtb, a System "
                         "XML or an .offxml)")
    baseline = resolve_baseline(options.pop("baseline"), job.train)
    return train_delta(replace(job, options=options), baseline).potential


__all__ = ["Baseline", "DeltaPotential", "DeltaTraining", "OpenMMSystemModel",
           "baseline_labels", "delta_dataset", "resolve_baseline", "train_delta",
           "train_delta_job"]
