"""Print the validation figures quoted in the issue-5 notes (not a test).

    OMP_NUM_THREADS=1 .venv/bin/python -m tests.validate.figures

1. Held-out conformers (10, GFN2-xTB) of butane for every preparation mode: reference energy
   span and relative-energy / force RMSE of Sage (AM1-BCC), Sage with the C-C-C-C
   periodicity-1 k + 3 kcal/mol, and Sage with C-C bonds 0.05 A longer.
2. The same (default mode) and the optimized-geometry RMSD for drug-like molecules, Sage
   (AM1-BCC) against GFN2-xTB, with wall times.
3. 100 ps of gas-phase Langevin MD (300 K, 1 fs, OpenMM CPU, 1 thread) of Sage molecules;
   sabotaged systems (a bond with k = -1000, collapsing charges).
"""

from __future__ import annotations

import os
import time

import numpy as np

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.validate import held_out_conformers, md_stability, optimized_geometry_rmsd
from ffparam.validate.sampling import RELAX_MODES
from tests.validate.conftest import CC_BOND, CCCC, perturbed

DRUG_LIKE = {
    "acetanilide": "CC(=O)Nc1ccccc1",
    "ibuprofen": "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "3-chlorobiphenyl": "Clc1cccc(c1)-c1ccccc1",
    "diazepam": "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21",
}


def butane_modes() -> None:
    molecule = Molecule.from_smiles("CCCC", name="butane").generate_conformers(1, seed=5)
    start = assign_parameters(molecule, "sage", charges="am1bcc")
    torsion = start.parameters.get("ProperTorsions", CCCC)
    n1 = next(f"k{n}" for n in range(1, torsion.n_terms() + 1)
              if torsion.fixed[f"periodicity{n}"] == 1)
    systems = {"start": start,
               "torsion+3": perturbed(start, "ProperTorsions", CCCC, n1, delta=3.0),
               "bond+0.05": perturbed(start, "Bonds", CC_BOND, "length", delta=0.05)}
    print("1. butane, 10 held-out conformers, GFN2-xTB: energy RMSE kcal/mol / force RMSE "
          "kcal/mol/A")
    for relax in RELAX_MODES:
        t = time.perf_counter()
        result = held_out_conformers(molecule, systems, n_conformers=10, seed=11, relax=relax)
        wall = time.perf_counter() - t
        cells = "  ".join(f"{name} {s.energy_rmse_kcal_mol:.3f} / {s.force_rmse_kcal_mol_a:.2f}"
                          for name, s in result.systems.items())
        span = result.reference_energy_range_kcal_mol
        print(f"  {relax:16s} n={result.n_used:2d} span {span:6.3f}  {cells}  ({wall:.1f} s)")


def drug_like() -> None:
    print("2. drug-like, Sage (AM1-BCC) vs GFN2-xTB: held-out conformers (default mode) and "
          "optimized geometry")
    for name, smiles in DRUG_LIKE.items():
        molecule = Molecule.from_smiles(smiles, name=name).generate_conformers(1, seed=5)
        start = assign_parameters(molecule, "sage", charges="am1bcc")
        t = time.perf_counter()
        conformers = held_out_conformers(molecule, {"start": start}, n_conformers=10)
        t_conf = time.perf_counter() - t
        t = time.perf_counter()
        geometry = optimized_geometry_rmsd(molecule, {"start": start})
        t_geom = time.perf_counter() - t
        s, g = conformers.systems["start"], geometry.systems["start"]
        print(f"  {name:17s} {molecule.n_atoms:2d} atoms  n={conformers.n_used:2d} span "
              f"{conformers.reference_energy_range_kcal_mol:5.2f}  E RMSE "
              f"{s.energy_rmse_kcal_mol:.2f}  F RMSE {s.force_rmse_kcal_mol_a:.2f}  "
              f"({t_conf:.1f} s)  heavy-atom RMSD {g.heavy_atom_rmsd_a[0]:.3f} A  "
              f"relax {g.relaxation_energy_kcal_mol[0]:.2f} kcal/mol ({t_geom:.1f} s)")


def md() -> None:
    print("3. MD 100 ps, 300 K, 1 fs, Langevin 1/ps, OpenMM CPU 1 thread")
    for name, smiles in {"butane": "CCCC", **DRUG_LIKE}.items():
        molecule = Molecule.from_smiles(smiles, name=name).generate_conformers(1, seed=5)
        system = assign_parameters(molecule, "sage", charges="am1bcc")
        r = md_stability(system, molecule)
        print(f"  {name:17s} stable={r.stable} T={r.mean_temperature_k:.0f} K "
              f"PE {r.potential_energy_mean_kcal_mol:.1f} +- {r.potential_energy_std_kcal_mol:.1f}"
              f" max bond dev {r.max_bond_deviation_a:.3f} A  {r.ns_per_day:.0f} ns/day  "
              f"wall {r.wall_time_s:.1f} s")
    ethanol = Molecule.from_smiles("CCO", name="ethanol").generate_conformers(1, seed=5)
    sage = assign_parameters(ethanol, "sage", charges="am1bcc")
    broken = perturbed(sage, "Bonds", "[#6:1]-[#8:2]", "k", value=-1000.0)
    params = sage.parameters.copy()
    params.get("Charges", "atom:8").values["charge"] = 3.0
    params.get("Charges", "atom:0").values["charge"] = -3.0
    for label, system, minimize in (("k=-1000", broken, True), ("k=-1000 no min", broken, False),
                                    ("charges +-3", sage.with_parameters(params), False)):
        r = md_stability(system, ethanol, minimize=minimize)
        print(f"  ethanol {label:15s} stable={r.stable} stage={r.stage}: {r.reason}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    np.set_printoptions(precision=3)
    print(f"load: {os.getloadavg()}")
    butane_modes()
    drug_like()
    md()
