"""``ffparam bespoke --drive-2d J-K,L-M``: two coupled rotors driven as one 2-D torsion
drive, the HIGH - LOW correction learned on the 2-D grid by the product periodic GP, both
rotors fitted to the corrected surface (GFN2-xTB//GFN1-xTB on methanediol HOCH2OH, whose
two O-C rotors share the carbon, on a coarse 90-degree grid: 16 points)."""

import numpy as np
import pytest

from ffparam.chem import Molecule
from ffparam.cli.main import main
from ffparam.errors import InputError
from ffparam.reference.jobs import Job
from ffparam.reference.records import Species, Task
from ffparam.reference.store import Store
from ffparam.report.bespoke_metrics import read_bespoke_metrics
from ffparam.workflows.bespoke import BespokeSettings, fit_rotors, run_bespoke
from ffparam.workflows.bespoke_delta import FIT_SIGMA_FLOOR_KCAL_MOL
from ffparam.workflows.bespoke_delta2d import drive_pair, surface, unpaired_bonds

METHOD = "gfn2-xtb//gfn1-xtb"
PAIR = ((0, 1), (1, 2))  # H-O0-C1 and C1-O2-H
BUDGET = 6

pytestmark = pytest.mark.xdist_group("bespoke")


def settings(**kw):
    base = dict(method=METHOD, high_budget=BUDGET, drives_2d=[PAIR], spacing_2d_deg=90,
                validation_conformers=0, validate_geometry=False, md_ps=0,
                population_mc_steps=0, progress=False)
    return BespokeSettings(**{**base, **kw})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("delta2d")
    result = run_bespoke(Molecule.from_smiles("OCO", name="methanediol"), out, settings())
    return result.molecule, out, result


def test_one_2d_rotor_with_levels_sigma_map_and_report(run):
    _molecule, out, result = run
    (rotor,) = result.metrics.rotors  # the pair's bonds are not also scanned in 1-D
    assert rotor.bond == [0, 1] and rotor.bond2 == [1, 2]
    assert len(rotor.dihedral2) == 4 and rotor.dihedral2[1:3] == [1, 2]
    assert rotor.n_points == 16 and not rotor.missing
    delta = rotor.delta
    assert (delta.high_method, delta.low_method) == ("gfn2-xtb", "gfn1-xtb")
    assert 5 <= delta.n_high <= BUDGET and delta.n_failed == 0  # 5 spread start points
    assert all(len(a) == 2 for a in delta.high_angles)
    assert len(delta.levels) == len(delta.sigma) == 16
    assert delta.levels.count("high") == delta.n_high
    assert (delta.max_sigma < 0.1) == (delta.stop == "threshold")
    assert rotor.profile.angles2 is not None and len(rotor.profile.angles2) == 16
    assert sorted(set(rotor.profile.angles2)) == [-90.0, 0.0, 90.0, 180.0]
    assert rotor.rmse_fitted < rotor.rmse_start
    assert (out / rotor.plot).exists() and (out / delta.plot).exists()
    assert read_bespoke_metrics(out / "metrics.json") == result.metrics
    assert result.metrics.settings["drives_2d"] == [[[0, 1], [1, 2]]]
    assert result.metrics.settings["spacing_2d_deg"] == 90
    html = (out / "report.html").read_text()
    assert "(2-D drive)" in html and "corrected 2-D surface" in html
    assert html.count("data:image/png;base64") >= 2
    # both bonds got bespoke torsions (symmetry-equivalent here: one shared set)
    assert result.metrics.changed_parameters


def test_surface_is_low_plus_correction_and_fit_weighs_by_sigma(run):
    molecule, out, result = run
    (scan,) = result.rotors
    delta = scan.delta
    assert scan.profile.dihedrals.shape == (2, 4) and delta.angles.shape == (16, 2)
    species = Species.from_molecule(molecule)
    with Store(out / "ffparam.db") as store:
        for i in delta.learned.computed:
            job = Job.create(species, "gfn2-xtb", Task.parse("energy"),
                             scan.profile.geometries[i])
            assert delta.learned.values[i] == pytest.approx(
                store.get(job.key).energy - delta.low_energies[i])
    computed = delta.learned.computed
    corrected = scan.profile.energies - delta.low_energies
    observed = np.array([delta.learned.values[i] for i in computed])
    assert np.abs(corrected[computed] - observed).max() < 0.05
    # the joint fit restrains both dihedrals and weighs every point by its GP sigma
    _bespoke, (target,), _result = fit_rotors(result.start, result.rotors, settings())
    assert target.spec.dihedrals.shape == (2, 4)
    floor = FIT_SIGMA_FLOOR_KCAL_MOL**2
    np.testing.assert_allclose(target.sqrt_w.numpy() ** 2, floor / (floor + delta.sigma**2),
                               rtol=1e-12)


def test_rerun_recomputes_nothing_and_plain_2d_drive_shares_the_low_records(run):
    molecule, out, result = run
    (first,) = result.rotors
    with Store(out / "ffparam.db") as store:
        n_records = len(store)
        again = drive_pair(molecule, PAIR, settings(), store, None)
        plain = drive_pair(molecule, PAIR, settings(method="gfn1-xtb", high_budget=None),
                           store, None)
        assert len(store) == n_records
    assert again.n_cached == again.n_jobs and again.n_failed == 0
    assert again.delta.learned.computed == first.delta.learned.computed
    np.testing.assert_allclose(again.profile.energies, first.profile.energies, atol=1e-10)
    assert plain.delta is None and plain.bond2 == (1, 2) and plain.n_cached == plain.n_jobs
    np.testing.assert_allclose(plain.profile.energies, first.delta.low_energies, atol=1e-10)


def test_surface_grid_and_unpaired_bonds():
    angles = np.array([[0.0, 90.0], [90.0, 90.0], [0.0, 180.0]])
    x, y, grid = surface(angles, np.array([1.0, 2.0, 3.0]))
    assert x.tolist() == [0.0, 90.0] and y.tolist() == [90.0, 180.0]
    assert grid[0].tolist() == [1.0, 2.0] and grid[1, 0] == 3.0 and np.isnan(grid[1, 1])
    glycol = Molecule.from_smiles("OCCO")  # O0-C1 and C2-O3 are symmetry-equivalent
    assert unpaired_bonds(glycol, [(0, 1), (1, 2)], [((2, 3), (1, 2))]) == []
    assert unpaired_bonds(glycol, [(0, 1), (1, 2)], [((0, 1), (3, 2))]) == [(1, 2)]


@pytest.mark.parametrize("pairs, message", [
    ([((0, 1), (1, 0))], "both rotors are bond 0-1"),
    ([((0, 1), (1, 2)), ((1, 2), (3, 4))], "already in drives_2d"),
    ([((0, 0), (1, 2))], "not a bond"),
])
def test_bad_pairs_are_refused_by_the_settings(pairs, message):
    with pytest.raises(InputError, match=message):
        settings(drives_2d=pairs)
    with pytest.raises(InputError, match="spacing_2d_deg must divide 180"):
        settings(spacing_2d_deg=25)


def test_pair_not_in_the_molecule_is_refused_before_any_output(tmp_path):
    with pytest.raises(InputError, match="1-5 is not a rotatable bond"):
        run_bespoke("OCO", tmp_path / "x", settings(drives_2d=[((0, 1), (1, 5))]))
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("value, named", [
    ("0-1,1-0", "both rotors are bond 0-1"),
    ("0-1,5-9", "5-9 is not a rotatable bond"),
    ("0-1", "--drive-2d '0-1'"),
    ("0-1,1-2,2-3", "give two bonds"),
])
def test_cli_refuses_a_bad_pair_in_one_line_before_any_work(value, named, tmp_path,
                                                            monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = main(["bespoke", "OCO", "--method", METHOD, "--high-budget", "6",
               "--drive-2d", value])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], lines
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_a_bad_2d_spacing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = main(["bespoke", "OCO", "--drive-2d", "0-1,1-2", "--spacing-2d", "50"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "--spacing-2d" in lines[0], lines
    assert list(tmp_path.iterdir()) == []


def test_cli_summary_names_the_pair(run, capsys):
    from ffparam.cli.bespoke import _summary

    _summary(run[2])
    assert "bond 0-1 x 1-2 (2-D): torsion RMSE" in capsys.readouterr().out


def test_prior_width_choice_covers_both_bonds_of_a_2d_rotor():
    """``--prior-width`` with a 2-D rotor: the width chosen for its target applies to the
    bespoke torsions of both bonds (1-propanol C-C-C-O x C-C-O-H, MMFF94 2-D scan)."""
    from rdkit import Chem
    from rdkit.Chem import rdForceFieldHelpers as ffh

    from ffparam.assign import assign_parameters
    from ffparam.chem import Topology
    from ffparam.fit.bespoke_torsions import choose_rotor_priors, make_bespoke_torsions
    from ffparam.fit.optimizers import optimize
    from ffparam.fit.targets.torsion import TorsionProfile, TorsionProfileTarget

    mol = Molecule.from_smiles("CCCO").generate_conformers(1, seed=5)
    bonds = [(1, 2), (2, 3)]
    dihedrals = [tuple(int(a) for a in Topology(mol).dihedral_for_bond(b)) for b in bonds]
    rd = Chem.Mol(mol.rdmol)
    props = ffh.MMFFGetMoleculeProperties(rd)
    angles, geometries, energies = [], [], []
    for a in (-90, 0, 90, 180):
        for b in (-90, 0, 90, 180):
            ff = ffh.MMFFGetMoleculeForceField(rd, props)
            for quad, angle in zip(dihedrals, (a, b)):
                ff.MMFFAddTorsionConstraint(*quad, False, float(angle), float(angle), 1.0e4)
            ff.Minimize(maxIts=2000)
            xyz = np.array(ff.Positions()).reshape(-1, 3)
            for i, p in enumerate(xyz):
                rd.GetConformer().SetAtomPosition(i, p.tolist())
            angles.append((a, b))
            geometries.append(xyz)
            energies.append(ffh.MMFFGetMoleculeForceField(rd, props).CalcEnergy())
    bespoke = make_bespoke_torsions(assign_parameters(mol, "sage", charges="gasteiger"), bonds)
    assert bespoke.bonds[(1, 2)] and bespoke.bonds[(2, 3)]
    profile = TorsionProfile(dihedrals, angles, np.array(geometries), energies, "1-2 x 2-3")
    target = TorsionProfileTarget("rotor_1-2", bespoke.system, profile, mode="single_point")
    choice = choose_rotor_priors(bespoke, bespoke.system.parameters, [target], [bonds],
                                 [0.3, 0.5], lambda o: optimize(o, "least_squares"))
    free = choice.objective.fit.parameters.free
    ids = set(bespoke.bonds[(1, 2)]) | set(bespoke.bonds[(2, 3)])
    assert {free[k].prior_width for k in free if k.id in ids} == {choice.widths["rotor_1-2"]}


def test_settings_from_plain_data():
    made = BespokeSettings.from_dict({"drives_2d": [[[0, 1], [1, 2]]], "spacing_2d_deg": 60})
    assert made.drives_2d == [((0, 1), (1, 2))] and made.spacing_2d_deg == 60
    assert made.to_dict()["drives_2d"] == [[[0, 1], [1, 2]]]
    assert BespokeSettings().drives_2d is None and BespokeSettings().spacing_2d_deg == 30
    with pytest.raises(InputError, match="drives_2d"):
        BespokeSettings.from_dict({"drives_2d": [[[0, 1]]]})
