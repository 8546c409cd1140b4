"""Issue 18 point 1 for CHARMM psf/prm: import -> ffparam's CHARMM export -> import
changes nothing (Urey-Bradley, harmonic impropers, NBFIX, 1-4 LJ columns), and OpenMM's
``CharmmPsfFile`` reading of the exported files equals ffparam."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from openmm import app

from ffparam.assign.import_charmm import read_charmm
from ffparam.errors import ConventionError
from ffparam.export import export_system, verify_export
from ffparam.export.charmm import solve_lj14
from tests.assign.openmm_groups import ffparam_groups, max_relative_errors, openmm_groups
from tests.assign.test_import_amber import perturbed

DATA = Path(__file__).parents[1] / "data" / "import"
PARAMETERS = [DATA / f for f in ("top_all36_carb.rtf", "par_all36_carb.prm",
                                 "toppar_water_ions.str")]
SYSTEMS = ["charmm_aglc", "charmm_axyl", "charmm_aglcna", "charmm_bglca", "charmm_aglc_nacl"]


def _values(system) -> dict[str, float]:
    params = system.parameters
    return {str(k): float(v) for k, v in zip(params.keys(), params.vector())}


@pytest.mark.parametrize("name", SYSTEMS)
def test_charmm_round_trip_changes_nothing(tmp_path, name):
    first = read_charmm(DATA / f"{name}.psf", PARAMETERS, DATA / f"{name}.crd")
    report = export_system(first, tmp_path, formats=("charmm",), basename="out")
    assert report.checks["charmm"].max_abs_de < 1e-4
    second = read_charmm(tmp_path / "out.psf", [tmp_path / "out.prm"], tmp_path / "out.pdb")
    a, b = _values(first), _values(second)
    assert a.keys() == b.keys()  # same parameters, same ids (types kept)
    for key in a:
        assert b[key] == pytest.approx(a[key], rel=1e-12, abs=1e-14), key
    positions = perturbed(first.molecule.conformers[0])
    errors = max_relative_errors(ffparam_groups(second, positions),
                                 ffparam_groups(first, positions))
    for group, (de, df) in errors.items():
        assert de < 1e-9 and df < 1e-9, (group, de, df)
    reference = app.CharmmPsfFile(str(tmp_path / "out.psf")).createSystem(
        app.CharmmParameterSet(str(tmp_path / "out.prm")), nonbondedMethod=app.NoCutoff)
    errors = max_relative_errors(ffparam_groups(second, positions),
                                 openmm_groups(reference, positions))
    for group, (de, df) in errors.items():
        assert de < 1e-6 and df < 1e-6, (group, de, df)
    if name == "charmm_aglc_nacl":
        assert "NBFIX" in (tmp_path / "out.prm").read_text()
        assert "NBFix" in second.parameters.sections
    assert verify_export(second, tmp_path, formats=["charmm"], basename="out")["charmm"]


def test_refitted_parameter_is_written_at_full_precision(tmp_path):
    """A changed Urey-Bradley constant (all terms of its types) comes back exactly."""
    system = read_charmm(DATA / "charmm_bglca.psf", PARAMETERS, DATA / "charmm_bglca.crd")
    params = system.parameters
    section, par = next((s, p) for s, p in params if s == "UreyBradley")
    par.values["k"] *= 1.2345678901234
    export_system(system, tmp_path, formats=("charmm",), basename="out")
    again = read_charmm(tmp_path / "out.psf", [tmp_path / "out.prm"], tmp_path / "out.pdb")
    want = params.get(section, par.id).values["k"]
    assert again.parameters.get(section, par.id).values["k"] == pytest.approx(want, rel=1e-14)


def test_scaled_one_four_coulomb_is_refused(tmp_path):
    from ffparam.assign.import_amber import read_amber

    system = read_amber(DATA / "gaff2_ethanol.prmtop", DATA / "gaff2_ethanol.inpcrd")
    with pytest.raises(ConventionError, match=r"1-4 Coulomb scale .* CHARMM"):
        export_system(system, tmp_path, formats=("charmm",), basename="out")
    assert list(tmp_path.iterdir()) == []


def test_lj14_types_solved_from_pairs():
    lj = {("A",): (3.0, 0.1), ("B",): (2.0, 0.2), ("C",): (4.0, 0.3)}
    per_type = {"A": (2.5, 0.05), "B": (1.5, 0.2), "C": (4.0, 0.3)}
    pairs = [("A", "B"), ("B", "C"), ("A", "C")]
    targets = {p: (0.5 * (per_type[p[0]][0] + per_type[p[1]][0]),
                   float(np.sqrt(per_type[p[0]][1] * per_type[p[1]][1]))) for p in pairs}
    solved = solve_lj14(targets, lj)
    for a, b in pairs:
        got = (0.5 * (solved[a][0] + solved[b][0]), np.sqrt(solved[a][1] * solved[b][1]))
        assert got == pytest.approx(targets[(a, b)], rel=1e-12)
    with pytest.raises(ConventionError, match="no per-type CHARMM 1-4"):
        solve_lj14({("A", "A"): (2.0, 0.1), ("B", "B"): (2.0, 0.1), ("A", "B"): (3.0, 0.1)},
                   lj)
