"""Regenerate the AMBER test files of this folder (run from the repository root with the
project's venv: ``python tests/data/import/make_amber.py``). See SOURCE.md."""

from pathlib import Path

from ffparam.assign.amber_files import write_mol2
from ffparam.assign.charges import compute_partial_charges
from ffparam.assign.gaff import assign_gaff2_types
from ffparam.assign.programs import run_program
from ffparam.chem.molecule import Molecule

HERE = Path(__file__).parent
LIGANDS = {"gaff2_acetaminophen": "CC(=O)Nc1ccc(O)cc1", "gaff2_ethanol": "CCO",
           "gaff2_chlorothioanisole": "CSc1ccc(Cl)cc1"}
PEPTIDES = {"ff14sb_ala_dipeptide": "ACE ALA NME", "ff14sb_peptide": "ACE ALA SER LYS NME"}


def ligand(name: str, smiles: str) -> None:
    mol = Molecule.from_smiles(smiles, name=name).generate_conformers(1, seed=7)
    types = assign_gaff2_types(mol)
    charges = compute_partial_charges(mol, "gasteiger")
    work = HERE / "_work"
    work.mkdir(exist_ok=True)
    write_mol2(work / "m.mol2", mol.symbols, mol.conformers[0], types, charges, mol.bonds)
    run_program(["parmchk2", "-i", "m.mol2", "-f", "mol2", "-o", "m.frcmod", "-s", "2"], cwd=work)
    leap = ("source leaprc.gaff2\nloadamberparams m.frcmod\nmol = loadmol2 m.mol2\n"
            f"saveamberparm mol ../{name}.prmtop ../{name}.inpcrd\nquit\n")
    (work / "leap.in").write_text(leap)
    log = run_program(["tleap", "-f", "leap.in"], cwd=work).stdout
    assert "Errors = 0" in log, log[-500:]


def peptide(name: str, sequence: str) -> None:
    work = HERE / "_work"
    work.mkdir(exist_ok=True)
    leap = (f"source leaprc.protein.ff14SB\nmol = sequence {{ {sequence} }}\n"
            f"saveamberparm mol ../{name}.prmtop ../{name}.rst7\nsavepdb mol ../{name}.pdb\nquit\n")
    (work / "leap.in").write_text(leap)
    log = run_program(["tleap", "-f", "leap.in"], cwd=work).stdout
    assert "Errors = 0" in log, log[-500:]


if __name__ == "__main__":
    for n, s in LIGANDS.items():
        ligand(n, s)
    for n, s in PEPTIDES.items():
        peptide(n, s)
