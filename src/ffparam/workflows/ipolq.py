"""Implicitly polarized charges (IPolQ; Cerutti, Rice, Swope, Case, J. Phys. Chem. B 117,
2328 (2013)).

Fixed-charge force fields in water need charges between the gas-phase ones and the fully
polarized ones: the polarization energy costs half of what the polarized charges gain.
IPolQ charges are RESP charges fitted to the average of two electrostatic potentials on
the same Merz-Kollman points around one rigid solute geometry:

    V_IPolQ = (V_gas + <V_water>) / 2,

V_gas from the gas-phase QM density and <V_water> the mean over MD snapshots of the
potential of the solute's QM density polarized by the point charges of the water around it
(QM/MM, :mod:`ffparam.workflows.qmmm`: frozen solute, TIP3P water within the cutoff, the
potential of the solute alone). Because the RESP fit is linear in the potential apart from
its restraints, the IPolQ charges lie close to the mean of the gas and water RESP charges,
which are reported too.

Protocol differences from the paper, stated: one round (the MD uses the start charges,
AM1-BCC by default, instead of iterating the solute's MD charges to self-consistency);
TIP3P instead of TIP4P-Ew; no extra shell of charges for the bulk beyond the cutoff
(the paper's solvent reaction field); QM level HF/6-31G* (RESP's level) by default instead
of MP2/cc-pVTZ. All calculations go through the Store; the MD is checkpointed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ffparam.errors import CalculationError
from ffparam.io.atomic import write_json_atomic
from ffparam.params.system import ParameterizedSystem
from ffparam.units import DEBYE_E_ANGSTROM
from ffparam.workflows.qmmm import QMMMResult, QMMMSettings, run_qmmm

SCHEMA_VERSION = 1


@dataclass
class IPolQResult:
    """IPolQ charges and the charges and dipoles they lie between.

    Attributes:
        charges: (n_atoms,) e, RESP to (V_gas + <V_water>) / 2.
        gas_charges: (n_atoms,) e, RESP to V_gas.
        water_charges: (n_atoms,) e, RESP to <V_water>.
        geometry: (n_atoms, 3) Angstrom, the rigid solute geometry of every calculation.
        qm_dipole_gas_debye: |mu| of the gas-phase QM density, Debye.
        qm_dipole_water_debye: mean |mu| of the polarized QM density over snapshots, Debye.
        n_frames: QM/MM snapshots averaged.
        method: the QM method's canonical string.
    """

    charges: np.ndarray
    gas_charges: np.ndarray
    water_charges: np.ndarray
    geometry: np.ndarray
    qm_dipole_gas_debye: float
    qm_dipole_water_debye: float
    n_frames: int
    method: str

    def charge_dipole_debye(self, charges: np.ndarray) -> float:
        """|sum_i q_i (r_i - centroid)| of point charges at the geometry, Debye."""
        centred = self.geometry - self.geometry.mean(axis=0)
        return float(np.linalg.norm(np.asarray(charges) @ centred) / DEBYE_E_ANGSTROM)

    def to_json(self) -> dict:
        """Plain data for ``ipolq.json`` (e, Debye)."""
        return {
            "schema_version": SCHEMA_VERSION, "method": self.method, "n_frames": self.n_frames,
            "charges": self.charges.tolist(), "gas_charges": self.gas_charges.tolist(),
            "water_charges": self.water_charges.tolist(),
            "dipole_debye": {"ipolq": self.charge_dipole_debye(self.charges),
                             "gas": self.charge_dipole_debye(self.gas_charges),
                             "water": self.charge_dipole_debye(self.water_charges),
                             "qm_gas": self.qm_dipole_gas_debye,
                             "qm_water": self.qm_dipole_water_debye},
        }


def ipolq_charges(system: ParameterizedSystem, out: str | Path,
                  settings: QMMMSettings | None = None, store=None, executor=None,
                  geometry: np.ndarray | None = None, progress: bool = False) -> IPolQResult:
    """IPolQ charges of ``system``'s molecule at ``geometry`` (n, 3) Angstrom (default its
    first conformer); ``settings`` as for ``ffparam qmmm`` (the task is ``esp`` and the
    solute frozen whatever they say); writes ``OUT/ipolq.json``."""
    from ffparam.fit.resp import resp

    settings = (settings or QMMMSettings()).replace(task="esp", freeze_solute=True)
    run = run_qmmm(system, out, settings, store, executor, progress, geometry)
    gas_esp, water_esp, points = averaged_esp(run)
    geometry = run.regions[0].geometry
    fits = [resp(system.topology, geometry, points, values).charges
            for values in (0.5 * (gas_esp + water_esp), gas_esp, water_esp)]
    dipoles = [np.linalg.norm(r.dipole) / DEBYE_E_ANGSTROM for r in run.records]
    result = IPolQResult(*fits, geometry=geometry,
                         qm_dipole_gas_debye=float(np.linalg.norm(run.gas.dipole)
                                                   / DEBYE_E_ANGSTROM),
                         qm_dipole_water_debye=float(np.mean(dipoles)),
                         n_frames=len(run.records), method=run.gas.method)
    write_json_atomic(Path(out) / "ipolq.json", result.to_json())
    return result


def averaged_esp(run: QMMMResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(V_gas, <V_water>, points) of a frozen-solute ``esp`` QM/MM run: kcal/mol/e on the
    same (m, 3) Angstrom points. CalculationError when a calculation failed."""
    failed = [r for r in [run.gas, *run.records] if not r.ok]
    if failed:
        raise CalculationError(f"IPolQ: {len(failed)} ESP calculation(s) failed: "
                               f"{failed[0].error}")
    points = run.gas.esp_points
    for record in run.records:
        if record.esp_points.shape != points.shape or not np.allclose(record.esp_points, points,
                                                                       atol=1e-6):
            raise CalculationError("IPolQ: the snapshots' ESP points differ from the gas "
                                   "phase's (the solute was not rigid)")
    water = np.mean([record.esp for record in run.records], axis=0)
    return run.gas.esp, water, points


def ipolq_system(system: ParameterizedSystem, out: str | Path,
                 settings: QMMMSettings | None = None, store=None, executor=None,
                 geometry: np.ndarray | None = None) -> ParameterizedSystem:
    """``system`` with IPolQ charges (:func:`ipolq_charges`)."""
    from ffparam.fit.resp import apply_charges

    settings = settings or QMMMSettings()
    result = ipolq_charges(system, out, settings, store, executor, geometry)
    charged = apply_charges(system, result.charges)
    charged.parameters.settings["charge_method"] = f"ipolq ({result.method} ESP, " \
                                                   f"{result.n_frames} QM/MM frames)"
    charged.source = system.source.replace("am1bcc", "ipolq")
    return charged
