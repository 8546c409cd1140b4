"""AMBER parameter files: gaff2.dat / frcmod readers, frcmod writer, mol2 atoms.

Independent references: ParmEd's own AMBER readers (``parmed.amber.AmberParameterSet``)
for the parsed values, and the formulas of the AMBER file format for the conventions
(E = K (x - x0)^2 with internal k = 2 K; R* = rmin/2 = 2^(1/6) sigma / 2; torsion
amplitude PK / IDIVF).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import parmed
import pytest

from ffparam.assign.amber_files import (
    BondRecord,
    TorsionRecord,
    frcmod_attention,
    frcmod_text,
    read_frcmod,
    read_frcmod_parameters,
    read_mol2,
    read_parm_dat,
    write_frcmod,
    write_mol2,
)
from ffparam.assign.gaff import gaff2_dat_path
from ffparam.errors import ConventionError, InputError, MissingFileError
from ffparam.params.parameter_set import Parameter, ParameterSet

DATA = Path(__file__).resolve().parents[1] / "data" / "assign" / "gaff"
SLICE = DATA / "gaff2_slice.dat"
FRCMOD = DATA / "succinimide_parmchk2.frcmod"


def _parmed_improper(ref, types: tuple[str, ...]):
    """ParmEd keys impropers with the outer types in its own order: match on the central
    (third) type and the set of outer types."""
    outer = sorted(types[:2] + types[3:])
    keys = [k for k in ref.improper_periodic_types
            if k[2] == types[2] and sorted(k[:2] + k[3:]) == outer]
    assert keys, types
    return ref.improper_periodic_types[keys[0]]


def _parmed_terms(dihedral_types) -> list[tuple[float, int, float]]:
    return sorted((round(t.phi_k, 9), int(t.per), round(t.phase, 6)) for t in dihedral_types)


def test_gaff2_dat_matches_parmed_reader():
    """Every bond, angle, torsion, improper and LJ record of the installed gaff2.dat read by
    ffparam equals ParmEd's reading of the same file (AMBER K, degrees, PK/IDIVF)."""
    path = gaff2_dat_path()
    ours = read_parm_dat(path)
    ref = parmed.amber.AmberParameterSet(str(path))
    assert len(ours.bonds) > 1000 and len(ours.angles) > 5000
    for rec in ours.bonds:
        bt = ref.bond_types[rec.types]
        assert rec.force_constant == pytest.approx(bt.k, abs=1e-9)
        assert rec.length == pytest.approx(bt.req, abs=1e-9)
    for rec in ours.angles:
        at = ref.angle_types[rec.types]
        assert rec.force_constant == pytest.approx(at.k, abs=1e-9)
        assert rec.angle_degrees == pytest.approx(at.theteq, abs=1e-9)
    grouped: dict[tuple[str, ...], list[TorsionRecord]] = {}
    for rec in ours.propers:
        grouped.setdefault(rec.types, []).append(rec)
    for types, terms in grouped.items():
        mine = sorted((round(t.k, 9), t.periodicity, round(t.phase_degrees, 6)) for t in terms)
        assert mine == _parmed_terms(ref.dihedral_types[types]), types
    for rec in ours.impropers:
        it = _parmed_improper(ref, rec.types)
        assert (rec.barrier, rec.periodicity, rec.phase_degrees) == pytest.approx(
            (it.phi_k, it.per, it.phase))
    for name, lj in ours.lj.items():
        assert lj.rmin_half == pytest.approx(ref.atom_types[name].rmin, abs=1e-12)
        assert lj.epsilon == pytest.approx(ref.atom_types[name].epsilon, abs=1e-12)
    assert {"c3", "ca", "ha", "cl", "c5", "ns"} <= set(ours.lj)


def test_parm_dat_layout_equivalences_and_multiterm_torsions():
    data = read_parm_dat(SLICE)
    assert data.title.startswith("AMBER General Force Field")
    assert data.masses["c3"] == (12.01, 0.878)
    assert [r.key for r in data.bonds][:2] == ["c3-c3", "c3-hc"]
    # the equivalence line "c3 cx cy" gives cx and cy c3's LJ parameters
    assert data.lj["cx"].rmin_half == data.lj["c3"].rmin_half == 1.9069
    assert data.lj["cy"].epsilon == 0.1078
    two = [r for r in data.propers if r.key == "o-c-c3-hc"]
    assert [(t.periodicity, t.more_terms) for t in two] == [(1, True), (2, False)]
    assert [r.key for r in data.impropers] == ["X-o-c-o", "X-X-c-o", "X-X-ca-ha", "X-X-cc-X"]


def test_frcmod_reader_against_parmed():
    ours = read_frcmod(FRCMOD)
    ref = parmed.amber.AmberParameterSet(str(FRCMOD))
    grouped: dict[tuple[str, ...], list[TorsionRecord]] = {}
    for rec in ours.propers:
        grouped.setdefault(rec.types, []).append(rec)
    assert len(grouped) == 11 and len(ours.propers) == 19
    for types, terms in grouped.items():
        mine = sorted((round(t.k, 9), t.periodicity, round(t.phase_degrees, 6)) for t in terms)
        assert mine == _parmed_terms(ref.dihedral_types[types]), types
    assert [r.key for r in ours.impropers] == ["c5-ns-c-o", "c-c-ns-hn"]
    for rec in ours.impropers:
        it = _parmed_improper(ref, rec.types)
        assert rec.barrier == pytest.approx(it.phi_k)
    # idivf: "c -c5-c5-hc 9 1.400 0.000 3.000" -> per-term amplitude 1.4 / 9
    term = next(t for t in ours.propers if t.key == "c-c5-c5-hc")
    assert (term.divider, term.barrier, term.k) == (9.0, 1.4, pytest.approx(1.4 / 9))


def test_internal_conventions_of_records():
    """k = 2 K, sigma = 2 R* / 2^(1/6), torsion k = PK / IDIVF, angles in radians."""
    data = read_parm_dat(SLICE)
    params = read_frcmod_parameters(FRCMOD)
    from ffparam.assign.amber_files import angle_parameter, bond_parameter, lj_parameter

    bond = bond_parameter(next(b for b in data.bonds if b.key == "c3-hc"))
    assert bond.values == {"k": 2 * 345.25, "length": 1.0962}
    angle = angle_parameter(next(a for a in data.angles if a.key == "hc-c3-hc"))
    assert angle.values["k"] == 2 * 35.80
    assert angle.values["angle"] == pytest.approx(107.73 * math.pi / 180)
    lj = lj_parameter(data.lj["c3"])
    assert lj.values["sigma"] == pytest.approx(2 * 1.9069 / 2 ** (1 / 6))
    # the LJ minimum of 4 eps[(s/r)^12 - (s/r)^6] sits at r = 2 R* with depth -eps
    s, e = lj.values["sigma"], lj.values["epsilon"]
    r = 2 * 1.9069
    assert 4 * e * ((s / r) ** 12 - (s / r) ** 6) == pytest.approx(-e, rel=1e-12)
    tors = params.get("ProperTorsions", "c-c5-c5-hc")
    assert tors.values["k1"] == pytest.approx(1.4 / 9) and tors.fixed["periodicity1"] == 3


def _example_set() -> ParameterSet:
    ps = ParameterSet()
    ps.add("Bonds", Parameter("c3-hc", {"k": 690.5, "length": 1.0962}))
    ps.add("Angles", Parameter("hc-c3-hc", {"k": 71.6, "angle": math.radians(107.73)}))
    ps.add("ProperTorsions", Parameter(
        "o-c-c3-hc", {"k1": 4.03, "phase1": 0.0, "k2": 3.66, "phase2": math.pi},
        {"periodicity1": 1, "periodicity2": 2}))
    ps.add("ProperTorsions", Parameter("X-c3-c3-X", {"k1": 1.4 / 9, "phase1": 0.0},
                                       {"periodicity1": 3}))
    ps.add("ImproperTorsions", Parameter("X-X-c-o", {"k1": 10.5, "phase1": math.pi},
                                         {"periodicity1": 2}))
    ps.add("vdW", Parameter("c3", {"sigma": 2 * 1.9069 / 2 ** (1 / 6), "epsilon": 0.1078}))
    return ps


def test_frcmod_writer_round_trip_and_parmed_reads_it(tmp_path):
    """Internal -> frcmod -> internal is the identity; ParmEd reads our frcmod as AMBER
    values (K = k/2, R* = rmin/2, PK with IDIVF 1, phases in degrees)."""
    ps = _example_set()
    path = write_frcmod(ps, tmp_path / "out.frcmod", masses={"c3": 12.01, "hc": 1.008})
    back = read_frcmod_parameters(path)
    for section, par in ps:
        other = back.get(section, par.id)
        assert other.values == pytest.approx(par.values, rel=1e-8, abs=1e-8), par.id
        assert other.fixed == par.fixed
    ref = parmed.amber.AmberParameterSet(str(path))
    assert ref.bond_types[("c3", "hc")].k == pytest.approx(690.5 / 2)
    assert ref.angle_types[("hc", "c3", "hc")].theteq == pytest.approx(107.73)
    assert ref.atom_types["c3"].rmin == pytest.approx(1.9069, abs=1e-8)
    assert ref.atom_types["c3"].mass == pytest.approx(12.01)
    assert _parmed_terms(ref.dihedral_types[("o", "c", "c3", "hc")]) == [
        (3.66, 2, 180.0), (4.03, 1, 0.0)]
    assert ref.dihedral_types[("X", "c3", "c3", "X")][0].phi_k == pytest.approx(1.4 / 9)
    assert ref.improper_periodic_types[("X", "X", "c", "o")].phi_k == pytest.approx(10.5)


def test_frcmod_writer_rejects_non_type_ids():
    ps = ParameterSet()
    ps.add("Bonds", Parameter("[#6:1]-[#1:2]", {"k": 600.0, "length": 1.09}))
    with pytest.raises(ConventionError, match="AMBER atom types"):
        frcmod_text(ps)


def test_frcmod_attention_entries():
    text = ("remark\nMASS\n\nBOND\nha-ha    0.00   0.000  ATTN, need revision\n\nANGLE\n"
            "o -cl-o     0.000       0.000   ATTN, need revision\n\nDIHE\n\n")
    assert frcmod_attention(text) == [("BOND", ("ha", "ha")), ("ANGLE", ("o", "cl", "o"))]
    assert frcmod_attention(FRCMOD.read_text()) == []


def test_mol2_round_trip(tmp_path):
    xyz = np.array([[0.0, 0.0, 0.0], [1.0962, 0.0, 0.0], [-0.3, 1.02, 0.1]])
    q = np.array([-0.123456789012, 0.0617283945, 0.0617283945060])
    path = write_mol2(tmp_path / "m.mol2", ["C", "H", "H"], xyz, ["c3", "hc", "hc"], q,
                      np.array([[0, 1], [0, 2]]))
    atoms = read_mol2(path)
    assert atoms.names == ["C1", "H1", "H2"] and atoms.types == ["c3", "hc", "hc"]
    np.testing.assert_allclose(atoms.charges, q, atol=1e-10)
    np.testing.assert_allclose(atoms.coordinates, xyz, atol=1e-6)
    assert atoms.bonds.tolist() == [[0, 1], [0, 2]]


def test_bad_files(tmp_path):
    with pytest.raises(MissingFileError):
        read_frcmod(tmp_path / "nope.frcmod")
    bad = tmp_path / "bad.frcmod"
    bad.write_text("title\nBOND\nc3-hc  abc  1.09\n\n")
    with pytest.raises(InputError, match="cannot read 2 numbers"):
        read_frcmod(bad)
    bad.write_text("title\nDIHE\nX -c3-c3-X    9    1.400         0.000           0.000\n\n")
    with pytest.raises(InputError, match="periodicity"):
        read_frcmod(bad)
    bad.write_text("title\nWHATEVER\n\n")
    with pytest.raises(InputError, match="unknown frcmod section"):
        read_frcmod(bad)
    empty = tmp_path / "empty.mol2"
    empty.write_text("@<TRIPOS>MOLECULE\nx\n")
    with pytest.raises(InputError, match="no @<TRIPOS>ATOM"):
        read_mol2(empty)


def test_record_keys():
    assert BondRecord(("c", "o"), 590.6, 1.219).key == "c-o"
    rec = TorsionRecord(("X", "c3", "c3", "X"), 9.0, 1.4, 0.0, 3)
    assert rec.generality == 2 and rec.key == "X-c3-c3-X"
