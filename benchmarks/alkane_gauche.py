"""Gauche - trans energy of n-butane's C-C-C-C torsion: a force field against GFN2-xTB.

Why: in the liquid benchmark pentane's C-C-C-C torsions are only ~38 % trans with OpenFF
Sage, gas and liquid alike (experiment and QM put the gauche well ~0.6 kcal/mol above
trans, i.e. ~60 % trans). This script isolates the torsion: both conformers of butane
are minimized with ffparam's MM engine (the force field's parameters as ffparam assigns
them) and relaxed with GFN2-xTB (tblite), and the two energy differences are printed.

    OMP_NUM_THREADS=1 python benchmarks/alkane_gauche.py [--ff sage] [--charges am1bcc]

Energies in kcal/mol, dihedrals in degrees.
"""

from __future__ import annotations

import argparse

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdMolTransforms
from scipy.optimize import minimize

from ffparam.chem import Molecule
from ffparam.liquid.conformers import dihedral_deg
from ffparam.liquid.prepare import prepare_system
from ffparam.mm import MMEngine

EV_TO_KCAL_MOL = 23.060548
TORSION = (0, 1, 2, 3)


def rotate_to(molecule: Molecule, xyz: np.ndarray, target_deg: float) -> np.ndarray:
    """``xyz`` with C0-C1-C2-C3 set to ``target_deg`` by rigid rotation (RDKit)."""
    mol = Chem.Mol(molecule.rdmol)
    mol.RemoveAllConformers()
    conf = Chem.Conformer(mol.GetNumAtoms())
    for index, position in enumerate(xyz):
        conf.SetAtomPosition(index, position.tolist())
    conf = mol.GetConformer(mol.AddConformer(conf, assignId=True))
    rdMolTransforms.SetDihedralDeg(conf, *TORSION, float(target_deg))
    return np.array(conf.GetPositions())


def mm_minimum(engine: MMEngine, xyz: np.ndarray) -> tuple[float, float]:
    """(energy kcal/mol, dihedral deg) of the MM minimum reached from ``xyz``."""
    def f(x):
        r = engine.compute(x.reshape(1, -1, 3))
        return float(r.energy[0]), -r.forces[0].numpy().ravel()
    res = minimize(f, xyz.ravel(), jac=True, method="L-BFGS-B",
                   options={"gtol": 1e-6, "maxiter": 5000})
    return float(res.fun), float(dihedral_deg(res.x.reshape(-1, 3), TORSION))


def xtb_minimum(symbols: list[str], xyz: np.ndarray) -> tuple[float, float]:
    """(energy kcal/mol, dihedral deg) of the GFN2-xTB minimum reached from ``xyz``."""
    from ase import Atoms
    from ase.optimize import BFGS
    from tblite.ase import TBLite

    atoms = Atoms(symbols, positions=xyz)
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    BFGS(atoms, logfile=None).run(fmax=0.005, steps=500)
    return (atoms.get_potential_energy() * EV_TO_KCAL_MOL,
            float(dihedral_deg(atoms.positions, TORSION)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ff", default="sage")
    parser.add_argument("--charges", default="am1bcc")
    args = parser.parse_args()
    system = prepare_system("CCCC", args.ff, args.charges)
    engine = MMEngine(system)
    molecule = Molecule.from_input("CCCC").generate_conformers(1)
    symbols = [a.GetSymbol() for a in molecule.rdmol.GetAtoms()]
    rows = {}
    for name, start in (("trans", 180.0), ("gauche", 65.0)):
        xyz = rotate_to(molecule, molecule.conformers[0], start)
        rows[name] = (mm_minimum(engine, xyz), xtb_minimum(symbols, xyz))
    for label, k in ((f"{args.ff} ({args.charges})", 0), ("GFN2-xTB", 1)):
        (et, pt), (eg, pg) = rows["trans"][k], rows["gauche"][k]
        print(f"{label:>18}: trans {pt:7.1f} deg, gauche {pg:6.1f} deg, "
              f"E(gauche) - E(trans) = {eg - et:+.3f} kcal/mol")


if __name__ == "__main__":
    main()
