"""GAFF2 energies of ffparam against AMBER's own builder (the independent reference).

For each molecule, ffparam's GAFF2 system (antechamber types, parmchk2 frcmod, tleap's
matching rules re-implemented in ffparam.assign.gaff, AM1-BCC charges) is evaluated by
ffparam's MM engine; the same atom types and charges are written to a mol2 file,
``parmchk2 -s 2`` is run again on it, and ``tleap`` (``source leaprc.gaff2``,
``loadamberparams``, ``loadmol2``, ``saveamberparm``) builds a prmtop that OpenMM reads
(``AmberPrmtopFile.createSystem(nonbondedMethod=NoCutoff, constraints=None)``). Energies
per OpenMM force (bonds, angles, torsions, nonbonded, and LJ alone with charges zeroed)
and forces are compared.

tleap converts degrees to radians with DEGTORAD = 0.0174533 (the prmtop holds
122.9 deg as 2.14501057 rad instead of 2.14500965): equilibrium angles and torsion
phases are 4.3e-7 relative too large in every prmtop. The comparison is therefore made
twice: with ffparam's exact parameters (total energy to 1e-6 of the summed term
magnitudes) and with the same rounding applied to ffparam's angles and phases (every
force group to 1e-6 relative, total to 1e-7 of the summed magnitudes, forces to 1e-5
kcal/mol/A).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import openmm
import parmed
import pytest
from openmm import app
from openmm import unit as omm_unit

from ffparam.assign import assign_parameters
from ffparam.assign.amber_files import write_frcmod, write_mol2
from ffparam.assign.gaff import parameterize_gaff2
from ffparam.assign.programs import run_program
from ffparam.chem import Molecule
from ffparam.mm import MMEngine
from ffparam.params.parameter_set import ParameterKey

LEAP_DEG_TO_RAD = 0.0174533
"""tleap's degree -> radian factor (read back from its prmtop files, see module doc)."""

MOLECULES = {
    # aromatic ring, amide and ring impropers (X-X-ca-ha, X-X-c-o, X-X-n-hn), phenol
    "acetaminophen": "CC(=O)Nc1ccc(O)cc1",
    # sulfur and chlorine on an aromatic ring
    "4-chlorothioanisole": "CSc1ccc(Cl)cc1",
    # charged: carboxylate (X-o-c-o improper)
    "acetate": "CC(=O)[O-]",
}


def _tleap_prmtop(molecule: Molecule, types: list[str], charges: np.ndarray,
                  workdir: Path) -> Path:
    write_mol2(workdir / "ref.mol2", molecule.symbols, molecule.conformers[0], types, charges,
               molecule.bonds)
    run_program(["parmchk2", "-i", "ref.mol2", "-f", "mol2", "-o", "ref.frcmod", "-s", "2"],
                cwd=workdir)
    (workdir / "leap.in").write_text(
        "source leaprc.gaff2\nloadamberparams ref.frcmod\nmol = loadmol2 ref.mol2\n"
        "saveamberparm mol ref.prmtop ref.inpcrd\nquit\n")
    log = run_program(["tleap", "-f", "leap.in"], cwd=workdir).stdout
    assert "Errors = 0" in log, log[-600:]
    return workdir / "ref.prmtop"


def _openmm_groups(prmtop: Path, positions: np.ndarray) -> dict[str, np.ndarray]:
    """Per-force energies (kcal/mol) and forces (kcal/mol/A) of the tleap prmtop."""
    system = app.AmberPrmtopFile(str(prmtop)).createSystem(
        nonbondedMethod=app.NoCutoff, constraints=None)
    names = {}
    for i, force in enumerate(system.getForces()):
        force.setForceGroup(i)
        names[i] = type(force).__name__
        if isinstance(force, openmm.NonbondedForce):
            lj_only = openmm.XmlSerializer.clone(force)
            for p in range(lj_only.getNumParticles()):
                _, sig, eps = lj_only.getParticleParameters(p)
                lj_only.setParticleParameters(p, 0.0, sig, eps)
            for e in range(lj_only.getNumExceptions()):
                a, b, _, sig, eps = lj_only.getExceptionParameters(e)
                lj_only.setExceptionParameters(e, a, b, 0.0, sig, eps)
    lj_system = openmm.System()
    for _ in range(system.getNumParticles()):
        lj_system.addParticle(1.0)
    lj_system.addForce(lj_only)
    out: dict[str, list] = {n: [] for n in [*names.values(), "total", "forces", "LJ"]}
    ctx = openmm.Context(system, openmm.VerletIntegrator(1.0),
                         openmm.Platform.getPlatformByName("Reference"))
    lj_ctx = openmm.Context(lj_system, openmm.VerletIntegrator(1.0),
                            openmm.Platform.getPlatformByName("Reference"))
    kcal = omm_unit.kilocalorie_per_mole
    for xyz in positions:
        ctx.setPositions(xyz * 0.1)
        lj_ctx.setPositions(xyz * 0.1)
        state = ctx.getState(getEnergy=True, getForces=True)
        out["total"].append(state.getPotentialEnergy().value_in_unit(kcal))
        out["forces"].append(state.getForces(asNumpy=True).value_in_unit(
            kcal / omm_unit.angstrom))
        for g, name in names.items():
            out[name].append(ctx.getState(getEnergy=True, groups={g})
                             .getPotentialEnergy().value_in_unit(kcal))
        out["LJ"].append(lj_ctx.getState(getEnergy=True).getPotentialEnergy()
                         .value_in_unit(kcal))
    return {k: np.array(v) for k, v in out.items()}


def _ffparam_groups(system, positions: np.ndarray) -> dict[str, np.ndarray]:
    res = MMEngine(system).compute(positions, forces=True, terms=True)
    t = {k: v.detach().numpy() for k, v in res.terms.items()}
    zero = np.zeros(len(positions))
    return {
        "HarmonicBondForce": t["Bonds"],
        "HarmonicAngleForce": t["Angles"],
        "PeriodicTorsionForce": t["ProperTorsions"] + t.get("ImproperTorsions", zero),
        "NonbondedForce": t["vdW"] + t["Electrostatics"],
        "LJ": t["vdW"],
        "total": res.energy.detach().numpy(),
        "forces": res.forces.detach().numpy(),
    }


def _with_leap_rounding(system):
    """The same system with angles and torsion phases multiplied by tleap's DEGTORAD
    error (0.0174533 / (pi/180))."""
    factor = LEAP_DEG_TO_RAD / (math.pi / 180.0)
    keys = system.parameters.keys()
    vec = system.parameters.vector()
    for i, key in enumerate(keys):
        if (key.section == "Angles" and key.field == "angle") or (
                key.section.endswith("Torsions") and key.field.startswith("phase")):
            vec[i] *= factor
    return system.with_parameters(system.parameters.with_vector(vec))


def _impropers(rows) -> set[tuple[int, ...]]:
    """Improper atom rows up to reversal (a prmtop may list i-j-k-l as l-k-j-i when an atom
    index 0 would land where its sign flags are stored)."""
    return {min(tuple(r), tuple(r)[::-1]) for r in rows}


@pytest.mark.parametrize("name", list(MOLECULES))
def test_gaff2_matches_tleap_prmtop_in_openmm(name, tmp_path):
    molecule = Molecule.from_smiles(MOLECULES[name], name=name).generate_conformers(1)
    system = parameterize_gaff2(molecule)  # AM1-BCC through ffparam.assign.charges
    assert system.source == "gaff2 + am1bcc"
    charges = system.charges()
    assert charges.sum() == pytest.approx(molecule.total_charge, abs=1e-8)
    rng = np.random.default_rng(7)
    base = molecule.conformers[0]
    positions = np.stack([base, base + rng.normal(scale=0.04, size=base.shape)])

    prmtop = _tleap_prmtop(molecule, list(system.nonbonded.vdw_ids), charges, tmp_path)
    ref = _openmm_groups(prmtop, positions)

    # same terms: impropers (atoms and order, central atom third), torsion term count
    amber = parmed.load_file(str(prmtop))
    leap_impropers = [[a.idx for a in (d.atom1, d.atom2, d.atom3, d.atom4)]
                      for d in amber.dihedrals if d.improper]
    ours = system.term_group("ImproperTorsions")
    assert _impropers(leap_impropers) == _impropers(ours.atoms.tolist())
    assert len(leap_impropers) >= 1
    n_proper_terms = len(system.term_group("ProperTorsions"))
    assert n_proper_terms == sum(1 for d in amber.dihedrals if not d.improper)

    # exact ffparam parameters: totals agree to 1e-6 of the summed term magnitudes
    mine = _ffparam_groups(system, positions)
    scale = sum(np.abs(ref[k]) for k in ("HarmonicBondForce", "HarmonicAngleForce",
                                         "PeriodicTorsionForce", "NonbondedForce"))
    assert np.all(np.abs(mine["total"] - ref["total"]) <= 1e-6 * scale)
    assert np.allclose(mine["HarmonicBondForce"], ref["HarmonicBondForce"], rtol=1e-9)

    # with tleap's degree rounding: every force group to 1e-6 relative (what remains is
    # the prmtop's 9 digits and OpenMM's Coulomb constant 332.0637133 vs ffparam's
    # 332.0637, 4e-8 relative), the total to 1e-7 of the summed term magnitudes (the total
    # can be close to zero), forces to 1e-5 kcal/mol/A
    rounded = _ffparam_groups(_with_leap_rounding(system), positions)
    for group in ("HarmonicBondForce", "HarmonicAngleForce", "PeriodicTorsionForce",
                  "NonbondedForce", "LJ"):
        np.testing.assert_allclose(rounded[group], ref[group], rtol=1e-6,
                                   atol=1e-7 * scale.max(), err_msg=f"{name}: {group}")
    assert np.all(np.abs(rounded["total"] - ref["total"]) <= 1e-7 * scale)
    np.testing.assert_allclose(rounded["forces"], ref["forces"], atol=1e-5)


MORE_MOLECULES = [
    "O=C1CCC(=O)N1",  # GAFF2-only c5/ns types, 5-ring, two amide impropers
    "c1ccc[nH]1",  # pyrrole: na, cc/cd, X-X-na-hn and X-X-cc-X style impropers
    "c1cnc[nH]1",  # imidazole
    "c1ccncc1",  # pyridine nb
    "c1ccsc1",  # thiophene ss
    "CS(=O)(=O)N",  # sulfonamide s6
    "C[N+](=O)[O-]",  # nitro
    "NC(=[NH2+])N",  # guanidinium, charged
    "COP(=O)(O)O",  # phosphate ester p5
    "C=CC=CC(=O)N(C)C",  # conjugated ce/cf, tertiary amide
    "CC#N",  # nitrile, linear angle
    "Brc1ccc(I)cc1F",  # three halogens
    "CC(=O)OC",  # ester, c3-o-c-os style improper
    "C[NH3+]",  # ammonium
]


@pytest.mark.parametrize("smiles", MORE_MOLECULES)
def test_gaff2_matches_tleap_more_chemistry(smiles, tmp_path):
    """The same comparison with Gasteiger charges (fast) over more chemistry: every
    improper (atoms, order) and, with tleap's degree rounding, every force group."""
    molecule = Molecule.from_smiles(smiles).generate_conformers(1)
    system = parameterize_gaff2(molecule, charges="gasteiger")
    base = molecule.conformers[0]
    positions = np.stack([base, base + np.random.default_rng(3).normal(scale=0.04,
                                                                       size=base.shape)])
    prmtop = _tleap_prmtop(molecule, list(system.nonbonded.vdw_ids), system.charges(),
                           tmp_path)
    amber = parmed.load_file(str(prmtop))
    leap_impropers = [[a.idx for a in (d.atom1, d.atom2, d.atom3, d.atom4)]
                      for d in amber.dihedrals if d.improper]
    group = system.term_group("ImproperTorsions")
    assert _impropers(leap_impropers) == _impropers([] if group is None
                                                    else group.atoms.tolist())
    ref = _openmm_groups(prmtop, positions)
    rounded = _ffparam_groups(_with_leap_rounding(system), positions)
    # absolute floor: 1e-7 of the summed term magnitudes (a group such as the nonbonded
    # energy of thiophene can be a near-cancelling sum close to zero)
    floor = 1e-7 * max(sum(np.abs(ref[k]).max() for k in (
        "HarmonicBondForce", "HarmonicAngleForce", "PeriodicTorsionForce", "NonbondedForce")),
        1.0)
    for name in ("HarmonicBondForce", "HarmonicAngleForce", "PeriodicTorsionForce",
                 "NonbondedForce", "LJ", "total"):
        np.testing.assert_allclose(rounded[name], ref[name], rtol=1e-6, atol=floor,
                                   err_msg=f"{smiles}: {name}")


def test_exported_frcmod_alone_rebuilds_the_same_energy_in_tleap(tmp_path):
    """ffparam's frcmod writer (internal -> AMBER: K = k/2, R* from sigma, torsions with
    IDIVF 1, negative PN for multi-term torsions, impropers) round-trips through tleap:
    a prmtop built from that frcmod alone (no gaff2.dat) gives ffparam's energies."""
    molecule = Molecule.from_smiles("CC(=O)Nc1ccc(O)cc1", name="acetaminophen")
    molecule = molecule.generate_conformers(1)
    system = parameterize_gaff2(molecule, charges="gasteiger")
    types = list(system.nonbonded.vdw_ids)
    masses = {t: float(m) for t, m in zip(types, molecule.masses)}
    write_frcmod(system.parameters, tmp_path / "exported.frcmod", masses=masses)
    write_mol2(tmp_path / "ref.mol2", molecule.symbols, molecule.conformers[0], types,
               system.charges(), molecule.bonds)
    elements = dict(zip(types, molecule.symbols))
    atom_types = "".join(f'  {{ "{t}" "{e}" "sp3" }}\n' for t, e in elements.items())
    (tmp_path / "leap.in").write_text(
        f"addAtomTypes {{\n{atom_types}}}\nloadamberparams exported.frcmod\n"
        "mol = loadmol2 ref.mol2\nsaveamberparm mol ref.prmtop ref.inpcrd\nquit\n")
    log = run_program(["tleap", "-f", "leap.in"], cwd=tmp_path).stdout
    assert "Errors = 0" in log, log[-600:]
    base = molecule.conformers[0]
    positions = np.stack([base, base + np.random.default_rng(5).normal(scale=0.04,
                                                                       size=base.shape)])
    ref = _openmm_groups(tmp_path / "ref.prmtop", positions)
    rounded = _ffparam_groups(_with_leap_rounding(system), positions)
    for name in ("HarmonicBondForce", "HarmonicAngleForce", "PeriodicTorsionForce",
                 "NonbondedForce", "LJ", "total"):
        np.testing.assert_allclose(rounded[name], ref[name], rtol=1e-6, err_msg=name)


def test_gaff2_settings_and_entry_point():
    """assign_parameters(..., "gaff2") reaches parameterize_gaff2; AMBER 1-4 scaling and
    Lorentz-Berthelot; GAFF2 ids are atom-type keys with internal units."""
    molecule = Molecule.from_smiles("CC(=O)O", name="acetic acid")
    system = assign_parameters(molecule, "gaff2", charges="gasteiger")
    assert system.source == "gaff2 + gasteiger"
    settings = system.parameters.settings
    assert settings["coulomb_14_scale"] == pytest.approx(1 / 1.2)
    assert settings["lj_14_scale"] == 0.5
    assert settings["combining_rule"] == "lorentz-berthelot"
    assert system.nonbonded.vdw_ids == ["c3", "c", "o", "oh", "hc", "hc", "hc", "ho"]
    ids = {g.name: set(g.parameter_ids) for g in system.terms}
    assert ids["Bonds"] == {"c-c3", "c-o", "c-oh", "c3-hc", "ho-oh"}
    # specific o-c-c3-hc (two terms) beats X-c-c3-X, which still serves hc-c3-c-oh
    assert ids["ProperTorsions"] == {"X-c-c3-X", "c3-c-oh-ho", "o-c-c3-hc", "o-c-oh-ho"}
    # the specific gaff2.dat improper c3-o -c -oh (1.1) beats X -X -c -o (10.5)
    assert ids["ImproperTorsions"] == {"c3-o-c-oh"}
    improper = system.parameters.get("ImproperTorsions", "c3-o-c-oh")
    assert improper.values == pytest.approx({"k1": 1.1, "phase1": math.pi})
    assert improper.fixed == {"periodicity1": 2}
    bond = system.parameters.get("Bonds", "c-o")
    assert bond.values["k"] == pytest.approx(2 * 590.60)
    k2 = system.parameters.vector()[system.parameters.index(
        ParameterKey("ProperTorsions", "o-c-c3-hc", "k2"))]
    assert k2 == pytest.approx(3.66)
