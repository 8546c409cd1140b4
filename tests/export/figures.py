"""Print the export figures quoted in the issue-5 notes (not a test).

    OMP_NUM_THREADS=1 .venv/bin/python -m tests.export.figures

For each molecule (the test molecules plus three drug-like ones, Sage and GAFF2,
Gasteiger charges except where noted, 5 conformers displaced by 0.05 A noise): max |dE|
(kcal/mol) and max |dF| (kcal/mol/A) of every format read back, against MMEngine, and the
export wall time. Last, the reason for ffparam's own GROMACS writer: the same molecule
written by ParmEd's GROMACS writer and read back by OpenMM.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import parmed
from openmm import app

from ffparam.assign import assign_parameters
from ffparam.export import FORMATS, export_system
from ffparam.export.openmm_files import standard_system
from ffparam.export.terms import flat_terms
from ffparam.export.topology import openmm_topology
from ffparam.mm import MMEngine, evaluate_openmm
from tests.export.conftest import CASES, perturbed_molecule

DRUG_LIKE = {
    "ibuprofen": "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "diazepam": "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21",
    "celecoxib": "Cc1ccc(cc1)-c1cc(nn1-c1ccc(cc1)S(N)(=O)=O)C(F)(F)F",
}


def _cases() -> list[tuple[str, str, str, str]]:
    rows = [(name, smiles, ff, charges) for name, (smiles, ff, charges) in CASES.items()]
    for name, smiles in DRUG_LIKE.items():
        rows += [(f"{name}-sage", smiles, "sage", "gasteiger"),
                 (f"{name}-gaff2", smiles, "gaff2", "gasteiger")]
    return rows


def parmed_gromacs_error(system) -> float:
    """max |dE| kcal/mol of ParmEd's own .top writer, read back by OpenMM."""
    mol = system.molecule
    omm = standard_system(flat_terms(system), mol.masses, system.topology.exclusions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        struct = parmed.openmm.load_topology(openmm_topology(mol), omm, xyz=mol.conformers[0])
    with tempfile.TemporaryDirectory() as tmp:
        top = Path(tmp) / "parmed.top"
        struct.save(str(top), overwrite=True)
        read = app.GromacsTopFile(str(top)).createSystem(nonbondedMethod=app.NoCutoff,
                                                         constraints=None)
    energies, _, _ = evaluate_openmm(read, mol.conformers)
    ref = MMEngine(system).compute(mol.conformers, forces=False).energy.numpy()
    return float(np.abs(energies - ref).max())


def main() -> None:
    header = f"{'molecule':32s} {'atoms':>5s} " + " ".join(f"{f:>9s}" for f in FORMATS)
    print("max |dE| kcal/mol per format (max |dF| kcal/mol/A below), export wall time")
    print(header + "   time_s")
    worst = dict.fromkeys(FORMATS, 0.0)
    worst_f = dict.fromkeys(FORMATS, 0.0)
    systems = {}
    for name, smiles, ff, charges in _cases():
        mol = perturbed_molecule(smiles, name, n_conformers=5)
        system = assign_parameters(mol, ff, charges=charges)
        systems[name] = system
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            report = export_system(system, tmp)
            elapsed = time.perf_counter() - start
        de = [f"{report.max_abs_de[f]:9.1e}" if f in report.checks else f"{'skip':>9s}"
              for f in FORMATS]
        df = [f"{report.checks[f].max_abs_df:9.1e}" if f in report.checks else " " * 9
              for f in FORMATS]
        print(f"{name:32s} {mol.n_atoms:5d} " + " ".join(de) + f"   {elapsed:6.2f}")
        print(f"{'':32s} {'':5s} " + " ".join(df))
        for f, check in report.checks.items():
            worst[f] = max(worst[f], check.max_abs_de)
            worst_f[f] = max(worst_f[f], check.max_abs_df)
    print(f"{'worst':32s} {'':5s} " + " ".join(f"{worst[f]:9.1e}" for f in FORMATS))
    print(f"{'':32s} {'':5s} " + " ".join(f"{worst_f[f]:9.1e}" for f in FORMATS))
    print("\nParmEd's own GROMACS writer (bond lengths printed as %.5f nm), read by OpenMM:")
    for name in ("chlorothioanisole-sage", "cyclohexylammonium-sage", "celecoxib-sage",
                 "acetaminophen-gaff2"):
        print(f"  {name:30s} max |dE| {parmed_gromacs_error(systems[name]):.1e} kcal/mol")


if __name__ == "__main__":
    main()
