"""Sum/Δ models add exactly; the one ASE calculator reports eV and eV/Angstrom."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.fd import calculate_numerical_forces

from ffparam.assign.rdkit_models import RDKitEnergyModel
from ffparam.chem import Molecule
from ffparam.energy import DeltaModel, EnergyModel, SumModel
from ffparam.energy.ase import EnergyModelCalculator
from ffparam.errors import InputError
from ffparam.ml.energy_model import PotentialEnergyModel
from ffparam.mm.energy_model import MMEnergyModel
from ffparam.units import KCAL_MOL_EV


def test_delta_model_adds_energies_forces_and_variances(sage, ethanol, displaced, tiny_gp):
    mm, mmff = MMEnergyModel(sage, name="sage"), RDKitEnergyModel(ethanol, "mmff94")
    gp = PotentialEnergyModel(tiny_gp, ethanol.atomic_numbers)
    a, b, g = (m.evaluate(displaced) for m in (mm, mmff, gp))
    delta = DeltaModel(mm, mmff)
    out = delta.evaluate(displaced)
    np.testing.assert_array_equal(out.energy_kcal_mol, a.energy_kcal_mol + b.energy_kcal_mol)
    np.testing.assert_array_equal(out.forces_kcal_mol_a,
                                  a.forces_kcal_mol_a + b.forces_kcal_mol_a)
    assert out.energy_sigma_kcal_mol is None and out.atom_energies_kcal_mol is None
    assert delta.name == "sage+mmff94" and isinstance(delta, EnergyModel)
    assert delta.baseline is mm and delta.correction is mmff
    # variances add: sigma^2 = sigma_gp^2 + sigma_gp^2 for a GP added to itself
    twice = SumModel([gp, mm, gp], name="gp2").evaluate(displaced)
    np.testing.assert_allclose(twice.energy_sigma_kcal_mol,
                               np.sqrt(2.0) * g.energy_sigma_kcal_mol, rtol=1e-14)
    np.testing.assert_allclose(twice.forces_sigma_kcal_mol_a,
                               np.sqrt(2.0) * g.forces_sigma_kcal_mol_a, rtol=1e-14)
    np.testing.assert_array_equal(
        twice.energy_kcal_mol, g.energy_kcal_mol + a.energy_kcal_mol + g.energy_kcal_mol)
    energy_only = delta.evaluate(displaced[0], forces=False)
    assert energy_only.forces_kcal_mol_a is None
    assert energy_only.energy_kcal_mol[0] == out.energy_kcal_mol[0]


def test_sum_of_different_molecules_is_an_input_error(mmff_methanol, ethanol):
    with pytest.raises(InputError, match="atomic numbers differ"):
        DeltaModel(RDKitEnergyModel(ethanol, "mmff94"), mmff_methanol)
    with pytest.raises(InputError, match="not an EnergyModel"):
        SumModel([RDKitEnergyModel(ethanol, "mmff94"), object()])
    with pytest.raises(InputError, match="at least one"):
        SumModel([])


@pytest.fixture(scope="module")
def mmff_methanol():
    return RDKitEnergyModel(Molecule.from_smiles("CO", name="methanol"), "mmff94")


def _atoms(model, xyz: np.ndarray) -> Atoms:
    atoms = Atoms(numbers=list(model.atomic_numbers), positions=xyz)
    atoms.calc = EnergyModelCalculator(model)
    return atoms


def test_ase_calculator_gives_ev_matching_the_model(sage, ethanol, displaced):
    for model in (MMEnergyModel(sage), RDKitEnergyModel(ethanol, "mmff94")):
        atoms = _atoms(model, displaced[1])
        out = model.evaluate(displaced[1])
        energy = atoms.get_potential_energy()
        assert energy == pytest.approx(out.energy_kcal_mol[0] * KCAL_MOL_EV, rel=1e-14)
        assert energy == pytest.approx(out.energy_kcal_mol[0] / 23.060547830619, rel=1e-12)
        assert atoms.calc.results["free_energy"] == energy
        np.testing.assert_allclose(atoms.get_forces(), out.forces_kcal_mol_a[0] * KCAL_MOL_EV,
                                   rtol=1e-14)
        # ASE's own central differences (eps 1e-4 A): truncation ~1e-7 eV/A here
        numeric = calculate_numerical_forces(atoms, eps=1e-4)
        np.testing.assert_allclose(atoms.get_forces(), numeric, atol=1e-5)
        assert "energy_sigma" not in atoms.calc.results


def test_ase_calculator_passes_uncertainty_and_atom_energies(tiny_gp, ethanol, displaced):
    model = PotentialEnergyModel(tiny_gp, ethanol.atomic_numbers)
    out = model.evaluate(displaced[2])
    atoms = _atoms(model, displaced[2])
    assert atoms.get_potential_energy() == pytest.approx(
        out.energy_kcal_mol[0] * KCAL_MOL_EV, rel=1e-14)
    results = atoms.calc.results
    assert results["energy_sigma"] == pytest.approx(
        out.energy_sigma_kcal_mol[0] * KCAL_MOL_EV, rel=1e-14)
    assert results["energy_sigma"] > 0
    np.testing.assert_allclose(results["forces_sigma"],
                               out.forces_sigma_kcal_mol_a[0] * KCAL_MOL_EV, rtol=1e-14)
    assert atoms.get_potential_energies().sum() == pytest.approx(
        atoms.get_potential_energy(), rel=1e-12)


def test_ase_calculator_rejects_other_atoms(sage):
    model = MMEnergyModel(sage)
    atoms = Atoms(numbers=[8, 1, 1], positions=np.eye(3))
    atoms.calc = EnergyModelCalculator(model)
    with pytest.raises(InputError, match="atomic numbers"):
        atoms.get_potential_energy()
