"""Drude vs fixed-charge liquids: dielectric constant, density and Hvap with errors.

For each liquid (CCl4, benzene, methanol; Sage 2.2.1 with AM1-BCC charges) runs in one
box size: the fixed-charge force field (Langevin middle, 2 fs) and the same force field
with Drude oscillators on every heavy atom (k = 1000 kcal/mol/A^2; DrudeLangevinIntegrator,
1 fs, Drudes at 1 K, hard wall 0.2 A), with either

* ``--alphas start``: the starting alphas of :mod:`ffparam.params.drude` (Thole 1.3), run
  directory ``drude``; or
* ``--alphas fitted``: alpha and Thole per type (element + hybridization + attached H,
  ``C3H3``...) fitted by least squares to this molecule's own QM polarizability tensor
  (HF/aug-cc-pVDZ, analytic CPHF, the level and conformer of ``bench_drude.py``; taken
  from / computed into ``--store``) with the ``polarizability`` fit target and ffparam's
  default priors, run directory ``drude_fitted``; or
* ``--alphas field``: the ``bespoke --polarizable`` fit
  (:func:`ffparam.workflows.bespoke_drude.fit_drude`, ``--field-method``, default
  HF/aug-cc-pVDZ): alpha and Thole to the QM tensor, then the *permanent charges* and
  alpha together to the QM ESP in uniform fields (the CHARMM Drude recipe), replacing
  AM1-BCC, whose charges are pre-polarized for a fixed-charge liquid; run directory
  ``drude_field``.

``--hbond-thole A`` (a number, or ``own``: each type's own Thole factor) gives the Drude
types of the molecule's O and N atoms the H-bond Thole screening ``hbond_thole``
(:mod:`ffparam.params.drude`: their Drude dipoles screened against donor hydrogens of
other molecules, CHARMM Drude's NBTHOLE idea), run directory suffix ``_hb<A>``.

``--models fixed`` with ``--alphas field`` is the fixed-charge control with the field
fit's permanent charges (same LJ; run directory ``fixed_field``).

``--lj-scale S`` multiplies every LJ epsilon of the molecule by S in the Drude model
(directory ``drude_fitted_lj<S>``): the rebalancing of cohesion when polarization is added
on top of LJ fitted for fixed charges; the parameter set simulated is written next to
the run (``parameters.yaml``). ``--rebalance`` finds S from the finished fitted-alpha
Drude and fixed-charge runs (:func:`rebalance`; OUTDIR/<liquid>/rebalance.json).
``--lj-sigma-scale S`` multiplies every LJ sigma instead (directory suffix ``_sig<S>``);
``--rebalance-density`` finds the sigma and epsilon scales that restore the fixed-charge
density at the Drude run's own Hvap (:func:`rebalance_density`;
OUTDIR/<liquid>/rebalance_density.json): for a liquid whose Drude cohesion is right but
whose density is not (CCl4).

The fixed-charge run's eps_inf is 1; the Drude run's eps_inf is Clausius-Mossotti of the
molecule's Drude polarizability. Errors: blocked jackknife (dielectric), s/sqrt(n/g)
(density, Hvap). Drude runs also report the derivatives of density and Hvap with respect
to a common scale of the molecule's LJ epsilons (fluctuation formula on the core frames).

Experiment (298 K): CCl4 eps 2.24, density 1.584 g/mL, Hvap 7.75 kcal/mol; benzene eps
2.27, density 0.874 g/mL, Hvap 8.09 kcal/mol (CRC Handbook); methanol eps 32.6, density
0.7866 g/mL, Hvap 37.43 kJ/mol (tests/data/liquid/liquids_subset.csv,
doi:10.1016/j.jct.2015.09.010).

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_drude_liquid.py OUTDIR \
        [--molecules 64] [--equilibration-ps 20] [--production-ps 40] \
        [--liquids ccl4,benzene] [--models fixed,drude] [--alphas start|fitted|field] \
        [--field-method hf/aug-cc-pvdz] [--hbond-thole own|A] [--lj-scale 1.0] \
        [--lj-sigma-scale 1.0] [--store DB] [--rebalance] [--rebalance-density] \
        [--window-from-ps T]

Rerunning with the same OUTDIR resumes (finished runs return at once). Each run writes
OUTDIR/<liquid>/<run directory>.json (with ``structure``: mean molecular dipole, dipole
correlation <M^2>/(N<mu^2>), donor H...acceptor distances, Drude |d| per type and the
fraction at the hard wall, over the equilibrated frames); OUTDIR/summary.json gathers
all of them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ffparam.io.atomic import write_json_atomic
from ffparam.liquid.box import box_density, molar_mass
from ffparam.liquid.drude import (
    DrudeDynamicsSettings,
    drude_gas_system,
    scale_lj_epsilon,
    scale_lj_sigma,
    simulate_drude_liquid,
    site_charges,
    trajectory_dielectric,
)
from ffparam.liquid.job import LiquidJob, simulate_liquid
from ffparam.liquid.openmm_system import build_gas_system
from ffparam.liquid.prepare import prepare_system
from ffparam.liquid.properties import production_start
from ffparam.liquid.settings import LiquidSettings
from ffparam.liquid.simulate import load_trajectory
from ffparam.params.drude import add_drude, element_drude_types

LIQUIDS = {
    "ccl4": {"smiles": "ClC(Cl)(Cl)Cl", "density": 1.584, "hvap": 7.75, "eps": 2.24},
    "benzene": {"smiles": "c1ccccc1", "density": 0.874, "hvap": 8.09, "eps": 2.27},
    "methanol": {"smiles": "CO", "density": 0.7866, "hvap": 37.43 / 4.184, "eps": 32.6},
}
TEMPERATURE_K = 298.15


def _settings(args: argparse.Namespace, timestep_fs: float) -> LiquidSettings:
    return LiquidSettings(
        n_molecules=args.molecules, cutoff_a=9.0, switch_a=8.0, timestep_fs=timestep_fs,
        equilibration_ps=args.equilibration_ps, production_ps=args.production_ps,
        save_interval_ps=0.2, checkpoint_interval_ps=5.0, gas_equilibration_ps=5.0,
        gas_production_ps=args.gas_production_ps, gas_save_interval_ps=0.2,
        gas_replicas=1, box_conformers=0, threads=1)


E_A_TO_DEBYE = 4.803204
HBOND_SAMPLE_FRAMES = 50


def structure_statistics(system, positions: np.ndarray, box_lengths: np.ndarray,
                         charges: np.ndarray, drude: bool) -> dict:
    """Equilibrated-frame structure of a liquid (``positions`` (n_frames, n_sites, 3) A,
    molecules whole, sites per molecule as the run's System, ``charges`` per molecule):
    mean molecular dipole (Debye) and <M^2>/(N <mu^2>) (the dipole correlation behind
    eps); for every donor H atom the distance to the nearest acceptor (O, N) of another
    molecule (median and 5th percentile, A, over up to 50 frames); with ``drude`` per
    Drude type the mean and max |d| (A) and the fraction within 1 mA of the 0.2 A wall
    and above 0.15 A."""
    per = len(charges)
    xyz = np.asarray(positions, dtype=np.float64).reshape(len(positions), -1, per, 3)
    mu = np.einsum("fmik,i->fmk", xyz - xyz[:, :, :1], charges)
    out = {"mean_dipole_debye": float(np.linalg.norm(mu, axis=-1).mean() * E_A_TO_DEBYE),
           "dipole_correlation": float((mu.sum(1) ** 2).sum(-1).mean()
                                       / (xyz.shape[1] * (mu ** 2).sum(-1).mean()))}
    out.update(_hbond_distances(system, xyz, box_lengths))
    if drude:
        from ffparam.liquid.drude import drude_displacements

        d = drude_displacements(system, positions).reshape(len(positions), -1,
                                                           len(system.drude))
        for k, tid in enumerate(system.drude.type_ids):
            out[f"drude_{tid}"] = {"mean_a": float(d[:, :, k].mean()),
                                   "max_a": float(d[:, :, k].max()),
                                   "at_wall": float((d[:, :, k] >= 0.199).mean()),
                                   "above_0.15": float((d[:, :, k] >= 0.15).mean())}
    return out


def _hbond_distances(system, xyz: np.ndarray, box_lengths: np.ndarray) -> dict:
    """Nearest intermolecular acceptor (O, N) of each donor H (module docstring)."""
    from ffparam.params.drude import donor_hydrogens

    donors = donor_hydrogens(system).tolist()
    acceptors = [i for i, e in enumerate(system.molecule.symbols) if e in ("O", "N")]
    if not donors or not acceptors:
        return {}
    nearest = []
    for f in np.linspace(0, len(xyz) - 1, min(HBOND_SAMPLE_FRAMES, len(xyz))).astype(int):
        h, a = xyz[f][:, donors].reshape(-1, 3), xyz[f][:, acceptors].reshape(-1, 3)
        delta = h[:, None] - a[None]
        delta -= box_lengths[f] * np.round(delta / box_lengths[f])
        r = np.linalg.norm(delta, axis=-1)
        mol_h = np.repeat(np.arange(xyz.shape[1]), len(donors))
        mol_a = np.repeat(np.arange(xyz.shape[1]), len(acceptors))
        r[mol_h[:, None] == mol_a[None]] = np.inf
        nearest.append(r.min(1))
    nearest = np.concatenate(nearest)
    return {"hbond_median_a": float(np.median(nearest)),
            "hbond_p5_a": float(np.percentile(nearest, 5))}


def fixed_charge_run(name: str, system, args, directory: Path) -> dict:
    settings = _settings(args, 2.0)
    if args.alphas == "field":  # the control: the Drude fit's permanent charges, same LJ
        from ffparam.liquid.drude import override_parameters

        fitted, _ = field_fitted_drude_system(system, args.store, args.field_method)
        system = override_parameters(system, fitted.parameters)
    job = LiquidJob(name, system, TEMPERATURE_K, 1.0, directory, settings,
                    density_guess_g_ml=LIQUIDS[name]["density"])
    start = time.perf_counter()
    result = simulate_liquid(job)
    wall = time.perf_counter() - start
    liquid = load_trajectory(directory / "liquid", settings.save_interval_ps)
    densities = box_density(molar_mass(system.molecule), settings.n_molecules, liquid.volumes)
    t0 = production_start(liquid.energies, densities)
    charges = np.tile(site_charges(build_gas_system(system, settings)), settings.n_molecules)
    eps = trajectory_dielectric(liquid, charges, t0, TEMPERATURE_K)
    structure = structure_statistics(system, liquid.positions[t0:], liquid.box_lengths[t0:],
                                     charges[:system.n_atoms], drude=False)
    return {"density": result.density.to_json(), "hvap": result.hvap.to_json(),
            "dielectric": eps.to_json(), "structure": structure, "frames": result.frames,
            "lengths_ps": result.lengths_ps, "wall_s": wall,
            "ns_per_day": result.ns_per_day}


def fitted_drude_system(name: str, system, store: Path) -> tuple:
    """``system`` with Drude types (element + hybridization + H count) whose alpha and
    Thole are fitted to the molecule's QM polarizability tensor; also the QM and fitted
    isotropic alphas (A^3) and the fitted Drude parameters."""
    from bench_drude import fit_drude, molecule, qm_records

    from ffparam.mm.drude import DrudeEngine

    qm_molecule = molecule(name, LIQUIDS[name]["smiles"])
    record = qm_records({name: qm_molecule}, store)[name]
    types = element_drude_types(system, hydrogens=True)
    fitted = fit_drude({name: add_drude(system, types)}, {name: record}).parameters
    out = add_drude(system, types, source=fitted)
    mm = DrudeEngine(out).polarizability(record.result_geometry[None])[0].numpy()
    drude = {p.id: dict(p.values) for s, p in fitted if s == "Drude"}
    return out, {"qm_iso_a3": float(np.trace(record.polarizability) / 3),
                 "mm_iso_a3": float(np.trace(mm) / 3), "drude_parameters": drude}


def field_fitted_drude_system(system, store_path: Path, method: str) -> tuple:
    """``system`` with a Drude on every heavy atom whose charges, alpha and Thole are
    fitted to QM (tensor + ESP in fields, :func:`ffparam.workflows.bespoke_drude.fit_drude`
    at ``method``, QM from / into the Store ``store_path``); also the fit summary."""
    from ffparam.reference.esp_field import DEFAULT_FIELD_KCAL_MOL_E_A
    from ffparam.reference.store import Store
    from ffparam.runtime import SerialExecutor
    from ffparam.workflows.bespoke_drude import fit_drude

    store_path.parent.mkdir(parents=True, exist_ok=True)
    with Store(store_path) as store:
        drude_system, summary = fit_drude(system, method, DEFAULT_FIELD_KCAL_MOL_E_A, store,
                                          SerialExecutor())
    return drude_system, {"field_fit": summary.to_json()}


def acceptor_hbond_thole(system, value: str):
    """``system`` with ``hbond_thole`` on the Drude types of its O and N atoms: ``value``
    a number, or ``own`` for each type's own Thole factor."""
    from ffparam.params.drude import DRUDE_SECTION, with_hbond_thole

    acceptors = {tid for parent, tid in zip(system.drude.parents.tolist(),
                                             system.drude.type_ids)
                 if system.molecule.symbols[parent] in ("O", "N")}
    return with_hbond_thole(system, {
        tid: system.parameters.get(DRUDE_SECTION, tid).values["thole"] if value == "own"
        else float(value) for tid in acceptors})


def drude_run(name: str, system, args, directory: Path) -> dict:
    settings = _settings(args, 1.0)
    info: dict = {}
    if args.alphas == "fitted":
        drude_system, info = fitted_drude_system(name, system, args.store)
    elif args.alphas == "field":
        drude_system, info = field_fitted_drude_system(system, args.store, args.field_method)
    else:
        drude_system = add_drude(system)
    if args.hbond_thole:
        drude_system = acceptor_hbond_thole(drude_system, args.hbond_thole)
        info["hbond_thole"] = args.hbond_thole
    if args.lj_scale != 1.0:
        drude_system = scale_lj_epsilon(drude_system, args.lj_scale)
    if args.lj_sigma_scale != 1.0:
        drude_system = scale_lj_sigma(drude_system, args.lj_sigma_scale)
    directory.mkdir(parents=True, exist_ok=True)
    drude_system.parameters.save(directory / "parameters.yaml")
    job = LiquidJob(name, drude_system, TEMPERATURE_K, 1.0, directory, settings,
                    density_guess_g_ml=LIQUIDS[name]["density"])
    start = time.perf_counter()
    result = simulate_drude_liquid(job, DrudeDynamicsSettings())
    wall = time.perf_counter() - start
    liquid = load_trajectory(directory / "liquid", settings.save_interval_ps)
    t0 = liquid.positions.shape[0] - result.liquid.frames["liquid_used"]
    charges = site_charges(drude_gas_system(drude_system, settings))
    info["structure"] = structure_statistics(drude_system, liquid.positions[t0:],
                                             liquid.box_lengths[t0:], charges, drude=True)
    return {"density": result.liquid.density.to_json(), "hvap": result.liquid.hvap.to_json(),
            "dielectric": result.dielectric.to_json(), "alpha_a3": result.alpha_a3,
            "max_drude_displacement_a": result.max_drude_displacement_a,
            "epsilon_scale": result.epsilon_scale,
            "lj_scale": args.lj_scale, "lj_sigma_scale": args.lj_sigma_scale,
            "alphas": args.alphas, **info,
            "frames": result.liquid.frames, "lengths_ps": result.liquid.lengths_ps,
            "wall_s": wall, "ns_per_day": result.liquid.ns_per_day}


def rebalance(name: str, args: argparse.Namespace) -> dict:
    """The common LJ epsilon scale s of the Drude model of ``--alphas`` (and
    ``--hbond-thole``; its run at scale 1) that restores the fixed-charge Hvap: first the
    fluctuation-formula slope dHvap/ds of the Drude run, then two secant steps on Hvap(s)
    reweighted from its frames (exponential reweighting of liquid and gas,
    :func:`ffparam.liquid.reweight.reweight_liquid`), with the reweighted density and the
    Kish effective sample sizes at the chosen s. The Drude model is rebuilt from the run's
    saved parameter file (the CLI's path)."""
    from ffparam.liquid.reweight import reweight_liquid

    label = _unscaled_drude_label(args)
    directory = args.outdir / name / label
    target = json.loads((args.outdir / name / "fixed.json").read_text())["hvap"]["value"]
    drude = json.loads((args.outdir / name / f"{label}.json").read_text())
    model = _saved_drude_model(name, args, directory)
    settings = _settings(args, 1.0)

    def hvap_at(scale: float) -> dict:
        moved = scale_lj_epsilon(model, scale).parameters.vector()
        return reweight_liquid(directory, model, moved, settings, TEMPERATURE_K)

    slope = drude["epsilon_scale"]["d_hvap_kcal_mol"]
    steps = [(1.0, drude["hvap"]["value"])]
    scale = 1.0 + (target - steps[0][1]) / slope
    for _ in range(3):
        steps.append((scale, hvap_at(scale)["hvap"]))
        (s0, h0), (s1, h1) = steps[-2:]
        scale = s1 + (target - h1) * (s1 - s0) / (h1 - h0)
    final = hvap_at(scale)
    return {"target_hvap": target, "slope_d_hvap_ds": slope,
            "linear_scale": 1.0 + (target - drude["hvap"]["value"]) / slope,
            "scale": scale, "reweighted": final,
            "secant_steps": [{"scale": a, "hvap": b} for a, b in steps]}


def rebalance_density(name: str, args: argparse.Namespace) -> dict:
    """The LJ sigma scale and epsilon scale (common to the molecule's types) of the Drude
    model of ``--alphas`` (its run at scale 1) that bring the density to the fixed-charge
    run's while holding the Drude run's own Hvap: Newton steps with a finite-difference
    Jacobian (steps 1e-3) on density and Hvap reweighted from the Drude frames (the LJ
    frame sums hold c12 and c6 per type pair, so a sigma change reweights exactly), from
    sigma scale (rho_Drude / rho_fixed)^(1/3). For a liquid whose Drude Hvap is right but
    whose density is off (CCl4); the result is checked by simulating it
    (``--lj-scale``, ``--lj-sigma-scale``)."""
    from ffparam.liquid.reweight import reweight_liquid

    label = _unscaled_drude_label(args)
    directory = args.outdir / name / label
    fixed = json.loads((args.outdir / name / "fixed.json").read_text())
    drude = json.loads((args.outdir / name / f"{label}.json").read_text())
    target = np.array([fixed["density"]["value"], drude["hvap"]["value"]])
    model = _saved_drude_model(name, args, directory)
    settings = _settings(args, 1.0)

    def reweighted(scales: np.ndarray) -> dict:
        moved = scale_lj_epsilon(scale_lj_sigma(model, scales[0]), scales[1])
        return reweight_liquid(directory, model, moved.parameters.vector(), settings,
                               TEMPERATURE_K)

    def values(out: dict) -> np.ndarray:
        return np.array([out["density"], out["hvap"]])

    scales = np.array([(drude["density"]["value"] / target[0]) ** (1 / 3), 1.0])
    steps = []
    for _ in range(4):
        here = values(reweighted(scales))
        steps.append({"sigma_scale": scales[0], "epsilon_scale": scales[1],
                      "density": here[0], "hvap": here[1]})
        jacobian = np.column_stack([(values(reweighted(scales + step)) - here) / 1e-3
                                    for step in np.eye(2) * 1e-3])
        scales = scales + np.linalg.solve(jacobian, target - here)
    return {"target_density": target[0], "target_hvap": target[1],
            "sigma_scale": scales[0], "epsilon_scale": scales[1],
            "reweighted": reweighted(scales), "newton_steps": steps}


def fixed_window(name: str, args: argparse.Namespace) -> dict:
    """Density (g/mL; error from 10 block means) and eps (blocked jackknife) of the
    finished Drude run of ``--alphas``/``--hbond-thole`` over every frame from
    ``--window-from-ps`` on: a check of the equilibration detection on liquids whose
    density wanders slowly (methanol)."""
    from ffparam.liquid.drude import (
        AVOGADRO_G_ML_TO_PER_A3,
        clausius_mossotti,
        isotropic_polarizability,
    )

    directory = args.outdir / name / run_directory(args, "drude")
    model = _saved_drude_model(name, args, directory)
    settings = _settings(args, 1.0)
    liquid = load_trajectory(directory / "liquid", settings.save_interval_ps)
    first = round(args.window_from_ps / settings.save_interval_ps)
    mass = molar_mass(model.molecule)
    rho = box_density(mass, settings.n_molecules, liquid.volumes)[first:]
    blocks = rho[: len(rho) // 10 * 10].reshape(10, -1).mean(1)
    charges = np.tile(site_charges(drude_gas_system(model, settings)), settings.n_molecules)
    eps_inf = clausius_mossotti(isotropic_polarizability(model),
                                rho.mean() / mass * AVOGADRO_G_ML_TO_PER_A3)
    eps = trajectory_dielectric(liquid, charges, first, TEMPERATURE_K, eps_inf)
    return {"from_ps": args.window_from_ps, "frames": len(rho),
            "density": float(rho.mean()),
            "density_error": float(blocks.std(ddof=1) / np.sqrt(len(blocks))),
            "density_blocks": blocks.tolist(), "dielectric": eps.to_json()}


def _unscaled_drude_label(args: argparse.Namespace) -> str:
    """The run directory of the Drude model of ``--alphas``/``--hbond-thole`` with its LJ
    unscaled (the run the rebalancing starts from)."""
    return run_directory(argparse.Namespace(**{**vars(args), "lj_scale": 1.0,
                                               "lj_sigma_scale": 1.0}), "drude")


def _saved_drude_model(name: str, args: argparse.Namespace, directory: Path):
    """The Drude model of the finished run in ``directory``, rebuilt from its saved
    parameter file (the CLI's path)."""
    from ffparam.liquid.drude import override_parameters, polarizable_system
    from ffparam.params.parameter_set import ParameterSet

    params = ParameterSet.load(directory / "parameters.yaml")
    system = prepare_system(LIQUIDS[name]["smiles"], "sage", "am1bcc", name=name,
                            cache_file=args.outdir / f"{name}_system.json")
    return polarizable_system(override_parameters(system, params), params)


def run_directory(args: argparse.Namespace, model: str) -> str:
    if model == "fixed":
        return "fixed_field" if args.alphas == "field" else "fixed"
    label = {"start": "drude", "fitted": "drude_fitted", "field": "drude_field"}[args.alphas]
    if args.hbond_thole:
        label += f"_hb{args.hbond_thole}"
    if args.lj_scale != 1.0:
        label += f"_lj{args.lj_scale:g}"
    return label if args.lj_sigma_scale == 1.0 else f"{label}_sig{args.lj_sigma_scale:g}"


def gather(outdir: Path) -> dict:
    """Every run's JSON under ``outdir`` as {liquid: {run: result}}."""
    summary: dict = {}
    for path in sorted(outdir.glob("*/*.json")):
        summary.setdefault(path.parent.name, {"experiment": LIQUIDS.get(path.parent.name)})
        summary[path.parent.name][path.stem] = json.loads(path.read_text())
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--molecules", type=int, default=64)
    parser.add_argument("--equilibration-ps", type=float, default=20.0)
    parser.add_argument("--production-ps", type=float, default=40.0)
    parser.add_argument("--gas-production-ps", type=float, default=100.0)
    parser.add_argument("--liquids", default="ccl4,benzene")
    parser.add_argument("--models", default="fixed,drude")
    parser.add_argument("--alphas", choices=("start", "fitted", "field"), default="start")
    parser.add_argument("--field-method", default="hf/aug-cc-pvdz",
                        help="QM level of the --alphas field fit (tensor and field ESPs)")
    parser.add_argument("--hbond-thole", default="",
                        help="hbond_thole of the O/N Drude types: a number or 'own'")
    parser.add_argument("--lj-scale", type=float, default=1.0)
    parser.add_argument("--lj-sigma-scale", type=float, default=1.0,
                        help="multiply every LJ sigma of the molecule in the Drude model")
    parser.add_argument("--rebalance-density", action="store_true",
                        help="only compute the LJ sigma and epsilon scales of the fitted "
                             "Drude model that restore the fixed-charge density at the "
                             "Drude Hvap (finished runs)")
    parser.add_argument("--rebalance", action="store_true",
                        help="only compute the LJ epsilon scale of the fitted Drude model "
                             "that restores the fixed-charge Hvap (finished runs)")
    parser.add_argument("--window-from-ps", type=float, default=None,
                        help="only analyse the finished Drude run from this time on "
                             "(density by 10 blocks, eps), no equilibration detection")
    parser.add_argument("--store", type=Path, default=Path("/tmp/ffparam_bench_drude/"
                                                           "polarizability.db"))
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    for name in args.liquids.split(",") if args.rebalance else ():
        result = rebalance(name, args)
        write_json_atomic(args.outdir / name / "rebalance.json", result)
        print(json.dumps({name: result}, indent=1), flush=True)
    for name in args.liquids.split(",") if args.rebalance_density else ():
        result = rebalance_density(name, args)
        write_json_atomic(args.outdir / name / "rebalance_density.json", result)
        print(json.dumps({name: result}, indent=1), flush=True)
    if args.rebalance_density:
        return
    for name in args.liquids.split(",") if args.window_from_ps is not None else ():
        label = run_directory(args, "drude")
        result = fixed_window(name, args)
        write_json_atomic(args.outdir / name / f"{label}_window.json", result)
        print(json.dumps({name: result}, indent=1), flush=True)
    if args.window_from_ps is not None:
        return
    for name in () if args.rebalance else args.liquids.split(","):
        system = prepare_system(LIQUIDS[name]["smiles"], "sage", "am1bcc", name=name,
                                cache_file=args.outdir / f"{name}_system.json")
        for model in args.models.split(","):
            label = run_directory(args, model)
            run = fixed_charge_run if model == "fixed" else drude_run
            result = run(name, system, args, args.outdir / name / label)
            write_json_atomic(args.outdir / name / f"{label}.json", result)
            print(json.dumps({name: {label: result}}, indent=1), flush=True)
    write_json_atomic(args.outdir / "summary.json", gather(args.outdir))


if __name__ == "__main__":
    main()
