"""Every adapter of the EnergyModel protocol agrees with its source, and forces = -dE/dx.

Sources checked independently: MMEngine through OpenMM (Reference platform), the reference
Calculator's own ``compute`` (GFN2-xTB through tblite), RDKit's MMFF94 force field built
directly, and an ML potential's ``predict`` in eV converted with ``units.EV_KCAL_MOL``.
"""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import rdForceFieldHelpers as ffh

from ffparam.assign.rdkit_models import RDKitEnergyModel
from ffparam.energy import EnergyModel, ModelOutput
from ffparam.errors import InputError, NonFiniteError, UnsupportedChemistryError
from ffparam.ml.data import MLDataset
from ffparam.ml.energy_model import PotentialEnergyModel
from ffparam.mm import build_openmm, evaluate_openmm
from ffparam.mm.energy_model import MMEnergyModel
from ffparam.reference import Species, get_calculator
from ffparam.units import EV_KCAL_MOL
from tests.energy.conftest import finite_difference_forces


def test_mm_model_matches_openmm(sage, displaced):
    model = MMEnergyModel(sage, name="sage")
    out = model.evaluate(displaced)
    export = build_openmm(sage)
    e_ref, f_ref, _ = evaluate_openmm(export.system, displaced)
    np.testing.assert_allclose(out.energy_kcal_mol, e_ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(out.forces_kcal_mol_a, f_ref, rtol=0, atol=1e-5)
    assert isinstance(model, EnergyModel) and model.name == "sage"
    assert model.atomic_numbers == (6, 6, 8, 1, 1, 1, 1, 1, 1)
    single = model.evaluate(displaced[1], forces=False)  # (n_atoms, 3): a batch of one
    assert single.forces_kcal_mol_a is None
    assert single.energy_kcal_mol[0] == pytest.approx(out.energy_kcal_mol[1], abs=1e-9)


def test_mmff_model_matches_rdkit_called_directly(ethanol, displaced):
    model = RDKitEnergyModel(ethanol, "mmff94")
    out = model.evaluate(displaced)
    mol = Chem.Mol(ethanol.rdmol)
    props = ffh.MMFFGetMoleculeProperties(mol)
    for c, xyz in enumerate(displaced):
        conf = mol.GetConformer(c)
        for i, (x, y, z) in enumerate(xyz):
            conf.SetAtomPosition(i, (float(x), float(y), float(z)))
        ff = ffh.MMFFGetMoleculeForceField(mol, props, confId=c)
        assert out.energy_kcal_mol[c] == pytest.approx(ff.CalcEnergy(), abs=1e-8)
        grad = np.asarray(ff.CalcGrad()).reshape(-1, 3)
        np.testing.assert_allclose(out.forces_kcal_mol_a[c], -grad, atol=1e-8)
    assert isinstance(model, EnergyModel) and model.name == "mmff94"


def test_calculator_evaluate_matches_compute_for_gfn2_xtb(ethanol, displaced):
    species = Species.from_molecule(ethanol)
    out = get_calculator("gfn2-xtb", species).evaluate(displaced)
    direct = get_calculator("gfn2-xtb", species)  # same sequence of SCF restarts
    for c, xyz in enumerate(displaced):
        point = direct.compute(xyz, gradient=True)
        assert out.energy_kcal_mol[c] == pytest.approx(point.energy, abs=1e-9)
        np.testing.assert_allclose(out.forces_kcal_mol_a[c], -point.gradient, atol=1e-9)
    calc = get_calculator("gfn2-xtb", species)
    assert isinstance(calc, EnergyModel) and calc.name == "gfn2-xtb"
    assert calc.atomic_numbers == tuple(ethanol.atomic_numbers)


def test_potential_model_matches_predict_in_kcal_mol(tiny_gp, ethanol, displaced):
    model = PotentialEnergyModel(tiny_gp, ethanol.atomic_numbers, batch_size=2)
    out = model.evaluate(displaced)
    n = ethanol.n_atoms
    data = MLDataset(numbers=np.tile(ethanol.atomic_numbers, len(displaced)),
                     positions=displaced.reshape(-1, 3),
                     n_atoms=np.full(len(displaced), n))
    pred = tiny_gp.predict(data, uncertainty=True)
    np.testing.assert_allclose(out.energy_kcal_mol, pred.energy * EV_KCAL_MOL, rtol=1e-12)
    np.testing.assert_allclose(out.forces_kcal_mol_a.reshape(-1, 3), pred.forces * EV_KCAL_MOL,
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out.energy_sigma_kcal_mol, pred.energy_sigma * EV_KCAL_MOL,
                               rtol=1e-8)
    np.testing.assert_allclose(out.forces_sigma_kcal_mol_a.reshape(-1, 3),
                               pred.forces_sigma * EV_KCAL_MOL, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(out.atom_energies_kcal_mol.sum(axis=1), out.energy_kcal_mol,
                               rtol=1e-12)
    plain = PotentialEnergyModel(tiny_gp, ethanol.atomic_numbers, uncertainty=False)
    assert plain.evaluate(displaced).energy_sigma_kcal_mol is None
    with pytest.raises(UnsupportedChemistryError, match="not trained on atomic number"):
        PotentialEnergyModel(tiny_gp, (6, 7, 1))


def test_forces_are_minus_the_energy_gradient(sage, ethanol, displaced, tiny_gp):
    # central differences: truncation error ~ h^2 E'(3) / 6 (measured 2e-8 and 8e-8
    # kcal/mol/A for MM and MMFF94 at h = 1e-5, 2e-6 for the GP at h = 1e-4), round-off
    # ~ eps |E| / h (the GP's absolute energy is ~1e5 kcal/mol, hence its larger step);
    # forces reach 100-300 kcal/mol/A here, so a wrong sign or unit fails by orders
    models = {
        "mm": (MMEnergyModel(sage), 1e-5, 1e-6),
        "mmff94": (RDKitEnergyModel(ethanol, "mmff94"), 1e-5, 1e-6),
        "gp": (PotentialEnergyModel(tiny_gp, ethanol.atomic_numbers), 1e-4, 2e-5),
    }
    xyz = displaced[0]
    for name, (model, step, tol) in models.items():
        analytic = model.evaluate(xyz).forces_kcal_mol_a[0]
        numeric = finite_difference_forces(model, xyz, step)
        assert np.abs(analytic - numeric).max() < tol, name
        assert np.abs(analytic).max() > 50.0, name


def test_model_output_checks_shapes_and_finiteness():
    ok = ModelOutput(np.zeros(2), np.zeros((2, 3, 3)))
    assert ok.n_conformers == 2 and ok.forces_kcal_mol_a.dtype == np.float64
    with pytest.raises(InputError, match="energy_kcal_mol"):
        ModelOutput(np.zeros((2, 1)))
    with pytest.raises(InputError, match="forces_kcal_mol_a"):
        ModelOutput(np.zeros(2), np.zeros((3, 3, 3)))
    with pytest.raises(InputError, match="forces_kcal_mol_a"):
        ModelOutput(np.zeros(2), np.zeros((2, 3, 2)))
    with pytest.raises(InputError, match="number of atoms"):
        ModelOutput(np.zeros(2), np.zeros((2, 3, 3)), atom_energies_kcal_mol=np.zeros((2, 4)))
    with pytest.raises(NonFiniteError, match=r"conformer\(s\) \[1\]"):
        ModelOutput(np.array([0.0, np.nan]))
    with pytest.raises(NonFiniteError, match="forces_sigma"):
        ModelOutput(np.zeros(1), forces_sigma_kcal_mol_a=np.full((1, 2, 3), np.inf))


def test_bad_positions_are_one_input_error(sage, ethanol, tiny_gp):
    species = Species.from_molecule(ethanol)
    for model in (MMEnergyModel(sage), RDKitEnergyModel(ethanol, "uff"),
                  PotentialEnergyModel(tiny_gp, ethanol.atomic_numbers),
                  get_calculator("gfn2-xtb", species)):
        with pytest.raises(InputError, match="shape"):
            model.evaluate(np.zeros((2, 4, 3)))
        with pytest.raises(InputError, match="non-finite"):
            model.evaluate(np.full((9, 3), np.nan))
