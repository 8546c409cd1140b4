"""The :class:`Molecule`: a chemical graph (RDKit) plus conformers in Angstrom.

Atom order is preserved from the input everywhere in ffparam: index ``i`` of a
``Molecule`` is atom ``i`` of the file or SMILES (after explicit hydrogens are added,
which RDKit appends after the heavy atoms for SMILES input).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rdkit import Chem
from rdkit.Chem import AllChem, rdMolAlign

from ffparam.errors import InputError, UnsupportedChemistryError

PERIODIC_SYMBOLS: tuple[str, ...] = tuple(
    Chem.GetPeriodicTable().GetElementSymbol(z) for z in range(0, 119)
)


@dataclass
class Molecule:
    """A molecule: RDKit graph with explicit hydrogens and a stack of conformers.

    Attributes:
        rdmol: RDKit molecule with explicit hydrogens, sanitized, stereo assigned.
        conformers: float64 array of shape (n_conformers, n_atoms, 3), Angstrom.
        name: a label for reports and file names.
    """

    rdmol: Chem.Mol
    conformers: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3)))
    name: str = "molecule"

    def __post_init__(self) -> None:
        n = self.rdmol.GetNumAtoms()
        conf = np.asarray(self.conformers, dtype=np.float64)
        if conf.size == 0:
            conf = np.zeros((0, n, 3))
        if conf.ndim == 2:
            conf = conf[None]
        if conf.ndim != 3 or conf.shape[1:] != (n, 3):
            raise InputError(
                f"conformers must have shape (n_conformers, {n}, 3), got {conf.shape}"
            )
        if not np.all(np.isfinite(conf)):
            bad = sorted({int(i) for i in np.argwhere(~np.isfinite(conf))[:, 1]})
            raise InputError(f"non-finite coordinates for atom(s) {bad[:10]} of {self.name}")
        self.conformers = conf
        self._sync_rdkit_conformers()

    # ------------------------------------------------------------------ basic properties
    @property
    def n_atoms(self) -> int:
        return self.rdmol.GetNumAtoms()

    @property
    def n_conformers(self) -> int:
        return int(self.conformers.shape[0])

    @property
    def atomic_numbers(self) -> np.ndarray:
        """Atomic numbers, int64 array (n_atoms,)."""
        return np.array([a.GetAtomicNum() for a in self.rdmol.GetAtoms()], dtype=np.int64)

    @property
    def symbols(self) -> list[str]:
        return [a.GetSymbol() for a in self.rdmol.GetAtoms()]

    @property
    def masses(self) -> np.ndarray:
        """Atomic masses in amu (standard atomic weights from RDKit), (n_atoms,)."""
        return np.array([a.GetMass() for a in self.rdmol.GetAtoms()], dtype=np.float64)

    @property
    def formal_charges(self) -> np.ndarray:
        return np.array([a.GetFormalCharge() for a in self.rdmol.GetAtoms()], dtype=np.int64)

    @property
    def total_charge(self) -> int:
        """Net charge in e (sum of formal charges)."""
        return int(Chem.GetFormalCharge(self.rdmol))

    @property
    def n_radical_electrons(self) -> int:
        return int(sum(a.GetNumRadicalElectrons() for a in self.rdmol.GetAtoms()))

    @property
    def multiplicity(self) -> int:
        """Spin multiplicity 2S+1 assuming high spin radicals (1 for closed shell)."""
        return self.n_radical_electrons + 1

    @property
    def bonds(self) -> np.ndarray:
        """Bonded atom pairs (n_bonds, 2), int64, i < j, in RDKit bond order."""
        pairs = [
            sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx())) for b in self.rdmol.GetBonds()
        ]
        return np.array(pairs, dtype=np.int64).reshape(-1, 2)

    @property
    def formula(self) -> str:
        from rdkit.Chem.rdMolDescriptors import CalcMolFormula

        return CalcMolFormula(self.rdmol)

    def to_smiles(self, explicit_hydrogens: bool = False, mapped: bool = False) -> str:
        """Canonical SMILES; ``mapped`` adds atom map numbers index+1 (all atoms explicit)."""
        mol = Chem.Mol(self.rdmol)
        mol.RemoveAllConformers()
        if mapped:
            for atom in mol.GetAtoms():
                atom.SetAtomMapNum(atom.GetIdx() + 1)
            return Chem.MolToSmiles(mol, allHsExplicit=True)
        if not explicit_hydrogens:
            mol = Chem.RemoveHs(mol)
        return Chem.MolToSmiles(mol)

    def canonical_key(self) -> str:
        """Order-dependent identity: mapped SMILES (the same molecule with atoms in another
        order gives another key, because stored geometries depend on atom order)."""
        return self.to_smiles(mapped=True)

    # ------------------------------------------------------------------ checks
    def require_closed_shell(self, what: str = "this method") -> None:
        """Raise :class:`UnsupportedChemistryError` if the molecule has radical electrons."""
        if self.n_radical_electrons:
            atoms = [
                f"{a.GetSymbol()}{a.GetIdx()}"
                for a in self.rdmol.GetAtoms()
                if a.GetNumRadicalElectrons()
            ]
            raise UnsupportedChemistryError(
                f"{self.name} is a radical (unpaired electrons on {', '.join(atoms)}); "
                f"{what} supports closed-shell molecules only"
            )

    def require_elements(self, allowed: set[str], what: str) -> None:
        """Raise if an element outside ``allowed`` is present, naming the atoms."""
        bad = [f"{s}{i}" for i, s in enumerate(self.symbols) if s not in allowed]
        if bad:
            raise UnsupportedChemistryError(
                f"unsupported element for {what}: atom(s) {', '.join(bad[:8])} "
                f"(supported: {', '.join(sorted(allowed))})"
            )

    def require_conformers(self) -> None:
        if self.n_conformers == 0:
            raise InputError(f"{self.name} has no 3-D coordinates; generate conformers first")

    # ------------------------------------------------------------------ conformers
    def with_conformers(self, conformers: np.ndarray) -> Molecule:
        """A copy holding ``conformers`` (n_conf, n_atoms, 3) Angstrom."""
        return Molecule(Chem.Mol(self.rdmol), np.asarray(conformers, float), self.name)

    def generate_conformers(
        self,
        n_conformers: int = 10,
        seed: int = 0xF00D,
        rms_threshold: float = 0.5,
        optimize: str | None = "mmff94",
        max_attempts: int = 3,
    ) -> Molecule:
        """ETKDG v3 conformers, RMSD-pruned (heavy atoms, Angstrom), optionally MMFF-optimized.

        Returns a new Molecule with up to ``n_conformers`` conformers (fewer if pruning
        leaves fewer distinct ones).
        """
        mol = Chem.Mol(self.rdmol)
        mol.RemoveAllConformers()
        params = AllChem.ETKDGv3()
        params.randomSeed = seed
        params.pruneRmsThresh = rms_threshold
        params.useRandomCoords = self.n_atoms > 80
        ids: list[int] = []
        for attempt in range(max_attempts):
            ids = list(AllChem.EmbedMultipleConfs(mol, numConfs=n_conformers, params=params))
            if ids:
                break
            params.randomSeed = seed + attempt + 1
            params.useRandomCoords = True
        if not ids:
            raise InputError(f"RDKit ETKDG could not embed 3-D coordinates for {self.name}")
        if optimize:
            _optimize_rdkit(mol, optimize)
        coords = np.array([mol.GetConformer(i).GetPositions() for i in ids])
        if rms_threshold and len(ids) > 1:
            coords = prune_by_rmsd(mol, coords, rms_threshold)
        return self.with_conformers(coords)

    def _sync_rdkit_conformers(self) -> None:
        from rdkit.Geometry import Point3D

        self.rdmol.RemoveAllConformers()
        for xyz in self.conformers:
            conf = Chem.Conformer(self.n_atoms)
            for i, (x, y, z) in enumerate(xyz):
                conf.SetAtomPosition(i, Point3D(float(x), float(y), float(z)))
            self.rdmol.AddConformer(conf, assignId=True)

    def __repr__(self) -> str:
        return (
            f"Molecule({self.name!r}, {self.formula}, charge={self.total_charge}, "
            f"n_conformers={self.n_conformers})"
        )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_smiles(cls, smiles: str, name: str | None = None) -> Molecule:
        from ffparam.chem.readers import molecule_from_smiles

        return molecule_from_smiles(smiles, name=name)

    @classmethod
    def from_file(cls, path: str | Path, charge: int | None = None) -> Molecule:
        from ffparam.chem.readers import read_molecule

        return read_molecule(path, charge=charge)

    @classmethod
    def from_input(cls, text: str, charge: int | None = None) -> Molecule:
        """A file path if it exists or has a molecule-file suffix, else a SMILES string."""
        from ffparam.chem.readers import molecule_from_input

        return molecule_from_input(text, charge=charge)

    @classmethod
    def from_rdkit(cls, rdmol: Chem.Mol, name: str = "molecule") -> Molecule:
        """Wrap an RDKit molecule (hydrogens must be explicit); its conformers are kept."""
        mol = Chem.Mol(rdmol)
        coords = np.array([c.GetPositions() for c in mol.GetConformers()]).reshape(
            -1, mol.GetNumAtoms(), 3
        )
        return cls(mol, coords, name)


def _optimize_rdkit(mol: Chem.Mol, method: str) -> None:
    from rdkit.Chem import rdForceFieldHelpers as ffh

    if method == "mmff94" and ffh.MMFFHasAllMoleculeParams(mol):
        ffh.MMFFOptimizeMoleculeConfs(mol, maxIters=2000)
    elif ffh.UFFHasAllMoleculeParams(mol):
        ffh.UFFOptimizeMoleculeConfs(mol, maxIters=2000)


def prune_by_rmsd(mol: Chem.Mol, coords: np.ndarray, threshold: float) -> np.ndarray:
    """Keep conformers whose heavy-atom best-fit RMSD to every kept one exceeds
    ``threshold`` Angstrom (symmetry-aware, RDKit ``GetBestRMS``)."""
    heavy = Chem.RemoveHs(Chem.Mol(mol))
    heavy_idx = [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() > 1]
    keep: list[int] = []
    probes = []
    for i, xyz in enumerate(coords):
        probe = Chem.Mol(heavy)
        probe.RemoveAllConformers()
        conf = Chem.Conformer(len(heavy_idx))
        for k, idx in enumerate(heavy_idx):
            conf.SetAtomPosition(k, xyz[idx].tolist())
        probe.AddConformer(conf)
        if all(rdMolAlign.GetBestRMS(probe, other) > threshold for other in probes):
            keep.append(i)
            probes.append(probe)
    return coords[keep]
