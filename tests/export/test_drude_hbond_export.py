"""Export of a Drude system with H-bond Thole screening (``hbond_thole``): the System XML
and the ffxml (``<CustomNonbondedForce>``) of an H-bonded methanol dimer reproduce the
engine (verified by export_drude, OpenMM's DrudeSCFIntegrator included); methanediol's
donor H 1-4 to a screened O cannot be written as ffxml (one-line refusal)."""

import numpy as np
import openmm
import pytest

from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.export.drude import drude_ffxml_text, export_drude
from ffparam.mm.drude import DrudeEngine
from ffparam.params.drude import add_drude, with_hbond_thole
from tests.mm.element_typed import element_typed_system
from tests.mm.test_drude_hbond import _hbonded_dimers


def test_hbonded_dimer_exports_system_xml_and_ffxml(tmp_path):
    mol, coords = _hbonded_dimers((1.7, 1.9))
    system = with_hbond_thole(add_drude(element_typed_system(mol)), {"O3": 0.8})
    report = export_drude(system, tmp_path, "dimer", positions=coords)
    terms = DrudeEngine(system).compute(coords).terms["HBondThole"].numpy()
    assert np.abs(terms).min() > 0.05  # the term is there to be checked (kcal/mol)
    assert report.checks["openmm"].max_abs_de < 1e-5
    assert report.checks["ffxml"].max_abs_de < 1e-5
    text = (tmp_path / "dimer.forcefield.xml").read_text()
    assert "<CustomNonbondedForce" in text and 'bondCutoff="3"' in text
    serialized = openmm.XmlSerializer.deserialize((tmp_path / "dimer.system.xml").read_text())
    assert any(isinstance(f, openmm.CustomNonbondedForce) for f in serialized.getForces())


def test_ffxml_refuses_a_donor_1_4_to_a_screened_acceptor():
    mol = Molecule.from_smiles("OCO").generate_conformers(1, seed=7)
    system = with_hbond_thole(add_drude(element_typed_system(mol)), {"O3": 0.8})
    with pytest.raises(InputError, match="cannot be written as ffxml"):
        drude_ffxml_text(system)
