"""Small real molecules, parameterized with Sage and GAFF2, at perturbed conformers.

Conformers are ETKDG/MMFF geometries displaced by 0.05 A Gaussian noise (seeded), so no
conformer sits at a minimum of every term and a wrong force constant, equilibrium value,
charge or 1-4 pair changes the energy.
"""

from __future__ import annotations

import numpy as np
import pytest

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule

CASES = {
    # aromatic ring with SMIRNOFF impropers, S and Cl
    "chlorothioanisole-sage": ("CSc1ccc(Cl)cc1", "sage", "gasteiger"),
    # 4-membered ring: 1-4 pairs across the ring are 1-3 pairs (excluded), not 1-4
    "cyclobutanol-sage": ("OC1CCC1", "sage", "gasteiger"),
    # charged, 3-membered ring, AM1-BCC charges as the pipeline uses them
    "cyclopropanecarboxylate-sage": ("[O-]C(=O)C1CC1", "sage", "am1bcc"),
    # charged, 6-membered ring: C1..C4 are 1-4 through both sides of the ring (counted once)
    "cyclohexylammonium-sage": ("[NH3+]C1CCCCC1", "sage", "gasteiger"),
    # GAFF2: aromatic and amide impropers (one term, central atom third), hydroxyl H with
    # zero epsilon
    "acetaminophen-gaff2": ("CC(=O)Nc1ccc(O)cc1", "gaff2", "gasteiger"),
    # GAFF2 in a 3-ring: an improper that is also a bonded chain, on the same atoms and
    # periodicity as a proper torsion
    "cyclopropene-gaff2": ("C1=CC1", "gaff2", "gasteiger"),
}


def perturbed_molecule(smiles: str, name: str, n_conformers: int = 3, seed: int = 7) -> Molecule:
    mol = Molecule.from_smiles(smiles, name=name).generate_conformers(
        n_conformers, seed=seed, rms_threshold=0.0)
    rng = np.random.default_rng(seed)
    return mol.with_conformers(mol.conformers + rng.normal(0.0, 0.05, mol.conformers.shape))


@pytest.fixture(scope="session")
def systems():
    """name -> ParameterizedSystem (built lazily, once per session)."""
    cache = {}

    def get(name: str):
        if name not in cache:
            smiles, ff, charges = CASES[name]
            mol = perturbed_molecule(smiles, name)
            cache[name] = assign_parameters(mol, ff, charges=charges)
        return cache[name]

    return get
