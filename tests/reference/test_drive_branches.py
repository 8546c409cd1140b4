"""Conformer branches of a LOW torsion drive (ffparam.reference.drive_branches) and the
Delta loop that lets HIGH choose among them (bespoke_delta with ``high_branches``), on
pentane: its C1-C2-C2-C3 drive (GFN1-xTB, 60-degree grid) from an all-anti start meets only
the anti rotamer of the next C-C bond; the two gauche rotamers are the other branches."""

import numpy as np
import pytest
from rdkit.Chem import rdMolTransforms

from ffparam.chem import Molecule
from ffparam.fit.targets.torsion import TorsionProfile
from ffparam.reference.drive_branches import (
    DriveBranches,
    dihedral_values,
    drive_branches,
    secondary_dihedrals,
    signature_gap,
)
from ffparam.reference.jobs import Job
from ffparam.reference.records import Species, Task
from ffparam.reference.spec import CompositeSpec
from ffparam.reference.store import Store
from ffparam.reference.torsiondrive import run_torsiondrive, turned_geometry
from ffparam.workflows.bespoke import BespokeSettings
from ffparam.workflows.bespoke_delta import learn_correction

DIHEDRAL, NEXT = (0, 1, 2, 3), (1, 2, 3, 4)


@pytest.fixture(scope="module")
def pentane(tmp_path_factory):
    molecule = Molecule.from_smiles("CCCCC", name="pentane").generate_conformers(1)
    start = turned_geometry(molecule, molecule.conformers[0], [DIHEDRAL, NEXT],
                            [180.0, 180.0])
    path = tmp_path_factory.mktemp("branches") / "store.db"
    with Store(path) as store:
        drive = run_torsiondrive(molecule, [DIHEDRAL], "gfn1-xtb", 60, store,
                                 initial_geometries=start[None])
        branches = drive_branches(molecule, DIHEDRAL, drive.angles[:, 0], drive.geometries,
                                  drive.energies, "gfn1-xtb", store)
    return molecule, drive, branches, path


def test_signature_is_the_next_rotatable_bond_measured_like_rdkit(pentane):
    molecule, drive, _, _ = pentane
    assert secondary_dihedrals(molecule, DIHEDRAL) == [NEXT]
    mol = molecule.with_conformers(drive.geometries).rdmol
    rdkit = [rdMolTransforms.GetDihedralDeg(mol.GetConformer(c.GetId()), *NEXT)
             for c in mol.GetConformers()]
    mine = dihedral_values(drive.geometries, [NEXT])[:, 0]
    assert np.all(signature_gap(mine[:, None], np.array(rdkit)[:, None]) < 1e-6)
    assert signature_gap(np.array([[179.0]]), np.array([[-179.0]]))[0] == pytest.approx(2.0)


def test_the_two_gauche_branches_are_found_and_completed(pentane):
    _, drive, branches, _ = pentane
    n = len(drive.energies)
    assert isinstance(branches, DriveBranches) and branches.n_branches == 3
    # branch 0 is the drive's own profile, in grid order, all anti
    np.testing.assert_array_equal(branches.grid_index[:n], np.arange(n))
    np.testing.assert_allclose(branches.low_energies[:n], drive.energies)
    assert np.all(np.abs(branches.signatures[:n, 0]) > 150)
    for b in (1, 2):  # each gauche branch over every grid point, one sign throughout
        on = branches.branch == b
        assert sorted(branches.grid_index[on]) == list(range(n))
        sig = branches.signatures[on, 0]
        assert np.all((np.abs(sig) > 50) & (np.abs(sig) < 110))
        assert len(set(np.sign(sig))) == 1
        assert not branches.held[on].any()  # LOW has these minima everywhere
    # at 180 degrees the two gauche rotamers are mirror images, above anti by a
    # gauche penalty of a few tenths of a kcal/mol
    at = [int(np.flatnonzero((branches.branch == b)
                             & (drive.angles[branches.grid_index, 0] % 360 == 180))[0])
          for b in (1, 2)]
    anti = drive.energies[drive.angles[:, 0] % 360 == 180][0]
    e1, e2 = branches.low_energies[at]
    assert e1 == pytest.approx(e2, abs=2e-3)
    assert 0.1 < e1 - anti < 1.2


def test_every_candidate_is_a_stored_constrained_minimum_and_a_rerun_computes_nothing(
        pentane):
    molecule, drive, branches, path = pentane
    with Store(path) as store:
        again = drive_branches(molecule, DIHEDRAL, drive.angles[:, 0], drive.geometries,
                               drive.energies, "gfn1-xtb", store)
        records = list(store.records(method="gfn1-xtb", task_kind="optimize"))
    assert again.summary.n_computed == 0 and again.summary.n_jobs > 0
    np.testing.assert_allclose(again.low_energies, branches.low_energies)
    stored = {round(r.energy, 9) for r in records if r.ok}
    assert all(round(e, 9) in stored for e in branches.low_energies)


def test_a_molecule_without_another_rotor_has_one_branch_and_runs_nothing():
    molecule = Molecule.from_smiles("CCCC", name="butane").generate_conformers(1)
    with Store(":memory:") as store:
        drive = run_torsiondrive(molecule, [DIHEDRAL], "gfn1-xtb", 90, store)
        branches = drive_branches(molecule, DIHEDRAL, drive.angles[:, 0], drive.geometries,
                                  drive.energies, "gfn1-xtb", store)
    assert branches.n_branches == 1 and branches.summary.n_jobs == 0
    assert branches.secondary == []


def test_high_chooses_the_branch_of_the_corrected_profile(pentane):
    molecule, drive, _, path = pentane
    spec = CompositeSpec.parse("gfn2-xtb//gfn1-xtb")
    profile = TorsionProfile(drive.dihedrals, drive.angles, drive.geometries,
                             drive.energies, "pentane")
    settings = BespokeSettings(method="gfn2-xtb//gfn1-xtb", high_budget=6, progress=False,
                               high_branches=True)
    with Store(path) as store:
        delta = learn_correction(molecule, profile, spec, settings, store, None)
        species = Species.from_molecule(molecule)
        asked = delta.branch_result.computed + delta.branch_result.failed
        highs = [store.get(Job.create(species, "gfn2-xtb", Task.parse("energy"),
                                      delta.branches.geometries[c]).key) for c in asked]
        rerun = learn_correction(molecule, profile, spec, settings, store, None)
        plain = learn_correction(molecule, profile, spec,
                                 settings.replace(high_branches=False), store, None)
    n = len(drive.energies)
    result = delta.branch_result
    assert 1 <= len(asked) <= 6 and all(r is not None and r.ok for r in highs)
    # each computed value is HIGH - LOW on that candidate's geometry
    for c, record in zip(asked, highs):
        assert result.values[c] == pytest.approx(record.energy
                                                 - delta.branches.low_energies[c])
    # the profile: one candidate per grid point, its geometry, LOW energy and branch
    winners = result.winners
    np.testing.assert_array_equal(delta.branches.grid_index[winners], np.arange(n))
    np.testing.assert_allclose(delta.geometries, delta.branches.geometries[winners])
    np.testing.assert_allclose(delta.low_energies, delta.branches.low_energies[winners])
    np.testing.assert_array_equal(delta.branch_of_point, delta.branches.branch[winners])
    np.testing.assert_allclose(delta.corrected,
                               delta.low_energies + result.mean[winners])
    # deterministic and answered from the Store
    assert rerun.branch_result.computed == result.computed
    assert rerun.summary.n_computed == 0
    # without branches: the drive's own geometries, no candidates
    assert plain.geometries is None and plain.branches is None
