"""MMFF94 and UFF as reference energy models with their own functional forms (RDKit).

:class:`RDKitEnergyModel` evaluates energies, forces and per-term energies for a batch of
geometries and optimizes starting geometries. Units: positions Angstrom, energies
kcal/mol, forces kcal/mol/Angstrom (RDKit's own units for both force fields).

Set-up choices (kept explicit because RDKit's defaults are tuned for optimization, not
for reference energies): no nonbonded distance cutoff is effectively applied (the pair
lists are built once, so the thresholds are set far beyond any molecular size), and
interactions between disconnected fragments (salts, complexes) are included.

Per-term energies:

* MMFF94 / MMFF94s: the seven MMFF terms from force fields with one term switched on
  (``MMFFMolProperties.SetMMFF*Term``): ``Bonds`` (bond stretch), ``Angles`` (angle bend),
  ``StretchBend``, ``OutOfPlane``, ``Torsions``, ``vdW`` (buffered 14-7) and
  ``Electrostatics``; they sum to the total.
* UFF: RDKit exposes no term switches for UFF, only a van der Waals distance threshold.
  The split is ``vdW`` (total minus the energy of a UFF force field without van der
  Waals pairs) and ``Bonded`` (bond stretch + angle bend + torsion + inversion together);
  RDKit's UFF has no electrostatics.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from io import StringIO

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import rdForceFieldHelpers as ffh

from ffparam.chem.molecule import Molecule
from ffparam.energy import BoundModel, ModelOutput
from ffparam.errors import InputError, NonFiniteError, ParameterAssignmentError

RDKIT_MODELS: tuple[str, ...] = ("mmff94", "mmff94s", "uff")
"""Model names accepted by :class:`RDKitEnergyModel`."""

MMFF_TERMS: dict[str, str] = {
    "Bonds": "SetMMFFBondTerm",
    "Angles": "SetMMFFAngleTerm",
    "StretchBend": "SetMMFFStretchBendTerm",
    "OutOfPlane": "SetMMFFOopTerm",
    "Torsions": "SetMMFFTorsionTerm",
    "vdW": "SetMMFFVdWTerm",
    "Electrostatics": "SetMMFFEleTerm",
}
"""MMFF term name -> ``MMFFMolProperties`` switch."""

MMFF_ELEMENTS = frozenset({"H", "C", "N", "O", "F", "Si", "P", "S", "Cl", "Br", "I", "Li", "Na",
                           "K", "Mg", "Ca", "Fe", "Cu", "Zn"})
"""Elements with MMFF94 atom types (including its ions)."""

NONBONDED_THRESHOLD = 1.0e4
"""MMFF nonbonded cutoff (Angstrom) and UFF vdW threshold (multiples of x_ij): both far
beyond molecular sizes, i.e. no cutoff."""


@dataclass
class RDKitEnergyResult:
    """Energies of a batch of conformers.

    Attributes:
        energy: float64 (n_conformers,), kcal/mol.
        forces: float64 (n_conformers, n_atoms, 3), kcal/mol/Angstrom (= -gradient).
        terms: term name -> float64 (n_conformers,) kcal/mol; the terms sum to ``energy``.
    """

    energy: np.ndarray
    forces: np.ndarray
    terms: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class RDKitOptimizeResult:
    """Minimized geometries.

    Attributes:
        positions: float64 (n_conformers, n_atoms, 3), Angstrom.
        energy: float64 (n_conformers,), kcal/mol at the minimized geometries.
        converged: bool (n_conformers,), RDKit's convergence flag.
    """

    positions: np.ndarray
    energy: np.ndarray
    converged: np.ndarray


class _RDKitLogCapture:
    """Collect RDKit's log lines (they name the atoms a force field cannot type)."""

    def __enter__(self) -> _RDKitLogCapture:
        self.stream = StringIO()
        rdBase.LogToPythonStderr()
        self._stderr, sys.stderr = sys.stderr, self.stream
        return self

    def __exit__(self, *exc) -> None:
        sys.stderr = self._stderr

    @property
    def text(self) -> str:
        return self.stream.getvalue()


class RDKitEnergyModel(BoundModel):
    """MMFF94 (``mmff94``, ``mmff94s``) or UFF (``uff``) energies through RDKit; an
    :class:`~ffparam.energy.EnergyModel` (:meth:`evaluate`).

    Args:
        molecule: the molecule (atom order kept; conformers are not needed).
        model: ``mmff94``, ``mmff94s`` or ``uff``.

    Raises:
        ParameterAssignmentError: the force field cannot type the molecule (names the atoms
            where RDKit or the element set tells which).
    """

    def __init__(self, molecule: Molecule, model: str = "mmff94") -> None:
        name = model.strip().lower()
        if name not in RDKIT_MODELS:
            raise InputError(f"unknown RDKit energy model {model!r}; use one of "
                             f"{', '.join(RDKIT_MODELS)}")
        super().__init__(molecule.atomic_numbers, name)
        self.molecule = molecule
        self.model = name
        self._mol = Chem.Mol(molecule.rdmol)
        self._mol.RemoveAllConformers()
        # RDKit builds pair lists from the conformer at set-up: atoms on a line 1.5 A
        # apart make every distance positive, so a zero vdW threshold removes all pairs.
        conf = Chem.Conformer(molecule.n_atoms)
        for i in range(molecule.n_atoms):
            conf.SetAtomPosition(i, (1.5 * i, 0.0, 0.0))
        self._mol.AddConformer(conf, assignId=True)
        if name == "uff":
            self._check_uff()
            self._fields = {"total": self._uff_field(NONBONDED_THRESHOLD),
                            "Bonded": self._uff_field(0.0)}
        else:
            props = self._mmff_properties()
            self._fields = {"total": self._mmff_field(props)}
            for term in MMFF_TERMS:
                self._fields[term] = self._mmff_field(self._mmff_properties(only=term))

    @property
    def term_names(self) -> tuple[str, ...]:
        """Names of the per-term energies :meth:`compute` returns."""
        if self.model == "uff":
            return ("Bonded", "vdW")
        return tuple(MMFF_TERMS)

    # ------------------------------------------------------------------ set-up
    def _variant(self) -> str:
        return "MMFF94s" if self.model == "mmff94s" else "MMFF94"

    def _mmff_properties(self, only: str | None = None):
        props = ffh.MMFFGetMoleculeProperties(self._mol, mmffVariant=self._variant())
        if props is None:
            bad = [f"{a.GetSymbol()}{a.GetIdx()}" for a in self._mol.GetAtoms()
                   if a.GetSymbol() not in MMFF_ELEMENTS]
            where = (f"atom(s) {', '.join(bad[:8])} (element without MMFF94 types)" if bad
                     else "some atoms (RDKit's MMFF94 typer does not say which; check "
                          "valences and formal charges)")
            raise ParameterAssignmentError(f"{self.model.upper()} cannot type {where} of "
                                           f"{self.molecule.name}")
        if only is not None:
            for term, setter in MMFF_TERMS.items():
                getattr(props, setter)(term == only)
        return props

    def _mmff_field(self, props):
        return ffh.MMFFGetMoleculeForceField(self._mol, props,
                                             nonBondedThresh=NONBONDED_THRESHOLD,
                                             ignoreInterfragInteractions=False)

    def _check_uff(self) -> None:
        with _RDKitLogCapture() as log:
            ok = ffh.UFFHasAllMoleculeParams(self._mol)
        if ok:
            return
        found = re.findall(r"Unrecognized atom type: (\S+) \((\d+)\)", log.text)
        atoms = sorted({(int(i), label) for label, i in found})
        if atoms:
            symbols = self.molecule.symbols
            where = ", ".join(f"{symbols[i]}{i} (UFF label {label})" for i, label in atoms[:8])
        else:
            where = "some atoms"
        raise ParameterAssignmentError(f"UFF cannot type {where} of {self.molecule.name}")

    def _uff_field(self, vdw_threshold: float):
        return ffh.UFFGetMoleculeForceField(self._mol, vdwThresh=vdw_threshold,
                                            ignoreInterfragInteractions=False)

    # ------------------------------------------------------------------ evaluation
    def compute(self, positions, terms: bool = True) -> RDKitEnergyResult:
        """Energies (n_conf,) kcal/mol, forces (n_conf, n_atoms, 3) kcal/mol/A and, with
        ``terms``, per-term energies for ``positions`` (n_conf, n_atoms, 3) Angstrom."""
        pos = self.batch(positions)
        total = self._fields["total"]
        energy = np.empty(len(pos))
        forces = np.empty_like(pos)
        for c, xyz in enumerate(pos):
            flat = xyz.ravel().tolist()
            energy[c] = total.CalcEnergy(flat)
            forces[c] = -np.asarray(total.CalcGrad(flat)).reshape(-1, 3)
        out: dict[str, np.ndarray] = {}
        if terms:
            if self.model == "uff":
                bonded = self._energies("Bonded", pos)
                out = {"Bonded": bonded, "vdW": energy - bonded}
            else:
                out = {term: self._energies(term, pos) for term in MMFF_TERMS}
        if not (np.all(np.isfinite(energy)) and np.all(np.isfinite(forces))):
            raise NonFiniteError(f"{self.model} gave a non-finite energy or force")
        return RDKitEnergyResult(energy, forces, out)

    def evaluate(self, positions, forces: bool = True) -> ModelOutput:
        """:class:`~ffparam.energy.EnergyModel` protocol: energies (n_conf,) kcal/mol and,
        with ``forces``, forces (n_conf, n_atoms, 3) kcal/mol/Angstrom of ``positions``
        (n_conf, n_atoms, 3) or (n_atoms, 3) Angstrom."""
        if forces:
            result = self.compute(positions, terms=False)
            return ModelOutput(result.energy, result.forces)
        return ModelOutput(self.energy(positions))

    def _energies(self, name: str, pos: np.ndarray) -> np.ndarray:
        ff = self._fields[name]
        return np.array([ff.CalcEnergy(xyz.ravel().tolist()) for xyz in pos])

    def energy(self, positions) -> np.ndarray:
        """Total energies (n_conf,) in kcal/mol."""
        pos = self.batch(positions)
        return self._energies("total", pos)

    def optimize(self, positions, max_iterations: int = 2000) -> RDKitOptimizeResult:
        """Minimize every conformer of ``positions`` (n_conf, n_atoms, 3) Angstrom with this
        force field (RDKit BFGS); returns the minimized positions, energies and flags."""
        pos = self.batch(positions)
        mol = Chem.Mol(self._mol)
        mol.RemoveAllConformers()
        for xyz in pos:
            conf = Chem.Conformer(self.molecule.n_atoms)
            for i, (x, y, z) in enumerate(xyz):
                conf.SetAtomPosition(i, (float(x), float(y), float(z)))
            mol.AddConformer(conf, assignId=True)
        if self.model == "uff":
            results = ffh.UFFOptimizeMoleculeConfs(mol, numThreads=1, maxIters=max_iterations,
                                                   vdwThresh=NONBONDED_THRESHOLD,
                                                   ignoreInterfragInteractions=False)
        else:
            results = ffh.MMFFOptimizeMoleculeConfs(mol, numThreads=1,
                                                    maxIters=max_iterations,
                                                    mmffVariant=self._variant(),
                                                    nonBondedThresh=NONBONDED_THRESHOLD,
                                                    ignoreInterfragInteractions=False)
        out = np.array([c.GetPositions() for c in mol.GetConformers()], dtype=np.float64)
        converged = np.array([flag == 0 for flag, _ in results], dtype=bool)
        return RDKitOptimizeResult(out, self.energy(out), converged)

    def __repr__(self) -> str:
        return f"RDKitEnergyModel({self.molecule.name!r}, {self.model!r})"


__all__ = [
    "MMFF_TERMS",
    "RDKIT_MODELS",
    "RDKitEnergyModel",
    "RDKitEnergyResult",
    "RDKitOptimizeResult",
]
