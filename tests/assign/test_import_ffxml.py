"""OpenMM ffxml (amber14-all.xml, charmm36.xml shipped with OpenMM) applied to a PDB, in:
energies and forces per force group equal OpenMM's own ``ForceField.createSystem`` (1e-6
relative); charmm36's CMAP (alanine dipeptide) is refused naming the ffxml line."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from openmm import app

from ffparam.assign.import_ffxml import read_ffxml
from ffparam.errors import ConventionError, InputError
from tests.assign.openmm_groups import ffparam_groups, max_relative_errors, openmm_groups
from tests.assign.test_import_amber import RTOL, perturbed

DATA = Path(__file__).parents[1] / "data" / "import"
SYSTEMS = {"ff14sb_ala_dipeptide": "amber14-all.xml", "ff14sb_peptide": "amber14-all.xml",
           "charmm36_etoh": "charmm36.xml", "charmm36_nma": "charmm36.xml",
           "charmm36_phen": "charmm36.xml", "charmm36_acet": "charmm36.xml",
           "charmm36_imia": "charmm36.xml"}


@cache
def openmm_forcefield(name: str) -> app.ForceField:
    """OpenMM's own ForceField of ``name`` (the reference; loaded once per test run)."""
    return app.ForceField(name)


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_ffxml_matches_openmm_per_force_group(name):
    pdb = DATA / f"{name}.pdb"
    system = read_ffxml(pdb, [SYSTEMS[name]])
    positions = perturbed(system.molecule.conformers[0])
    reference = openmm_forcefield(SYSTEMS[name]).createSystem(
        app.PDBFile(str(pdb)).topology, nonbondedMethod=app.NoCutoff, constraints=None,
        rigidWater=False)
    errors = max_relative_errors(ffparam_groups(system, positions),
                                 openmm_groups(reference, positions))
    for group, (de, df) in errors.items():
        assert de < RTOL and df < RTOL, (group, de, df)
    sections = set(system.parameters.sections)
    if SYSTEMS[name] == "charmm36.xml":
        assert {"UreyBradley", "LJ14"} <= sections
    if name in ("charmm36_nma", "charmm36_acet"):
        assert "HarmonicImpropers" in sections


def test_parameters_are_keyed_by_ffxml_types():
    system = read_ffxml(DATA / "charmm36_nma.pdb", ["charmm36.xml"])
    ids = {p.id for p in system.parameters.parameters("Bonds")}
    assert "CG2O1-OG2D1" in ids  # the amide C=O of charmm36.xml (CGenFF types)
    assert {p.id for p in system.parameters.parameters("vdW")} >= {"CG2O1", "NG2S1"}


def test_charmm36_alanine_dipeptide_cmap_is_refused_with_its_line():
    with pytest.raises(ConventionError, match=r"CMAP torsion-torsion terms \(charmm36.xml "
                                              r"line \d+\) are not supported"):
        read_ffxml(DATA / "charmm36_alad.pdb", ["charmm36.xml"], {"ALA": "ALAD"})


def test_unmatched_residue_is_one_line():
    with pytest.raises(InputError, match=r"OpenMM cannot apply amber14-all.xml to "
                                         r"charmm36_nma.pdb: No template found"):
        read_ffxml(DATA / "charmm36_nma.pdb", ["amber14-all.xml"])


def test_round_trip_import_export_import(tmp_path):
    """amber14 on alanine dipeptide -> ffparam's ffxml export -> import of that ffxml."""
    from ffparam.export import export_system

    first = read_ffxml(DATA / "ff14sb_ala_dipeptide.pdb", ["amber14-all.xml"])
    export_system(first, tmp_path, formats=("ffxml",), basename="out")
    second = read_ffxml(tmp_path / "out.pdb", [str(tmp_path / "out.forcefield.xml")])
    positions = perturbed(first.molecule.conformers[0])
    errors = max_relative_errors(ffparam_groups(second, positions),
                                 ffparam_groups(first, positions))
    for group, (de, df) in errors.items():
        assert de < 1e-9 and df < 1e-9, (group, de, df)
