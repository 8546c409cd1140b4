"""ParameterSet storage, vector view, free flags and file round trips."""

import math

import numpy as np
import pytest
import yaml

from ffparam.errors import InputError, MissingFileError
from ffparam.params import FreeSpec, Parameter, ParameterKey, ParameterSet


def _example() -> ParameterSet:
    ps = ParameterSet(settings={"name": "example"})
    ps.add("Bonds", Parameter("[#6:1]-[#6:2]", {"k": 620.0, "length": 1.526}))
    ps.add("Angles", Parameter("[*:1]~[#6:2]~[*:3]", {"k": 100.0, "angle": math.radians(109.5)}))
    ps.add("ProperTorsions", Parameter("[*:1]~[#6:2]-[#6:3]~[*:4]",
                                       {"k1": 0.15, "phase1": 0.0, "k2": 0.3, "phase2": math.pi},
                                       {"periodicity1": 3, "periodicity2": 2}))
    ps.add("vdW", Parameter("[#6:1]", {"epsilon": 0.086, "sigma": 3.4}))
    return ps


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_round_trip_files(tmp_path, suffix):
    ps = _example()
    ps.set_free("ProperTorsions", "*", "k*")
    path = ps.save(tmp_path / f"p{suffix}")
    back = ParameterSet.load(path)
    assert back.keys() == ps.keys()
    np.testing.assert_allclose(back.vector(), ps.vector(), rtol=1e-15)
    assert back.free == ps.free
    assert back.get("ProperTorsions", "[*:1]~[#6:2]-[#6:3]~[*:4]").fixed["periodicity2"] == 2
    assert back.settings["coulomb_14_scale"] == pytest.approx(1 / 1.2)


def test_angles_written_in_degrees(tmp_path):
    path = _example().save(tmp_path / "p.yaml")
    data = yaml.safe_load(path.read_text())
    angle = data["sections"]["Angles"][0]
    assert angle["values"]["angle"] == pytest.approx(109.5)
    assert angle["units"]["angle"] == "degree"
    assert angle["units"]["k"] == "kcal/mol/rad^2"
    torsion = data["sections"]["ProperTorsions"][0]
    assert torsion["values"]["phase2"] == pytest.approx(180.0)
    assert "k/2" in data["conventions"]["harmonic"]


def test_vector_views():
    ps = _example()
    keys = ps.keys()
    assert keys[0] == ParameterKey("Bonds", "[#6:1]-[#6:2]", "k")
    vec = ps.vector()
    vec[ps.index(ParameterKey("vdW", "[#6:1]", "sigma"))] = 3.5
    changed = ps.with_vector(vec)
    assert changed.get("vdW", "[#6:1]").values["sigma"] == 3.5
    assert ps.get("vdW", "[#6:1]").values["sigma"] == 3.4  # original untouched
    with pytest.raises(InputError, match="entries"):
        ps.with_vector(vec[:-1])


def test_free_specs_defaults_and_errors():
    ps = _example()
    keys = ps.set_free("Bonds", "[#6:1]-[#6:2]", ["k", "length"])
    assert ps.free[keys[0]].transform == "log" and ps.free[keys[0]].lower == 0.0
    assert ps.free_keys() == keys
    with pytest.raises(InputError, match="no parameter matched"):
        ps.set_free("Bonds", "[#7:1]-[#7:2]")
    with pytest.raises(InputError, match="transform"):
        FreeSpec(transform="sqrt")
    with pytest.raises(InputError, match="unknown field"):
        ps.add("Bonds", Parameter("x", {"kk": 1.0}))


def test_load_errors(tmp_path):
    with pytest.raises(MissingFileError):
        ParameterSet.load(tmp_path / "none.yaml")
    (tmp_path / "x.yaml").write_text("format: something-else\n")
    with pytest.raises(InputError, match="not an ffparam parameter file"):
        ParameterSet.load(tmp_path / "x.yaml")
    with pytest.raises(InputError, match="unknown parameter file type"):
        _example().save(tmp_path / "p.txt")
