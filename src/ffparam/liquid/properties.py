"""Density and heat of vaporization, with standard errors and parameter derivatives,
from the saved frames of a liquid box and a gas-phase molecule.

* density rho = N M / (N_A V) per frame (g/mL), averaged over the production frames after
  the detected equilibration;
* Hvap = <E_pot,gas> - <E_pot,liq>/N + RT (kcal/mol; ideal gas, liquid PV neglected as
  usual), error^2 = err_gas^2 + (err_liq/N)^2;
* derivatives (fluctuation formula, :mod:`ffparam.liquid.statistics`) with dU/dtheta of
  every frame from :class:`~ffparam.liquid.lj.LJModel`:
  d rho/dtheta = -beta cov(rho, dU/dtheta) and
  d<E>/dtheta = <dU/dtheta> - beta cov(E, dU/dtheta) for each phase.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ffparam.errors import InputError
from ffparam.liquid.lj import FrameStatistics, LJModel
from ffparam.liquid.schema import schema_version
from ffparam.liquid.simulate import PhaseTrajectory
from ffparam.liquid.statistics import (
    Estimate,
    derivative_estimate,
    equilibration_start,
    mean_estimate,
)
from ffparam.params.parameter_set import ParameterKey
from ffparam.units import GAS_CONSTANT_KCAL_MOL_K

RESULT_SCHEMA_VERSION = 1
"""Version of :meth:`LiquidResult.to_json` (``result.json`` and the results in a liquid
fit's state). 0: written before the field existed (:func:`migrate_result_v0`)."""

@dataclass
class LiquidResult:
    """One liquid at one set of parameters.

    Attributes:
        name, smiles: the liquid.
        temperature_k, pressure_atm: the state.
        n_molecules: molecules in the box.
        density: g/mL. hvap: kcal/mol. liquid_energy_per_molecule, gas_energy: kcal/mol.
        frames: frame counts (``liquid``, ``liquid_used``, ``gas``, ``gas_used``).
        lengths_ps: ``equilibration``, ``production``, ``discarded`` (liquid, ps) and
            ``gas_production``.
        ns_per_day: liquid production speed.
        keys: parameters of the derivatives, as ``Section/id/field`` strings.
        values: their values (internal units).
        density_gradient, density_gradient_error: (len(keys),) g/mL per internal unit.
        hvap_gradient, hvap_gradient_error: (len(keys),) kcal/mol per internal unit.
        settings: the simulation settings (JSON form).
        torsion_drift: per rotatable torsion, the trend of its trans fraction over the
            liquid production (:meth:`ffparam.liquid.conformers.TorsionDrift.to_json`);
            None for a result stored before results carried it (then computed from the
            run's frames, :func:`ffparam.liquid.conformers.stored_drift`).
    """

    name: str
    smiles: str
    temperature_k: float
    pressure_atm: float
    n_molecules: int
    density: Estimate
    hvap: Estimate
    liquid_energy_per_molecule: Estimate
    gas_energy: Estimate
    frames: dict[str, int] = field(default_factory=dict)
    lengths_ps: dict[str, float] = field(default_factory=dict)
    ns_per_day: float = 0.0
    keys: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    density_gradient: np.ndarray = field(default_factory=lambda: np.zeros(0))
    density_gradient_error: np.ndarray = field(default_factory=lambda: np.zeros(0))
    hvap_gradient: np.ndarray = field(default_factory=lambda: np.zeros(0))
    hvap_gradient_error: np.ndarray = field(default_factory=lambda: np.zeros(0))
    settings: dict[str, Any] = field(default_factory=dict)
    torsion_drift: list[dict[str, Any]] | None = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain data (:data:`RESULT_SCHEMA_VERSION`); read back by :meth:`from_json`."""
        return {
            "schema_version": RESULT_SCHEMA_VERSION, "name": self.name, "smiles": self.smiles,
            "temperature_k": self.temperature_k,
            "pressure_atm": self.pressure_atm, "n_molecules": self.n_molecules,
            "density_g_ml": self.density.to_json(), "hvap_kcal_mol": self.hvap.to_json(),
            "liquid_energy_per_molecule_kcal_mol": self.liquid_energy_per_molecule.to_json(),
            "gas_energy_kcal_mol": self.gas_energy.to_json(),
            "frames": dict(self.frames), "lengths_ps": dict(self.lengths_ps),
            "ns_per_day": self.ns_per_day,
            "gradients": {
                key: {"value": value,
                      "d_density_g_ml": float(self.density_gradient[i]),
                      "d_density_error": float(self.density_gradient_error[i]),
                      "d_hvap_kcal_mol": float(self.hvap_gradient[i]),
                      "d_hvap_error": float(self.hvap_gradient_error[i])}
                for i, (key, value) in enumerate(zip(self.keys, self.values))
            },
            "settings": dict(self.settings),
            "torsion_drift": None if self.torsion_drift is None else list(self.torsion_drift),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "liquid result") -> LiquidResult:
        """Read :meth:`to_json`'s data of any schema version up to the current one (older
        ones through :func:`migrate_result_v0`).

        Raises:
            InputError: a newer schema version, or a missing or malformed field.
        """
        if schema_version(data, RESULT_SCHEMA_VERSION, where) == 0:
            data = migrate_result_v0(data)
        try:
            return cls._from_current(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{where}: malformed result ({type(exc).__name__}: {exc})"
                             ) from None

    @classmethod
    def _from_current(cls, data: dict[str, Any]) -> LiquidResult:
        grads = data["gradients"]
        keys = list(grads)
        column = lambda name: np.array([grads[k][name] for k in keys])  # noqa: E731
        drift = data["torsion_drift"]
        return cls(
            name=data["name"], smiles=data["smiles"], temperature_k=data["temperature_k"],
            pressure_atm=data["pressure_atm"], n_molecules=data["n_molecules"],
            density=Estimate.from_json(data["density_g_ml"]),
            hvap=Estimate.from_json(data["hvap_kcal_mol"]),
            liquid_energy_per_molecule=Estimate.from_json(
                data["liquid_energy_per_molecule_kcal_mol"]),
            gas_energy=Estimate.from_json(data["gas_energy_kcal_mol"]),
            frames=dict(data["frames"]), lengths_ps=dict(data["lengths_ps"]),
            ns_per_day=data["ns_per_day"], keys=keys, values=[grads[k]["value"] for k in keys],
            density_gradient=column("d_density_g_ml"),
            density_gradient_error=column("d_density_error"),
            hvap_gradient=column("d_hvap_kcal_mol"), hvap_gradient_error=column("d_hvap_error"),
            settings=dict(data["settings"]),
            torsion_drift=None if drift is None else list(drift),
        )

    def gradient_of(self, key: ParameterKey | str) -> tuple[float, float, float, float]:
        """(d density, error, d hvap, error) for one parameter (zeros if not present)."""
        text = str(key)
        if text not in self.keys:
            return 0.0, 0.0, 0.0, 0.0
        i = self.keys.index(text)
        return (float(self.density_gradient[i]), float(self.density_gradient_error[i]),
                float(self.hvap_gradient[i]), float(self.hvap_gradient_error[i]))


def migrate_result_v0(data: dict[str, Any]) -> dict[str, Any]:
    """A result written before ``schema_version`` (version 0) as version 1: the fields
    that early results lacked get the values readers assumed for them (estimates: 0
    samples, inefficiency 1; no frame counts, run lengths, speed, gradients or settings;
    ``torsion_drift`` None: not recorded, computed from the frames when needed)."""
    def estimate(value: dict[str, Any]) -> dict[str, Any]:
        return {"n_samples": 0, "statistical_inefficiency": 1.0, **value}

    out = {"frames": {}, "lengths_ps": {}, "ns_per_day": 0.0, "gradients": {},
           "settings": {}, "torsion_drift": None, **data, "schema_version": 1}
    for key in ("density_g_ml", "hvap_kcal_mol", "liquid_energy_per_molecule_kcal_mol",
                "gas_energy_kcal_mol"):
        if isinstance(out.get(key), dict):
            out[key] = estimate(out[key])
    return out


@dataclass
class PhaseData:
    """Equilibrated frames of one phase: energies (kcal/mol), optional densities (g/mL),
    dU/dtheta (n, P) and LJ frame statistics (None without derivatives), and how many
    frames were discarded."""

    energies: np.ndarray
    densities: np.ndarray | None
    du_dtheta: np.ndarray
    stats: FrameStatistics | None
    discarded: int
    total: int


def production_start(energies: np.ndarray, densities: np.ndarray | None = None,
                     detect: bool = True) -> int:
    """First frame to keep: the detected equilibration of the energy (and density) series,
    or 0 with ``detect=False``.

    The gas phase (one molecule, explicit equilibration before production) uses
    ``detect=False``: the detector reads a rare conformer switch (1,2-dichloroethane
    trans/gauche) as the end of equilibration and then averages over one conformer only
    (measured: 1.0 kcal/mol Hvap swing between two runs whose full gas series agree to
    0.01)."""
    if not detect:
        return 0
    return equilibration_start(energies, *([densities] if densities is not None else []))


def select_equilibrated(trajectory: PhaseTrajectory, stats: FrameStatistics, model: LJModel,
                        values: np.ndarray, keys: list[ParameterKey],
                        densities: np.ndarray | None = None,
                        detect: bool = True) -> PhaseData:
    """Drop the frames before :func:`production_start` and compute dU/dtheta."""
    t0 = production_start(trajectory.energies, densities, detect)
    kept = FrameStatistics(stats.c12[t0:], stats.c6[t0:], stats.inverse_volume[t0:],
                           stats.n_molecules)
    du = model.gradients(kept, values, keys) if keys else np.zeros((len(kept), 0))
    return PhaseData(trajectory.energies[t0:], None if densities is None else densities[t0:],
                     du, kept, t0, len(trajectory))


def phase_data_without_gradients(trajectory: PhaseTrajectory,
                                 densities: np.ndarray | None = None,
                                 detect: bool = True) -> PhaseData:
    """Like :func:`select_equilibrated` without parameter derivatives (no LJ frame sums,
    ``stats`` None): for Systems whose energy is not the LJ model's plus constants, such
    as Drude liquids (:mod:`ffparam.liquid.drude`)."""
    t0 = production_start(trajectory.energies, densities, detect)
    return PhaseData(trajectory.energies[t0:], None if densities is None else densities[t0:],
                     np.zeros((len(trajectory) - t0, 0)), None, t0, len(trajectory))


def liquid_properties(liquid: PhaseData, gas: PhaseData, n_molecules: int,
                      temperature_k: float) -> dict[str, Any]:
    """Density, Hvap, phase energies (:class:`Estimate`) and their derivatives."""
    beta = 1.0 / (GAS_CONSTANT_KCAL_MOL_K * temperature_k)
    rt = GAS_CONSTANT_KCAL_MOL_K * temperature_k
    density = mean_estimate(liquid.densities)
    e_liq = mean_estimate(liquid.energies / n_molecules)
    e_gas = mean_estimate(gas.energies)
    hvap = Estimate(e_gas.value - e_liq.value + rt,
                    float(np.hypot(e_gas.error, e_liq.error)), e_liq.n_samples)
    p = liquid.du_dtheta.shape[1]
    if p:
        d_rho, d_rho_err = derivative_estimate(liquid.densities, liquid.du_dtheta, beta)
        d_liq, d_liq_err = derivative_estimate(liquid.energies, liquid.du_dtheta, beta,
                                               liquid.du_dtheta)
        d_gas, d_gas_err = derivative_estimate(gas.energies, gas.du_dtheta, beta, gas.du_dtheta)
        d_hvap = d_gas - d_liq / n_molecules
        d_hvap_err = np.hypot(d_gas_err, d_liq_err / n_molecules)
    else:
        d_rho = d_rho_err = d_hvap = d_hvap_err = np.zeros(0)
    return {"density": density, "hvap": hvap, "liquid_energy_per_molecule": e_liq,
            "gas_energy": e_gas, "density_gradient": d_rho, "density_gradient_error": d_rho_err,
            "hvap_gradient": d_hvap, "hvap_gradient_error": d_hvap_err}
