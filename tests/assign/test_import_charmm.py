"""CHARMM psf + rtf/prm/str + crd in (Urey-Bradley, harmonic impropers, 1-4 LJ, NBFIX):
energies and forces per force group equal OpenMM's own ``CharmmPsfFile`` loading (1e-6
relative); CMAP is refused with its line."""

from __future__ import annotations

from pathlib import Path

import pytest
from openmm import app

from ffparam.assign.import_charmm import read_charmm
from ffparam.errors import ConventionError, InputError
from ffparam.units import RMIN_PER_SIGMA
from tests.assign.openmm_groups import ffparam_groups, max_relative_errors, openmm_groups
from tests.assign.test_import_amber import RTOL, perturbed

DATA = Path(__file__).parents[1] / "data" / "import"
PARAMETERS = [DATA / f for f in ("top_all36_carb.rtf", "par_all36_carb.prm",
                                 "toppar_water_ions.str")]
SYSTEMS = ["charmm_aglc", "charmm_axyl", "charmm_aglcna", "charmm_bglca", "charmm_aglc_nacl"]


@pytest.mark.parametrize("name", SYSTEMS)
def test_psf_matches_openmm_per_force_group(name):
    psf = DATA / f"{name}.psf"
    system = read_charmm(psf, PARAMETERS, DATA / f"{name}.crd")
    positions = perturbed(system.molecule.conformers[0])
    reference = app.CharmmPsfFile(str(psf)).createSystem(
        app.CharmmParameterSet(*map(str, PARAMETERS)), nonbondedMethod=app.NoCutoff)
    errors = max_relative_errors(ffparam_groups(system, positions),
                                 openmm_groups(reference, positions))
    for group, (de, df) in errors.items():
        assert de < RTOL and df < RTOL, (group, de, df)
    sections = system.parameters.sections
    assert {"UreyBradley", "LJ14"} <= set(sections)
    if name in ("charmm_aglcna", "charmm_bglca"):
        assert "HarmonicImpropers" in sections


def test_nbfix_and_14_lj_are_parameters():
    system = read_charmm(DATA / "charmm_aglc_nacl.psf", PARAMETERS,
                         DATA / "charmm_aglc_nacl.crd")
    params = system.parameters
    fix = params.get("NBFix", "CLA|SOD").values
    # toppar_water_ions.str: SOD CLA -0.083875 3.731 (Emin, Rmin)
    assert fix["epsilon"] == pytest.approx(0.083875, rel=1e-12)
    assert fix["sigma"] == pytest.approx(3.731 / RMIN_PER_SIGMA, rel=1e-12)
    # par_all36_carb.prm: CC3161, CC3162 ... -0.01 1.9 (1-4 Emin, Rmin/2): CC3161-CC3162 pairs
    lj14 = params.get("LJ14", "CC3161|CC3162").values
    assert lj14["epsilon"] == pytest.approx(0.01, rel=1e-12)
    assert lj14["sigma"] == pytest.approx(2 * 1.9 / RMIN_PER_SIGMA, rel=1e-12)


def test_cmap_is_refused_with_its_line(tmp_path):
    lines = (DATA / "charmm_aglc.psf").read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if "!NCRTERM" in line)
    lines[row] = "         1 !NCRTERM: cross-terms"
    lines.insert(row + 1, "         1         2         3         4         2         3"
                          "         4         5")
    (tmp_path / "c.psf").write_text("\n".join(lines) + "\n")
    with pytest.raises(ConventionError, match=rf"c.psf line {row + 1}: 1 CMAP cross terms"):
        read_charmm(tmp_path / "c.psf", PARAMETERS)


def test_bad_input_is_one_line():
    with pytest.raises(InputError, match=r"charmm_axyl.crd has 20 atoms but charmm_aglc.psf "
                                         r"has 24"):
        read_charmm(DATA / "charmm_aglc.psf", PARAMETERS, DATA / "charmm_axyl.crd")
    with pytest.raises(InputError, match="needs parameter files"):
        read_charmm(DATA / "charmm_aglc.psf", [DATA / "top_all36_carb.rtf"])
