"""QM/MM in polarizable (Drude) water: self-consistency, forces, the alpha -> 0 limit
(issue 17, QM/MM point 1: "for Drude environments, their polarization").

MM water: Sage's TIP3P charges, one Drude on each oxygen (params.drude starting alpha
1.5 A^3, Thole 1.3, k = 1000 kcal/mol/A^2). QM: METHOD.

1. A QM water among 4 MM waters: iterations and energy changes of the self-consistency
   (tolerance 1e-8 kcal/mol), E_QM/MM, E_pol, the residual dE/dd, the fixed-charge QM/MM
   energy, the alpha = 1e-9 A^3 energy against it, and forces against central finite
   differences (step 2.5e-4 A) on 6 MM and 3 QM coordinates.
2. Methanol in the waters within 6 A of an ``ffparam qmmm`` snapshot (300 TIP3P waters,
   10 ps NPT, solute frozen): the same self-consistency at the default tolerance (1e-6).

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_qmmm_drude.py [--method hf/6-31g*]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from rdkit import Chem

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.params import Parameter, ParameterSet
from ffparam.params.drude import DRUDE_SECTION, add_drude
from ffparam.reference.qmmm import Environment, embedded_calculator
from ffparam.reference.qmmm_drude import (
    DrudeEnvironment,
    DrudeQMMMSettings,
    self_consistent_qmmm,
)
from ffparam.reference.records import Species
from ffparam.workflows.qmmm import QMMMSettings, run_qmmm

TIP3P = np.array([-0.834, 0.417, 0.417])
FD_STEP_A = 2.5e-4
"""Central-difference step: the O(h^2) error of the QM O-H stretch is 5e-4 kcal/mol/A at
1e-3 A."""
OFFSETS = [[2.9, 0.3, 0.1], [-1.2, 2.7, 0.4], [0.4, -2.4, 1.6], [0.2, 0.5, -2.9]]


def water_environment(blocks: np.ndarray, settings: DrudeQMMMSettings,
                      alpha_a3: float | None = None) -> DrudeEnvironment:
    """Waters at ``blocks`` (n, 3, 3) Angstrom (O, H, H) as one Drude environment."""
    waters = Molecule.from_smiles(".".join(["O"] * len(blocks)), name=f"{len(blocks)} waters")
    positions, charges = np.zeros((3 * len(blocks), 3)), np.zeros(3 * len(blocks))
    for fragment, xyz in zip(Chem.GetMolFrags(waters.rdmol), blocks):
        positions[list(fragment)], charges[list(fragment)] = xyz, TIP3P  # O, H, H
    system = assign_parameters(waters.with_conformers(positions[None]), "sage",
                               charges=charges)
    source = None
    if alpha_a3 is not None:
        source = ParameterSet()
        source.add(DRUDE_SECTION, Parameter("O3", {"alpha": alpha_a3, "thole": 1.3}))
    return DrudeEnvironment(add_drude(system, source=source), positions, settings)


def report(label: str, result, seconds: float) -> None:
    changes = " ".join(f"{abs(c):.1e}" for c in np.diff(result.energies))
    print(f"{label}: {result.iterations} QM/MM SCFs, {seconds:.1f} s; E_QM/MM "
          f"{result.qmmm_energy:.4f}, E_pol {result.polarization_energy:.4f}, total "
          f"{result.energy:.4f} kcal/mol; residual max|dE/dd| {result.residual_kcal_mol_a:.1e} "
          f"kcal/mol/A; |dE| per iteration: {changes}")


def forces_error(species, x0, environment, result, method: str) -> tuple[float, float]:
    """Max |analytic - FD| (kcal/mol/A) on 6 MM and 3 QM coordinates."""
    worst = {"mm": 0.0, "qm": 0.0}
    for where, atom, axis in [("mm", a, k) for a in (0, 5) for k in range(3)] + \
                             [("qm", 1, k) for k in range(3)]:
        energies = []
        for sign in (1.0, -1.0):
            qm, mm = x0.copy(), environment.positions.copy()
            (mm if where == "mm" else qm)[atom, axis] += sign * FD_STEP_A
            moved = DrudeEnvironment(environment.system, mm, environment.settings)
            energies.append(self_consistent_qmmm(species, qm, moved, method).energy)
        numeric = (energies[0] - energies[1]) / (2 * FD_STEP_A)
        analytic = (result.mm_gradient if where == "mm" else result.gradient)[atom, axis]
        worst[where] = max(worst[where], abs(numeric - analytic))
    return worst["mm"], worst["qm"]


def cluster(method: str) -> None:
    water = Molecule.from_smiles("O", name="water").generate_conformers(1, seed=7)
    x0 = water.conformers[0]
    species = Species.from_molecule(water)
    blocks = np.array([x0 + np.array(o) for o in OFFSETS])
    tight = DrudeQMMMSettings(energy_tolerance_kcal_mol=1e-8)
    environment = water_environment(blocks, tight)
    start = time.perf_counter()
    result = self_consistent_qmmm(species, x0, environment, method)
    report("water + 4 Drude waters", result, time.perf_counter() - start)
    fixed = embedded_calculator(method, species, Environment(np.tile(TIP3P, 4),
                                                             blocks.reshape(-1, 3))
                                ).compute(x0).energy
    tiny = self_consistent_qmmm(species, x0, water_environment(blocks, tight, 1e-9), method)
    print(f"  fixed-charge QM/MM {fixed:.4f} kcal/mol; Drude - fixed {result.energy - fixed:.4f}"
          f"; alpha 1e-9 A^3 - fixed {tiny.energy - fixed:.1e} kcal/mol "
          f"({tiny.iterations} SCFs)")
    mm_error, qm_error = forces_error(species, x0, environment, result, method)
    print(f"  forces vs central FD ({FD_STEP_A} A): max error MM {mm_error:.1e}, "
          f"QM {qm_error:.1e} kcal/mol/A")


def shell(method: str, workdir: Path) -> None:
    run = run_qmmm("CO", workdir / "methanol", QMMMSettings(method=method, n_frames=1,
                                                            cutoff_a=6.0, task="energy"))
    region = run.regions[0]
    blocks = region.environment.positions.reshape(-1, 3, 3)
    environment = water_environment(blocks, DrudeQMMMSettings())
    start = time.perf_counter()
    result = self_consistent_qmmm(region.species, region.geometry, environment, method)
    report(f"methanol + {len(blocks)} Drude waters (6 A shell)", result,
           time.perf_counter() - start)
    print(f"  fixed-charge QM/MM of the same snapshot {run.records[0].energy:.4f} kcal/mol; "
          f"Drude - fixed {result.energy - run.records[0].energy:.4f} kcal/mol")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="hf/6-31g*")
    args = parser.parse_args()
    print(f"# bench_qmmm_drude on {platform.node()} ({os.cpu_count()} CPUs, load "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}), {time.strftime('%Y-%m-%d %H:%M')}"
          f", {args.method}")
    cluster(args.method)
    with tempfile.TemporaryDirectory() as tmp:
        shell(args.method, Path(tmp))


if __name__ == "__main__":
    main()
