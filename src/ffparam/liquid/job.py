"""One liquid estimate as a picklable job: pack, simulate both phases (resumable), compute
the properties and their LJ-parameter derivatives.

:func:`simulate_liquid` runs in a worker process (or in the caller). It writes only its
own run directory: ``gas/`` (checkpointed frames of the one molecule, plain or tempered,
see :mod:`ffparam.liquid.simulate` and :mod:`ffparam.liquid.tempering`; run first so the
box can start from its conformers), ``box.npz`` (packmol box), ``liquid/`` and
``liquid_lj.npz``/``gas_lj.npz`` (cached frame sums). The
:class:`~ffparam.liquid.properties.LiquidResult` it returns is recorded by the caller.
:func:`run_liquid_jobs` runs many of them on an :class:`~ffparam.runtime.Executor`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ffparam.errors import InputError
from ffparam.io.atomic import atomic_output
from ffparam.liquid.box import box_density, guess_density, molar_mass, pack_box
from ffparam.liquid.conformers import torsion_drift
from ffparam.liquid.lj import (
    CutoffScheme,
    FrameStatistics,
    LJLayout,
    LJModel,
    box_frame_statistics,
    gas_frame_statistics,
)
from ffparam.liquid.openmm_system import build_box_system, build_gas_system
from ffparam.liquid.properties import LiquidResult, liquid_properties, select_equilibrated
from ffparam.liquid.settings import LiquidSettings
from ffparam.liquid.simulate import PhaseSpec, PhaseTrajectory, run_phase
from ffparam.liquid.tempering import run_tempering, temperature_ladder
from ffparam.params.parameter_set import ParameterKey
from ffparam.params.system import ParameterizedSystem
from ffparam.runtime import Executor, Failure, SerialExecutor

GAS_PLATFORM = "Reference"
"""OpenMM platform of the one-molecule gas phase: for a few atoms without cutoff the
Reference platform runs 5-30x faster than CPU (no neighbour-list/thread overhead)."""


@dataclass
class LiquidJob:
    """Everything one liquid estimate needs (picklable).

    Attributes:
        name: label. system: the parameterized molecule (with a conformer) at the
        parameters to simulate. temperature_k, pressure_atm: the state.
        directory: run directory. settings: simulation settings.
        density_guess_g_ml: packing density guess (None: from the molecular volume).
        gradient_keys: parameters to differentiate by (empty: every LJ parameter the
            molecule uses).
    """

    name: str
    system: ParameterizedSystem
    temperature_k: float
    pressure_atm: float
    directory: Path
    settings: LiquidSettings
    density_guess_g_ml: float | None = None
    gradient_keys: list[ParameterKey] = field(default_factory=list)

    @property
    def key(self) -> str:
        return str(self.directory)


def lj_keys(system: ParameterizedSystem) -> list[ParameterKey]:
    """Every sigma and epsilon key the molecule's atoms use, in vector order."""
    keys = system.parameters.keys()
    used = sorted(set(system.nonbonded.sigma_index.tolist())
                  | set(system.nonbonded.epsilon_index.tolist()))
    return [keys[i] for i in used]


def simulate_liquid(job: LiquidJob, progress: Callable[[str, float, float], None] | None = None
                    ) -> LiquidResult:
    """Run (or resume) both phases of ``job`` and return the result (see module doc)."""
    settings = job.settings
    system = job.system
    molecule = system.molecule
    molecule.require_conformers()
    directory = Path(job.directory)
    directory.mkdir(parents=True, exist_ok=True)
    values = system.parameters.vector()
    keys = list(job.gradient_keys) or lj_keys(system)
    def report(stage: str, done: float, total: float, phase: str) -> None:
        if progress:
            progress(f"{phase} {stage}", done, total)

    gas_settings = settings.replace(platform=GAS_PLATFORM, threads=None)
    gas_spec = PhaseSpec(
        build_gas_system(system, settings, values), molecule.conformers[0], None,
        job.temperature_k, None, settings.gas_equilibration_ps, settings.gas_production_ps,
        settings.gas_save_interval_ps, f"{job.name} gas")
    if settings.gas_replicas > 1:
        ladder = temperature_ladder(job.temperature_k, settings.gas_max_temperature_k,
                                    settings.gas_replicas)
        gas = run_tempering(directory / "gas", gas_spec, gas_settings, ladder,
                            lambda s, d, t: report(s, d, t, "gas"))
    else:
        gas = run_phase(directory / "gas", gas_spec, gas_settings,
                        lambda s, d, t: report(s, d, t, "gas"))
    box = packed_box(job, directory, gas)
    box_system = build_box_system(system, settings.n_molecules, box["length"], settings, values)
    label = f"{job.name} liquid"
    liquid = run_phase(directory / "liquid", PhaseSpec(
        box_system, box["positions"], box["length"], job.temperature_k, job.pressure_atm,
        settings.equilibration_ps, settings.production_ps, settings.save_interval_ps, label),
        settings, lambda s, d, t: report(s, d, t, "liquid"))
    layout = LJLayout.from_system(system)
    scheme = CutoffScheme(settings.cutoff_a, settings.switch_a, settings.dispersion_correction)
    model = LJModel(layout, scheme)
    liquid_stats = cached_frame_statistics(directory / "liquid_lj.npz", liquid,
                           lambda t: box_frame_statistics(layout, t.positions, t.box_lengths,
                                                          scheme))
    gas_stats = cached_frame_statistics(directory / "gas_lj.npz", gas,
                        lambda t: gas_frame_statistics(layout, t.positions))
    mass = molar_mass(molecule)
    densities = box_density(mass, settings.n_molecules, liquid.volumes)
    liquid_data = select_equilibrated(liquid, liquid_stats, model, values, keys, densities)
    gas_data = select_equilibrated(gas, gas_stats, model, values, keys, detect=False)
    props = liquid_properties(liquid_data, gas_data, settings.n_molecules, job.temperature_k)
    index = {k: i for i, k in enumerate(system.parameters.keys())}
    return LiquidResult(
        **run_summary(job, liquid, gas, liquid_data, gas_data),
        keys=[str(k) for k in keys],
        values=[float(values[index[k]]) if k in index else float("nan") for k in keys],
        settings=settings.to_dict(),
        torsion_drift=[d.to_json() for d in torsion_drift(molecule, liquid.positions)],
        **props,
    )


def run_summary(job: LiquidJob, liquid: PhaseTrajectory, gas: PhaseTrajectory,
                liquid_data, gas_data) -> dict:
    """The LiquidResult fields that describe the run itself (name, state point, frames
    simulated and used, lengths in ps, speed), shared by fixed-charge and Drude liquids;
    ``liquid_data``/``gas_data`` are the equilibrated PhaseData."""
    settings = job.settings
    return dict(
        name=job.name, smiles=job.system.molecule.to_smiles(),
        temperature_k=job.temperature_k, pressure_atm=job.pressure_atm,
        n_molecules=settings.n_molecules,
        frames={"liquid": len(liquid), "liquid_used": len(liquid_data.energies),
                "gas": len(gas), "gas_used": len(gas_data.energies)},
        lengths_ps={"equilibration": settings.equilibration_ps,
                    "production": settings.production_ps,
                    "discarded": liquid_data.discarded * settings.save_interval_ps,
                    "gas_production": settings.gas_production_ps},
        ns_per_day=liquid.ns_per_day)


Outcome = tuple[LiquidJob, LiquidResult | None, str | None]
"""(job, result, error): exactly one of result and error (a one-line message) is set."""


def run_liquid_jobs(jobs: Sequence[LiquidJob], executor: Executor | None = None
                    ) -> Iterator[Outcome]:
    """Simulate ``jobs`` on ``executor`` (default: in this process) and yield one outcome
    per job in completion order; never raises for a failed simulation (a NaN, a typing
    error...): its error is the one-line message. A job whose worker process dies is
    resubmitted (up to the executor's ``max_retries``) and resumes from its last
    checkpoint. Workers only write their own run directories; the caller records."""
    executor = executor or SerialExecutor()
    for index, outcome in executor.run(simulate_liquid, jobs):
        if isinstance(outcome, Failure):
            yield jobs[index], None, outcome.message
        else:
            yield jobs[index], outcome, None


def box_start_conformers(gas: PhaseTrajectory, n_conformers: int, seed: int) -> np.ndarray:
    """``n_conformers`` gas-phase production frames (n, n_atoms, 3) Angstrom, drawn without
    replacement (seeded) from the second half of the run (past any equilibration)."""
    n = len(gas)
    pool = np.arange(n // 2, n)
    pick = np.random.default_rng(seed).choice(pool, size=min(n_conformers, len(pool)),
                                              replace=False)
    return np.asarray(gas.positions[np.sort(pick)], dtype=float)


def packed_box(job: LiquidJob, directory: Path, gas: PhaseTrajectory) -> dict:
    """The packed start box of ``job`` ({"positions" Angstrom, "length" Angstrom}), made once
    from gas-phase conformers of ``gas`` and kept in ``directory/box.npz``."""
    path = directory / "box.npz"
    if path.exists():
        with np.load(path) as data:
            return {"positions": data["positions"], "length": float(data["length"])}
    settings = job.settings
    molecule = job.system.molecule
    guess = job.density_guess_g_ml or guess_density(molecule)
    conformers = (box_start_conformers(gas, settings.box_conformers, settings.seed)
                  if settings.box_conformers > 0 else None)
    packed = pack_box(molecule, settings.n_molecules, guess * settings.pack_density_factor,
                      settings.pack_tolerance_a, settings.seed, workdir=directory,
                      conformers=conformers)
    expected = packed.box_length_a * settings.pack_density_factor ** (1.0 / 3.0)
    if expected < 2.0 * settings.cutoff_a * 1.05:
        raise InputError(
            f"{job.name}: a box of {settings.n_molecules} molecules is about {expected:.1f} A "
            f"wide at the density guess, too small for a {settings.cutoff_a} A cutoff (needs "
            f"> {2.1 * settings.cutoff_a:.1f} A); use more molecules or a shorter cutoff")
    with atomic_output(path) as tmp:
        np.savez(tmp, positions=packed.positions, length=packed.box_length_a,
                 density=box_density(molar_mass(molecule), settings.n_molecules,
                                     packed.box_length_a**3))
    return {"positions": packed.positions, "length": packed.box_length_a}


def cached_frame_statistics(path: Path, trajectory: PhaseTrajectory,
                            compute: Callable[[PhaseTrajectory], FrameStatistics]
                            ) -> FrameStatistics:
    """The LJ frame statistics of ``trajectory`` kept in ``path`` (computed by ``compute``
    and saved when absent or of another length)."""
    if path.exists():
        stats = FrameStatistics.load(path)
        if len(stats) == len(trajectory):
            return stats
    stats = compute(trajectory)
    stats.save(path)
    return stats
