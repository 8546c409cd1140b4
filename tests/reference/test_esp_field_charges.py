"""QM ESP of a molecule polarized by a perturbing point charge (CHARMM's recipe): equal to a
direct PySCF ``qmmm.mm_charge`` calculation with the same charge, the charge in the Store
key, positions 3.5 A from the molecule, bad input refused."""

import numpy as np
import pytest
from pyscf import gto, qmmm, scf

from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.reference.compute import run_jobs
from ffparam.reference.esp_field import charge_jobs, perturbing_charges
from ffparam.reference.records import Species
from ffparam.reference.store import Store
from ffparam.units import BOHR_ANGSTROM, HARTREE_KCAL_MOL

METHOD = "hf/sto-3g"


@pytest.fixture(scope="module")
def water():
    return Molecule.from_smiles("O", name="water").generate_conformers(1, seed=7)


def _direct_esp(water, environment, points: np.ndarray) -> tuple[float, np.ndarray]:
    """PySCF RHF/STO-3G in the point charges (None: none): energy (kcal/mol) and the
    potential of the molecule alone (nuclei + density) at ``points`` (m, 3) A, kcal/mol/e."""
    geometry = water.conformers[0]
    mol = gto.M(atom=[(s, tuple(x)) for s, x in zip(water.symbols, geometry)],
                basis="sto-3g", unit="Angstrom", verbose=0)
    mf = scf.RHF(mol)
    if environment is not None:
        mf = qmmm.mm_charge(mf, environment.positions, environment.charges, unit="Angstrom")
    mf.conv_tol = 1e-12
    mf.kernel()
    dm = mf.make_rdm1()
    esp = []
    for point in points / BOHR_ANGSTROM:
        with mol.with_rinv_origin(point):
            electrons = np.einsum("ij,ij", dm, mol.intor("int1e_rinv"))
        nuclei = sum(z / np.linalg.norm(point - r)
                     for z, r in zip(mol.atom_charges(), mol.atom_coords()))
        esp.append(nuclei - electrons)
    return mf.e_tot * HARTREE_KCAL_MOL, np.array(esp) * HARTREE_KCAL_MOL


def test_esp_in_a_point_charge_equals_direct_pyscf_qmmm(water, tmp_path):
    environments = perturbing_charges(water.conformers[0], 2)
    jobs = charge_jobs(Species.from_molecule(water), water.conformers[0], METHOD,
                       environments)
    with Store(tmp_path / "qm.db") as store:
        records, _ = run_jobs(jobs, store)
        again, summary = run_jobs(jobs, store)
    assert "2 from the store" in summary.text()
    assert len({r.key for r in records}) == 2  # the charge is part of the key
    for record, environment in zip(records, environments):
        energy, esp = _direct_esp(water, environment, record.esp_points)
        assert record.energy == pytest.approx(energy, abs=1e-6)
        np.testing.assert_allclose(record.esp, esp, atol=1e-4)  # ~1e-6 of max |V|
        np.testing.assert_allclose(record.mm_charges, environment.charges)
    np.testing.assert_allclose(again[1].esp, records[1].esp)
    plain = _direct_esp(water, None, records[0].esp_points)[1]
    assert np.abs(records[0].esp - plain).max() > 0.5  # the charge polarized the molecule


def test_perturbing_charges_surround_the_molecule(water):
    geometry = water.conformers[0]
    environments = perturbing_charges(geometry, 4)
    xyz = np.array([env.positions[0] for env in environments])
    nearest = np.linalg.norm(xyz[:, None] - geometry[None], axis=-1).min(axis=1)
    np.testing.assert_allclose(nearest, 3.5, atol=1e-9)
    assert [env.charges[0] for env in environments] == [0.5, -0.5, 0.5, -0.5]
    spread = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)
    assert spread[np.triu_indices(4, 1)].min() > 3.5  # not bunched on one side


def test_bad_charge_input_is_refused(water):
    geometry = water.conformers[0]
    species = Species.from_molecule(water)
    with pytest.raises(InputError, match=r"at least 2\.0 A"):
        perturbing_charges(geometry, 2, distance_a=1.0)
    close = perturbing_charges(geometry, 1)[0]
    moved = type(close)(close.charges, geometry[:1] + 0.5)
    with pytest.raises(InputError, match="perturbing charge is"):
        charge_jobs(species, geometry, METHOD, [moved])
    with pytest.raises(InputError, match="no external point charges"):
        charge_jobs(species, geometry, "gfn2-xtb", [close])
