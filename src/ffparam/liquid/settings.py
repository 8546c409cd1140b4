"""Simulation settings of a liquid-property estimate (one place, all units stated).

Defaults follow the OpenFF Sage protocol: 9 Angstrom Lennard-Jones cutoff with a switch
from 8 Angstrom and the analytic long-range dispersion correction, PME electrostatics in
the same real-space cutoff, bonds to hydrogen constrained, 2 fs Langevin middle
integrator (1/ps friction), isotropic Monte Carlo barostat every 25 steps. The gas phase
is tempered (6 replicas up to 1000 K) and the box is packed from 16 of its conformers: the
protocol validated in benchmarks/RESULTS.md and docs/liquid.md (slow torsions are sampled).
These are the defaults of ``ffparam liquid run`` too (the CLI reads them from here).

:class:`LiquidFitSettings` configures a liquid fit (``ffparam liquid fit``,
:mod:`ffparam.workflows.liquid_fit`): the objective, the trust region, the priors, the
parallel execution and, nested, the :class:`LiquidSettings` of every round's simulations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ffparam.errors import InputError
from ffparam.settings import Settings, require_at_least, require_positive
from ffparam.units import KCAL_PER_KJ

DENSITY_DENOMINATOR_G_ML: float = 0.03
"""ForceBalance's default density denominator, 30 kg/m^3."""
HVAP_DENOMINATOR_KCAL_MOL: float = 3.0 * KCAL_PER_KJ
"""ForceBalance's default heat-of-vaporization denominator, 3 kJ/mol."""


@dataclass(frozen=True)
class LiquidSettings(Settings):
    """How to simulate one liquid and its gas phase.

    Attributes:
        n_molecules: molecules in the periodic box.
        cutoff_a: real-space cutoff of LJ and PME, Angstrom.
        switch_a: LJ switching distance, Angstrom (None: plain truncation).
        dispersion_correction: add the analytic long-range LJ correction (OpenMM's).
        ewald_tolerance: OpenMM PME error tolerance.
        timestep_fs: integration time step, fs (2 fs needs the bonds to H constrained).
        constrain_h_bonds: constrain every bond to hydrogen (at the force field's
            constraint distance, else the assigned bond length).
        friction_per_ps: Langevin collision rate, 1/ps.
        barostat_interval: steps between Monte Carlo volume moves.
        equilibration_ps, production_ps: liquid run lengths, ps.
        save_interval_ps: time between saved liquid frames, ps.
        checkpoint_interval_ps: time between checkpoints (frames + state), ps.
        gas_equilibration_ps, gas_production_ps, gas_save_interval_ps: the single-molecule
            gas-phase run (no cutoff), ps; with tempering, per replica.
        gas_replicas: replicas of the gas-phase run (default 6); more than 1 runs replica
            exchange over a geometric temperature ladder (:mod:`ffparam.liquid.tempering`)
            so torsions with ns barrier-crossing times are sampled; 1: plain Langevin.
        gas_max_temperature_k: top of that ladder, K (default 1000).
        box_conformers: 0 packs copies of the molecule's first conformer; M > 0 (default
            16) packs the
            box from M conformers drawn from the gas-phase production frames (run first),
            so slow torsions start from the isolated molecule's Boltzmann populations
            instead of all in one conformer.
        pack_density_factor: packmol packs at this fraction of the density guess.
        pack_tolerance_a: packmol minimum distance between molecules, Angstrom.
        seed: random seed of packmol and the Langevin integrators.
        platform: OpenMM platform name (``CPU``, ``CUDA``, ``Reference``...).
        threads: CPU threads of the OpenMM CPU platform (None: OpenMM's default).
        max_minimize_iterations: energy minimization limit (0 = until converged).
    """

    n_molecules: int = 256
    cutoff_a: float = 9.0
    switch_a: float | None = 8.0
    dispersion_correction: bool = True
    ewald_tolerance: float = 5e-4
    timestep_fs: float = 2.0
    constrain_h_bonds: bool = True
    friction_per_ps: float = 1.0
    barostat_interval: int = 25
    equilibration_ps: float = 200.0
    production_ps: float = 2000.0
    save_interval_ps: float = 1.0
    checkpoint_interval_ps: float = 20.0
    gas_equilibration_ps: float = 100.0
    gas_production_ps: float = 10000.0
    gas_save_interval_ps: float = 0.5
    gas_replicas: int = 6
    gas_max_temperature_k: float = 1000.0
    box_conformers: int = 16
    pack_density_factor: float = 0.85
    pack_tolerance_a: float = 2.0
    seed: int = 2024
    platform: str = "CPU"
    threads: int | None = None
    max_minimize_iterations: int = 0

    what: ClassVar[str] = "liquid settings"

    def __post_init__(self) -> None:
        if self.n_molecules < 2:
            raise InputError(f"a liquid box needs at least 2 molecules, got {self.n_molecules}")
        if not self.cutoff_a > 0:
            raise InputError(f"cutoff must be positive, got {self.cutoff_a} A")
        if self.switch_a is not None and not 0 < self.switch_a < self.cutoff_a:
            raise InputError(f"switching distance {self.switch_a} A must lie between 0 and the "
                             f"cutoff {self.cutoff_a} A")
        for name in ("timestep_fs", "friction_per_ps", "save_interval_ps",
                     "checkpoint_interval_ps", "gas_save_interval_ps", "pack_density_factor"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("equilibration_ps", "production_ps", "gas_equilibration_ps",
                     "gas_production_ps"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.production_ps < self.save_interval_ps * 4:
            raise InputError(f"production of {self.production_ps} ps gives fewer than 4 frames "
                             f"at one per {self.save_interval_ps} ps")
        if self.gas_production_ps < self.gas_save_interval_ps * 4:
            raise InputError(f"gas-phase production of {self.gas_production_ps} ps gives fewer "
                             f"than 4 frames at one per {self.gas_save_interval_ps} ps")
        if self.gas_replicas < 1:
            raise InputError(f"gas_replicas must be at least 1, got {self.gas_replicas}")
        if self.box_conformers < 0:
            raise InputError(f"box_conformers must not be negative, got {self.box_conformers}")
        if self.barostat_interval < 1:
            raise InputError("barostat interval must be at least 1 step")
        if not self.gas_max_temperature_k > 0:
            raise InputError(f"gas_max_temperature_k must be positive, got "
                             f"{self.gas_max_temperature_k} K")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"threads must be at least 1 (or None), got {self.threads}")
        if self.seed < 0:
            raise InputError(f"seed must not be negative, got {self.seed}")
        if not self.pack_tolerance_a > 0 or not self.ewald_tolerance > 0:
            raise InputError("pack_tolerance_a and ewald_tolerance must be positive")
        if self.max_minimize_iterations < 0:
            raise InputError("max_minimize_iterations must not be negative")

    def check_state(self, temperature_k: float, pressure_atm: float) -> None:
        """Refuse a thermodynamic state these settings cannot simulate (K, atm)."""
        if not temperature_k > 0:
            raise InputError(f"temperature must be positive, got {temperature_k} K")
        if not pressure_atm > 0:
            raise InputError(f"pressure must be positive, got {pressure_atm} atm")
        if self.gas_replicas > 1 and not self.gas_max_temperature_k > temperature_k:
            raise InputError(f"the top of the tempering ladder ({self.gas_max_temperature_k} "
                             f"K) must exceed the temperature {temperature_k} K")

    def steps(self, time_ps: float) -> int:
        """Number of integration steps covering ``time_ps`` (ps)."""
        return round(time_ps * 1000.0 / self.timestep_fs)



def fit_round_settings() -> LiquidSettings:
    """Settings of every simulation of a liquid fit (``LiquidFitSettings.simulation``, ``ffparam
    liquid fit``): shorter runs than one estimate (100 ps + 0.5 ns liquid, 5 ns gas per
    replica), as each round simulates every liquid again."""
    return LiquidSettings(equilibration_ps=100.0, production_ps=500.0,
                          gas_production_ps=5000.0)


@dataclass(frozen=True)
class LiquidFitSettings(Settings):
    """How to fit Lennard-Jones parameters to liquids (units: g/mL, kcal/mol, Angstrom;
    trust radii in units of the mathematical parameters x).

    Attributes:
        forcefield: start SMIRNOFF force field (name or .offxml path).
        charges: charge method of every molecule.
        params: ``vdw:PATTERN[:FIELDS]`` entries
            (:func:`ffparam.liquid.parameters.free_vdw_parameters`).
        iterations: trust-region steps (rounds = iterations + 1).
        trust_radius, min_trust_radius, max_trust_radius: radius of the step in x.
        density_weight, hvap_weight, density_denominator_g_ml, hvap_denominator_kcal_mol:
            objective weights and denominators.
        prior_sigma_a, prior_epsilon_kcal_mol: Gaussian prior widths (also the x scale of
            sigma). use_priors: include them.
        no_worse_margin: when set, every step is guarded
            (:func:`~ffparam.liquid.objective.no_worse_step`): no training liquid's
            density or Hvap may be predicted to move away from experiment by more than
            this many of its own error bars. None: plain step.
        model_safety: the guard assumes the true change may be this many times the linear
            prediction.
        step: ``linear`` (the trust-region or guarded step on the fluctuation-formula
            Jacobian) or ``reweighted`` (:func:`~ffparam.liquid.mbar.reweighted_step`: the
            objective minimized on MBAR estimates from the frames of every simulated
            round, with the guard, if set, on those estimates).
        min_eff_fraction: for ``reweighted``, each phase's Kish size must stay above this
            fraction of one run's frames.
        holdout: liquid names simulated but not fitted.
        simulation: the simulation settings of every liquid (default
            :func:`fit_round_settings`).
    """

    forcefield: str = "sage"
    charges: str = "am1bcc"
    params: tuple[str, ...] = ("vdw:*",)
    iterations: int = 3
    trust_radius: float = 0.3
    min_trust_radius: float = 0.02
    max_trust_radius: float = 1.0
    density_weight: float = 1.0
    hvap_weight: float = 1.0
    density_denominator_g_ml: float = DENSITY_DENOMINATOR_G_ML
    hvap_denominator_kcal_mol: float = HVAP_DENOMINATOR_KCAL_MOL
    prior_sigma_a: float = 0.1
    prior_epsilon_kcal_mol: float = 0.05
    use_priors: bool = True
    no_worse_margin: float | None = None
    model_safety: float = 1.5
    step: Literal["linear", "reweighted"] = "linear"
    min_eff_fraction: float = 0.2
    holdout: tuple[str, ...] = ()
    simulation: LiquidSettings = field(default_factory=fit_round_settings)

    what: ClassVar[str] = "liquid fit settings"

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", tuple(self.params))
        object.__setattr__(self, "holdout", tuple(self.holdout))
        require_at_least(self, 0, "iterations", "density_weight", "hvap_weight",
                         "no_worse_margin")
        require_positive(self, "trust_radius", "min_trust_radius", "max_trust_radius",
                         "prior_sigma_a", "prior_epsilon_kcal_mol", "model_safety",
                         "density_denominator_g_ml", "hvap_denominator_kcal_mol")
        if not 0 < self.min_eff_fraction <= 1:
            raise InputError(f"min_eff_fraction must lie in (0, 1], got "
                             f"{self.min_eff_fraction}")
        if self.step not in ("linear", "reweighted"):
            raise InputError(f"unknown step {self.step!r}: use 'linear' or 'reweighted'")
        if not isinstance(self.simulation, LiquidSettings):
            raise InputError(f"{self.what}: simulation must be LiquidSettings, got "
                             f"{type(self.simulation).__name__}")

    def fingerprint_data(self) -> dict[str, Any]:
        """What the recorded rounds of a fit depend on (the fit directory's fingerprint):
        not how later steps are proposed nor where simulations run. Keys as the first
        stored fits wrote them (``settings`` for :attr:`simulation`), and the sampling
        options at their plain values left out, so those fits keep their fingerprint."""
        data = self.to_dict()
        for name in ("iterations", "no_worse_margin", "model_safety", "step",
                     "min_eff_fraction"):
            data.pop(name)
        simulation = data.pop("simulation")
        simulation.pop("threads")
        simulation.pop("platform")
        for name, plain in (("gas_replicas", 1), ("box_conformers", 0)):
            if simulation.get(name) == plain:
                simulation.pop(name)
        if "gas_replicas" not in simulation:
            simulation.pop("gas_max_temperature_k")
        data["settings"] = simulation
        return data
