"""GROMACS top/itp + gro in (OPLS-AA: geometric rule, Ryckaert-Bellemans, fudgeLJ/QQ,
[ pairtypes ]): energies and forces per force group equal OpenMM's own ``GromacsTopFile``
loading (1e-6 relative); bad input is one line."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from openmm import app

from ffparam.assign.import_common import rb_to_periodic
from ffparam.assign.import_gromacs import read_gromacs
from ffparam.errors import ConventionError, MissingFileError
from ffparam.mm.engine import MMEngine
from tests.assign.openmm_groups import ffparam_groups, max_relative_errors, openmm_groups
from tests.assign.test_import_amber import RTOL, perturbed

DATA = Path(__file__).parents[1] / "data" / "import"
SYSTEMS = ["opls_ethanol", "opls_butane", "opls_dimethyl_ether", "gaff2_acetaminophen",
           "ff14sb_ala_dipeptide"]


def check_against_openmm(top: Path, gro: Path) -> None:
    system = read_gromacs(top, gro)
    positions = perturbed(system.molecule.conformers[0])
    reference = app.GromacsTopFile(str(top)).createSystem(nonbondedMethod=app.NoCutoff)
    errors = max_relative_errors(ffparam_groups(system, positions),
                                 openmm_groups(reference, positions))
    for group, (de, df) in errors.items():
        assert de < RTOL and df < RTOL, (group, de, df)
    return system


@pytest.mark.parametrize("name", SYSTEMS)
def test_top_matches_openmm_per_force_group(name):
    system = check_against_openmm(DATA / f"{name}.top", DATA / f"{name}.gro")
    if name.startswith("opls"):
        assert system.nonbonded.combining_rule == "geometric"
        assert system.parameters.settings["lj_14_scale"] == 0.5
        assert system.parameters.settings["coulomb_14_scale"] == 0.5
        assert all(p.id.startswith("rb:") for p in system.parameters.parameters(
            "ProperTorsions"))


def test_pairtypes_that_differ_from_generated_pairs_are_lj14_parameters(tmp_path):
    text = (DATA / "opls_butane.top").read_text()
    old = "CT HC 1 0.2958039891549808 0.09308812341002476"
    assert old in text
    (tmp_path / "b.top").write_text(text.replace(old, "CT HC 1 0.31 0.12"))
    (tmp_path / "opls_types.itp").write_text((DATA / "opls_types.itp").read_text())
    system = check_against_openmm(tmp_path / "b.top", DATA / "opls_butane.gro")
    lj14 = system.parameters.parameters("LJ14")
    assert [p.id for p in lj14] == ["CT|HC"]
    assert lj14[0].values["sigma"] == pytest.approx(3.1, rel=1e-12)
    assert lj14[0].values["epsilon"] == pytest.approx(0.12 / 4.184, rel=1e-12)


def test_rb_to_periodic_is_exact():
    c = [2.9288, -1.4644, 0.2092, -1.6736, 0.37, -0.21]
    phi = np.linspace(-math.pi, math.pi, 37)
    psi = phi - math.pi
    rb = sum(cn * np.cos(psi) ** n for n, cn in enumerate(c))
    periodic = sum(k * (1 + np.cos(n * phi - phase)) for k, phase, n in rb_to_periodic(c))
    np.testing.assert_allclose(periodic, rb, rtol=0, atol=1e-13)


def test_missing_include_is_one_line(tmp_path):
    top = tmp_path / "x.top"
    top.write_text("[ defaults ]\n1 3 yes 0.5 0.5\n\n#include \"oplsaa.ff/forcefield.itp\"\n")
    with pytest.raises(MissingFileError, match=r'x.top line 4: #include "oplsaa.ff/'
                                               r'forcefield.itp" not found'):
        read_gromacs(top)


def test_unsupported_form_names_the_line(tmp_path):
    lines = (DATA / "opls_ethanol.top").read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("1 2 1 "))
    lines[row] = lines[row].replace("1 2 1 ", "1 2 3 ", 1) + " 20.0"
    (tmp_path / "m.top").write_text("\n".join(lines))
    with pytest.raises(ConventionError, match=rf"m.top line {row + 1}: Morse bonds "
                                              r"\(\[ bonds \] funct 3\)"):
        read_gromacs(tmp_path / "m.top")


def test_atom_count_mismatch_is_one_line():
    from ffparam.errors import InputError

    with pytest.raises(InputError, match=r"opls_butane.gro has 14 atoms but opls_ethanol.top "
                                         r"has 9"):
        read_gromacs(DATA / "opls_ethanol.top", DATA / "opls_butane.gro")


def test_rb_parameters_refit_like_any_torsion():
    system = read_gromacs(DATA / "opls_butane.top", DATA / "opls_butane.gro")
    params = system.parameters
    keys = params.set_free("ProperTorsions", "rb:CT-CT-CT-CT", "k*")
    assert len(keys) >= 3
    assert MMEngine(system).parameter_gradient(system.molecule.conformers).shape[-1] == len(
        params.keys())


@pytest.mark.parametrize("name", ["gaff2_acetaminophen", "ff14sb_ala_dipeptide"])
def test_round_trip_import_export_import(tmp_path, name):
    """import -> ffparam's GROMACS export -> import: the same energies and forces per
    force group (Lorentz-Berthelot files; the OPLS-AA round trip, geometric rule and
    explicit 1-4 pairs, is in tests/export/test_roundtrip_import.py)."""
    from ffparam.export import export_system

    first = read_gromacs(DATA / f"{name}.top", DATA / f"{name}.gro")
    report = export_system(first, tmp_path, formats=("gromacs",), basename="out")
    assert "gromacs" in report.checks
    second = read_gromacs(tmp_path / "out.top", tmp_path / "out.gro")
    assert second.nonbonded.combining_rule == first.nonbonded.combining_rule
    positions = perturbed(first.molecule.conformers[0])
    errors = max_relative_errors(ffparam_groups(second, positions),
                                 ffparam_groups(first, positions))
    for group, (de, df) in errors.items():
        assert de < 1e-9 and df < 1e-9, (group, de, df)


def test_two_copies_nonbond_params_and_ifdef(tmp_path):
    """[ molecules ] MOL 2, a [ nonbond_params ] pair (GROMACS' NBFIX) and an #ifdef block
    of an undefined name: as OpenMM reads them."""
    text = (DATA / "opls_dimethyl_ether.top").read_text()
    text = text.replace('#include "opls_types.itp"', '#include "opls_types.itp"\n\n'
                        "[ nonbond_params ]\nHC OS 1 0.31 0.4\n\n#ifdef NOT_DEFINED\n"
                        "[ cmap ]\n#endif\n").replace("MOL 1\n", "MOL 2\n")
    (tmp_path / "x.top").write_text(text)
    (tmp_path / "opls_types.itp").write_text((DATA / "opls_types.itp").read_text())
    lines = (DATA / "opls_dimethyl_ether.gro").read_text().splitlines()
    n = int(lines[1])
    atoms = lines[2:2 + n]
    moved = [row[:20] + f"{float(row[20:28]) + 0.6:8.3f}" + row[28:] for row in atoms]
    (tmp_path / "x.gro").write_text("\n".join([lines[0], f"{2 * n:5d}", *atoms, *moved,
                                               lines[-1]]) + "\n")
    system = check_against_openmm(tmp_path / "x.top", tmp_path / "x.gro")
    assert system.n_atoms == 2 * n
    fix = system.parameters.get("NBFix", "HC|OS").values
    assert fix["sigma"] == pytest.approx(3.1) and fix["epsilon"] == pytest.approx(0.4 / 4.184)
