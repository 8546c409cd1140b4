"""``ffparam liquid run``: one density / heat-of-vaporization estimate for a molecule."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ffparam.errors import InputError
from ffparam.io.atomic import write_json_atomic
from ffparam.liquid.job import LiquidJob, simulate_liquid
from ffparam.liquid.prepare import prepare_system
from ffparam.liquid.properties import LiquidResult
from ffparam.liquid.settings import LiquidSettings

if TYPE_CHECKING:
    from ffparam.liquid.drude import DrudeDynamicsSettings, DrudeLiquidResult
    from ffparam.params.parameter_set import ParameterSet


def run_liquid(text: str, outdir: str | Path, forcefield: str = "sage",
               charges: str = "am1bcc", settings: LiquidSettings | None = None,
               temperature_k: float = 298.15, pressure_atm: float = 1.0,
               density_guess_g_ml: float | None = None, name: str | None = None,
               progress: bool = True, drude: DrudeDynamicsSettings | None = None,
               parameters: ParameterSet | None = None) -> LiquidResult | DrudeLiquidResult:
    """Simulate ``text`` (SMILES or molecule file) as a liquid and a gas; write
    ``<outdir>/result.json`` (its ``torsion_drift``: the trend of every rotatable
    torsion's trans fraction over the liquid production, see
    :mod:`ffparam.liquid.conformers`) and return the result. Rerunning with the same ``outdir``
    resumes from the last checkpoint (a finished run returns at once). With ``drude``,
    the molecule gets Drude oscillators (:func:`ffparam.params.drude.add_drude`, starting
    polarizabilities) and runs with the dual-thermostat integrator; the result adds the
    dielectric constant (:func:`ffparam.liquid.drude.simulate_drude_liquid`).
    ``parameters`` (e.g. a saved ParameterSet) replace the force field's entries of the same
    id (:func:`ffparam.liquid.drude.override_parameters`) and, with ``drude``, give the
    polarizabilities of its ``Drude`` section (types absent there: starting values;
    :func:`ffparam.liquid.drude.polarizable_system`)."""
    from ffparam.io.files import check_output_dir

    settings = settings or LiquidSettings()
    settings.check_state(temperature_k, pressure_atm)
    if drude is not None:
        drude.check(settings)
    if density_guess_g_ml is not None and not density_guess_g_ml > 0:
        raise InputError(f"density guess must be positive, got {density_guess_g_ml} g/mL")
    outdir = check_output_dir(outdir)
    label = name or text
    system = prepare_system(text, forcefield, charges, name=label)
    if parameters is not None or drude is not None:
        system = _with_parameters(system, drude, parameters)
    outdir.mkdir(parents=True, exist_ok=True)
    job = LiquidJob(label, system, temperature_k, pressure_atm, outdir, settings,
                    density_guess_g_ml=density_guess_g_ml)
    if progress:
        from ffparam.runtime import make_progress

        bar = make_progress(True)
        tasks: dict[str, int] = {}

        def report(stage: str, done: float, total: float) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=round(total), note="ps")
            bar.update(tasks[stage], completed=round(done))

        with bar:
            result = _simulate(job, drude, report)
    else:
        result = _simulate(job, drude)
    write_json_atomic(outdir / "result.json", result.to_json())
    return result


def _simulate(job: LiquidJob, drude: DrudeDynamicsSettings | None, report=None
              ) -> LiquidResult | DrudeLiquidResult:
    if drude is None:
        return simulate_liquid(job, report)
    from ffparam.liquid.drude import simulate_drude_liquid

    return simulate_drude_liquid(job, drude, report)


def _with_parameters(system, drude: DrudeDynamicsSettings | None,
                     parameters: ParameterSet | None):
    """``system`` with ``parameters`` applied and, with ``drude``, Drude particles."""
    from ffparam.liquid.drude import override_parameters, polarizable_system
    from ffparam.params.drude import DRUDE_SECTION

    has_drude = parameters is not None and bool(parameters.parameters(DRUDE_SECTION))
    if drude is None and has_drude:
        raise InputError("the parameter file has a Drude section: run a polarizable liquid "
                         "(drude settings, --polarizable) or remove it")
    if parameters is not None and len(parameters) > len(parameters.parameters(DRUDE_SECTION)):
        system = override_parameters(system, parameters)
    return system if drude is None else polarizable_system(system, parameters)
