"""Hostile inputs for every ``ffparam`` subcommand and every file reader.

Each :class:`Case` is an argv plus the files it needs (written into an empty working
directory before it runs). :func:`all_cases` builds the whole list (300+);
:func:`check` says whether a finished run behaved: exit code 2 (bad input) or 1 (a failed
calculation), and exactly one line on stderr, which is either ``error: ...`` or, for a
command group called with no arguments (``ffparam``, ``ffparam mlp``), nothing (it prints
its help on stdout); no traceback, and none
of the case's output paths written.

Run ``python -m tests.fuzz.cases`` for the outcome table of a sweep (in-process, each case
under a time limit).
"""

from __future__ import annotations

import json
import lzma
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

WATER_XYZ = "3\nwater\nO 0.0 0.0 0.117\nH 0.0 0.757 -0.467\nH 0.0 -0.757 -0.467\n"

METHANE_MOL = """methane
     ffparam

  5  4  0  0  0  0  0  0  0  0999 V2000
    0.0000    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0
    0.6291    0.6291    0.6291 H   0  0  0  0  0  0  0  0  0  0  0  0
   -0.6291   -0.6291    0.6291 H   0  0  0  0  0  0  0  0  0  0  0  0
   -0.6291    0.6291   -0.6291 H   0  0  0  0  0  0  0  0  0  0  0  0
    0.6291   -0.6291   -0.6291 H   0  0  0  0  0  0  0  0  0  0  0  0
  1  2  1  0
  1  3  1  0
  1  4  1  0
  1  5  1  0
M  END
"""

WATER_PDB = """HETATM    1  O   HOH A   1       0.000   0.000   0.117  1.00  0.00           O
HETATM    2  H1  HOH A   1       0.000   0.757  -0.467  1.00  0.00           H
HETATM    3  H2  HOH A   1       0.000  -0.757  -0.467  1.00  0.00           H
CONECT    1    2    3
END
"""

BINARY = bytes(range(256)) * 4 + b"\xff\xfe\x00\x00\x80\x81"
"""Every byte value, including NUL, invalid UTF-8 and terminal control characters."""

Maker = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    """One hostile invocation.

    Attributes:
        id: unique test id.
        argv: arguments after ``ffparam`` (paths relative to the working directory).
        files: name -> bytes (a file), ``"DIR"``, or a callable making it in the directory.
        outputs: paths that must not exist after the run.
        codes: accepted exit codes.
    """

    id: str
    argv: tuple[str, ...]
    files: tuple[tuple[str, object], ...] = ()
    outputs: tuple[str, ...] = ()
    codes: frozenset[int] = field(default=frozenset({2}))

    def materialize(self, root: Path) -> None:
        """Create the case's files under ``root``."""
        for name, content in self.files:
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if content == "DIR":
                path.mkdir(exist_ok=True)
            elif callable(content):
                content(path)
            elif isinstance(content, str):
                path.write_text(content, encoding="utf-8")
            else:
                path.write_bytes(content)


def check(case: Case, code: int | None, stderr: str, root: Path) -> str:
    """``"ok"`` or what went wrong: ``traceback``, ``exit N``, ``lines N``, ``format``,
    ``unprintable``, ``wrote PATH``."""
    if "Traceback (most recent call last)" in stderr:
        return "traceback"
    if code not in case.codes:
        return f"exit {code}"
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    if case.argv in ((), ("mlp",), ("liquid",)):  # a bare command group shows its help
        return "ok" if not lines else f"lines {len(lines)}"
    if len(lines) != 1:
        return f"lines {len(lines)}"
    if not lines[0].startswith("error: "):
        return "format"
    if not lines[0].isprintable():
        return "unprintable"
    for name in case.outputs:
        if (root / name).exists():
            return f"wrote {name}"
    return "ok"


# --------------------------------------------------------------------------- file makers
def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _symlink_to(target: str) -> Maker:
    def make(path: Path) -> None:
        path.symlink_to(target)
    return make


def _loop(path: Path) -> None:
    path.symlink_to(path.name)


def _foreign_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE songs (title TEXT, year INT)")
        db.execute("INSERT INTO songs VALUES ('x', 1999)")
    db.close()


def _truncated_store(path: Path) -> None:
    from ffparam.reference.store import Store

    with Store(path):
        pass
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 + 7])


def _corrupt_store(path: Path) -> None:
    from ffparam.reference.store import Store

    with Store(path):
        pass
    data = bytearray(path.read_bytes())
    data[100:4096] = BINARY[: 3996]
    path.write_bytes(bytes(data))


def _xz(data: bytes) -> Maker:
    def make(path: Path) -> None:
        path.write_bytes(lzma.compress(data))
    return make


def _truncated_xz(path: Path) -> None:
    path.write_bytes(lzma.compress(json.dumps({"records": []}).encode() * 50)[:40])


def _model_dir(info: object, weights: bytes | Maker | None = None) -> Maker:
    def make(path: Path) -> None:
        path.mkdir()
        (path / "model.json").write_text(info if isinstance(info, str) else json.dumps(info))
        if callable(weights):
            weights(path / "weights.pt")
        elif weights is not None:
            (path / "weights.pt").write_bytes(weights)
    return make


class _Payload:
    """Unpickling this creates the file PWNED in the working directory."""

    def __reduce__(self):
        return (open, ("PWNED", "w"))


def pickle_payload(path: Path) -> None:
    """A torch checkpoint whose unpickling would run code (creates ``PWNED``)."""
    import torch

    torch.save({"w": torch.zeros(2), "evil": _Payload()}, path)


ANI_WATER = {"format": "ffparam-mlp", "model_type": "ani",
             "config": {"model": {"elements": [1, 8]}}}
"""model.json of a small ANI network for H and O: it builds, so the weights are read."""


def _foreign_weights(path: Path) -> None:
    import torch

    torch.save({"layer.weight": torch.zeros(3, 3)}, path)


def _truncated_weights(path: Path) -> None:
    import torch

    from ffparam.ml.potential import build_network

    torch.save(build_network("ani", ANI_WATER["config"]["model"]).state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


YAML_PAYLOADS = (
    "!!python/object/apply:builtins.open ['PWNED', 'w']\n",
    "x: !!python/object/apply:os.system ['touch PWNED']\n",
    "!!python/object/new:builtins.open ['PWNED', 'w']\n",
    "x: !!python/name:os.system\n",
)


# --------------------------------------------------------------------------- the cases
BAD_SMILES = (
    "C1CC", "C(", "X", "[Xx]", "c1cccc1", "C%", "[C@@H", "CC)C", "C=1CC", "((((", "[CH5]",
    "C1CC2", "[NH4+", "C..C", "[O-2-]", "B(B)(B)(B)B", "C[Na+]]", "é", "ＣＣＯ", "😀",
    "C\x1b[31mC", "CC\tO", "\u202eCCO", "[2H:1][2H:1]", "Q" * 5000, "C(" * 3000,
    "../../etc/passwd", "CCO.smi", "molecule.txt", " ", "",
)

MOLECULE_FILES: tuple[tuple[str, str, object], ...] = (
    # (case label, file name, content)
    ("empty-sdf", "x.sdf", b""),
    ("blank-sdf", "x.sdf", "\n\n\n"),
    ("binary-sdf", "x.sdf", BINARY),
    ("dir-sdf", "x.sdf", "DIR"),
    ("fifo-sdf", "x.sdf", _fifo),
    ("devzero-sdf", "x.sdf", _symlink_to("/dev/zero")),
    ("loop-sdf", "x.sdf", _loop),
    ("zero-atom-sdf", "x.sdf", "empty\n     RDKit\n\n  0  0  0  0  0  0  0  0  0  0999 V2000\n"
                               "M  END\n$$$$\n"),
    ("truncated-sdf", "x.sdf", METHANE_MOL[:300]),
    ("nan-sdf", "x.sdf", METHANE_MOL.replace("    0.6291    0.6291    0.6291",
                                             "       nan    0.6291    0.6291", 1)),
    ("inf-sdf", "x.sdf", METHANE_MOL.replace("    0.6291    0.6291    0.6291",
                                             "       inf    0.6291    0.6291", 1)),
    ("huge-count-sdf", "x.sdf", METHANE_MOL.replace("  5  4  0", "99999  4  0", 1)),
    ("neg-count-sdf", "x.sdf", METHANE_MOL.replace("  5  4  0", " -5  4  0", 1)),
    ("bad-bond-sdf", "x.sdf", METHANE_MOL.replace("  1  5  1  0", "  1 77  1  0")),
    ("valence-sdf", "x.sdf", METHANE_MOL.replace("  1  5  1  0", "  1  5  3  0")),
    ("two-molecules-sdf", "x.sdf", METHANE_MOL + "$$$$\n" + METHANE_MOL.replace(
        "  1  5  1  0\n", "").replace("  5  4  0", "  4  3  0").replace(
        "    0.6291   -0.6291   -0.6291 H   0  0  0  0  0  0  0  0  0  0  0  0\n", "")
        + "$$$$\n"),
    ("utf16-sdf", "x.sdf", METHANE_MOL.encode("utf-16")),
    ("empty-mol", "x.mol", b""),
    ("binary-mol", "x.mol", BINARY),
    ("v3000-broken-mol", "x.mol", "x\n\n\n  0  0  0     0  0            999 V3000\n"
                                  "M  V30 BEGIN CTAB\nM  V30 COUNTS 9 9 0 0 0\nM  END\n"),
    ("empty-pdb", "x.pdb", b""),
    ("binary-pdb", "x.pdb", BINARY),
    ("dir-pdb", "x.pdb", "DIR"),
    ("no-conect-pdb", "x.pdb", WATER_PDB.replace("CONECT    1    2    3\n", "")),
    ("bad-conect-pdb", "x.pdb", WATER_PDB.replace("CONECT    1    2    3", "CONECT    1   88")),
    ("nan-pdb", "x.pdb", WATER_PDB.replace("   0.000   0.757", "     nan   0.757")),
    ("conect-only-pdb", "x.pdb", "CONECT    1    2\nEND\n"),
    ("garbage-conect-pdb", "x.pdb", "CONECT zz\n" + BINARY.decode("latin-1")),
    ("empty-xyz", "x.xyz", b""),
    ("binary-xyz", "x.xyz", BINARY),
    ("dir-xyz", "x.xyz", "DIR"),
    ("fifo-xyz", "x.xyz", _fifo),
    ("devzero-xyz", "x.xyz", _symlink_to("/dev/zero")),
    ("neg-count-xyz", "x.xyz", "-3\n\nO 0 0 0\nH 0 0 1\nH 0 1 0\n"),
    ("neg-one-xyz", "x.xyz", "-1\n\n"),
    ("neg-two-xyz", "x.xyz", "-2\n"),
    ("neg-two-comment-xyz", "x.xyz", "-2\nwater\n"),
    ("neg-three-alone-xyz", "x.xyz", "-3\n"),
    ("neg-count-water-xyz", "x.xyz", WATER_XYZ.replace("3\n", "-3\n", 1)),
    ("trailing-neg-xyz", "x.xyz", WATER_XYZ + "-2\n"),
    ("neg-count-blank-end-xyz", "x.xyz", WATER_XYZ.replace("3\n", "-3\n", 1) + "\n"),
    ("zero-count-xyz", "x.xyz", "0\n\n"),
    ("huge-count-xyz", "x.xyz", "999999999\n\nO 0 0 0\n"),
    ("float-count-xyz", "x.xyz", "3.0\n\nO 0 0 0\nH 0 0 1\nH 0 1 0\n"),
    ("exp-count-xyz", "x.xyz", "1e9\n\nO 0 0 0\n"),
    ("text-count-xyz", "x.xyz", "three\n\nO 0 0 0\n"),
    ("short-xyz", "x.xyz", "5\n\nO 0 0 0\nH 0 0 1\n"),
    ("nan-xyz", "x.xyz", WATER_XYZ.replace("0.117", "nan")),
    ("inf-xyz", "x.xyz", WATER_XYZ.replace("0.117", "inf")),
    ("huge-coord-xyz", "x.xyz", WATER_XYZ.replace("0.117", "1e308")),
    ("element-xyz", "x.xyz", WATER_XYZ.replace("O 0.0", "Xx 0.0")),
    ("number-element-xyz", "x.xyz", WATER_XYZ.replace("O 0.0", "999 0.0")),
    ("missing-column-xyz", "x.xyz", "3\n\nO 0 0\nH 0 0 1\nH 0 1 0\n"),
    ("stacked-atoms-xyz", "x.xyz", "3\n\nO 0 0 0\nH 0 0 0\nH 0 0 0\n"),
    ("frames-differ-xyz", "x.xyz", WATER_XYZ + "2\n\nO 0 0 0\nH 0 0 1\n"),
    ("utf16-xyz", "x.xyz", WATER_XYZ.encode("utf-16")),
    ("nul-xyz", "x.xyz", WATER_XYZ.replace("O", "O\x00")),
    ("radical-xyz", "x.xyz", "1\n\nC 0 0 0\n"),
    ("unknown-suffix", "x.txt", WATER_XYZ),
    ("unicode-name-sdf", "分子 ☃.sdf", b""),
)

OFFXML_FILES: tuple[tuple[str, object], ...] = (
    ("empty", b""),
    ("binary", BINARY),
    ("dir", "DIR"),
    ("text", "not xml at all\n"),
    ("html", "<html><body>hi</body></html>"),
    ("truncated", '<?xml version="1.0"?>\n<SMIRNOFF version="0.3" aromaticity_model="OEAroModel'
                  'Aromaticity">\n<Bonds version="0.4" potential="harmonic"'),
    ("bad-units", '<?xml version="1.0"?>\n<SMIRNOFF version="0.3" aromaticity_model="OEAroModel'
                  'Aromaticity"><Bonds version="0.4" potential="harmonic" fractional_bondorder_'
                  'method="AM1-Wiberg" fractional_bondorder_interpolation="linear"><Bond smirks='
                  '"[#6:1]-[#6:2]" length="banana" k="1"/></Bonds></SMIRNOFF>'),
    ("bad-smirks", '<?xml version="1.0"?>\n<SMIRNOFF version="0.3" aromaticity_model="OEAroModel'
                   'Aromaticity"><Bonds version="0.4" potential="harmonic" fractional_bondorder_'
                   'method="AM1-Wiberg" fractional_bondorder_interpolation="linear"><Bond smirks='
                   '"[#6:1]-(((" length="1.5 * angstrom" k="1 * kilocalorie/mole/angstrom**2"/>'
                   '</Bonds></SMIRNOFF>'),
    ("billion-laughs", '<?xml version="1.0"?>\n<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
                       + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'
                                 for i in range(9))
                       + ']>\n<SMIRNOFF version="0.3">&j;</SMIRNOFF>'),
    ("external-entity", '<?xml version="1.0"?>\n<!DOCTYPE l [<!ENTITY x SYSTEM '
                        '"file:///etc/passwd">]>\n<SMIRNOFF version="0.3">&x;</SMIRNOFF>'),
    ("utf16", '<?xml version="1.0"?><SMIRNOFF/>'.encode("utf-16")),
)

YAML_SPECS: tuple[tuple[str, object], ...] = (
    ("empty", b""),
    ("binary", BINARY),
    ("dir", "DIR"),
    ("list", "- 1\n- 2\n"),
    ("scalar", "42\n"),
    ("tabs", "a:\n\tb: 1\n"),
    ("unclosed", "a: [1, 2\n"),
    ("missing-keys", "forcefield: sage\n"),
    ("wrong-types", "molecules: 5\ntargets: x\nparameters: 3\n"),
    ("unknown-molecule", "molecules: {}\ntargets: [{name: t, molecule: m, kind: torsion, "
                         "data: s.xyz}]\nparameters: [{kind: torsion}]\n"),
    ("missing-data", "molecules: {m: {smiles: CCO}}\ntargets: [{name: t, molecule: m, "
                     "kind: torsion_profile, data: nope.xyz}]\nparameters: [{kind: x}]\n"),
    ("alias-bomb", "a: &a [x, x, x, x, x, x, x, x, x]\n"
                   + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, "
                             f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
                             f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
                             for i in range(8))),
    ("deep-nesting", "[" * 20000 + "]" * 20000),
    ("utf16", "molecules: {}\n".encode("utf-16")),
    ("nan-values", "molecules: {m: {smiles: CCO}}\ntargets: [{name: t, molecule: m, "
                   "kind: torsion_profile, data: s.xyz, weight: .nan}]\nparameters: [{kind: x}]\n"),
    *((f"payload-{k}", text) for k, text in enumerate(YAML_PAYLOADS)),
)

CSV_FILES: tuple[tuple[str, object], ...] = (
    ("empty", b""),
    ("binary", BINARY),
    ("dir", "DIR"),
    ("header-only", "name,smiles,temperature_k,pressure_atm,density_g_ml,hvap_kcal_mol\n"),
    ("missing-columns", "name,smiles\nmethanol,CO\n"),
    ("text-number", "name,smiles,temperature_k,pressure_atm,density_g_ml,hvap_kcal_mol\n"
                    "methanol,CO,warm,1,0.79,8.9\n"),
    ("nan", "name,smiles,temperature_k,pressure_atm,density_g_ml,hvap_kcal_mol\n"
            "methanol,CO,298.15,1,nan,8.9\n"),
    ("negative-t", "name,smiles,temperature_k,pressure_atm,density_g_ml,hvap_kcal_mol\n"
                   "methanol,CO,-5,1,0.79,8.9\n"),
    ("bad-smiles", "name,smiles,temperature_k,pressure_atm,density_g_ml,hvap_kcal_mol\n"
                   "methanol,C1CC,298.15,1,0.79,8.9\n"),
    ("dup", "name,smiles,temperature_k,pressure_atm,density_g_ml,hvap_kcal_mol\n"
            "m,CO,298.15,1,0.79,8.9\nm,CO,298.15,1,0.79,8.9\n"),
    ("short-row", "name,smiles,temperature_k,pressure_atm,density_g_ml,hvap_kcal_mol\nm,CO\n"),
    ("nul", "name,smiles,temperature_k\x00,pressure_atm\nm,CO,1,1\n"),
    ("utf16", "name,smiles,temperature_k,pressure_atm,density_g_ml,hvap_kcal_mol\n"
              "m,CO,298.15,1,0.79,8.9\n".encode("utf-16")),
    ("latin1", "name,smiles,temperature_k,pressure_atm,density_g_ml,hvap_kcal_mol\n"
               "m\xe9,CO,298.15,1,0.79,8.9\n".encode("latin-1")),
    ("huge-field", "name,smiles\n" + "x" * 200_000 + ",CO\n"),
    ("quote-unclosed", 'name,smiles,temperature_k,pressure_atm,density_g_ml,hvap_kcal_mol\n'
                       '"m,CO,298.15,1,0.79,8.9\n'),
)

QCF_JSON: tuple[tuple[str, str, object], ...] = (
    ("empty", "scan.json", b""),
    ("binary", "scan.json", BINARY),
    ("dir", "scan.json", "DIR"),
    ("not-json", "scan.json", "{nope"),
    ("number", "scan.json", "42"),
    ("string", "scan.json", '"records"'),
    ("null", "scan.json", "null"),
    ("empty-list", "scan.json", "[]"),
    ("list-of-numbers", "scan.json", "[1, 2, 3]"),
    ("records-number", "scan.json", '{"records": 7}'),
    ("records-strings", "scan.json", '{"records": ["a"]}'),
    ("no-dihedrals", "scan.json", '{"records": [{"keywords": {}}]}'),
    ("dihedrals-text", "scan.json", '{"records": [{"keywords": {"dihedrals": "abc"}}]}'),
    ("dihedrals-three", "scan.json", '{"records": [{"keywords": {"dihedrals": [[0, 1, 2]]}}]}'),
    ("no-energies", "scan.json", '{"records": [{"keywords": {"dihedrals": [[0,1,2,3]]}}]}'),
    ("energies-list", "scan.json", '{"records": [{"keywords": {"dihedrals": [[0,1,2,3]]}, '
                                   '"final_energies": [1, 2], "final_molecules": [1]}]}'),
    ("bad-grid-key", "scan.json", '{"records": [{"keywords": {"dihedrals": [[0,1,2,3]]}, '
                                  '"final_energies": {"abc": 1}, "final_molecules": '
                                  '{"abc": {}}}]}'),
    ("molecule-not-dict", "scan.json", '{"records": [{"keywords": {"dihedrals": [[0,1,2,3]]}, '
                                       '"final_energies": {"[0]": 1}, "final_molecules": '
                                       '{"[0]": 5}}]}'),
    ("geometry-text", "scan.json", '{"records": [{"keywords": {"dihedrals": [[0,1,2,3]]}, '
                                   '"final_energies": {"[0]": 1}, "final_molecules": {"[0]": '
                                   '{"symbols": ["C"], "geometry": "x"}}}]}'),
    ("nan-energy", "scan.json", '{"records": [{"keywords": {"dihedrals": [[0,1,2,3]]}, '
                                '"final_energies": {"[0]": NaN}, "final_molecules": {"[0]": '
                                '{"symbols": ["C","H","H","H","H"], "geometry": '
                                '[0,0,0,1,0,0,0,1,0,0,0,1,1,1,1]}}}]}'),
    ("energy-text", "scan.json", '{"records": [{"keywords": {"dihedrals": [[0,1,2,3]]}, '
                                 '"final_energies": {"[0]": "low"}, "final_molecules": {"[0]": '
                                 '{"symbols": ["C"], "geometry": [0,0,0]}}}]}'),
    ("index-out-of-range", "scan.json", '{"records": [{"keywords": {"dihedrals": '
                                        '[[0,1,2,99]]}, "final_energies": {"[0]": 1.0}, '
                                        '"final_molecules": {"[0]": {"symbols": ["C","H"], '
                                        '"geometry": [0,0,0,1,0,0]}}}]}'),
    ("deep-nesting", "scan.json", "[" * 100_000 + "]" * 100_000),
    ("xz-garbage", "scan.json.xz", BINARY),
    ("xz-truncated", "scan.json.xz", _truncated_xz),
    ("xz-of-binary", "scan.json.xz", _xz(BINARY)),
    ("extxyz-empty", "scan.xyz", b""),
    ("extxyz-binary", "scan.xyz", BINARY),
    ("extxyz-no-energy", "scan.xyz", WATER_XYZ),
    ("extxyz-neg-count", "scan.xyz", "-3\nenergy=1.0\nO 0 0 0\n"),
    ("extxyz-nan-energy", "scan.xyz", WATER_XYZ.replace("water", 'energy=nan dihedral="0 1 2 '
                                                                 '3"')),
    ("unknown-suffix", "scan.dat", "x"),
)

MODEL_DIRS: tuple[tuple[str, object], ...] = (
    ("missing", None),
    ("file", b"not a directory"),
    ("empty", "DIR"),
    ("json-binary", _model_dir(BINARY.decode("latin-1"))),
    ("json-empty", _model_dir("")),
    ("json-list", _model_dir([1, 2])),
    ("json-string", _model_dir('"model"')),
    ("wrong-format", _model_dir({"format": "other"})),
    ("unknown-type", _model_dir({"format": "ffparam-mlp", "model_type": "nope"})),
    ("type-list", _model_dir({"format": "ffparam-mlp", "model_type": ["ani"]})),
    ("no-config", _model_dir({"format": "ffparam-mlp", "model_type": "ani"})),
    ("config-null", _model_dir({"format": "ffparam-mlp", "model_type": "ani",
                                "config": None})),
    ("config-garbage", _model_dir({"format": "ffparam-mlp", "model_type": "ani",
                                   "config": {"model": {"bogus": 1}}})),
    ("schnet-garbage", _model_dir({"format": "ffparam-mlp", "model_type": "schnet",
                                   "config": {"model": "x"}})),
    ("gpr-garbage", _model_dir({"format": "ffparam-mlp", "model_type": "gpr",
                                "config": {"x": 1}})),
    ("committee-missing", _model_dir({"format": "ffparam-mlp", "model_type": "committee",
                                      "config": {"members": ["member_0"]}})),
    ("committee-escape", _model_dir({"format": "ffparam-mlp", "model_type": "committee",
                                     "config": {"members": ["../../../etc"]}})),
    ("committee-self", _model_dir({"format": "ffparam-mlp", "model_type": "committee",
                                   "config": {"members": ["."]}})),
    ("committee-not-list", _model_dir({"format": "ffparam-mlp", "model_type": "committee",
                                       "config": {"members": 5}})),
    ("weights-missing", _model_dir(ANI_WATER)),
    ("weights-empty", _model_dir(ANI_WATER, b"")),
    ("weights-binary", _model_dir(ANI_WATER, BINARY)),
    ("weights-pickle", _model_dir(ANI_WATER, pickle_payload)),
    ("weights-mismatch", _model_dir(ANI_WATER, _foreign_weights)),
    ("weights-truncated", _model_dir(ANI_WATER, _truncated_weights)),
)


def _molecule_cases() -> list[Case]:
    cases = []
    commands = {
        "energy": ("energy",),
        "assign": ("assign", "-o", "p.yaml"),
        "qm": ("qm", "--store", "s.db", "-o", "q.xyz"),
        "sample": ("sample", "--store", "s.db", "--conformers", "2", "-o", "f.xyz"),
        "torsiondrive": ("torsiondrive", "--dihedral", "0,1,2,3", "--store", "s.db", "-o",
                         "scan.xyz"),
        "bespoke": ("bespoke", "--out", "out"),
        "liquid-run": ("liquid", "run", "--out", "lq"),
    }
    outputs = ("p.yaml", "q.xyz", "f.xyz", "scan.xyz", "out/forcefield.offxml",
               "lq/result.json", "PWNED")
    for label, name, content in MOLECULE_FILES:
        for cmd in ("energy", "qm", "bespoke") if label not in ("fifo-sdf", "fifo-xyz") \
                else ("energy",):
            head, *rest = commands[cmd]
            cases.append(Case(f"{cmd}-{label}", (head, *rest[:0], name, *rest),
                              ((name, content),), outputs))
    for k, smiles in enumerate(BAD_SMILES):
        cmds = ("energy", "assign", "qm", "sample", "torsiondrive", "bespoke", "liquid-run") \
            if k < 6 else ("energy", "bespoke")
        for cmd in cmds:
            head, *rest = commands[cmd]
            if cmd == "liquid-run":
                argv = ("liquid", "run", "--", smiles, *rest[1:])
            else:
                argv = (head, *rest, "--", smiles)
            cases.append(Case(f"{cmd}-smiles{k}", argv, (), outputs))
    cases.append(Case("energy-missing-file", ("energy", "nope.sdf")))
    cases.append(Case("energy-long-path", ("energy", "d/" * 3000 + "x.sdf")))
    cases.append(Case("energy-charge-mismatch", ("energy", "CCO", "--charge", "1")))
    cases.append(Case("energy-xyz-charge", ("energy", "x.xyz", "--charge", "5"),
                      (("x.xyz", WATER_XYZ),)))
    return cases


def _usage_cases() -> list[Case]:
    commands = [("energy",), ("assign",), ("qm",), ("torsiondrive",), ("sample",), ("fit",),
                ("bespoke",), ("demo",), ("mlp", "train"), ("mlp", "eval"), ("mlp", "md"),
                ("liquid", "run"), ("liquid", "fit")]
    cases = [Case("unknown-command", ("nope",)), Case("unknown-command-unicode", ("énergie",)),
             Case("unknown-global-option", ("--nope",)), Case("bare", (), codes=frozenset({2})),
             Case("bare-mlp", ("mlp",)), Case("bare-liquid", ("liquid",)),
             Case("mlp-unknown", ("mlp", "fly")), Case("liquid-unknown", ("liquid", "boil"))]
    for cmd in commands:
        tag = "-".join(cmd)
        cases.append(Case(f"{tag}-unknown-option", (*cmd, "CCO", "--bogus-option", "1")))
        cases.append(Case(f"{tag}-unknown-short", (*cmd, "-Z")))
        if cmd not in (("demo",),):
            cases.append(Case(f"{tag}-missing-args", cmd))
    type_errors = [
        ("energy", "CCO", "--conformers", "abc"), ("energy", "CCO", "--charge", "abc"),
        ("energy", "CCO", "--charge", "1.5"), ("energy", "CCO", "--conformers", ""),
        ("energy", "CCO", "--conformers", "1e3"), ("energy", "-C"), ("energy", "-CCO"),
        ("energy", "CCO", "--conformers"), ("assign", "CCO", "-o"),
        ("qm", "CCO", "--conformers", "x"), ("qm", "CCO", "--workers", "two"),
        ("qm", "CCO", "--charge", "nan"), ("qm", "CCO", "--max-scf-cycles", "many"),
        ("torsiondrive", "CCCC", "--spacing", "1.5"), ("torsiondrive", "CCCC", "--spacing", "x"),
        ("sample", "CCO", "--conformers", "abc"), ("sample", "CCO", "--md", "hot"),
        ("sample", "CCO", "--frames", "ten"), ("sample", "CCO", "--seed", "0x"),
        ("sample", "CCO", "--temperature", "warm"),
        ("bespoke", "CCO", "--spacing", "fifteen"), ("bespoke", "CCO", "--workers", "1.5"),
        ("bespoke", "CCO", "--validation-conformers", "ten"), ("bespoke", "CCO", "--md-ps", "x"),
        ("bespoke", "CCO", "--fragment", "yes"), ("bespoke", "-C"),
        ("demo", "--workers", "x"),
        ("mlp", "train", "--model", "ani", "--train", "t.xyz", "--out", "m",
         "--committee", "x"),
        ("mlp", "train", "--model", "ani", "--train", "t.xyz", "--out", "m", "--seed", "1.5"),
        ("mlp", "train", "--model", "ani", "--train", "t.xyz", "--out", "m",
         "--time-budget", "soon"),
        ("mlp", "md", "m", "s.xyz", "--steps", "many", "-o", "t.xyz"),
        ("mlp", "md", "m", "s.xyz", "--steps", "10", "-o", "t.xyz", "--frame", "first"),
        ("liquid", "run", "CO", "--n", "abc"), ("liquid", "run", "CO", "--ns", "long"),
        ("liquid", "run", "CO", "--seed", ""), ("liquid", "run", "-C"),
        ("liquid", "fit", "l.csv", "--params", "vdw:*", "--iterations", "x"),
        ("liquid", "fit", "l.csv", "--n", "1.5", "--params", "vdw:*"),
        ("liquid", "fit", "l.csv"), ("fit", "s.yaml", "--out"),
    ]
    for k, argv in enumerate(type_errors):
        cases.append(Case(f"usage{k}-{argv[0]}", argv))
    return cases


def _file_reader_cases() -> list[Case]:
    cases = []
    for label, content in OFFXML_FILES:
        files = (("ff.offxml", content),)
        cases.append(Case(f"offxml-energy-{label}", ("energy", "CCO", "--ff", "ff.offxml"),
                          files))
        cases.append(Case(f"offxml-assign-{label}", ("assign", "CCO", "--ff", "ff.offxml",
                                                     "-o", "p.yaml"), files, ("p.yaml",)))
    for ff in ("nope", "openff-9.9.9", "missing.offxml", "../../etc/passwd", "x" * 5000,
               "gaff9", ""):
        cases.append(Case(f"ff-name-{ff[:20]}", ("energy", "CCO", "--ff", ff)))
    for label, content in YAML_SPECS:
        cases.append(Case(f"fit-{label}", ("fit", "spec.yaml", "--out", "fo"),
                          (("spec.yaml", content),), ("fo/forcefield.offxml", "PWNED")))
    cases.append(Case("fit-missing", ("fit", "nope.yaml")))
    cases.append(Case("fit-binary-no-suffix", ("fit", "blob"), (("blob", BINARY),)))
    for label, content in CSV_FILES:
        cases.append(Case(f"liquid-fit-{label}", ("liquid", "fit", "l.csv", "--params", "vdw:*",
                                                  "--out", "lf"), (("l.csv", content),),
                          ("lf/forcefield.offxml",)))
    cases.append(Case("liquid-fit-bad-param", ("liquid", "fit", "l.csv", "--params", "bond:x"),
                      (("l.csv", CSV_FILES[4][1]),)))
    for label, name, content in QCF_JSON:
        cases.append(Case(f"reference-{label}", ("bespoke", "CCCO", "--reference", name,
                                                 "--out", "out"), ((name, content),),
                          ("out/forcefield.offxml",)))
    for label, maker in MODEL_DIRS:
        files = (("test.xyz", WATER_XYZ.replace("water", "energy=-10.0")),)
        if maker is not None:
            files = (("model", maker), *files)
        outputs = ("PWNED", "t.xyz")
        cases.append(Case(f"mlp-eval-{label}", ("mlp", "eval", "model", "test.xyz"), files,
                          outputs))
        cases.append(Case(f"mlp-md-{label}", ("mlp", "md", "model", "test.xyz", "--steps", "5",
                                              "-o", "t.xyz"), files, outputs))
    for label, name, content in MOLECULE_FILES:
        if not name.endswith(".xyz") or label.startswith("fifo"):
            continue
        cases.append(Case(f"mlp-train-{label}", ("mlp", "train", "--model", "gpr", "--train",
                                                 "t.xyz", "--out", "m"),
                          (("t.xyz", content),), ("m/model.json",)))
    return cases


def _store_and_output_cases() -> list[Case]:
    stores = (("text", "this is not a database\n"), ("binary", BINARY), ("dir", "DIR"),
              ("foreign-sqlite", _foreign_sqlite), ("truncated", _truncated_store),
              ("corrupt", _corrupt_store), ("json", '{"records": []}'),
              ("fifo", _fifo), ("devzero", _symlink_to("/dev/zero")))
    cases = []
    for label, content in stores:
        files = (("s.db", content),)
        for cmd in (("qm", "CCO"), ("sample", "CCO", "--conformers", "2"),
                    ("torsiondrive", "CCCC", "--dihedral", "0,1,2,3")):
            cases.append(Case(f"store-{cmd[0]}-{label}", (*cmd, "--store", "s.db", "-o",
                                                         "o.xyz"), files, ("o.xyz",)))
    existing = (("f", "a file\n"),)
    cases += [
        Case("bespoke-out-file", ("bespoke", "CCCO", "--out", "f"), existing),
        Case("bespoke-out-under-file", ("bespoke", "CCCO", "--out", "f/sub"), existing),
        Case("liquid-run-out-file", ("liquid", "run", "CO", "--out", "f"), existing),
        Case("liquid-fit-out-file", ("liquid", "fit", "l.csv", "--params", "vdw:*", "--out",
                                     "f"), (*existing, ("l.csv", CSV_FILES[4][1]))),
        Case("fit-out-file", ("fit", "s.yaml", "--out", "f"), existing),
        Case("mlp-train-out-file", ("mlp", "train", "--model", "gpr", "--train", "t.xyz",
                                    "--out", "f"), existing),
        Case("assign-out-dir", ("assign", "CCO", "-o", "d.yaml"), (("d.yaml", "DIR"),)),
        Case("assign-out-bad-suffix", ("assign", "CCO", "-o", "p.txt"), (), ("p.txt",)),
        Case("assign-out-under-a-file", ("assign", "CCO", "-o", "f.yaml/p.yaml"),
             (("f.yaml", "text"),)),
        Case("qm-out-bad-suffix", ("qm", "CCO", "--store", "s.db", "-o", "q.png"),
             (("s.db", "text"),)),
        Case("bespoke-out-devnull", ("bespoke", "CCCO", "--out", "/dev/null")),
    ]
    for k, name in enumerate(("../evil", "/tmp/evil", "a/b", "..", ".", "x" * 300, "\x1b[2J")):
        cases.append(Case(f"bespoke-name{k}", ("bespoke", "C1CC", "--name", name, "--out",
                                               "out"), (), ("out/forcefield.offxml",)))
        cases.append(Case(f"liquid-name{k}", ("liquid", "run", "C1CC", "--name", name,
                                              "--out", "lq"), (), ("lq/result.json",)))
    return cases


def all_cases() -> list[Case]:
    """Every fuzz case (ids unique)."""
    cases = (_usage_cases() + _molecule_cases() + _file_reader_cases()
             + _store_and_output_cases())
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    return cases
