"""``ffparam qmmm``: QM/MM single points of a molecule in snapshots of a solvent box.

Steps (each stored or checkpointed, so a rerun recomputes nothing):

1. Parameterize the solute (``forcefield`` + ``charges``) and the solvent (water: the
   force field's TIP3P library charges; any other SMILES: ``charges``).
2. Pack ``n_solvent`` solvent molecules with packmol (:func:`ffparam.liquid.box.pack_box`)
   at the solvent density, put the solute's conformer at the box centre and delete the
   solvent molecules that overlap it (any atom closer than ``insert_gap_a``).
3. One OpenMM System of the whole box (the molecules combined into one parameterized
   system, :func:`ffparam.liquid.openmm_system.build_box_system`: PME, the force field's
   constraints), NPT MD with the liquid module's resumable runner
   (:func:`ffparam.liquid.simulate.run_phase`); with ``freeze_solute`` (default) the solute
   is held rigid at its conformer (zero masses, the IPolQ protocol), so every snapshot has
   the same solute geometry up to a translation, which is removed.
4. Per snapshot: QM region = the solute; MM = the whole solvent molecules with any atom
   within ``cutoff_a`` of a solute atom (minimum image), as TIP3P/force-field point charges
   (:mod:`ffparam.reference.qmmm`); one QM/MM job per snapshot through the runtime executor
   and the Store, plus the same task for the solute in the gas phase.
5. ``OUT/qmmm.json``: per-snapshot energy, dipole and environment size, and the gas-phase
   values (``schema_version`` 1).

Bad input (box edge under twice ``cutoff_a`` or the MD cutoff, a non-PySCF method) is
refused before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.io.atomic import write_json_atomic
from ffparam.params.system import ParameterizedSystem
from ffparam.reference.qmmm import (
    QMMM_TASKS,
    QMMMRegion,
    check_qmmm_method,
    environment_from_systems,
)
from ffparam.reference.records import Record, Species
from ffparam.settings import Settings, require_at_least, require_choice, require_positive
from ffparam.units import DEBYE_E_ANGSTROM

SCHEMA_VERSION = 1
WATER_DENSITY_G_ML = 0.997
"""Liquid water at 298 K, g/mL (packing density of a water box)."""


@dataclass(frozen=True)
class QMMMSettings(Settings):
    """How ``ffparam qmmm`` samples and computes.

    Attributes:
        solvent: ``water`` (TIP3P from the force field's library charges) or a SMILES.
        method: PySCF QM method of the solute (HF/DFT; xtb has no point charges).
        task: ``energy``, ``gradient`` (forces on QM and MM atoms) or ``esp``.
        n_frames: snapshots (one QM/MM calculation each).
        n_solvent: solvent molecules packed before the solute is inserted.
        cutoff_a: QM/MM cutoff, Angstrom: solvent molecules with an atom this close to a
            solute atom are point charges (whole molecules).
        md_cutoff_a: PME/LJ real-space cutoff of the MD, Angstrom.
        density_g_ml: solvent packing density, g/mL (None: 0.997 for water, else the
            liquid module's van der Waals guess).
        temperature_k, pressure_atm: NPT state, K and atm.
        equilibration_ps: MD before the first snapshot, ps.
        interval_ps: MD between snapshots, ps.
        forcefield: force field of solute and solvent (``sage``, ``gaff2``, a .offxml).
        charges: partial charges of the solute (and a non-water solvent).
        freeze_solute: hold the solute rigid at its conformer during the MD.
        insert_gap_a: solvent molecules with an atom closer than this to the inserted
            solute are deleted, Angstrom.
        seed: packmol and Langevin seed.
        platform: OpenMM platform (``CPU``, ``CUDA``, ``Reference``).
        threads: CPU-platform threads (None: OpenMM's default).
    """

    solvent: str = "water"
    method: str = "hf/6-31g*"
    task: Literal["energy", "gradient", "esp"] = "gradient"
    n_frames: int = 4
    n_solvent: int = 300
    cutoff_a: float = 9.0
    md_cutoff_a: float = 9.0
    density_g_ml: float | None = None
    temperature_k: float = 298.15
    pressure_atm: float = 1.0
    equilibration_ps: float = 10.0
    interval_ps: float = 2.0
    forcefield: str = "sage"
    charges: str = "am1bcc"
    freeze_solute: bool = True
    insert_gap_a: float = 2.2
    seed: int = 2024
    platform: str = "CPU"
    threads: int | None = None

    what: ClassVar[str] = "QM/MM settings"

    def __post_init__(self) -> None:
        require_choice(self, "task", QMMM_TASKS)
        require_at_least(self, 1, "n_frames", "threads")
        require_at_least(self, 2, "n_solvent")
        require_positive(self, "cutoff_a", "md_cutoff_a", "temperature_k", "pressure_atm",
                         "interval_ps", "insert_gap_a", "density_g_ml")
        if self.equilibration_ps < 0:
            raise InputError(f"equilibration_ps must not be negative, got {self.equilibration_ps}")
        check_qmmm_method(self.method)

    @property
    def is_water(self) -> bool:
        return self.solvent.strip().lower() in ("water", "o", "tip3p")


@dataclass
class QMMMResult:
    """What :func:`run_qmmm` computed.

    Attributes:
        solute: the solute's parameterized system.
        solvent: one solvent molecule's parameterized system.
        regions: per snapshot, the QM region in its point charges.
        records: per snapshot, the QM/MM record (same order).
        gas: the same task for the solute alone at the first snapshot's geometry.
        summary_text: the run summary (jobs cached/computed/failed).
    """

    solute: ParameterizedSystem
    solvent: ParameterizedSystem
    regions: list[QMMMRegion]
    records: list[Record]
    gas: Record
    summary_text: str

    def to_json(self) -> dict:
        """Plain data for ``qmmm.json`` (kcal/mol, Debye)."""
        def dipole(record: Record) -> float | None:
            if record.dipole is None:
                return None
            return float(np.linalg.norm(record.dipole) / DEBYE_E_ANGSTROM)

        frames = [{"frame": k, "status": rec.status, "key": rec.key,
                   "energy_kcal_mol": rec.energy, "dipole_debye": dipole(rec),
                   "n_mm_molecules": len(region.environment) // self.solvent.n_atoms,
                   "n_charges": len(region.environment), "error": rec.error}
                  for k, (region, rec) in enumerate(zip(self.regions, self.records))]
        return {"schema_version": SCHEMA_VERSION, "solute": self.solute.molecule.name,
                "method": self.gas.method, "frames": frames,
                "gas": {"energy_kcal_mol": self.gas.energy, "dipole_debye": dipole(self.gas),
                        "status": self.gas.status, "key": self.gas.key}}


def prepare_solvent(settings: QMMMSettings) -> ParameterizedSystem:
    """One solvent molecule, parameterized (water: the force field's library charges)."""
    from ffparam.assign import assign_parameters
    from ffparam.liquid.prepare import prepare_system

    if settings.is_water:
        return assign_parameters(solvent_molecule(settings), settings.forcefield)
    return prepare_system(settings.solvent, settings.forcefield, settings.charges)


def solvent_density(settings: QMMMSettings, solvent: Molecule) -> float:
    """Packing density, g/mL: the setting, else water's, else the van der Waals guess."""
    from ffparam.liquid.box import guess_density

    if settings.density_g_ml is not None:
        return settings.density_g_ml
    return WATER_DENSITY_G_ML if settings.is_water else guess_density(solvent)


def solvent_molecule(settings: QMMMSettings) -> Molecule:
    """The solvent molecule with one conformer (no charges computed)."""
    if settings.is_water:
        return Molecule.from_smiles("O", name="water").generate_conformers(1)
    molecule = Molecule.from_input(settings.solvent)
    return molecule if molecule.n_conformers else molecule.generate_conformers(1)


def box_edge_a(settings: QMMMSettings, solvent: Molecule | None = None) -> float:
    """The packed box edge, Angstrom (``n_solvent`` molecules at the solvent density),
    checked against twice the cutoffs (InputError) before anything is computed."""
    from ffparam.liquid.box import box_length_for_density, molar_mass

    solvent = solvent or solvent_molecule(settings)
    density = solvent_density(settings, solvent)
    length = box_length_for_density(molar_mass(solvent), settings.n_solvent, density)
    check_box(length, settings)
    return length


def check_box(box_length_a: float, settings: QMMMSettings) -> None:
    """InputError unless the box edge is at least twice the QM/MM and the MD cutoffs."""
    cutoff = max(settings.cutoff_a, settings.md_cutoff_a)
    if box_length_a < 2.0 * cutoff:
        raise InputError(f"QM/MM box edge {box_length_a:.2f} A is smaller than twice the "
                         f"cutoff ({cutoff} A): use more solvent molecules (n_solvent) or a "
                         "shorter cutoff")


def insert_solute(solute_xyz: np.ndarray, solvent_xyz: np.ndarray, n_solvent_atoms: int,
                  box_length_a: float, gap_a: float) -> tuple[np.ndarray, list[int]]:
    """The solute (n, 3) Angstrom moved to the box centre and the indices of the solvent
    molecules (rows of ``solvent_xyz`` in blocks of ``n_solvent_atoms``) kept: those with
    no atom within ``gap_a`` of a solute atom (minimum image)."""
    centred = solute_xyz - solute_xyz.mean(axis=0) + box_length_a / 2.0
    blocks = solvent_xyz.reshape(-1, n_solvent_atoms, 3)
    delta = blocks[:, :, None, :] - centred[None, None, :, :]
    delta -= box_length_a * np.round(delta / box_length_a)
    closest = np.linalg.norm(delta, axis=-1).min(axis=(1, 2))
    return centred, [int(m) for m in np.flatnonzero(closest >= gap_a)]


def combined_system(solute: ParameterizedSystem, solvent: ParameterizedSystem,
                    n_solvent: int, settings: QMMMSettings) -> ParameterizedSystem:
    """Solute + ``n_solvent`` solvent molecules as one parameterized system (atoms: the
    solute's, then each solvent molecule's), with the same charges as the parts."""
    from rdkit import Chem

    from ffparam.assign import assign_parameters

    rdmol = solute.molecule.rdmol
    for _ in range(n_solvent):
        rdmol = Chem.CombineMols(rdmol, solvent.molecule.rdmol)
    molecule = Molecule.from_rdkit(rdmol, name=f"{solute.molecule.name} in {n_solvent} "
                                   f"{solvent.molecule.name}")
    charges = np.concatenate([solute.charges()] + [solvent.charges()] * n_solvent)
    return assign_parameters(molecule, settings.forcefield, charges=charges)


def snapshot_region(frame_xyz: np.ndarray, box_length_a: float, reference_xyz: np.ndarray,
                    solute: ParameterizedSystem, solvent: ParameterizedSystem,
                    settings: QMMMSettings) -> QMMMRegion:
    """The QM region of one MD frame (all atoms (n, 3) Angstrom, cubic ``box_length_a``):
    the solute (at ``reference_xyz`` when frozen: the frame translated onto it) in the
    charges of the whole solvent molecules within ``cutoff_a`` (minimum image)."""
    check_box(box_length_a, settings)
    n_qm = solute.n_atoms
    frame = np.asarray(frame_xyz, dtype=np.float64)
    qm_xyz = frame[:n_qm]
    if settings.freeze_solute:
        frame = frame + (reference_xyz.mean(axis=0) - qm_xyz.mean(axis=0))
        qm_xyz = reference_xyz
    blocks = frame[n_qm:].reshape(-1, solvent.n_atoms, 3)
    shift = blocks[:, :1, :] - qm_xyz.mean(axis=0)
    blocks = blocks - box_length_a * np.round(shift / box_length_a)
    distance = np.linalg.norm(blocks[:, :, None, :] - qm_xyz[None, None], axis=-1)
    inside = np.flatnonzero(distance.min(axis=(1, 2)) <= settings.cutoff_a)
    environment = environment_from_systems([solvent] * len(inside), list(blocks[inside]))
    return QMMMRegion(Species.from_molecule(solute.molecule), qm_xyz.copy(), environment, (0,))


def simulate_box(solute: ParameterizedSystem, solvent: ParameterizedSystem,
                 settings: QMMMSettings, directory: Path, geometry: np.ndarray | None = None):
    """Pack, insert the solute (at ``geometry`` (n, 3) Angstrom, default its first
    conformer), build and run the box; returns (trajectory, reference solute xyz)."""
    from ffparam.liquid.box import pack_box
    from ffparam.liquid.openmm_system import build_box_system
    from ffparam.liquid.simulate import PhaseSpec, run_phase

    length = box_edge_a(settings, solvent.molecule)
    liquid = md_settings(settings)
    packed = pack_box(solvent.molecule, settings.n_solvent,
                      solvent_density(settings, solvent.molecule), seed=settings.seed,
                      workdir=directory)
    start = solute.molecule.conformers[0] if geometry is None else geometry
    solute_xyz, kept = insert_solute(np.asarray(start, dtype=np.float64), packed.positions,
                                     solvent.n_atoms, length, settings.insert_gap_a)
    blocks = packed.positions.reshape(-1, solvent.n_atoms, 3)[kept]
    box = combined_system(solute, solvent, len(kept), settings)
    system = build_box_system(box, 1, length, liquid)
    if settings.freeze_solute:
        freeze_atoms(system, range(solute.n_atoms))
    spec = PhaseSpec(system, np.concatenate([solute_xyz, blocks.reshape(-1, 3)]), length,
                     settings.temperature_k, settings.pressure_atm, settings.equilibration_ps,
                     settings.n_frames * settings.interval_ps, settings.interval_ps,
                     f"{solute.molecule.name} in {solvent.molecule.name}")
    trajectory = run_phase(directory / "md", spec, liquid)
    return trajectory, solute_xyz


def md_settings(settings: QMMMSettings):
    """The liquid module's run settings for the box MD (its cutoff, seed, platform)."""
    from ffparam.liquid.settings import LiquidSettings

    return LiquidSettings(n_molecules=settings.n_solvent + 1, cutoff_a=settings.md_cutoff_a,
                          switch_a=settings.md_cutoff_a - 1.0 if settings.md_cutoff_a > 1.0
                          else None, seed=settings.seed, platform=settings.platform,
                          checkpoint_interval_ps=settings.interval_ps,
                          save_interval_ps=settings.interval_ps,
                          production_ps=4 * settings.interval_ps,
                          threads=settings.threads)


def freeze_atoms(system, atoms) -> None:
    """Hold ``atoms`` of an OpenMM System fixed: zero mass, and their constraints removed
    (OpenMM allows no constraint on a massless particle)."""
    frozen = {int(a) for a in atoms}
    for index in sorted(frozen):
        system.setParticleMass(index, 0.0)
    for k in reversed(range(system.getNumConstraints())):
        i, j, _ = system.getConstraintParameters(k)
        if i in frozen or j in frozen:
            system.removeConstraint(k)


def run_qmmm(solute_input: str | ParameterizedSystem, out: str | Path,
             settings: QMMMSettings | None = None, store=None, executor=None,
             progress: bool = False, geometry: np.ndarray | None = None) -> QMMMResult:
    """QM/MM calculations of ``solute_input`` (SMILES or molecule file, parameterized with
    the settings' force field and charges; or a ParameterizedSystem) in
    ``settings.n_frames`` snapshots of a solvent box; writes ``OUT/qmmm.json`` and returns
    the records.

    ``store`` (a :class:`~ffparam.reference.store.Store`, default ``OUT/qmmm.sqlite``) and
    ``executor`` (default in-process) run the calculations; the MD resumes from ``OUT/md``.
    ``geometry`` (n, 3) Angstrom: the solute's start (frozen) geometry, default its first
    conformer.
    """
    from ffparam.liquid.prepare import prepare_system
    from ffparam.reference.compute import compute
    from ffparam.reference.qmmm import compute_qmmm
    from ffparam.reference.store import Store

    settings = settings or QMMMSettings()
    box_edge_a(settings)  # bad input refused before anything runs
    out = Path(out)
    solute = solute_input if isinstance(solute_input, ParameterizedSystem) else prepare_system(
        solute_input, settings.forcefield, settings.charges, cache_file=out / "solute.json")
    solvent = prepare_solvent(settings)
    out.mkdir(parents=True, exist_ok=True)
    trajectory, reference = simulate_box(solute, solvent, settings, out, geometry)
    regions = [snapshot_region(frame, float(box[0]), reference, solute, solvent, settings)
               for frame, box in zip(trajectory.positions, trajectory.box_lengths)]
    own = store is None
    store = Store(out / "qmmm.sqlite") if own else store
    try:
        records, summary = compute_qmmm(regions, settings.method, settings.task, store,
                                        executor, progress=progress)
        gas = compute(solute.molecule, regions[0].geometry[None], settings.method,
                      settings.task, store=store, executor=executor)[0]
    finally:
        if own:
            store.close()
    result = QMMMResult(solute, solvent, regions, records, gas, summary.text())
    write_json_atomic(out / "qmmm.json", result.to_json())
    return result
