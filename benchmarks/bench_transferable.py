"""Transferable torsion fit: one shared aryl-amide torsion type over a family of benzamides.

Family (10 molecules, 16-19 atoms): benzamide, N-methylbenzamide, 4-fluoro-, 4-chloro-,
4-methyl-, 3-fluoro-, 4-cyano- and 4-amino-benzamide, nicotinamide and isonicotinamide. Each
gets a 30-degree GFN2-xTB (tblite) relaxed torsion drive of its aryl-carbonyl bond (ffparam
``run_torsiondrive``; every optimization is cached in one Store, so a rerun computes
nothing). The spec then fits one new ProperTorsions type, defined for the whole family,

    [*:1]~[c:2]-[$([CX3](=O)[NX3]):3]~[*:4]   (periodicities 1-4, start: Sage's)

which, appended after Sage's torsions, wins on the aryl-carbonyl torsions of every molecule.
Three figures per molecule, RMSE (kcal/mol, relaxed MM profile vs GFN2-xTB, mean-aligned):

- start: Sage 2.2.1;
- leave-one-out: the shared type fitted to the other 9 molecules' scans (never saw this one);
- bespoke: per-molecule bespoke torsions fitted to this molecule's scan alone.

The figure: how much of the bespoke gain a shared type keeps on molecules it never saw,
(start - LOO) / (start - bespoke), median over the family.

Usage: OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_transferable.py
       [--out /tmp/ffparam_bench_transferable] [--drives-only] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

FAMILY = {
    "benzamide": "NC(=O)c1ccccc1",
    "n-methylbenzamide": "CNC(=O)c1ccccc1",
    "4-fluorobenzamide": "NC(=O)c1ccc(F)cc1",
    "4-chlorobenzamide": "NC(=O)c1ccc(Cl)cc1",
    "4-methylbenzamide": "NC(=O)c1ccc(C)cc1",
    "3-fluorobenzamide": "NC(=O)c1cccc(F)c1",
    "4-cyanobenzamide": "NC(=O)c1ccc(C#N)cc1",
    "4-aminobenzamide": "NC(=O)c1ccc(N)cc1",
    "nicotinamide": "NC(=O)c1cccnc1",
    "isonicotinamide": "NC(=O)c1ccncc1",
}
DRIVEN = "[c:1][c:2]-[C:3](=O)[N:4]"
"""The driven dihedral: ring carbon, ring carbon, carbonyl carbon, amide nitrogen."""
SHARED_TYPE = {
    "section": "ProperTorsions", "id": "t-aryl-amide",
    "smirks": "[*:1]~[c:2]-[$([CX3](=O)[NX3]):3]~[*:4]",
    "periodicities": [1, 2, 3, 4], "start": "forcefield",
}
METHOD = "gfn2-xtb"
SPACING_DEG = 30


def driven_dihedral(molecule) -> tuple[int, int, int, int]:
    """Atom indices (0-based) of the first match of :data:`DRIVEN`."""
    from rdkit import Chem

    pattern = Chem.MolFromSmarts(DRIVEN)
    match = molecule.rdmol.GetSubstructMatch(pattern)
    if not match:
        raise SystemExit(f"{molecule.name}: no aryl-amide dihedral")
    by_map = {pattern.GetAtomWithIdx(n).GetAtomMapNum(): a for n, a in enumerate(match)}
    return tuple(int(by_map[m]) for m in (1, 2, 3, 4))


def run_drives(out: Path, names: list[str]) -> dict[str, Path]:
    """GFN2-xTB drives of every molecule (Store-cached), written as extxyz scans."""
    from ffparam.chem import Molecule
    from ffparam.reference.plots import write_torsiondrive_extxyz
    from ffparam.reference.store import Store
    from ffparam.reference.torsiondrive import run_torsiondrive

    scans = {}
    (out / "scans").mkdir(parents=True, exist_ok=True)
    with Store(out / "gfn2.db") as store:
        for name in names:
            molecule = Molecule.from_smiles(FAMILY[name], name=name).generate_conformers(
                1, seed=7)
            start = time.perf_counter()
            result = run_torsiondrive(molecule, [driven_dihedral(molecule)], METHOD,
                                      SPACING_DEG, store=store)
            if not result.complete:
                raise SystemExit(f"{name}: drive incomplete, missing {result.missing}")
            scans[name] = out / "scans" / f"{name}.xyz"
            write_torsiondrive_extxyz(result, scans[name])
            summary = result.summary
            print(f"{name}: {len(result.energies)} points, {summary.n_computed} "
                  f"optimizations computed, {summary.n_cached} from the Store, "
                  f"{time.perf_counter() - start:.1f} s", flush=True)
    return scans


def family_spec(out: Path, scans: dict[str, Path], names: list[str], types: list[dict],
                parameters: list[dict]):
    """FitSettings over ``names`` (relaxed torsion-profile targets, Sage + AM1-BCC)."""
    from ffparam.fit.spec import FitSettings

    return FitSettings.from_dict({
        "forcefield": "sage", "charges": "am1bcc",
        "molecules": {name: {"input": FAMILY[name]} for name in names},
        "targets": [{"name": name, "type": "torsion_profile", "molecule": name,
                     "reference": str(scans[name]), "mode": "relaxed"} for name in names],
        "types": types, "parameters": parameters,
        "optimizer": {"name": "least_squares", "max_iterations": 50},
        "base_dir": out})


def bespoke_torsion_fit(out: Path, scans: dict[str, Path], name: str) -> float:
    """RMSE (kcal/mol) of ffparam's bespoke torsions (periodicities 1-4, one SMIRKS per
    torsion group) of the driven bond fitted to this molecule's scan alone."""
    from ffparam.chem import Molecule
    from ffparam.workflows.fit import build_systems, molecules_objective, optimize_spec

    bond = list(driven_dihedral(Molecule.from_smiles(FAMILY[name]))[1:3])
    spec = family_spec(out, scans, [name], [],
                       [{"bespoke_torsions": {"molecule": name, "bonds": [bond]}}])
    systems, _ = build_systems(spec)
    result = optimize_spec(spec, molecules_objective(spec, systems, [name]))
    return float(result.metrics_after[name]["rmse [kcal/mol]"])


def run_fits(out: Path, scans: dict[str, Path], names: list[str]) -> dict:
    """Shared-type fit with leave-one-out (``ffparam fit --cv``), plus bespoke torsions."""
    import numpy as np

    from ffparam.workflows.fit import run_fit

    start = time.perf_counter()
    spec = family_spec(out, scans, names, [SHARED_TYPE], [])
    outcome = run_fit(spec, out / "fit", progress=False, cv=True)
    cv_wall = time.perf_counter() - start
    rows = {}
    for row in outcome.cv.targets:
        rows[row.molecule] = {"start": row.start, "left_out": row.left_out,
                              "type_own": row.bespoke, "all": row.fitted,
                              "bespoke": bespoke_torsion_fit(out, scans, row.molecule)}
        r = rows[row.molecule]
        r["kept"] = (r["start"] - r["left_out"]) / (r["start"] - r["bespoke"])
        r["kept_type_own"] = row.kept
        print(f"{row.molecule}: " + ", ".join(f"{k} {v:.3f}" for k, v in r.items()),
              flush=True)
    summary = {key: float(np.median([r[key] for r in rows.values()]))
               for key in ("start", "left_out", "type_own", "all", "bespoke", "kept",
                           "kept_type_own")}
    return {"molecules": rows, "median": summary, "cv_wall_s": cv_wall,
            "wall_s": time.perf_counter() - start,
            "type_values": {k: v for k, v in outcome.result.parameters.get(
                "ProperTorsions", SHARED_TYPE["smirks"]).values.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/ffparam_bench_transferable"))
    parser.add_argument("--drives-only", action="store_true")
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    names = args.only or list(FAMILY)
    print(f"{platform.node()} {platform.processor()} {time.strftime('%Y-%m-%d %H:%M:%S')}",
          flush=True)
    scans = run_drives(args.out, names)
    if args.drives_only:
        return
    results = run_fits(args.out, scans, names)
    from ffparam.io.atomic import write_json_atomic

    write_json_atomic(args.out / "results.json", results)
    print(json.dumps(results["median"], indent=1))
    print(f"fit + leave-one-out wall {results['cv_wall_s']:.0f} s, "
          f"total fits {results['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
