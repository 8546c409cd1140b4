"""Held-out geometries: conformers generated independently of anything a fit used.

Conformers come from RDKit ETKDG v3 with their own seed (:data:`VALIDATION_SEED` by default,
different from the fitting defaults: ``Molecule.generate_conformers`` uses 0xF00D and the
bespoke pipeline its ``--seed``) and are then prepared in one of the :data:`RELAX_MODES`.
The default, ``mmff94-torsions``, sets the dihedral of every rotatable bond (symmetric
terminal rotors such as methyl excepted) to a random angle and relaxes everything else with
MMFF94 while those dihedrals are restrained: relaxed geometries spread over torsion space,
including barrier regions, which is what a torsion fit changes and what MD samples. Minima
alone (``mmff94``) often collapse to one or two conformers of nearly equal energy, whose
relative energies say little (acetanilide: 8 MMFF94 minima spanning 4e-5 kcal/mol in
GFN2-xTB). MMFF94 is independent of the systems compared and of the reference.

Candidates are pruned by all-atom Kabsch RMSD (so that conformers differing only in
hydrogen positions stay distinct) and dropped when they lie close to a geometry used in a
fit (``exclude``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.validate.alignment import kabsch_rmsd

VALIDATION_SEED: int = 0xC0FFEE
"""Default ETKDG seed of validation conformers (12648430)."""

RELAX_MODES: tuple[str, ...] = ("mmff94-torsions", "mmff94", "none", "reference")
"""``mmff94-torsions``: ETKDG, rotatable dihedrals set to uniform random angles, MMFF94
minimization with those dihedrals restrained (candidates more than ``max_energy_kcal_mol``
above the lowest in MMFF94 are dropped); ``mmff94``: ETKDG then MMFF94 minimization;
``none``: raw ETKDG geometries; ``reference``: ETKDG then optimization with the reference
method (the caller runs the ``optimize`` task). UFF replaces MMFF94 where MMFF94 lacks
parameters."""

TORSION_RESTRAINT_K: float = 1.0e4
"""Force constant of the MMFF94 dihedral restraints (RDKit units, kcal/mol/rad^2)."""


@dataclass
class HeldOutGeometries:
    """Geometries (n, n_atoms, 3) Angstrom and how many candidates were dropped where."""

    geometries: np.ndarray
    n_candidates: int
    n_pruned: int
    n_excluded: int
    n_high_energy: int = 0


def held_out_geometries(molecule: Molecule, n_conformers: int, seed: int,
                        rms_threshold: float = 0.25, relax: str = "mmff94-torsions",
                        exclude: np.ndarray | None = None, oversample: int = 3,
                        max_energy_kcal_mol: float = 12.0,
                        max_rounds: int = 4) -> HeldOutGeometries:
    """Up to ``n_conformers`` distinct conformers of ``molecule``.

    Rounds of ``n_conformers * oversample`` ETKDG candidates (round r embedded with seed
    ``seed + 7919 r``) are prepared as ``relax`` says (see :data:`RELAX_MODES`; with
    ``mmff94-torsions`` candidates more than ``max_energy_kcal_mol`` above the lowest MMFF94
    energy seen are dropped), and kept in order if their all-atom RMSD after Kabsch
    superposition to every kept one exceeds ``rms_threshold`` Angstrom and to every geometry
    of ``exclude`` (n_ex, n_atoms, 3) as well, until ``n_conformers`` are kept or
    ``max_rounds`` rounds are spent.
    """
    if relax not in RELAX_MODES:
        raise InputError(f"unknown relax mode {relax!r} (known: {', '.join(RELAX_MODES)})")
    if n_conformers < 1:
        raise InputError(f"n_conformers must be at least 1, got {n_conformers}")
    excluded = np.zeros((0, molecule.n_atoms, 3))
    if exclude is not None and len(exclude):
        excluded = np.asarray(exclude, dtype=np.float64).reshape(-1, molecule.n_atoms, 3)
    kept: list[np.ndarray] = []
    kept_energy: list[float] = []
    counts = {"candidates": 0, "pruned": 0, "excluded": 0, "high": 0}
    lowest = np.inf
    for round_ in range(max(1, max_rounds)):
        round_seed = seed + 7919 * round_
        candidates, energies = _candidates(molecule, n_conformers * max(1, oversample),
                                           round_seed, relax)
        counts["candidates"] += len(candidates)
        if energies is not None and len(energies):
            lowest = min(lowest, float(energies.min()))
        for index, xyz in enumerate(candidates):
            if energies is not None and energies[index] - lowest > max_energy_kcal_mol:
                counts["high"] += 1
                continue
            if len(excluded) and np.min(kabsch_rmsd(excluded, xyz)) <= rms_threshold:
                counts["excluded"] += 1
                continue
            if kept and np.min(kabsch_rmsd(np.array(kept), xyz)) <= rms_threshold:
                counts["pruned"] += 1
                continue
            kept.append(xyz)
            kept_energy.append(np.nan if energies is None else float(energies[index]))
            if len(kept) == n_conformers:
                break
        if len(kept) == n_conformers or relax != "mmff94-torsions":
            break  # more rounds only help the randomized mode
    if energies is not None and kept:  # a later round may have found a lower energy
        low = np.array(kept_energy) - lowest <= max_energy_kcal_mol
        counts["high"] += int(np.count_nonzero(~low))
        kept = [xyz for xyz, ok in zip(kept, low) if ok]
    geometries = np.array(kept).reshape(-1, molecule.n_atoms, 3)
    return HeldOutGeometries(geometries, counts["candidates"], counts["pruned"],
                             counts["excluded"], counts["high"])


def _candidates(molecule: Molecule, n: int, seed: int, relax: str
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """ETKDG candidates prepared for ``relax`` and, for ``mmff94-torsions``, their MMFF94
    energies (kcal/mol)."""
    optimize = "mmff94" if relax == "mmff94" else None
    candidates = molecule.generate_conformers(n, seed=seed, rms_threshold=0.0,
                                              optimize=optimize).conformers
    if relax == "mmff94-torsions":
        return randomize_torsions(molecule, candidates, seed)
    return candidates, None


def sampled_dihedrals(molecule: Molecule) -> list[tuple[int, int, int, int]]:
    """One dihedral (i, j, k, l) per rotatable bond, terminal rotors such as OH included;
    left out are ends whose other neighbours are equivalent terminal atoms (methyl and CF3
    hydrogens or halogens), whose rotation only permutes identical atoms. Phenyl and
    t-butyl ends are sampled."""
    from ffparam.chem import Topology

    topology = Topology(molecule)
    classes = topology.symmetry_classes
    rdmol = molecule.rdmol

    def spins_identical_atoms(centre: int, other: int) -> bool:
        subs = [n for n in topology.neighbours(centre) if n != other]
        return (len(subs) >= 2 and len({int(classes[n]) for n in subs}) == 1
                and all(rdmol.GetAtomWithIdx(int(n)).GetDegree() == 1 for n in subs))

    quads = []
    for j, k in topology.find_rotatable_bonds(include_terminal_rotors=True).tolist():
        if spins_identical_atoms(j, k) or spins_identical_atoms(k, j):
            continue
        quads.append(topology.dihedral_for_bond((int(j), int(k))))
    return quads


def randomize_torsions(molecule: Molecule, conformers: np.ndarray, seed: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Each conformer (n, n_atoms, 3) Angstrom with its :func:`sampled_dihedrals` set to
    uniform random angles (``seed``) and MMFF94-relaxed with those dihedrals restrained.

    Returns the geometries (n, n_atoms, 3) Angstrom and their unrestrained MMFF94 (or UFF)
    energies (n,) kcal/mol.
    """
    from rdkit import Chem
    from rdkit.Chem import rdForceFieldHelpers, rdMolTransforms
    from rdkit.Geometry import Point3D

    quads = sampled_dihedrals(molecule)
    rng = np.random.default_rng(seed)
    mol = Chem.Mol(molecule.rdmol)
    mol.RemoveAllConformers()
    conf = Chem.Conformer(molecule.n_atoms)
    mol.AddConformer(conf, assignId=True)
    use_mmff = rdForceFieldHelpers.MMFFHasAllMoleculeParams(mol)
    props = rdForceFieldHelpers.MMFFGetMoleculeProperties(mol) if use_mmff else None
    out, energies = [], []
    for xyz in np.asarray(conformers, dtype=np.float64):
        conf = mol.GetConformer()
        for i, (x, y, z) in enumerate(xyz):
            conf.SetAtomPosition(i, Point3D(float(x), float(y), float(z)))
        targets = rng.uniform(-180.0, 180.0, len(quads))
        for quad, angle in zip(quads, targets):
            rdMolTransforms.SetDihedralDeg(conf, *quad, float(angle))
        field = _force_field(mol, props)
        for quad, angle in zip(quads, targets):
            add = field.MMFFAddTorsionConstraint if use_mmff else field.UFFAddTorsionConstraint
            add(*quad, False, float(angle), float(angle), TORSION_RESTRAINT_K)
        # rounds of 2000 iterations until RDKit reports convergence (0): a single round
        # left some butane starts 1 kcal/mol and 0.04 A (central C-C) short of relaxed
        for _ in range(10):
            if field.Minimize(maxIts=2000) == 0:
                break
        relaxed = np.array(field.Positions()).reshape(-1, 3)
        for i, (x, y, z) in enumerate(relaxed):
            conf.SetAtomPosition(i, Point3D(float(x), float(y), float(z)))
        out.append(relaxed)
        energies.append(_force_field(mol, props).CalcEnergy())
    return np.array(out).reshape(-1, molecule.n_atoms, 3), np.array(energies)


def _force_field(mol, props):
    from rdkit.Chem import rdForceFieldHelpers

    if props is not None:
        return rdForceFieldHelpers.MMFFGetMoleculeForceField(mol, props)
    return rdForceFieldHelpers.UFFGetMoleculeForceField(mol)
