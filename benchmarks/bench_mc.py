"""Monte Carlo (ffparam.sample) against long OpenMM MD: butane and pentane trans/gauche
populations with OpenFF Sage.

Both sample exp(-E(x)/kT) in Cartesian space with the same force field (ffparam's Sage
assignment; the MD runs its OpenMM export), so the populations of the C-C-C-C torsion
states must agree within statistical error.

MD reference: ``--copies`` non-interacting copies of the molecule in one OpenMM System
(bonded forces copied per copy; the intramolecular nonbonded pairs, exceptions included,
as one CustomBondForce, so there is no cutoff and no interaction between copies; checked
against the single-molecule export to 1e-6 relative), Langevin (BAOAB middle) dynamics,
1 fs, friction 1/ps, real masses, flexible bonds. At 300 K a C-C-C-C torsion of Sage
stays in one well for hundreds of ps, so a CPU-affordable MD pins the 300 K populations
to a few percent only; at 500 K the wells exchange ~20x faster and the check is tight.
MC runs all temperatures as one replica-exchange ladder. The copies are independent
trajectories: the populations' standard errors are the spread of the per-copy means over
sqrt(n_copies) (:func:`ffparam.sample.chain_average`); MC errors the same over its
independent chains. The integrated autocorrelation times are printed too (in frames):
each trajectory must be many tau long for its mean to be meaningful (a row says so when
the MD is shorter than 5 tau or its two halves disagree: then its error is not
reliable). The check: every population differs by less than 5 combined standard errors
(|z| < 5).

    OMP_NUM_THREADS=1 OPENMM_CPU_THREADS=1 python benchmarks/bench_mc.py \
        [--molecules butane pentane] [--temperatures 300 500] [--md-ns 0.1 0.2] \
        [--copies 32] [--chains 128] [--mc-steps 4000] [--charges am1bcc] [--json out.json]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from ffparam.io.atomic import write_json_atomic
from ffparam.sample import (
    MCSettings,
    chain_average,
    dihedral_angles,
    integrated_autocorrelation_time,
    run_mc,
    torsion_states,
)

MOLECULES = {"butane": "CCCC", "pentane": "CCCCC"}
ONE_4PI_EPS0 = 138.935456
"""OpenMM's Coulomb constant, kJ/mol nm / e^2."""


def carbon_dihedrals(n_carbons: int) -> np.ndarray:
    """C-C-C-C quadruples of a linear alkane (carbons are atoms 0..n-1 from SMILES)."""
    return np.array([[i, i + 1, i + 2, i + 3] for i in range(n_carbons - 3)])


def classes(states: np.ndarray) -> dict[str, np.ndarray]:
    """Conformer classes (bool (...,)) from torsion states (..., n_dihedrals) 0 g+, 1 t,
    2 g-: butane t/g; pentane tt, tg, g+g+ (same sign), g+g- (opposite signs)."""
    trans = states == 1
    if states.shape[-1] == 1:
        return {"t": trans[..., 0], "g": ~trans[..., 0]}
    a, b = states[..., 0], states[..., 1]
    n_trans = trans.sum(-1)
    gg = n_trans == 0
    return {"tt": n_trans == 2, "tg": n_trans == 1, "g+g+": gg & (a == b),
            "g+g-": gg & (a != b)}


def populations(frames: np.ndarray, quads: np.ndarray) -> dict[str, dict]:
    """Class -> fraction, standard error and tau (frames) of (n_frames, n_traj, n_atoms,
    3) frames of independent trajectories."""
    states = torsion_states(dihedral_angles(frames, quads))
    out = {}
    for name, member in classes(states).items():
        x = member.astype(np.float64)
        mean, error = chain_average(x)
        out[name] = {"fraction": mean, "error": error,
                     "tau_frames": integrated_autocorrelation_time(x)}
    return out


def multi_copy_system(system, n_copies: int):
    """An OpenMM System of ``n_copies`` non-interacting copies of ``system``'s export."""
    import openmm

    from ffparam.mm.openmm_export import to_openmm

    single = to_openmm(system)
    n = single.getNumParticles()
    out = openmm.System()
    for _ in range(n_copies):
        for i in range(n):
            out.addParticle(single.getParticleMass(i))
    for force in single.getForces():
        out.addForce(_copied_force(force, n, n_copies))
    return out, single


def _copied_force(force, n: int, n_copies: int):
    import openmm

    kind = type(force).__name__
    if kind == "NonbondedForce":
        return _pair_force(force, n, n_copies)
    rules = {"HarmonicBondForce": ("addBond", "getBondParameters", "getNumBonds", 2),
             "HarmonicAngleForce": ("addAngle", "getAngleParameters", "getNumAngles", 3),
             "PeriodicTorsionForce": ("addTorsion", "getTorsionParameters", "getNumTorsions",
                                      4)}
    if kind not in rules:
        raise SystemExit(f"bench_mc: no copy rule for {kind}")
    add, get, count, width = rules[kind]
    copy = getattr(openmm, kind)()
    for c in range(n_copies):
        for t in range(getattr(force, count)()):
            values = list(getattr(force, get)(t))
            atoms = [a + c * n for a in values[:width]]
            getattr(copy, add)(*atoms, *values[width:])
    return copy


def _pair_force(force, n: int, n_copies: int):
    """Every intramolecular pair as a bond: Coulomb + LJ, exceptions as they are."""
    import openmm
    from openmm import unit

    pair = openmm.CustomBondForce(
        f"{ONE_4PI_EPS0}*qq/r + 4*eps*((sig/r)^12 - (sig/r)^6)")
    for name in ("qq", "sig", "eps"):
        pair.addPerBondParameter(name)
    params = [force.getParticleParameters(i) for i in range(n)]
    special = {}
    for e in range(force.getNumExceptions()):
        i, j, qq, sig, eps = force.getExceptionParameters(e)
        special[(min(i, j), max(i, j))] = (qq, sig, eps)
    rows = []
    for i in range(n):
        for j in range(i + 1, n):
            qq, sig, eps = special.get((i, j), (
                params[i][0] * params[j][0], 0.5 * (params[i][1] + params[j][1]),
                (params[i][2] * params[j][2]).sqrt()))
            qq = qq.value_in_unit(unit.elementary_charge**2)
            eps = eps.value_in_unit(unit.kilojoule_per_mole)
            if qq != 0.0 or eps != 0.0:
                rows.append((i, j, qq, sig.value_in_unit(unit.nanometer), eps))
    for c in range(n_copies):
        for i, j, qq, sig, eps in rows:
            pair.addBond(i + c * n, j + c * n, [qq, sig, eps])
    return pair


def check_copy(system, single, xyz_nm: np.ndarray, n_copies: int) -> float:
    """Relative difference of the copied system's energy / n_copies and the single one."""
    import openmm

    energies = []
    for s, pos in ((single, xyz_nm), (system, np.tile(xyz_nm, (n_copies, 1)))):
        context = openmm.Context(s, openmm.VerletIntegrator(0.001),
                                 openmm.Platform.getPlatformByName("Reference"))
        context.setPositions(pos)
        energies.append(context.getState(getEnergy=True).getPotentialEnergy()._value)
    return abs(energies[1] / n_copies - energies[0]) / abs(energies[0])


def run_md(system, xyz_a: np.ndarray, temperature_k: float, n_copies: int, md_ns: float,
           stride: int, seed: int, equilibration_ns: float | None = None) -> np.ndarray:
    """Frames (n_frames, n_copies, n_atoms, 3) Angstrom of the copies' Langevin MD
    (1 fs, 1/ps) after ``equilibration_ns`` (default 10 % of ``md_ns``), not kept."""
    import openmm
    from openmm import unit

    copied, single = multi_copy_system(system, n_copies)
    xyz_nm = xyz_a / 10.0
    error = check_copy(copied, single, xyz_nm, n_copies)
    if error > 1e-6:
        raise SystemExit(f"bench_mc: copied system differs from the export by {error:.1e}")
    integrator = openmm.LangevinMiddleIntegrator(temperature_k * unit.kelvin, 1 / unit.picosecond,
                                                 1 * unit.femtosecond)
    integrator.setRandomNumberSeed(seed + 1)
    context = openmm.Context(copied, integrator, openmm.Platform.getPlatformByName("CPU"))
    context.setPositions(np.tile(xyz_nm, (n_copies, 1)))
    context.setVelocitiesToTemperature(temperature_k * unit.kelvin, seed + 1)
    n_steps = int(md_ns * 1e6)
    n_equilibration = n_steps // 10 if equilibration_ns is None else int(equilibration_ns * 1e6)
    integrator.step(n_equilibration)
    frames = []
    for _ in range(max(n_steps - n_equilibration, 0) // stride):
        integrator.step(stride)
        pos = context.getState(getPositions=True).getPositions(asNumpy=True)._value
        frames.append(np.asarray(pos).reshape(n_copies, -1, 3) * 10.0)
    return np.array(frames)


def drifts(frames: np.ndarray, quads: np.ndarray) -> bool:
    """Whether the first and second halves of the trajectories differ by more than 3
    combined standard errors in some class (the copies still remember their start)."""
    half = len(frames) // 2
    first, second = populations(frames[:half], quads), populations(frames[half:], quads)
    return any(abs(first[k]["fraction"] - second[k]["fraction"])
               > 3 * np.hypot(first[k]["error"], second[k]["error"]) for k in first)


def compare(mc: dict, md: dict) -> dict:
    """z = (MC - MD) / sqrt(se_MC^2 + se_MD^2) of every class."""
    return {name: (mc[name]["fraction"] - md[name]["fraction"])
            / np.hypot(mc[name]["error"], md[name]["error"]) for name in mc}


def run(name: str, args: argparse.Namespace) -> list[dict]:
    """One replica-exchange MC run over ``args.temperatures`` and one MD run per
    temperature; one row per temperature."""
    from ffparam.assign import assign_parameters
    from ffparam.chem import Molecule

    molecule = Molecule.from_smiles(MOLECULES[name], name=name).generate_conformers(
        1, seed=args.seed)
    system = assign_parameters(molecule, "sage", args.charges)
    quads = carbon_dihedrals(MOLECULES[name].count("C"))
    start = molecule.conformers[0]
    temps = sorted(args.temperatures)
    t0 = time.perf_counter()
    settings = MCSettings(temperature_k=temps[0], replica_temperatures_k=tuple(temps[1:]),
                          n_chains=args.chains, n_steps=args.mc_steps,
                          equilibration_steps=args.mc_steps // 4, stride=10, seed=args.seed)
    result = run_mc(system, start, settings)
    mc_s = time.perf_counter() - t0
    rows = []
    for t, temp in enumerate(temps):
        mc = populations(result.positions[t], quads)
        t0 = time.perf_counter()
        md_frames = run_md(system, start, temp, args.copies, args.md_ns[t], args.md_stride,
                           args.seed, args.md_equilibration_ns)
        md = populations(md_frames, quads)
        short = max(v["tau_frames"] for v in md.values()) * 5 > len(md_frames) or \
            drifts(md_frames, quads)
        rows.append({"molecule": name, "temperature_k": temp, "mc": mc, "md": md,
                     "md_shorter_than_5_tau": bool(short), "z": compare(mc, md), "mc_seconds": mc_s,
                     "md_seconds": time.perf_counter() - t0, "mc_summary": result.summary(),
                     "mc_settings": settings.to_dict(), "md_copies": args.copies,
                     "md_ns_per_copy": args.md_ns[t]})
        report(rows[-1])
    return rows


def report(row: dict) -> None:
    print(f"\n{row['molecule']} {row['temperature_k']:g} K: MC {row['mc_seconds']:.0f} s "
          f"(all temperatures; {row['mc_summary']}), MD {row['md_seconds']:.0f} s "
          f"({row['md_copies']} x {row['md_ns_per_copy']} ns)")
    print(f"{'class':8s} {'MC':>16s} {'tau MC':>7s} {'MD':>16s} {'tau MD':>7s} {'z':>6s}")
    for name, z in row["z"].items():
        mc, md = row["mc"][name], row["md"][name]
        print(f"{name:8s} {mc['fraction']:.4f} ± {mc['error']:.4f} {mc['tau_frames']:7.1f} "
              f"{md['fraction']:.4f} ± {md['error']:.4f} {md['tau_frames']:7.1f} {z:6.2f}",
              flush=True)
    if row["md_shorter_than_5_tau"]:
        print("MD not converged (shorter than 5 autocorrelation times, or its two halves "
              "differ by > 3 sigma): its error is not reliable, the copies still remember "
              "their common start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", nargs="+", default=list(MOLECULES),
                        choices=list(MOLECULES))
    parser.add_argument("--charges", default="am1bcc")
    parser.add_argument("--chains", type=int, default=128)
    parser.add_argument("--mc-steps", type=int, default=4000)
    parser.add_argument("--copies", type=int, default=32)
    parser.add_argument("--temperatures", type=float, nargs="+", default=[300.0, 500.0],
                        help="K; MC runs them as one replica-exchange ladder")
    parser.add_argument("--md-ns", type=float, nargs="+", default=[0.1, 0.2],
                        help="ns per copy, one per temperature (ascending)")
    parser.add_argument("--md-stride", type=int, default=500, help="steps between frames")
    parser.add_argument("--md-equilibration-ns", type=float, default=None,
                        help="ns per copy not kept (default 10 %% of --md-ns)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if len(args.md_ns) != len(args.temperatures):
        parser.error("--md-ns needs one value per temperature")
    print(f"{platform.node()} {platform.processor()} python {platform.python_version()}")
    rows = []
    for name in args.molecules:
        rows.extend(run(name, args))
    worst = max(abs(z) for row in rows for z in row["z"].values())
    print(f"\nlargest |z| = {worst:.2f} ({'agree' if worst < 5 else 'DISAGREE'}: bound 5)")
    if args.json:
        write_json_atomic(args.json, {"args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
