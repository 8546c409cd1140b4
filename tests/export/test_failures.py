"""Failures are loud and leave nothing that looks complete: tampered files are caught with
an error naming the term and the parameter; a failed export publishes nothing and keeps
an earlier export (and its manifest) untouched; forms a format cannot hold raise."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from ffparam.chem import Molecule
from ffparam.errors import ConventionError, ExportVerificationError, InputError
from ffparam.export import export_system, verify_export
from ffparam.params import Parameter, ParameterSet
from tests.mm.element_typed import element_typed_system


@pytest.fixture()
def exported(systems, tmp_path):
    system = systems("chlorothioanisole-sage")
    export_system(system, tmp_path)
    return system, tmp_path


def test_tampered_prmtop_charge_is_named(exported):
    system, outdir = exported
    path = outdir / "molecule.prmtop"
    text = path.read_text()
    start = text.index("\n", text.index("%FORMAT", text.index("%FLAG CHARGE"))) + 1
    charge = float(text[start:start + 16])  # AMBER stores q * 18.2223
    path.write_text(text[:start] + f"{charge + 0.05 * 18.2223:16.8E}" + text[start + 16:])
    with pytest.raises(ExportVerificationError) as err:
        verify_export(system, outdir, formats=["amber"])
    message = str(err.value)
    assert "largest term difference: electrostatics" in message
    assert "charge (e) of C0" in message and "\n" not in message
    verify_export(system, outdir, formats=["openmm", "gromacs"])  # the others still pass


def test_tampered_gromacs_torsion_k_is_named(exported):
    system, outdir = exported
    path = outdir / "molecule.top"
    head, tail = path.read_text().split("[ dihedrals ]")
    lines = tail.split("\n")
    row = next(n for n, line in enumerate(lines) if len(line.split()) == 8)
    fields = lines[row].split()
    fields[6] = repr(float(fields[6]) + 2.0)  # k in kJ/mol
    lines[row] = " ".join(fields)
    path.write_text(head + "[ dihedrals ]" + "\n".join(lines))
    atoms = "-".join(f"{system.molecule.symbols[int(a) - 1]}{int(a) - 1}" for a in fields[:4])
    with pytest.raises(ExportVerificationError,
                       match=rf"largest term difference: torsions .* torsion {atoms} "):
        verify_export(system, outdir, formats=["gromacs"])


def test_tampered_ffxml_and_system_xml(exported):
    system, outdir = exported
    path = outdir / "molecule.forcefield.xml"
    tree = ET.parse(path)
    proper = tree.getroot().find("PeriodicTorsionForce/Proper")
    proper.set("k1", repr(float(proper.get("k1")) * 3 + 1.0))
    tree.write(path)
    with pytest.raises(ExportVerificationError, match=r"ffxml .* torsions"):
        verify_export(system, outdir, formats=["ffxml"])
    path = outdir / "molecule.system.xml"
    text = path.read_text()
    first = text.index("<Particle eps=")
    path.write_text(text[:first] + text[first:].replace('q="', 'q="1', 1))
    with pytest.raises(ExportVerificationError, match=r"electrostatics .* charge"):
        verify_export(system, outdir, formats=["openmm"])


def _bad_extra(system) -> ParameterSet:
    """A Sage torsion the molecule uses, with k1 off by 1 kcal/mol."""
    par = next(p for section, p in system.parameters if section == "ProperTorsions")
    values = dict(par.values, k1=par.values["k1"] + 1.0)
    extra = ParameterSet()
    extra.add("ProperTorsions", Parameter(par.id, values, dict(par.fixed)))
    return extra


def test_failed_export_publishes_nothing(systems, tmp_path):
    system = systems("chlorothioanisole-sage")
    empty = tmp_path / "fresh"
    with pytest.raises(ExportVerificationError, match=r"offxml .* torsions"):
        export_system(system, empty, smirnoff="sage", extra=_bad_extra(system))
    assert list(empty.iterdir()) == []

    done = tmp_path / "done"
    export_system(system, done)
    before = {p.name: p.read_bytes() for p in done.iterdir()}
    with pytest.raises(ExportVerificationError):
        export_system(system, done, formats=("openmm", "offxml"), smirnoff="sage",
                      extra=_bad_extra(system))
    after = {p.name: p.read_bytes() for p in done.iterdir()}
    assert after == before  # old files and manifest untouched, no staging left behind


def _element_typed(smiles: str, **options):
    mol = Molecule.from_smiles(smiles, name=smiles).generate_conformers(2, seed=3,
                                                                         rms_threshold=0.0)
    rng = np.random.default_rng(3)
    mol = mol.with_conformers(mol.conformers + rng.normal(0, 0.05, mol.conformers.shape))
    return element_typed_system(mol, **options)


@pytest.mark.parametrize(("options", "fmt", "words"), [
    ({"morse": True}, "amber", "Morse bonds .* AMBER prmtop"),
    ({"morse": True}, "gromacs", "Morse bonds .* GROMACS"),
    ({"urey_bradley": True}, "ffxml", "Urey-Bradley .* OpenMM ffxml"),
    ({"nbfix": ("H", "O")}, "amber", "NBFIX .* AMBER"),
    ({"combining_rule": "geometric"}, "amber", "geometric combining rule .* AMBER"),
])
def test_unsupported_forms_raise(tmp_path, options, fmt, words):
    system = _element_typed("OCc1ccccc1", **options)
    with pytest.raises(ConventionError, match=words):
        export_system(system, tmp_path, formats=(fmt,))
    assert list(tmp_path.iterdir()) == []


def test_unsupported_forms_skipped_on_request(tmp_path):
    """With on_unsupported='skip' the other formats are written; the System XML, which
    carries every form, reproduces the Morse/harmonic-improper energies."""
    system = _element_typed("OCc1ccccc1", morse=True, harmonic_impropers=True)
    report = export_system(system, tmp_path, formats=("openmm", "ffxml", "gromacs", "amber"),
                           on_unsupported="skip")
    assert sorted(report.skipped) == ["amber", "ffxml", "gromacs"]
    assert "Morse bonds" in report.skipped["amber"]
    assert report.max_abs_de["openmm"] <= 1e-4
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "molecule.export.json", "molecule.pdb", "molecule.system.xml"]


def test_bad_arguments(systems, tmp_path):
    system = systems("cyclobutanol-sage")
    with pytest.raises(InputError, match="unknown export format"):
        export_system(system, tmp_path, formats=("pdb",))
    with pytest.raises(InputError, match="positions"):
        export_system(system, tmp_path, positions=np.zeros((2, 3, 3)))
    with pytest.raises(InputError, match=r"missing molecule\.top"):
        verify_export(system, tmp_path, formats=["gromacs"])


def test_stale_staging_of_a_killed_export_is_removed(systems, tmp_path):
    """A staging directory left by a killed export of the same basename is cleared; one
    of another basename (a concurrent export into the same directory) is left alone."""
    stale = tmp_path / ".ffparam-export-molecule-abc123"
    other = tmp_path / ".ffparam-export-fragment-def456"
    for path in (stale, other):
        path.mkdir()
        (path / "molecule.prmtop").write_text("half written")
    export_system(systems("cyclobutanol-sage"), tmp_path, formats=("amber",))
    assert not stale.exists() and other.exists()
    assert (tmp_path / "molecule.prmtop").read_text().startswith("%VERSION")


def test_truncated_file_is_a_verification_error(exported):
    system, outdir = exported
    path = outdir / "molecule.prmtop"
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(ExportVerificationError,
                       match=r"amber export molecule\.prmtop: .*AmberPrmtopFile cannot read it"):
        verify_export(system, outdir, formats=["amber"])
