"""Regenerate the GROMACS test files of this folder (run from the repository root with the
project's venv, after make_amber.py: ``python tests/data/import/make_gromacs.py``).

OPLS-AA topologies (opls_*.top, opls_types.itp) are written from the OPLS-AA parameters
of GROMACS' ``oplsaa.ff`` (ffnonbonded.itp / ffbonded.itp; W. L. Jorgensen, D. S.
Maxwell, J. Tirado-Rives, J. Am. Chem. Soc. 118, 11225 (1996)), transcribed into the
tables below. Coordinates: RDKit ETKDG (seed 7), atoms in RDKit order. See SOURCE.md.
"""

from pathlib import Path

import parmed
from rdkit import Chem
from rdkit.Chem import AllChem

HERE = Path(__file__).parent

# name: (element number, mass, sigma nm, epsilon kJ/mol)
ATOMTYPES = {"CT": (6, 12.011, 0.35, 0.276144), "HC": (1, 1.008, 0.25, 0.12552),
             "OH": (8, 15.9994, 0.312, 0.71128), "HO": (1, 1.008, 0.0, 0.0),
             "OS": (8, 15.9994, 0.29, 0.58576)}
BONDS = {("CT", "CT"): (0.1529, 224262.4), ("CT", "HC"): (0.109, 284512.0),
         ("CT", "OH"): (0.141, 267776.0), ("HO", "OH"): (0.0945, 462750.4),
         ("CT", "OS"): (0.141, 267776.0)}
ANGLES = {("CT", "CT", "CT"): (112.7, 488.273), ("CT", "CT", "HC"): (110.7, 313.8),
          ("HC", "CT", "HC"): (107.8, 276.144), ("CT", "CT", "OH"): (109.5, 418.4),
          ("HC", "CT", "OH"): (109.5, 292.88), ("CT", "OH", "HO"): (108.5, 460.24),
          ("CT", "OS", "CT"): (109.5, 502.08), ("HC", "CT", "OS"): (109.5, 292.88)}
RB = {("HC", "CT", "CT", "HC"): (0.6276, 1.8828, 0.0, -2.5104, 0.0, 0.0),
      ("CT", "CT", "CT", "HC"): (0.6276, 1.8828, 0.0, -2.5104, 0.0, 0.0),
      ("CT", "CT", "CT", "CT"): (2.9288, -1.4644, 0.2092, -1.6736, 0.0, 0.0),
      ("HC", "CT", "OH", "HO"): (0.9414, 2.8242, 0.0, -3.7656, 0.0, 0.0),
      ("CT", "CT", "OH", "HO"): (-0.4435, 3.83255, 0.72801, -4.11705, 0.0, 0.0),
      ("HC", "CT", "CT", "OH"): (0.97905, 2.93716, 0.0, -3.91622, 0.0, 0.0),
      ("HC", "CT", "OS", "CT"): (1.58992, 4.76976, 0.0, -6.35968, 0.0, 0.0)}
# molecule: smiles, per-atom (type, charge) in RDKit order with explicit H
MOLECULES = {
    "opls_ethanol": ("CCO", None),
    "opls_butane": ("CCCC", None),
    "opls_dimethyl_ether": ("COC", None),
}


def typed(mol):
    """OPLS-AA (bond type, charge) of each atom (alkane, alcohol, ether carbons)."""
    out = []
    for a in mol.GetAtoms():
        z, nbrs = a.GetAtomicNum(), [n.GetSymbol() for n in a.GetNeighbors()]
        if z == 8:
            out.append(("OH", -0.683) if "H" in nbrs else ("OS", -0.4))
        elif z == 1:
            host = a.GetNeighbors()[0]
            if host.GetAtomicNum() == 8:
                out.append(("HO", 0.418))
            else:
                ether = any(n.GetAtomicNum() == 8 for n in host.GetNeighbors())
                out.append(("HC", 0.03 if ether else 0.06))
        else:
            n_h = nbrs.count("H")
            if "O" in nbrs:
                oh = any(n.GetTotalNumHs() for n in a.GetNeighbors() if n.GetAtomicNum() == 8)
                out.append(("CT", 0.145 if oh else 0.11))
            else:
                out.append(("CT", -0.18 if n_h == 3 else -0.12))
    return out


def key(table, types):
    t = tuple(types)
    return table.get(t) or table[t[::-1]]


def graph_terms(mol):
    bonds = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()]
    nb = [[n.GetIdx() for n in a.GetNeighbors()] for a in mol.GetAtoms()]
    angles = [(i, j, k) for j in range(len(nb)) for i in nb[j] for k in nb[j] if i < k]
    dihedrals = sorted({min((i, j, k, m), (m, k, j, i)) for j, k in bonds + [b[::-1] for b in bonds]
                        for i in nb[j] if i != k for m in nb[k] if m not in (i, j)})
    return bonds, angles, dihedrals


def opls_top(name, smiles, inline: bool, pairtypes: bool) -> None:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(mol, randomSeed=7)
    types = typed(mol)
    bonds, angles, dihedrals = graph_terms(mol)
    out = [f"; OPLS-AA {name} (parameters of GROMACS oplsaa.ff, see make_gromacs.py)", ""]
    out += ["[ defaults ]", "; nbfunc comb-rule gen-pairs fudgeLJ fudgeQQ",
            f"1 3 {'no' if pairtypes else 'yes'} 0.5 0.5", ""]
    if inline:
        out += atomtypes_lines()
    else:
        out += ['#include "opls_types.itp"', ""]
    if pairtypes:
        out += ["[ pairtypes ]", "; i j funct sigma epsilon (fudgeLJ 0.5 applied)"]
        names = sorted(ATOMTYPES)
        for a in names:
            for b in names[names.index(a):]:
                s = (ATOMTYPES[a][2] * ATOMTYPES[b][2]) ** 0.5
                e = 0.5 * (ATOMTYPES[a][3] * ATOMTYPES[b][3]) ** 0.5
                out.append(f"{a} {b} 1 {s!r} {e!r}")
        out.append("")
    out += ["[ moleculetype ]", "MOL 3", "", "[ atoms ]"]
    for i, (t, q) in enumerate(types, 1):
        out.append(f"{i} {t} 1 MOL {mol.GetAtomWithIdx(i - 1).GetSymbol()}{i} {i} {q} "
                   f"{ATOMTYPES[t][1]}")
    out += ["", "[ bonds ]"]
    for i, j in bonds:
        p = " ".join(map(repr, key(BONDS, (types[i][0], types[j][0])))) if inline else ""
        out.append(f"{i + 1} {j + 1} 1 {p}")
    out += ["", "[ pairs ]"] + [f"{d[0] + 1} {d[3] + 1} 1" for d in
                                sorted({(d[0], 0, 0, d[3]) for d in dihedrals})]
    out += ["", "[ angles ]"]
    for i, j, k in angles:
        p = " ".join(map(repr, key(ANGLES, [types[a][0] for a in (i, j, k)]))) if inline else ""
        out.append(f"{i + 1} {j + 1} {k + 1} 1 {p}")
    out += ["", "[ dihedrals ]"]
    for d in dihedrals:
        p = " ".join(map(repr, key(RB, [types[a][0] for a in d]))) if inline else ""
        out.append(" ".join(str(a + 1) for a in d) + f" 3 {p}")
    out += ["", "[ system ]", name, "", "[ molecules ]", "MOL 1", ""]
    (HERE / f"{name}.top").write_text("\n".join(out))
    xyz = mol.GetConformer().GetPositions() / 10.0
    lines = [name, f"{len(xyz):5d}"]
    for i, (x, y, z) in enumerate(xyz, 1):
        lines.append(f"{1:5d}{'MOL':<5s}{mol.GetAtomWithIdx(i - 1).GetSymbol() + str(i):>5s}"
                     f"{i:5d}{x:8.3f}{y:8.3f}{z:8.3f}")
    lines.append("   3.00000   3.00000   3.00000")
    (HERE / f"{name}.gro").write_text("\n".join(lines) + "\n")


def atomtypes_lines():
    out = ["[ atomtypes ]", "; name at.num mass charge ptype sigma epsilon"]
    for t, (z, m, s, e) in ATOMTYPES.items():
        out.append(f"{t} {z} {m} 0.0 A {s} {e}")
    return [*out, ""]


def types_itp() -> None:
    out = ["; OPLS-AA types and bonded parameters used by opls_butane/opls_dimethyl_ether"]
    out += [*atomtypes_lines(), "[ bondtypes ]"]
    out += [f"{a} {b} 1 {r} {k}" for (a, b), (r, k) in BONDS.items()] + ["", "[ angletypes ]"]
    out += [f"{a} {b} {c} 1 {t} {k}" for (a, b, c), (t, k) in ANGLES.items()]
    out += ["", "[ dihedraltypes ]"]
    out += [" ".join(q) + " 3 " + " ".join(map(repr, c)) for q, c in RB.items()]
    (HERE / "opls_types.itp").write_text("\n".join(out) + "\n")


def converted(name: str, crd: str) -> None:
    """GROMACS files of an AMBER prmtop of this folder, through ParmEd's writer."""
    struct = parmed.load_file(str(HERE / f"{name}.prmtop"), xyz=str(HERE / f"{name}.{crd}"))
    struct.save(str(HERE / f"{name}.top"), format="gromacs", overwrite=True)
    struct.save(str(HERE / f"{name}.gro"), format="gro", overwrite=True)


if __name__ == "__main__":
    types_itp()
    opls_top("opls_ethanol", "CCO", inline=True, pairtypes=False)
    opls_top("opls_butane", "CCCC", inline=False, pairtypes=True)
    opls_top("opls_dimethyl_ether", "COC", inline=False, pairtypes=False)
    converted("gaff2_acetaminophen", "inpcrd")
    converted("ff14sb_ala_dipeptide", "rst7")
