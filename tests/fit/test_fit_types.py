"""Shared SMIRKS types in a fit spec: one parameter serving every molecule it matches, written
to fitted.offxml so that SMIRNOFF typing gives it back, and one-line errors for bad types."""

import subprocess
import sys

import pytest
import torch

from ffparam.assign.smirnoff import SmirnoffForceField
from ffparam.errors import InputError
from ffparam.fit.spec import load_fit_spec
from ffparam.fit.transferable import type_torsions
from ffparam.mm.engine import MMEngine
from ffparam.workflows.fit import build_systems, molecules_objective, run_fit
from tests.fit.transferable_family import FAMILY, TYPE_SMIRKS, family_spec, write_scans


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("types")
    write_scans(tmp, FAMILY)
    return tmp


def _bound(system, smirks):
    group = system.term_group("ProperTorsions")
    return {tuple(a) if a[0] < a[3] else tuple(a[::-1])
            for a, pid in zip(group.atoms.tolist(), group.parameter_ids) if pid == smirks}


def test_shared_type_binds_every_match_and_is_one_entry(family):
    spec = load_fit_spec(family_spec(family, FAMILY))
    systems, extra = build_systems(spec)
    # butane, pentane, hexane: 1, 2, 3 C-CH2-CH2-C torsions, all bound to the type
    for name, n_matches in zip(FAMILY, (1, 2, 3)):
        rows = type_torsions(systems[name], TYPE_SMIRKS)
        assert len(rows) == n_matches
        assert _bound(systems[name], TYPE_SMIRKS) == set(rows)
    (par,) = extra.parameters("ProperTorsions")
    assert par.id == TYPE_SMIRKS and par.fixed["offxml_id"] == "t-cc-ch2-ch2-cc"
    objective = molecules_objective(spec, systems, list(systems))
    assert objective.fit.labels == [f"ProperTorsions/{TYPE_SMIRKS}/k{n}" for n in (1, 2, 3)]
    # start: forcefield copies Sage's parameter, so x = 0 is the Sage energy on every scan
    for name in FAMILY:
        sage = SmirnoffForceField.load("sage").parameterize(systems[name].molecule,
                                                            charges="gasteiger")
        xyz = next(t.geometries for t in objective.targets if t.system is systems[name])
        assert MMEngine(systems[name]).energy(xyz).detach().numpy() == pytest.approx(
            MMEngine(sage).energy(xyz).detach().numpy(), abs=1e-9)


def test_zero_start_and_fixed_type(family):
    path = family_spec(family, {"butane": "CCCC"}, types=[
        {"id": "t0", "smirks": TYPE_SMIRKS, "periodicities": [2, 3], "start": "zero",
         "fields": []}],
        parameters=[{"section": "ProperTorsions", "id": "[#1:1]-[#6X4:2]-[#6X4:3]-[#1:4]",
                     "fields": ["k1"]}])
    systems, extra = build_systems(load_fit_spec(path))
    (par,) = extra.parameters("ProperTorsions")
    assert par.values == {"k1": 0.0, "phase1": 0.0, "k2": 0.0, "phase2": 0.0}
    assert [par.fixed["periodicity1"], par.fixed["periodicity2"]] == [2, 3]
    assert not any(k.id == TYPE_SMIRKS for k in systems["butane"].parameters.free)


def test_fitted_offxml_types_the_same_torsions(family, tmp_path):
    spec = load_fit_spec(family_spec(family, FAMILY))
    outcome = run_fit(spec, tmp_path / "out", progress=False)
    fitted = outcome.result.parameters.get("ProperTorsions", TYPE_SMIRKS)
    assert fitted.values["k1"] != pytest.approx(outcome.extra.parameters(
        "ProperTorsions")[0].values["k1"], abs=1e-6)  # the fit moved it
    reread = SmirnoffForceField.load(tmp_path / "out" / "fitted.offxml")
    assert reread.offxml_id("ProperTorsions", TYPE_SMIRKS) == "t-cc-ch2-ch2-cc"
    for system in outcome.systems.values():
        again = reread.parameterize(system.molecule, charges=system.charges())
        assert _bound(again, TYPE_SMIRKS) == _bound(system, TYPE_SMIRKS)
        values = outcome.objective.fit.system_values(
            system, torch.as_tensor(outcome.result.x, dtype=torch.float64))
        xyz = next(t.geometries for t in outcome.objective.targets if t.system is system)
        assert MMEngine(again).energy(xyz).detach().numpy() == pytest.approx(
            MMEngine(system).energy(xyz, values).detach().numpy(), abs=1e-6)


@pytest.mark.parametrize("types, message", [
    ([{"id": "a", "smirks": TYPE_SMIRKS}, {"id": "a", "smirks": "[*:1]~[#6:2]-[#6:3]~[*:4]"}],
     "type a is defined twice"),
    ([{"id": "a", "smirks": TYPE_SMIRKS}, {"id": "b", "smirks": TYPE_SMIRKS}],
     "types a and b have the same SMIRKS"),
    ([{"id": "a", "smirks": "[#6:1]-[#6:2]-[#6:3]"}], "tags 3 atoms"),
    ([{"id": "a", "smirks": "[#6:1]-[#6:2]-[#6:3]-[#6:4", "periodicities": [1]}],
     "cannot parse"),
    ([{"id": "a", "smirks": TYPE_SMIRKS, "periodicities": [0, 2]}], "periodicities"),
])
def test_bad_type_definitions(family, types, message):
    with pytest.raises(InputError, match=message) as info:
        load_fit_spec(family_spec(family, FAMILY, types=types))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("types, message", [
    ([{"id": "a", "smirks": "[#7:1]-[#6:2]-[#6:3]-[#6:4]"}], "matches none of the molecules"),
    ([{"id": "a", "smirks": "[#6X4:1]-[#6X4:2]-[#6X4:3]-[#6X4:4]"}],
     "already a ProperTorsions parameter of the start force field"),
])
def test_bad_types_one_line_from_the_cli(family, tmp_path, types, message):
    spec = family_spec(family, {"butane": "CCCC"}, types=types)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "ffparam.cli.main", "fit", str(spec), "-o",
                           str(out), "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not out.exists()


def test_type_named_by_id_in_parameters_and_ties(family):
    path = family_spec(family, FAMILY, types=[
        {"id": "ta", "smirks": TYPE_SMIRKS, "periodicities": [1, 2, 3], "fields": []}],
        parameters=[{"section": "ProperTorsions", "id": "ta", "fields": ["k2", "k3"]}],
        ties=[["ProperTorsions/ta/k2", "ProperTorsions/ta/k3"]])
    spec = load_fit_spec(path)
    systems, _ = build_systems(spec)
    objective = molecules_objective(spec, systems, list(systems))
    assert objective.fit.labels == [f"ProperTorsions/{TYPE_SMIRKS}/k2 (+1 tied)"]
