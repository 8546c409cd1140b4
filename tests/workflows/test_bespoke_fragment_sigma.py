"""A Delta-learned rotor scanned on a fragment is fitted with the GP's sigma weights, as a
rotor scanned on the parent is (GFN2-xTB//GFN1-xTB, ethanol C-O on its WBO fragment,
60-degree grid)."""

import numpy as np
import pytest

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.fragment import fragment_for_bond
from ffparam.reference.store import Store
from ffparam.workflows.bespoke import BespokeSettings, fit_rotors
from ffparam.workflows.bespoke_delta import FIT_SIGMA_FLOOR_KCAL_MOL, delta_rotor

pytestmark = pytest.mark.xdist_group("bespoke")


def test_fragment_rotor_is_weighed_by_its_gp_sigma(tmp_path):
    molecule = Molecule.from_smiles("CCO", name="ethanol").generate_conformers(1, seed=7)
    settings = BespokeSettings(method="gfn2-xtb//gfn1-xtb", high_budget=3, spacing_deg=60,
                               charges="gasteiger", progress=False)
    bond = (1, 2)
    with Store(tmp_path / "ffparam.db") as store:
        fragment = fragment_for_bond(molecule, bond, store=store)
        rotor = delta_rotor(molecule, bond, settings, store, None, fragment)
    assert rotor.usable and rotor.fragment is fragment and rotor.delta is not None
    sigma = rotor.delta.sigma
    assert len(rotor.delta.learned.computed) == 3 and sigma.max() > 0.05  # 3 of 6 points
    start = assign_parameters(molecule, "sage", charges="gasteiger")
    fit_rotors(start, [rotor], settings)  # fitted on the fragment, values transferred
    floor = FIT_SIGMA_FLOOR_KCAL_MOL**2
    weights = rotor.fit_target.sqrt_w.numpy() ** 2
    np.testing.assert_allclose(weights, floor / (floor + sigma**2), rtol=1e-12)
    assert weights.min() < 0.9  # points the GP is unsure of pull less
