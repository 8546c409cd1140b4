"""A test-only force field typed by element and hybridization, covering every term form.

The values are physically reasonable magnitudes (not fitted to anything): the MM tests use
them to compare ffparam's engine with OpenMM and with finite differences, which needs every
functional form exercised, not accurate parameters.
"""

from __future__ import annotations

import math

import numpy as np
from rdkit.Chem import AllChem

from ffparam.chem import Molecule, Topology
from ffparam.params import Parameter, ParameterSet
from ffparam.params.builder import build_system

SIGMA = {"H": 2.6, "C": 3.4, "N": 3.25, "O": 3.0, "F": 3.0, "P": 3.7, "S": 3.55,
         "Cl": 3.4, "Br": 3.5, "I": 3.8}
EPSILON = {"H": 0.0157, "C": 0.086, "N": 0.17, "O": 0.21, "F": 0.061, "P": 0.2, "S": 0.25,
           "Cl": 0.265, "Br": 0.32, "I": 0.4}


def _type(mol: Molecule, i: int) -> str:
    atom = mol.rdmol.GetAtomWithIdx(i)
    return f"{atom.GetSymbol()}{str(atom.GetHybridization())[-1]}"


def element_typed_system(molecule: Molecule, morse: bool = False, urey_bradley: bool = False,
                         harmonic_impropers: bool = False, nbfix: tuple[str, str] | None = None,
                         combining_rule: str = "lorentz-berthelot"):
    """Parameterize ``molecule`` with type keys like ``C3-H1`` and deterministic values."""
    topo = Topology(molecule)
    types = [_type(molecule, i) for i in range(molecule.n_atoms)]
    src = ParameterSet(settings={"combining_rule": combining_rule})
    bonded: dict[str, list] = {}
    bond_section = "MorseBonds" if morse else "Bonds"
    for a, b in topo.bonds.tolist():
        key = "-".join(sorted((types[a], types[b])))
        if (bond_section, key) not in src:
            r0 = 0.5 * (SIGMA[molecule.symbols[a]] + SIGMA[molecule.symbols[b]]) / 2.2
            values = ({"well_depth": 90.0 + len(key), "a": 2.0, "length": r0} if morse
                      else {"k": 600.0 + 10 * len(key), "length": r0})
            src.add(bond_section, Parameter(key, values))
        bonded.setdefault(bond_section, []).append(((a, b), key, 1.0))
    for a, b, c in topo.angles.tolist():
        key = f"{types[a]}-{types[b]}-{types[c]}"
        if ("Angles", key) not in src:
            src.add("Angles", Parameter(key, {"k": 100.0 + len(key),
                                              "angle": math.radians(105.0 + len(key) % 10)}))
        bonded.setdefault("Angles", []).append(((a, b, c), key, 1.0))
        if urey_bradley:
            if ("UreyBradley", key) not in src:
                src.add("UreyBradley", Parameter(key, {"k": 20.0, "length": 2.3}))
            bonded.setdefault("UreyBradley", []).append(((a, c), key, 1.0))
    for i, j, k, m in topo.propers.tolist():
        key = f"{types[j]}-{types[k]}" if types[j] <= types[k] else f"{types[k]}-{types[j]}"
        if ("ProperTorsions", key) not in src:
            src.add("ProperTorsions", Parameter(
                key,
                {"k1": 0.2 + 0.01 * len(key), "phase1": 0.0, "k2": 0.35, "phase2": math.pi,
                 "k3": 0.15, "phase3": math.radians(30.0)},
                {"periodicity1": 1, "periodicity2": 2, "periodicity3": 3},
            ))
        bonded.setdefault("ProperTorsions", []).append(((i, j, k, m), key, 1.0))
    for a, c, b, d in topo.impropers.tolist():
        key = types[c]
        if harmonic_impropers:
            if ("HarmonicImpropers", key) not in src:
                src.add("HarmonicImpropers", Parameter(key, {"k": 30.0, "angle": 0.05}))
            bonded.setdefault("HarmonicImpropers", []).append(((c, a, b, d), key, 1.0))
        else:
            if ("ImproperTorsions", key) not in src:
                src.add("ImproperTorsions", Parameter(key, {"k1": 1.1, "phase1": math.pi},
                                                      {"periodicity1": 2}))
            others = (a, b, d)
            for perm in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
                row = (c, *(others[p] for p in perm))
                bonded.setdefault("ImproperTorsions", []).append((row, key, 1.0 / 3.0))
    for sym in set(molecule.symbols):
        src.add("vdW", Parameter(sym, {"epsilon": EPSILON[sym], "sigma": SIGMA[sym]}))
    fixes = {}
    if nbfix:
        pair = tuple(nbfix)
        src.add("NBFix", Parameter("|".join(pair), {"epsilon": 0.3, "sigma": 3.1}))
        fixes[pair] = "|".join(pair)
    mol = molecule.rdmol
    AllChem.ComputeGasteigerCharges(mol)
    charges = np.array([a.GetDoubleProp("_GasteigerCharge") for a in mol.GetAtoms()])
    charges += (molecule.total_charge - charges.sum()) / len(charges)
    return build_system(topo, src, bonded, list(molecule.symbols), charges, nbfix=fixes,
                        label="element-typed test force field")
