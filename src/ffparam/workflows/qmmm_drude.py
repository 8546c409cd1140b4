"""``ffparam qmmm --polarizable``: QM/MM snapshots in a Drude-polarizable solvent.

The sampling is that of :mod:`ffparam.workflows.qmmm` (packmol box, fixed-charge NPT MD
with the solute frozen, whole solvent molecules within ``cutoff_a`` of the solute per
snapshot). What changes is the environment of each QM/MM calculation: the solvent
molecules of the snapshot become one Drude system (:func:`ffparam.params.drude.add_drude`)
with a Drude particle on every heavy atom, alpha and Thole by type
(:func:`ffparam.liquid.drude.polarizable_system`: from the Drude section of
``drude_source`` under the type with hydrogens, ``O3H2``, or without, ``O3``; else the
starting values of :mod:`ffparam.params.drude`), and the QM density and the Drudes are
iterated to self-consistency (:func:`ffparam.reference.qmmm_drude.compute_qmmm_drude`,
stored like any calculation: the alphas and Thole factors are part of the key). The MD
itself stays fixed-charge (it only supplies the geometries).

A self-consistent Drude calculation always yields the energy and the forces (task
``gradient``; ``energy`` runs the same job); ``esp`` is refused. The gas-phase reference
is the same as without ``--polarizable``.

``OUT/qmmm.json`` is that of ``ffparam qmmm`` plus ``"polarizable": true``, the Drude
types (alpha A^3, Thole), the spring constant and the convergence tolerance, and per
frame the Drude count, the iterations, E_QM/MM and E_pol (kcal/mol).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.io.atomic import write_json_atomic
from ffparam.params.drude import DRUDE_SECTION
from ffparam.params.parameter_set import ParameterSet
from ffparam.params.system import ParameterizedSystem
from ffparam.reference.qmmm import QMMMRegion
from ffparam.reference.qmmm_drude import DrudeEnvironment, DrudeQMMMSettings
from ffparam.workflows.qmmm import QMMMResult, QMMMSettings

DRUDE_TASKS = ("energy", "gradient")
"""Tasks of a self-consistent Drude QM/MM calculation (both compute energy and forces)."""


@dataclass
class QMMMDrudeResult(QMMMResult):
    """:class:`~ffparam.workflows.qmmm.QMMMResult` of a run in a Drude solvent.

    Attributes:
        drude_solvent: one solvent molecule with its Drude particles (types, alpha, Thole).
        convergence: the self-consistency settings of every snapshot.
    """

    drude_solvent: ParameterizedSystem | None = None
    convergence: DrudeQMMMSettings | None = None

    def to_json(self) -> dict:
        """``qmmm.json`` of ``ffparam qmmm`` with the Drude environment (A^3, kcal/mol)."""
        data = super().to_json()
        drude = self.drude_solvent.drude
        params = self.drude_solvent.parameters
        data["polarizable"] = True
        data["drude"] = {
            "types": {tid: {"alpha_a3": params.get(DRUDE_SECTION, tid).values["alpha"],
                            "thole": params.get(DRUDE_SECTION, tid).values["thole"]}
                      for tid in dict.fromkeys(drude.type_ids)},
            "atoms_per_molecule": [self.drude_solvent.molecule.symbols[p]
                                   for p in drude.parents.tolist()],
            "k_kcal_mol_a2": drude.k_kcal_mol_a2,
            "energy_tolerance_kcal_mol": self.convergence.energy_tolerance_kcal_mol,
        }
        for frame, region, record in zip(data["frames"], self.regions, self.records):
            details = (record.provenance or {}).get("details", {}).get("drude", {})
            frame["n_drudes"] = len(region.environment.system.drude)
            frame["drude_iterations"] = details.get("iterations")
            frame["qmmm_energy_kcal_mol"] = details.get("qmmm_energy_kcal_mol")
            frame["polarization_energy_kcal_mol"] = details.get("polarization_energy_kcal_mol")
        return data


def drude_solvent(solvent: ParameterizedSystem, source: ParameterSet | None = None
                  ) -> ParameterizedSystem:
    """One solvent molecule with a Drude particle on every heavy atom (alpha and Thole by
    type from ``source``'s Drude section, else the starting values); a type given without
    a polarizability is refused (InputError) before anything runs."""
    from ffparam.liquid.drude import polarizable_system

    return polarizable_system(solvent, source)


def drude_environment(region: QMMMRegion, polar_solvent: ParameterizedSystem,
                      forcefield: str, convergence: DrudeQMMMSettings) -> DrudeEnvironment:
    """The whole solvent molecules of a fixed-charge snapshot ``region`` as one Drude
    environment: copies of ``polar_solvent`` (its charges, Drude types, alpha and Thole)
    at the region's MM positions (Angstrom), bonded/LJ terms from ``forcefield``."""
    from rdkit import Chem

    from ffparam.assign import assign_parameters
    from ffparam.params.drude import add_drude

    n_atoms = polar_solvent.n_atoms
    n_molecules = len(region.environment) // n_atoms
    if n_molecules == 0:
        raise InputError("no solvent molecule within the QM/MM cutoff: nothing to polarize")
    charges = np.tile(np.asarray(polar_solvent.charges(), dtype=np.float64), n_molecules)
    if not np.allclose(charges, region.environment.charges, atol=1e-9):
        raise InputError("the snapshot's MM charges are not whole copies of the solvent")
    rdmol = polar_solvent.molecule.rdmol
    for _ in range(n_molecules - 1):
        rdmol = Chem.CombineMols(rdmol, polar_solvent.molecule.rdmol)
    molecule = Molecule.from_rdkit(rdmol, name=f"{n_molecules} {polar_solvent.molecule.name}")
    fixed = assign_parameters(molecule, forcefield, charges=charges)
    one: list[str | None] = [None] * n_atoms
    for parent, tid in zip(polar_solvent.drude.parents.tolist(), polar_solvent.drude.type_ids):
        one[parent] = tid
    system = add_drude(fixed, one * n_molecules, source=polar_solvent.parameters,
                       k_kcal_mol_a2=polar_solvent.drude.k_kcal_mol_a2)
    return DrudeEnvironment(system, region.environment.positions, convergence)


def check_drude_task(settings: QMMMSettings) -> None:
    """InputError unless ``settings.task`` is one a Drude environment supports."""
    if settings.task not in DRUDE_TASKS:
        raise InputError(f"QM/MM in a Drude solvent computes energies and forces "
                         f"(task {' or '.join(DRUDE_TASKS)}), not {settings.task!r}")


def run_qmmm_drude(solute_input: str | ParameterizedSystem, out: str | Path,
                   settings: QMMMSettings | None = None,
                   drude_source: ParameterSet | None = None,
                   convergence: DrudeQMMMSettings | None = None, store=None, executor=None,
                   progress: bool = False) -> QMMMDrudeResult:
    """``ffparam qmmm --polarizable``: like :func:`ffparam.workflows.qmmm.run_qmmm`
    (``settings.n_frames`` snapshots of ``solute_input`` in its solvent box, a Store and
    an executor, ``OUT/qmmm.json``), but each snapshot's QM/MM is the self-consistent one
    in a Drude solvent (module docstring). Bad input (task, Drude parameters, box) is
    refused before anything runs."""
    from ffparam.liquid.prepare import prepare_system
    from ffparam.reference.compute import compute
    from ffparam.reference.qmmm_drude import compute_qmmm_drude
    from ffparam.reference.store import Store
    from ffparam.workflows.qmmm import box_edge_a, prepare_solvent, simulate_box, snapshot_region

    settings = settings or QMMMSettings()
    convergence = convergence or DrudeQMMMSettings()
    check_drude_task(settings)
    box_edge_a(settings)
    solvent = prepare_solvent(settings)
    polar = drude_solvent(solvent, drude_source)
    out = Path(out)
    solute = solute_input if isinstance(solute_input, ParameterizedSystem) else prepare_system(
        solute_input, settings.forcefield, settings.charges, cache_file=out / "solute.json")
    out.mkdir(parents=True, exist_ok=True)
    trajectory, reference = simulate_box(solute, solvent, settings, out)
    regions = []
    for frame, box in zip(trajectory.positions, trajectory.box_lengths):
        fixed = snapshot_region(frame, float(box[0]), reference, solute, solvent, settings)
        environment = drude_environment(fixed, polar, settings.forcefield, convergence)
        regions.append(QMMMRegion(fixed.species, fixed.geometry, environment,
                                  fixed.qm_molecules))
    with Store(out / "qmmm.sqlite") if store is None else nullcontext(store) as db:
        records, summary = compute_qmmm_drude(
            [(r.species, r.geometry, r.environment) for r in regions], settings.method, db,
            executor, progress=progress)
        gas = compute(solute.molecule, regions[0].geometry[None], settings.method,
                      settings.task, store=db, executor=executor)[0]
    result = QMMMDrudeResult(solute, solvent, regions, records, gas, summary.text(), polar,
                             convergence)
    write_json_atomic(out / "qmmm.json", result.to_json())
    return result

