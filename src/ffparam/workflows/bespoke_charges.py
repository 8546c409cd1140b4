"""RESP charges for the bespoke workflow (``--charges resp``).

The ESP comes from the reference method when it can give one (PySCF HF/DFT); semi-empirical
methods cannot (xTB has no ESP on points), so RESP then uses the standard RESP level
HF/6-31G* (Bayly et al. 1993, the level AMBER's RESP charges are defined at), at the
reference method's optimized geometry. Two-stage RESP (:func:`ffparam.fit.resp.resp`) on
Merz-Kollman shells; every calculation goes through the Store.

IPolQ charges (``--charges ipolq``, :mod:`ffparam.workflows.ipolq`) use the same ESP level
and optimized geometry, the solute frozen there in QM/MM snapshots of a water box (MD and
store files in ``ipolq/`` next to the Store).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ffparam.errors import CalculationError
from ffparam.params.system import ParameterizedSystem

if TYPE_CHECKING:
    from ffparam.workflows.qmmm import QMMMSettings

RESP_FALLBACK_METHOD = "hf/6-31g*"


def resp_method(method: str) -> str:
    """The method whose ESP RESP uses: ``method`` itself when it is a PySCF method."""
    from ffparam.reference.spec import MethodSpec

    return RESP_FALLBACK_METHOD if MethodSpec.parse(method).name.endswith("xtb") else method


def resp_system(system: ParameterizedSystem, method: str, store, executor
                ) -> ParameterizedSystem:
    """``system`` with two-stage RESP charges from the ESP at the optimized geometry."""
    from ffparam.fit.resp import apply_charges, resp
    from ffparam.reference.compute import compute

    molecule = system.molecule
    geometry = optimized_geometry(system, method, store, executor, "RESP")
    esp_level = resp_method(method)
    record = compute(molecule, geometry[None], esp_level, "esp", store=store,
                     executor=executor)[0]
    if not record.ok:
        raise CalculationError(f"RESP: ESP calculation with {esp_level} failed: {record.error}")
    result = resp(system.topology, record.geometry, record.esp_points, record.esp)
    charged = apply_charges(system, result.charges)
    charged.parameters.settings["charge_method"] = f"resp ({esp_level} ESP)"
    charged.source = system.source.replace("am1bcc", f"resp/{esp_level}")
    return charged


def optimized_geometry(system: ParameterizedSystem, method: str, store, executor,
                       what: str) -> np.ndarray:
    """(n_atoms, 3) Angstrom: the first conformer optimized with ``method`` (stored)."""
    from ffparam.reference.compute import compute

    molecule = system.molecule
    optimized = compute(molecule, molecule.conformers[:1], method, "optimize", store=store,
                        executor=executor)[0]
    if not optimized.ok:
        raise CalculationError(f"{what}: geometry optimization failed: {optimized.error}")
    return optimized.final_geometry


def ipolq_bespoke_system(system: ParameterizedSystem, method: str, store, executor,
                         settings: QMMMSettings | None = None) -> ParameterizedSystem:
    """``system`` with IPolQ charges at the ESP level of :func:`resp_method` (``settings``:
    the QM/MM sampling, default :class:`~ffparam.workflows.qmmm.QMMMSettings` with that
    method), the solute frozen at its optimized geometry; the MD and the QM/MM store go to
    ``ipolq/`` beside ``store``'s file (in memory: a temporary directory)."""
    import tempfile

    from ffparam.workflows.ipolq import ipolq_system
    from ffparam.workflows.qmmm import QMMMSettings

    geometry = optimized_geometry(system, method, store, executor, "IPolQ")
    settings = settings or QMMMSettings(method=resp_method(method))
    if store is None or store.path == ":memory:":
        with tempfile.TemporaryDirectory() as tmp:
            return ipolq_system(system, tmp, settings, None, executor, geometry)
    return ipolq_system(system, Path(store.path).parent / "ipolq", settings, store, executor,
                        geometry)
