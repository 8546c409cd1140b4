"""RESP charges for the bespoke workflow (``--charges resp``).

The ESP comes from the reference method when it can give one (PySCF HF/DFT); semi-empirical
methods cannot (xTB has no ESP on points), so RESP then uses the standard RESP level
HF/6-31G* (Bayly et al. 1993, the level AMBER's RESP charges are defined at), at the
reference method's optimized geometry. Two-stage RESP (:func:`ffparam.fit.resp.resp`) on
Merz-Kollman shells; every calculation goes through the Store.
"""

from __future__ import annotations

from ffparam.errors import CalculationError
from ffparam.params.system import ParameterizedSystem

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
    optimized = compute(molecule, molecule.conformers[:1], method, "optimize", store=store,
                        executor=executor)[0]
    if not optimized.ok:
        raise CalculationError(f"RESP: geometry optimization failed: {optimized.error}")
    geometry = optimized.final_geometry
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
