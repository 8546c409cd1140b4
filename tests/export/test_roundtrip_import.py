"""Issue 18 point 1 for OPLS-AA GROMACS topologies: import -> ffparam's GROMACS export ->
import changes nothing.

The exported ``.top`` has comb-rule 3 (geometric), gen-pairs no and every 1-4 pair's LJ
(from ``[ pairtypes ]``, kept as LJ14 overrides on import) explicit in ``[ pairs ]``;
OpenMM's ``GromacsTopFile`` reads it into Custom forces, which the export check accepts
as Lennard-Jones and compares in total with ffparam."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from openmm import app

from ffparam.assign.import_gromacs import read_gromacs
from ffparam.errors import ConventionError, ExportVerificationError
from ffparam.export import export_system
from ffparam.export.verify import openmm_evaluation
from tests.assign.openmm_groups import ffparam_groups, max_relative_errors, openmm_groups
from tests.assign.test_import_amber import perturbed

DATA = Path(__file__).parents[1] / "data" / "import"
OPLS = ["opls_ethanol", "opls_butane", "opls_dimethyl_ether"]
SAME = 1e-9
"""Relative energy/force agreement of the two imports (per force group)."""


def _values(system) -> dict[str, float]:
    """Parameter key -> value, every parameter (Ryckaert-Bellemans torsions are written
    back as funct 3, so they return under their ``rb:`` ids)."""
    params = system.parameters
    return {str(k): float(v) for k, v in zip(params.keys(), params.vector())}


def _export_and_reimport(name: str, outdir: Path):
    first = read_gromacs(DATA / f"{name}.top", DATA / f"{name}.gro")
    report = export_system(first, outdir, formats=("gromacs",), basename="out")
    text = (outdir / "out.top").read_text()
    return first, report, text, read_gromacs(outdir / "out.top", outdir / "out.gro")


@pytest.mark.parametrize("name", OPLS)
def test_opls_round_trip_changes_nothing(tmp_path, name):
    first, report, text, second = _export_and_reimport(name, tmp_path)
    assert report.checks["gromacs"].max_abs_de < 1e-6
    assert "\n1 3 no " in text  # comb-rule 3, explicit 1-4 pairs
    assert " 3 " in text.split("[ dihedrals ]")[1]  # Ryckaert-Bellemans, funct 3
    assert second.nonbonded.combining_rule == first.nonbonded.combining_rule == "geometric"
    a, b = _values(first), _values(second)
    assert a.keys() == b.keys()
    for key in a:
        # abs: an RB k near zero is a difference of the C_n (kcal/mol)
        assert b[key] == pytest.approx(a[key], rel=1e-13, abs=1e-13), key
    for setting in ("coulomb_14_scale", "lj_14_scale", "combining_rule"):
        assert second.parameters.settings[setting] == first.parameters.settings[setting]
    positions = perturbed(first.molecule.conformers[0])
    errors = max_relative_errors(ffparam_groups(second, positions),
                                 ffparam_groups(first, positions))
    for group, (de, df) in errors.items():
        assert de < SAME and df < SAME, (group, de, df)
    # and both equal OpenMM's own loading of the original and of the exported file
    for top in (DATA / f"{name}.top", tmp_path / "out.top"):
        reference = app.GromacsTopFile(str(top)).createSystem(nonbondedMethod=app.NoCutoff)
        errors = max_relative_errors(ffparam_groups(second, positions),
                                     openmm_groups(reference, positions))
        for group, (de, df) in errors.items():
            assert de < 1e-6 and df < 1e-6, (top.name, group, de, df)


def test_one_four_pairs_are_explicit_and_unlisted_pairs_stay_excluded(tmp_path):
    """Ethanol's HO pairs have zero 1-4 LJ in [ pairtypes ] but keep their Coulomb: they
    are listed with sigma = epsilon = 0; the exported pair count is the file's."""
    first, _, text, _ = _export_and_reimport("opls_ethanol", tmp_path)
    section = text.split("[ pairs ]")[1].split("[ angles ]")[0].strip().splitlines()[1:]
    listed = {tuple(sorted(int(f) - 1 for f in row.split()[:2])) for row in section}
    expected = {tuple(sorted(p)) for p in first.topology.pairs_14.tolist()}
    assert listed == expected
    assert all(len(row.split()) == 5 for row in section)


def test_scaled_full_pair_is_refused(tmp_path):
    """A 1-4-like scale on a pair beyond three bonds has no GROMACS form: one clear error,
    nothing written."""
    system = read_gromacs(DATA / "opls_butane.top", DATA / "opls_butane.gro")
    nb = system.nonbonded
    full = {tuple(p) for p in np.sort(system.topology.nonbonded_pairs, axis=1).tolist()}
    row = next(r for r, p in enumerate(np.sort(nb.pairs, axis=1).tolist()) if tuple(p) in full)
    nb.coulomb_scale[row] = 0.5
    with pytest.raises(ConventionError, match="scaled or NBFIX'd full pair"):
        export_system(system, tmp_path, formats=("gromacs",), basename="out")
    assert not (tmp_path / "out.top").exists()


def test_rb_coefficients_invert_the_import_conversion():
    from ffparam.assign.import_common import rb_to_periodic
    from ffparam.export.gromacs import rb_coefficients

    c = [2.9288, -1.4644, 0.2092, -1.6736, 0.31, -0.07]
    periodic = [(n, phase, k) for k, phase, n in rb_to_periodic(c)]
    assert rb_coefficients(periodic) == pytest.approx(c, rel=1e-13, abs=1e-14)


def test_refitted_rb_with_other_phase_is_written_periodic(tmp_path):
    """An rb: parameter whose phase moved off 0/180 deg has no RB form: written as
    periodic terms, energies still verified."""
    import math

    system = read_gromacs(DATA / "opls_butane.top", DATA / "opls_butane.gro")
    par = system.parameters.get("ProperTorsions", "rb:CT-CT-CT-CT")
    par.values["phase2"] = math.radians(20.0)
    report = export_system(system, tmp_path, formats=("gromacs",), basename="out")
    assert report.checks["gromacs"].max_abs_de < 1e-6
    again = read_gromacs(tmp_path / "out.top", tmp_path / "out.gro")
    assert ("ProperTorsions", "rb:CT-CT-CT-CT") not in again.parameters
    assert ("ProperTorsions", "rb:CT-CT-CT-HC") in again.parameters


def _two_copies_gro(path: Path, shift_nm: float) -> str:
    """The .gro of ``path`` twice, the second copy moved by ``shift_nm`` along x (so that
    pairs between the copies are full nonbonded pairs)."""
    lines = path.read_text().splitlines()
    n = int(lines[1])
    rows = [row[:20] + f"{float(row[20:28]) + dx:8.3f}" + row[28:]
            for dx in (0.0, shift_nm) for row in lines[2:2 + n]]
    return "\n".join([lines[0], f"{2 * n:5d}", *rows, lines[-1]]) + "\n"


def test_opls_with_nonbond_params_is_refused(tmp_path):
    """An OPLS file with a [ nonbond_params ] pair (GROMACS' NBFIX): ParmEd misreads
    [ nonbond_params ] under comb-rule 3 (what the two-reader check found), so the export
    is refused with one line and nothing written."""
    text = (DATA / "opls_dimethyl_ether.top").read_text().replace(
        '#include "opls_types.itp"', '#include "opls_types.itp"\n\n[ nonbond_params ]\n'
        "HC OS 1 0.31 0.4\n").replace("MOL 1\n", "MOL 2\n")
    (tmp_path / "x.top").write_text(text)
    (tmp_path / "opls_types.itp").write_text((DATA / "opls_types.itp").read_text())
    (tmp_path / "x.gro").write_text(_two_copies_gro(DATA / "opls_dimethyl_ether.gro", 0.6))
    first = read_gromacs(tmp_path / "x.top", tmp_path / "x.gro")
    assert "NBFix" in first.parameters.sections
    out = tmp_path / "out"
    with pytest.raises(ConventionError, match="NBFIX pairs with the geometric"):
        export_system(first, out, formats=("gromacs",), basename="out")
    assert not (out / "out.top").exists()


def test_unknown_custom_force_still_refused():
    """The check accepts only the Lennard-Jones Custom forces readers build."""
    import openmm

    system = openmm.System()
    system.addParticle(1.0)
    system.addParticle(1.0)
    force = openmm.CustomNonbondedForce("r^2")
    force.addParticle([])
    force.addParticle([])
    system.addForce(force)
    with pytest.raises(ExportVerificationError, match="CustomNonbondedForce"):
        openmm_evaluation(system, np.zeros((1, 2, 3)) + np.array([[0, 0, 0], [1, 0, 0]]))


def _element_typed(**options):
    from ffparam.chem import Molecule
    from tests.mm.element_typed import element_typed_system

    mol = Molecule.from_smiles("OCc1ccccc1", name="benzyl alcohol").generate_conformers(
        2, seed=3, rms_threshold=0.0)
    rng = np.random.default_rng(3)
    mol = mol.with_conformers(mol.conformers + rng.normal(0, 0.05, mol.conformers.shape))
    return element_typed_system(mol, **options)


def test_geometric_system_exports_with_comb_rule_3(tmp_path):
    """Not only imported files: a geometric-rule system built by ffparam is written with
    comb-rule 3 and read back by OpenMM and ParmEd (two conformers) within the default
    tolerance."""
    system = _element_typed(combining_rule="geometric")
    report = export_system(system, tmp_path, formats=("gromacs",), basename="out")
    assert "\n1 3 no " in (tmp_path / "out.top").read_text()
    assert report.checks["gromacs"].n_conformers == 2
    assert report.checks["gromacs"].max_abs_de < 1e-6


def test_nbfix_written_as_nonbond_params(tmp_path):
    """NBFIX overrides of full pairs (here H-O of an element-typed system) become
    [ nonbond_params ]; read back by OpenMM and ParmEd within the default tolerance."""
    system = _element_typed(nbfix=("H", "O"))
    report = export_system(system, tmp_path, formats=("gromacs",), basename="out")
    assert "[ nonbond_params ]" in (tmp_path / "out.top").read_text()
    assert report.checks["gromacs"].max_abs_de < 1e-6


def test_nbfix_missing_on_one_pair_of_its_types_is_refused(tmp_path):
    """GROMACS applies [ nonbond_params ] to every pair of the two types: a system where
    one such pair lacks the override cannot be written (one clear error, nothing
    written)."""
    system = _element_typed(nbfix=("H", "O"))
    nb = system.nonbonded
    keep = np.ones(len(nb.nbfix_rows), dtype=bool)
    keep[-1] = False
    nb.nbfix_rows = nb.nbfix_rows[keep]
    nb.nbfix_sigma_index = nb.nbfix_sigma_index[keep]
    nb.nbfix_epsilon_index = nb.nbfix_epsilon_index[keep]
    with pytest.raises(ConventionError, match=r"without its override to GROMACS"):
        export_system(system, tmp_path, formats=("gromacs",), basename="out")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["charmm_aglc", "charmm_bglca", "charmm_aglc_nacl"])
def test_charmm_system_to_gromacs_keeps_urey_bradley_and_harmonic_impropers(tmp_path, name):
    """CHARMM import -> GROMACS export (angle funct 5, dihedral funct 2, explicit 1-4 LJ
    from the 1-4 columns, NBFIX as [ nonbond_params ]) -> GROMACS import: the same
    energies and forces per group."""
    from ffparam.assign.import_charmm import read_charmm

    parameters = [DATA / f for f in ("top_all36_carb.rtf", "par_all36_carb.prm",
                                     "toppar_water_ions.str")]
    first = read_charmm(DATA / f"{name}.psf", parameters, DATA / f"{name}.crd")
    export_system(first, tmp_path, formats=("gromacs",), basename="out")
    text = (tmp_path / "out.top").read_text()
    angles = text.split("[ angles ]")[1].split("[ dihedrals ]")[0].splitlines()[2:]
    assert any(row.split()[3] == "5" for row in angles if row.strip())
    second = read_gromacs(tmp_path / "out.top", tmp_path / "out.gro")
    assert {"UreyBradley", "LJ14"} <= set(second.parameters.sections)
    if name == "charmm_bglca":
        assert "HarmonicImpropers" in second.parameters.sections
    if name == "charmm_aglc_nacl":
        assert "[ nonbond_params ]" in text and "NBFix" in second.parameters.sections
    positions = perturbed(first.molecule.conformers[0])
    errors = max_relative_errors(ffparam_groups(second, positions),
                                 ffparam_groups(first, positions))
    for group, (de, df) in errors.items():
        assert de < SAME and df < SAME, (group, de, df)


@pytest.mark.parametrize("option", ["harmonic_impropers", "urey_bradley"])
def test_harmonic_impropers_and_urey_bradley_export_to_gromacs(tmp_path, option):
    """Built by ffparam (not imported): funct 2 / funct 5 read back by OpenMM and ParmEd
    equal ffparam at two conformers."""
    system = _element_typed(**{option: True})
    report = export_system(system, tmp_path, formats=("gromacs",), basename="out")
    assert report.checks["gromacs"].max_abs_de < 1e-6
    dihedrals = (tmp_path / "out.top").read_text().split("[ dihedrals ]")[1]
    funct = {row.split()[4] for row in dihedrals.splitlines()[1:] if len(row.split()) > 4
             and row.split()[0].isdigit()}
    assert ("2" in funct) == (option == "harmonic_impropers")
