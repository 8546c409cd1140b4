"""Torsion scans for the bespoke workflow: which bonds to scan, imported scans, and QM
torsion drives through the Store and Executor.

A scan ends up as a :class:`~ffparam.fit.targets.torsion.TorsionProfile` of the molecule
it was computed on (the parent, or a fragment), with the grid points that failed listed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ffparam.chem import Molecule, Topology
from ffparam.errors import InputError
from ffparam.fit.smirks import equivalent_bonds
from ffparam.fit.targets.torsion import TorsionProfile
from ffparam.io.torsion_scans import ImportedScan, check_atom_order, read_torsion_scans

MIN_SCAN_POINTS = 4
"""A scan with fewer successful grid points than this is not fitted (reported instead)."""


@dataclass
class RotorScan:
    """One rotatable bond and its reference scan.

    Attributes:
        bond: (j, k) central bond of the parent molecule.
        dihedral: (i, j, k, l) scanned dihedral of the parent.
        profile: the scan (None if it failed entirely).
        source: ``computed`` (this run, through the Store) or the imported file.
        missing: grid points (degrees) without a successful optimization.
        n_jobs, n_cached, n_failed: optimizations asked, taken from the Store, failed.
        error: why the scan is unusable, if it is.
        fragment: the Fragment the scan ran on (None = parent molecule).
        delta: the Delta-learned ``HIGH//LOW`` correction of a LOW drive
            (:class:`~ffparam.workflows.bespoke_delta.DeltaScan`), if ``--high-budget``.
        prior_width: the torsion prior width (kcal/mol) chosen by cross-validation, if any.
        bond2, dihedral2: the second bond and dihedral of a 2-D drive (``--drive-2d``,
            :mod:`ffparam.workflows.bespoke_delta2d`); None for a 1-D scan.
    """

    bond: tuple[int, int]
    dihedral: tuple[int, int, int, int]
    profile: TorsionProfile | None = None
    source: str = "computed"
    missing: list[tuple[float, ...]] = field(default_factory=list)
    n_jobs: int = 0
    n_cached: int = 0
    n_failed: int = 0
    error: str | None = None
    fragment: object | None = None
    fit_target: object | None = None
    fit_result: object | None = None
    delta: object | None = None
    prior_width: float | None = None
    bond2: tuple[int, int] | None = None
    dihedral2: tuple[int, int, int, int] | None = None

    @property
    def usable(self) -> bool:
        return self.profile is not None and len(self.profile.energies) >= MIN_SCAN_POINTS

    @property
    def bonds(self) -> list[tuple[int, int]]:
        """The bonds whose torsions the scan fits: one, or two for a 2-D drive."""
        return [self.bond] if self.bond2 is None else [self.bond, self.bond2]


def rotors_to_scan(molecule: Molecule, include_symmetric: bool = False
                   ) -> tuple[list[tuple[int, int]], list[str]]:
    """Rotatable bonds to scan (one per symmetry class), and notes on what was skipped.

    Terminal rotors (OH, NH2) are scanned; symmetric terminal rotors (methyl, CF3,
    t-butyl) are skipped unless ``include_symmetric``.
    """
    topology = Topology(molecule)
    notes, chosen, covered = [], [], set()
    for bond in topology.find_rotatable_bonds(include_terminal_rotors=True).tolist():
        bond = (int(bond[0]), int(bond[1]))
        if bond in covered:
            continue
        if topology.is_symmetric_terminal_rotor(bond) and not include_symmetric:
            notes.append(f"bond {bond[0]}-{bond[1]} is a symmetric terminal rotor; not scanned")
            covered.add(bond)
            continue
        chosen.append(bond)
        covered |= equivalent_bonds(topology, bond)
    return chosen, notes


def match_imported_scans(molecule: Molecule, paths: list[Path]
                         ) -> dict[tuple[int, int], ImportedScan]:
    """Read ``--reference`` files; each scan is checked against the molecule's atom order and
    keyed by its central bond (sorted). A 2-D scan or a scan of a non-bond is an error."""
    topology = Topology(molecule)
    found: dict[tuple[int, int], ImportedScan] = {}
    for path in paths:
        for scan in read_torsion_scans(path):
            check_atom_order(scan, molecule.symbols, topology.bonds, Path(path).name)
            if len(scan.dihedrals) != 1:
                raise InputError(f"{Path(path).name}: only 1-D scans can be imported for "
                                 "bespoke torsions")
            quad = [int(a) for a in scan.dihedrals[0]]
            j, k = quad[1], quad[2]
            if molecule.rdmol.GetBondBetweenAtoms(j, k) is None:
                raise InputError(f"{Path(path).name}: dihedral {'-'.join(map(str, quad))} is "
                                 "not around a bond of the molecule")
            found[tuple(sorted((j, k)))] = scan
    return found


def store_imported_scan(store, molecule: Molecule, scan: ImportedScan) -> int:
    """Record an imported scan in the Store (one complete 'optimize' record per grid point,
    method from the file's provenance), so a run's data all live in one place. Returns the
    number of new records."""
    from ffparam.reference.records import Constraints, Record, Species, Task

    species = Species.from_molecule(molecule)
    level = "/".join(str(scan.provenance[k]) for k in ("method", "basis")
                     if scan.provenance.get(k))
    method = f"imported:{level}" if level else "imported"
    digest = hashlib.sha256(Path(scan.source).read_bytes()).hexdigest()[:16] \
        if Path(scan.source).exists() else "unknown"
    new = 0
    for angles, geometry, energy in zip(scan.angles, scan.geometries, scan.energies):
        dihedrals = tuple((*map(int, d), float(a)) for d, a in zip(scan.dihedrals, angles))
        task = Task("optimize", Constraints(dihedrals=dihedrals))
        key = hashlib.sha256(json.dumps({"imported": digest, "molecule": species.key,
                                         "angles": [float(a) for a in angles]},
                                        sort_keys=True).encode()).hexdigest()
        if store.get(key) is not None:
            continue
        store.put(Record(key=key, status="complete", method=method, task=task.canonical(),
                         species=species, geometry=geometry, energy=float(energy),
                         final_geometry=geometry,
                         provenance={"imported_from": scan.source, **scan.provenance}))
        new += 1
    store.flush()
    return new


def imported_rotor(bond: tuple[int, int], scan: ImportedScan) -> RotorScan:
    dihedral = tuple(int(a) for a in scan.dihedrals[0])
    profile = TorsionProfile(scan.dihedrals, scan.angles, scan.geometries, scan.energies,
                             f"{bond[0]}-{bond[1]}")
    return RotorScan(bond, dihedral, profile, source=scan.source, n_jobs=len(scan.energies))


def composite_reference_note(method: str) -> str:
    """What a bespoke fit to ``HIGH//LOW`` torsion drives is measured against."""
    from ffparam.reference.spec import CompositeSpec

    spec = CompositeSpec.parse(method)
    high, low = spec.high.canonical(), spec.low.canonical()
    return (f"Torsion profiles are {high} single points on {low} constrained-optimized "
            f"geometries ({spec.canonical()}); RMSE is measured against those {high} "
            f"profiles, not against a {high}-relaxed drive. Valence and optimized geometries "
            f"use {low}; held-out conformers are scored against {high}.")


def drive_rotor(molecule: Molecule, bond: tuple[int, int], method: str, spacing_deg: int, store,
                executor, retry_failed: bool = False, progress: bool = True,
                fragment=None) -> RotorScan:
    """Run (or resume from the Store) the torsion drive of ``bond`` on ``molecule`` or on
    ``fragment`` (a :class:`~ffparam.fragment.Fragment`)."""
    from ffparam.reference.torsiondrive import run_torsiondrive

    target = molecule if fragment is None else fragment.molecule
    parent_dihedral = Topology(molecule).dihedral_for_bond(bond)
    # a fragment scans the parent's dihedral mapped into it, so both profiles share atoms
    dihedral = parent_dihedral if fragment is None else tuple(fragment.dihedral)
    try:
        result = run_torsiondrive(target, [dihedral], method=method, spacing_deg=spacing_deg,
                                  store=store, executor=executor, retry_failed=retry_failed,
                                  progress=progress)
    except Exception as exc:  # a failed scan is reported and skipped, never fatal
        from ffparam.errors import FFParamError

        if not isinstance(exc, FFParamError):
            raise
        return RotorScan(bond, parent_dihedral, None, error=str(exc), fragment=fragment)
    summary = result.summary
    rotor = RotorScan(bond, parent_dihedral, None, missing=list(result.missing),
                      n_jobs=summary.n_jobs, n_cached=summary.n_cached,
                      n_failed=summary.n_failed, fragment=fragment)
    if len(result.energies):
        rotor.profile = TorsionProfile(np.array([dihedral]), result.angles, result.geometries,
                                       result.energies, f"{bond[0]}-{bond[1]}")
    if not rotor.usable:
        rotor.error = (f"only {0 if rotor.profile is None else len(rotor.profile.energies)} "
                       f"grid point(s) succeeded")
    return rotor
