"""Fragments of every rotatable bond of seven drugs (the figures behind the fragment size rule).

Prints, per bond: fragment size, central-bond Wiberg bond order in parent and fragment
(GFN2-xTB), their difference, the caps, the growth steps and the fragment's SMILES; then
the median and range of fragment sizes (``ffparam.fragment.needs_fragmentation`` quotes
them) and the number of bond-order calculations run. Every bond-order calculation goes
through one Store, so a second pass over the same molecules computes nothing (printed).

Usage: .venv/bin/python benchmarks/bench_fragment.py [SMILES ...] [--threshold 0.03]
       [--store /tmp/fragments.db]
"""

from __future__ import annotations

import argparse
import statistics
import time

EXAMPLE_DRUGS: dict[str, str] = {
    "imatinib": "Cc1ccc(NC(=O)c2ccc(CN3CCN(C)CC3)cc2)cc1Nc1nccc(-c2cccnc2)n1",
    "sildenafil": "CCCc1nn(C)c2c(=O)[nH]c(-c3cc(S(=O)(=O)N4CCN(C)CC4)ccc3OCC)nc12",
    "cocaine": "COC(=O)C1C(OC(=O)c2ccccc2)CC2CCC1N2C",
    "nifedipine": "COC(=O)C1=C(C)NC(C)=C(C(=O)OC)C1c1ccccc1[N+](=O)[O-]",
    "celecoxib": "Cc1ccc(-c2cc(C(F)(F)F)nn2-c2ccc(S(N)(=O)=O)cc2)cc1",
    "valsartan": "CCCCC(=O)N(Cc1ccc(-c2ccccc2-c2nn[nH]n2)cc1)C(C(C)C)C(=O)O",
    "fenofibrate": "CC(C)OC(=O)C(C)(C)Oc1ccc(C(=O)c2ccc(Cl)cc2)cc1",
}
"""Drug SMILES (structures as in DrugBank/PubChem)."""

CONFORMER_SEED = 7


def fragment_rows(smiles: str, name: str, threshold: float, store) -> tuple:
    """(molecule with one seeded conformer, fragments of its rotatable bonds); the
    bond orders go through ``store``."""
    from ffparam.chem import Molecule
    from ffparam.fragment import fragment_molecule

    molecule = Molecule.from_smiles(smiles, name=name).generate_conformers(1, seed=CONFORMER_SEED)
    return molecule, fragment_molecule(molecule, threshold=threshold, store=store)


def print_fragments(molecule, fragments, seconds: float) -> None:
    heavy = int((molecule.atomic_numbers > 1).sum())
    print(f"{molecule.name}: {heavy} heavy atoms, {len(fragments)} rotatable bonds, "
          f"{seconds:.1f} s")
    for f in fragments:
        caps = f.summary()["caps"]
        print(f"  bond {f.parent_bond[0]:>2}-{f.parent_bond[1]:<2} heavy {f.n_heavy_atoms:>2}"
              f"  WBO parent {f.parent_wbo:.3f} fragment {f.wbo:.3f} "
              f"|d| {f.wbo_difference:.3f}  caps H {caps['H']} CH3 {caps['CH3']}"
              f"  steps {len(f.history)}{'  (whole molecule)' if f.is_whole_molecule else ''}"
              f"  {f.molecule.to_smiles()}")


def main(argv: list[str] | None = None) -> int:
    from ffparam.fragment import DEFAULT_WBO_THRESHOLD
    from ffparam.reference.store import Store

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("smiles", nargs="*")
    parser.add_argument("--threshold", type=float, default=DEFAULT_WBO_THRESHOLD)
    parser.add_argument("--store", default=":memory:", help="Store of the bond orders")
    args = parser.parse_args(argv)
    inputs = {s: s for s in args.smiles} or EXAMPLE_DRUGS
    sizes, diffs = [], []
    with Store(args.store) as store:
        for name, smiles in inputs.items():
            start = time.perf_counter()
            molecule, fragments = fragment_rows(smiles, name, args.threshold, store)
            print_fragments(molecule, fragments, time.perf_counter() - start)
            sizes += [f.n_heavy_atoms for f in fragments]
            diffs += [f.wbo_difference for f in fragments]
        computed = len(store)
        start = time.perf_counter()
        for name, smiles in inputs.items():
            fragment_rows(smiles, name, args.threshold, store)
        again = len(store) - computed
        print(f"bond-order calculations: {computed}; second pass computed {again} in "
              f"{time.perf_counter() - start:.1f} s")
    if sizes:
        print(f"fragments: {len(sizes)}, heavy atoms median {statistics.median(sizes)} "
              f"range {min(sizes)}-{max(sizes)}, max |WBO difference| {max(diffs):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
