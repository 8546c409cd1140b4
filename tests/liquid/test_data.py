"""Liquids CSV: values and unit conversion, and one clear error per bad row."""

from __future__ import annotations

from pathlib import Path

import pytest

from ffparam.errors import InputError, MissingFileError
from ffparam.liquid.data import read_liquids_csv

DATA = Path(__file__).parents[1] / "data" / "liquid" / "liquids_subset.csv"


def test_reads_rows_and_converts_units():
    rows = read_liquids_csv(DATA)
    assert [r.name for r in rows] == ["Methanol", "Benzene", "Methyl acetate",
                                      "1,2-Dichloroethane"]
    methanol = rows[0]
    assert methanol.smiles == "CO" and methanol.row == 1
    assert methanol.density_g_ml == 0.7866
    assert methanol.temperature_k == 298.15
    assert methanol.pressure_atm == pytest.approx(1.0, abs=1e-12)  # 101.325 kPa
    assert methanol.hvap_kcal_mol == pytest.approx(37.43 / 4.184, rel=1e-12)
    assert rows[3].slug == "1_2_dichloroethane"
    chosen = read_liquids_csv(DATA, ["benzene", "Methanol"])
    assert [r.name for r in chosen] == ["Methanol", "Benzene"]


def _write(tmp_path: Path, edit) -> Path:
    lines = DATA.read_text().splitlines()
    lines = edit(lines)
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda ls: [ls[0], ls[1], ls[2].replace("0.8736", "")],
     r"bad.csv row 2 \(Benzene\): missing density_g_per_mL"),
    (lambda ls: [ls[0], ls[1], ls[2].replace("0.8736", "-0.87")],
     r"row 2 \(Benzene\): density_g_per_mL = -0.87 is not physical"),
    (lambda ls: [ls[0], ls[1].replace("298.15", "0")],
     r"row 1 \(Methanol\): temperature_K = 0 is not physical"),
    (lambda ls: [ls[0], ls[1].replace("37.43", "abc")],
     r"row 1 \(Methanol\): hvap_298K_kJ_per_mol 'abc' is not a number"),
    (lambda ls: [ls[0], ls[1].replace("37.43", "nan")],
     r"row 1 \(Methanol\): hvap_298K_kJ_per_mol = nan is not physical"),
    (lambda ls: [ls[0], ls[1], ls[3].replace("COC(C)=O", "C1CC")],
     r"row 2 \(Methyl acetate\): .*SMILES"),
    (lambda ls: [ls[0].replace("pressure_kPa", "p"), ls[1]], r"missing column\(s\) pressure_kPa"),
    (lambda ls: [ls[0], ls[1], ls[1]], r"row 2 \(Methanol\): duplicate liquid name"),
    (lambda ls: [ls[0]], r"no liquids"),
])
def test_bad_rows_name_the_row(tmp_path, edit, message):
    with pytest.raises(InputError, match=message):
        read_liquids_csv(_write(tmp_path, edit))


def test_missing_file_and_unknown_name(tmp_path):
    with pytest.raises(MissingFileError):
        read_liquids_csv(tmp_path / "none.csv")
    with pytest.raises(InputError, match="no liquid named water"):
        read_liquids_csv(DATA, ["water"])
