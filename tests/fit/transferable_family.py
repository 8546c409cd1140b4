"""Test-only family for shared-type fits: butane, pentane and hexane with MMFF94 torsion scans
(single-point mode, Gasteiger charges: seconds), and propane, which no shared type matches."""

from __future__ import annotations

from pathlib import Path

import yaml

from ffparam.chem import Molecule
from tests.fit.mmff_scan import mmff_scan, write_scan_extxyz

FAMILY = {"butane": "CCCC", "pentane": "CCCCC", "hexane": "CCCCCC"}
TYPE_SMIRKS = "[#6X4:1]-[#6X4;H2:2]-[#6X4;H2:3]-[#6X4:4]"
"""C-CH2-CH2-C: not a Sage SMIRKS; 1, 2 and 3 torsions in butane, pentane and hexane."""


def write_scans(tmp: Path, molecules: dict[str, str]) -> None:
    """One 30-degree MMFF94 relaxed scan of atoms (0, 1, 2, 3) per molecule, ``NAME.xyz``."""
    for name, smiles in molecules.items():
        molecule = Molecule.from_smiles(smiles).generate_conformers(1, seed=3)
        angles, geoms, energies = mmff_scan(molecule, (0, 1, 2, 3), spacing=30)
        write_scan_extxyz(tmp / f"{name}.xyz", molecule, (0, 1, 2, 3), angles, geoms, energies)


def family_spec(tmp: Path, molecules: dict[str, str], **overrides) -> Path:
    """A fit spec over ``molecules`` (one scan target each) with the shared type, written to
    ``tmp/spec.yaml``; ``overrides`` replace top-level keys."""
    spec = {
        "forcefield": "sage",
        "charges": "gasteiger",
        "molecules": {name: {"input": smiles} for name, smiles in molecules.items()},
        "targets": [{"name": f"{name}_scan", "type": "torsion_profile", "molecule": name,
                     "reference": f"{name}.xyz", "mode": "single_point"}
                    for name in molecules],
        "types": [{"section": "ProperTorsions", "id": "t-cc-ch2-ch2-cc",
                   "smirks": TYPE_SMIRKS, "periodicities": [1, 2, 3]}],
        "optimizer": {"name": "least_squares", "max_iterations": 30},
    }
    spec.update(overrides)
    path = tmp / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
