"""Existing force fields in: for every test system of tests/data/import, the largest
relative difference per force group between ffparam's engine on the imported system and
OpenMM's own loading of the same files (energies and forces, at the file geometry moved
by 0.05 A Gaussian noise, seed 0), and the time to import.

Run from the repository root: ``PYTHONPATH=src:. python benchmarks/bench_import.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from openmm import app
from tests.assign.openmm_groups import ffparam_groups, max_relative_errors, openmm_groups

from ffparam.assign.import_files import import_force_field

DATA = Path(__file__).parents[1] / "tests" / "data" / "import"
CHARMM = [DATA / f for f in ("top_all36_carb.rtf", "par_all36_carb.prm",
                             "toppar_water_ions.str")]


def reference(kind: str, path: Path, files: list[str]):
    if kind == "amber":
        return app.AmberPrmtopFile(str(path)).createSystem(nonbondedMethod=app.NoCutoff)
    if kind == "gromacs":
        return app.GromacsTopFile(str(path)).createSystem(nonbondedMethod=app.NoCutoff)
    if kind == "charmm":
        return app.CharmmPsfFile(str(path)).createSystem(
            app.CharmmParameterSet(*map(str, CHARMM)), nonbondedMethod=app.NoCutoff)
    return app.ForceField(*files).createSystem(app.PDBFile(str(path)).topology,
                                               nonbondedMethod=app.NoCutoff,
                                               constraints=None, rigidWater=False)


def cases():
    for name in ("gaff2_acetaminophen", "gaff2_ethanol", "gaff2_chlorothioanisole",
                 "ff14sb_ala_dipeptide", "ff14sb_peptide"):
        yield "amber", DATA / f"{name}.prmtop", []
    for name in ("opls_ethanol", "opls_butane", "opls_dimethyl_ether",
                 "gaff2_acetaminophen", "ff14sb_ala_dipeptide"):
        yield "gromacs", DATA / f"{name}.top", []
    for name in ("charmm_aglc", "charmm_axyl", "charmm_aglcna", "charmm_bglca",
                 "charmm_aglc_nacl"):
        yield "charmm", DATA / f"{name}.psf", CHARMM
    for name in ("ff14sb_ala_dipeptide", "ff14sb_peptide"):
        yield "ffxml", DATA / f"{name}.pdb", ["amber14-all.xml"]
    for name in ("charmm36_etoh", "charmm36_nma", "charmm36_phen", "charmm36_acet",
                 "charmm36_imia"):
        yield "ffxml", DATA / f"{name}.pdb", ["charmm36.xml"]


def main() -> None:
    print("| format | system | atoms | parameters | max rel dE | max rel dF | import s |")
    print("|---|---|---|---|---|---|---|")
    for kind, path, files in cases():
        t = time.perf_counter()
        system = import_force_field(path, None, files)
        seconds = time.perf_counter() - t
        xyz = system.molecule.conformers[0]
        xyz = xyz + np.random.default_rng(0).normal(0.0, 0.05, xyz.shape)
        errors = max_relative_errors(ffparam_groups(system, xyz),
                                     openmm_groups(reference(kind, path, files), xyz))
        de = max(e for e, _ in errors.values())
        df = max(f for _, f in errors.values())
        label = f"{path.name}" + (f" ({files[0]})" if kind == "ffxml" else "")
        print(f"| {kind} | {label} | {system.n_atoms} | {len(system.parameters.keys())} | "
              f"{de:.1e} | {df:.1e} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
