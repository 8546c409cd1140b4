"""AMBER prmtop + inpcrd/rst7 in: energies and forces per force group equal OpenMM's own
``AmberPrmtopFile`` loading of the same files (1e-6 relative), every parameter is in the
ParameterSet, and import -> export -> import changes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from openmm import app

from ffparam.assign.import_amber import read_amber
from ffparam.errors import ConventionError, InputError
from ffparam.mm.engine import MMEngine
from tests.assign.openmm_groups import ffparam_groups, max_relative_errors, openmm_groups

DATA = Path(__file__).parents[1] / "data" / "import"
SYSTEMS = {"gaff2_acetaminophen": "inpcrd", "gaff2_ethanol": "inpcrd",
           "gaff2_chlorothioanisole": "inpcrd", "ff14sb_ala_dipeptide": "rst7",
           "ff14sb_peptide": "rst7"}
RTOL = 1e-6


def perturbed(positions: np.ndarray, seed: int = 0) -> np.ndarray:
    """The file's geometry moved by 0.05 A noise (off the minimum: every term counts)."""
    return positions + np.random.default_rng(seed).normal(0.0, 0.05, positions.shape)


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_prmtop_matches_openmm_per_force_group(name):
    prmtop = DATA / f"{name}.prmtop"
    system = read_amber(prmtop, DATA / f"{name}.{SYSTEMS[name]}")
    positions = perturbed(system.molecule.conformers[0])
    reference = app.AmberPrmtopFile(str(prmtop)).createSystem(nonbondedMethod=app.NoCutoff)
    errors = max_relative_errors(ffparam_groups(system, positions),
                                 openmm_groups(reference, positions))
    assert set(errors) == {"bonds", "angles", "torsions", "nonbonded"}
    for group, (de, df) in errors.items():
        assert de < RTOL and df < RTOL, (group, de, df)


def test_every_prmtop_parameter_is_in_the_parameter_set():
    import parmed

    prmtop = DATA / "gaff2_acetaminophen.prmtop"
    system = read_amber(prmtop, DATA / "gaff2_acetaminophen.inpcrd")
    struct = parmed.amber.AmberParm(str(prmtop))
    params = system.parameters
    distinct = {(b.type.k, b.type.req) for b in struct.bonds}
    assert len(params.parameters("Bonds")) == len(distinct)
    assert {p.id for p in params.parameters("vdW")} == {a.type for a in struct.atoms}
    np.testing.assert_allclose(system.charges(), [a.charge for a in struct.atoms], atol=0)
    n_terms = sum(par.n_terms() for par in params.parameters("ProperTorsions"))
    assert n_terms >= len({d.type.idx for d in struct.dihedrals if not d.improper})
    # any parameter can be freed and changes the energy
    key = params.set_free("ProperTorsions", "*", "k1")[0]
    engine = MMEngine(system)
    xyz = system.molecule.conformers
    before = engine.energy(xyz).item()
    vector = params.vector()
    vector[params.index(key)] += 0.5
    after = MMEngine(system.with_parameters(params.with_vector(vector))).energy(xyz).item()
    assert after != pytest.approx(before, abs=1e-6)


def test_round_trip_import_export_import(tmp_path):
    from ffparam.export import export_system

    name = "gaff2_acetaminophen"
    first = read_amber(DATA / f"{name}.prmtop", DATA / f"{name}.inpcrd")
    export_system(first, tmp_path, formats=("amber",), basename="out")
    second = read_amber(tmp_path / "out.prmtop", tmp_path / "out.inpcrd")
    positions = perturbed(first.molecule.conformers[0])[None]
    e1 = MMEngine(first).compute(positions)
    e2 = MMEngine(second).compute(positions)
    for term, value in e1.terms_numpy().items():
        np.testing.assert_allclose(e2.terms_numpy()[term], value, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(e2.forces.numpy(), e1.forces.numpy(), rtol=1e-9, atol=1e-9)
    assert sorted(second.parameters.vector()) == pytest.approx(
        sorted(first.parameters.vector()), rel=1e-9, abs=1e-12)


def test_atom_count_mismatch_is_one_line():
    with pytest.raises(InputError, match=r"gaff2_ethanol.inpcrd has 9 atoms but "
                                         r"gaff2_acetaminophen.prmtop has 20"):
        read_amber(DATA / "gaff2_acetaminophen.prmtop", DATA / "gaff2_ethanol.inpcrd")


def test_chamber_cmap_is_refused_with_its_line(tmp_path):
    text = (DATA / "gaff2_ethanol.prmtop").read_text()
    bad = tmp_path / "cmap.prmtop"
    bad.write_text(text + "%FLAG CHARMM_CMAP_COUNT\n%FORMAT(2I8)\n       1       1\n")
    line = len(text.splitlines()) + 1
    with pytest.raises(ConventionError, match=rf"cmap.prmtop line {line} \(%FLAG CHARMM_CMAP_"
                                              r"COUNT\): CHARMM CMAP terms are not"):
        read_amber(bad)


def test_prmtop_nbfix_pairs_become_parameters(tmp_path):
    """Off-diagonal LJ of the prmtop tables (ParmEd's changeLJPair, as CHARMM-GUI's AMBER
    files carry them) are NBFix (full pairs) and LJ14 (1-4 pairs / SCNB) parameters."""
    import parmed
    from parmed.tools import changeLJPair

    name = "gaff2_acetaminophen"
    struct = parmed.load_file(str(DATA / f"{name}.prmtop"))
    changeLJPair(struct, "@%c3", "@%ca", 3.9, 0.2).execute()
    changeLJPair(struct, "@%o", "@%hn", 1.9, 0.05).execute()
    struct.save(str(tmp_path / "fix.prmtop"))
    system = read_amber(tmp_path / "fix.prmtop", DATA / f"{name}.inpcrd")
    fix = system.parameters.get("NBFix", "c3|ca").values
    assert fix["epsilon"] == pytest.approx(0.2, rel=1e-7)
    assert fix["sigma"] == pytest.approx(3.9 / 2 ** (1 / 6), rel=1e-7)
    assert system.parameters.get("LJ14", "hn|o").values["epsilon"] == pytest.approx(
        0.05 / 2.0, rel=1e-7)
    positions = perturbed(system.molecule.conformers[0])
    reference = app.AmberPrmtopFile(str(tmp_path / "fix.prmtop")).createSystem(
        nonbondedMethod=app.NoCutoff)
    for group, (de, df) in max_relative_errors(ffparam_groups(system, positions),
                                               openmm_groups(reference, positions)).items():
        assert de < RTOL and df < RTOL, (group, de, df)
