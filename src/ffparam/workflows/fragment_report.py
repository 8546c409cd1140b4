"""A table of the fragments of every rotatable bond of some molecules.

``python -m ffparam.workflows.fragment_report [SMILES ...] [--threshold 0.03]`` prints, per
bond: fragment size, central-bond Wiberg bond order in parent and fragment (GFN2-xTB),
their difference, the caps, the growth steps and the fragment's SMILES; then the median and
range of fragment sizes. Without SMILES it runs six drugs (:data:`EXAMPLE_DRUGS`).
"""

from __future__ import annotations

import argparse
import statistics
import time

from ffparam.chem.molecule import Molecule
from ffparam.workflows.fragment import DEFAULT_WBO_THRESHOLD, Fragment, fragment_molecule

EXAMPLE_DRUGS: dict[str, str] = {
    "imatinib": "Cc1ccc(NC(=O)c2ccc(CN3CCN(C)CC3)cc2)cc1Nc1nccc(-c2cccnc2)n1",
    "sildenafil": "CCCc1nn(C)c2c(=O)[nH]c(-c3cc(S(=O)(=O)N4CCN(C)CC4)ccc3OCC)nc12",
    "cocaine": "COC(=O)C1C(OC(=O)c2ccccc2)CC2CCC1N2C",
    "nifedipine": "COC(=O)C1=C(C)NC(C)=C(C(=O)OC)C1c1ccccc1[N+](=O)[O-]",
    "celecoxib": "Cc1ccc(-c2cc(C(F)(F)F)nn2-c2ccc(S(N)(=O)=O)cc2)cc1",
    "valsartan": "CCCCC(=O)N(Cc1ccc(-c2ccccc2-c2nn[nH]n2)cc1)C(C(C)C)C(=O)O",
    "fenofibrate": "CC(C)OC(=O)C(C)(C)Oc1ccc(C(=O)c2ccc(Cl)cc2)cc1",
}
"""Drug SMILES (structures as in DrugBank/PubChem) used for the figures in the notes."""


def fragment_rows(molecule: Molecule, threshold: float = DEFAULT_WBO_THRESHOLD
                  ) -> list[Fragment]:
    """Fragments of every rotatable bond of ``molecule`` (one conformer generated if none)."""
    if not molecule.n_conformers:
        molecule = molecule.generate_conformers(1, seed=7)
    return fragment_molecule(molecule, threshold=threshold)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("smiles", nargs="*")
    parser.add_argument("--threshold", type=float, default=DEFAULT_WBO_THRESHOLD)
    args = parser.parse_args(argv)
    inputs = {s: s for s in args.smiles} or EXAMPLE_DRUGS
    sizes, diffs = [], []
    for name, smiles in inputs.items():
        start = time.perf_counter()
        molecule = Molecule.from_smiles(smiles, name=name)
        fragments = fragment_rows(molecule, args.threshold)
        heavy = int((molecule.atomic_numbers > 1).sum())
        print(f"{name}: {heavy} heavy atoms, {len(fragments)} rotatable bonds, "
              f"{time.perf_counter() - start:.1f} s")
        for f in fragments:
            caps = f.summary()["caps"]
            sizes.append(f.n_heavy_atoms)
            diffs.append(f.wbo_difference)
            print(f"  bond {f.parent_bond[0]:>2}-{f.parent_bond[1]:<2} heavy {f.n_heavy_atoms:>2}"
                  f"  WBO parent {f.parent_wbo:.3f} fragment {f.wbo:.3f} "
                  f"|d| {f.wbo_difference:.3f}  caps H {caps['H']} CH3 {caps['CH3']}"
                  f"  steps {len(f.history)}{'  (whole molecule)' if f.is_whole_molecule else ''}"
                  f"  {f.molecule.to_smiles()}")
    if sizes:
        print(f"fragments: {len(sizes)}, heavy atoms median {statistics.median(sizes)} "
              f"range {min(sizes)}-{max(sizes)}, max |WBO difference| {max(diffs):.3f}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
