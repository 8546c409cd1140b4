"""QM/MM and IPolQ benchmarks (issue 17, point 2).

1. Accuracy of ffparam's QM/MM against PySCF's own ``qmmm.mm_charge`` called directly with
   the same point charges (built here from the record's charges and positions): energy
   (Hartree), gradients on QM and MM atoms (Hartree/Bohr), for a water in 4 TIP3P waters
   and for methanol in a solvent-shell snapshot of ``ffparam qmmm`` (TIP3P water within
   9 Angstrom); MM-atom gradients against central finite differences.
2. IPolQ charges (HF/6-31G*, solute frozen at its HF/6-31G* gas-phase minimum, 300 TIP3P
   waters, 9 Angstrom QM/MM cutoff, 10 ps NPT equilibration, 4 snapshots 2 ps apart) of
   water, methanol, ethanol, acetamide and N-methylacetamide: dipole moments of the QM
   density (gas, mean in water) and of the point charges (RESP gas, RESP water, IPolQ,
   AM1-BCC) at the same geometry.

Usage: nice python benchmarks/bench_qmmm.py [--quick]   (--quick: part 1 and 2 molecules)
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from pyscf import gto, qmmm, scf

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.reference import Store
from ffparam.reference.qmmm import Environment, compute_qmmm, embedded_calculator, split_region
from ffparam.units import DEBYE_E_ANGSTROM, HARTREE_BOHR_TO_KCAL_MOL_A, HARTREE_KCAL_MOL
from ffparam.workflows.bespoke_charges import optimized_geometry
from ffparam.workflows.ipolq import ipolq_charges
from ffparam.workflows.qmmm import QMMMSettings, run_qmmm

METHOD = "hf/6-31g*[scf_tolerance=1e-11]"
MOLECULES = {"water": "O", "methanol": "CO", "ethanol": "CCO", "acetamide": "CC(N)=O",
             "N-methylacetamide": "CNC(C)=O"}


def direct(record) -> tuple[float, float, float]:
    """|dE| (Hartree), max |dg_QM|, max |dg_MM| (Hartree/Bohr) of ``record`` against
    PySCF's qmmm with the same charges, RHF/6-31G*, conv_tol 1e-11."""
    mol = gto.M(atom=[(int(z), tuple(p)) for z, p in zip(record.species.numbers,
                                                         record.geometry)],
                basis="6-31g*", unit="Angstrom", verbose=0)
    mf = qmmm.mm_charge(scf.RHF(mol), record.mm_positions, record.mm_charges, unit="Angstrom")
    mf.conv_tol = 1e-11
    energy = mf.kernel()
    grad = mf.nuc_grad_method()
    g_qm = grad.kernel()
    g_mm = grad.grad_hcore_mm(mf.make_rdm1()) + grad.grad_nuc_mm()
    return (abs(record.energy / HARTREE_KCAL_MOL - energy),
            float(np.abs(record.gradient / HARTREE_BOHR_TO_KCAL_MOL_A - g_qm).max()),
            float(np.abs(record.mm_gradient / HARTREE_BOHR_TO_KCAL_MOL_A - g_mm).max()))


def finite_difference_error(record, step: float = 1e-3, n_checks: int = 6) -> float:
    """Max |analytic - central FD| of MM-charge gradients (kcal/mol/A), first ``n_checks``
    coordinates."""
    calc = embedded_calculator(METHOD, record.species,
                               Environment(record.mm_charges, record.mm_positions))
    worst = 0.0
    for flat in range(n_checks):
        atom, axis = divmod(flat, 3)
        energies = []
        for sign in (1.0, -1.0):
            moved = record.mm_positions.copy()
            moved[atom, axis] += sign * step
            calc.environment = Environment(record.mm_charges, moved)
            energies.append(calc.compute(record.geometry).energy)
        fd = (energies[0] - energies[1]) / (2 * step)
        worst = max(worst, abs(fd - record.mm_gradient[atom, axis]))
    return worst


def accuracy(workdir: Path) -> None:
    water = Molecule.from_smiles("O", name="water").generate_conformers(1, seed=7)
    system = assign_parameters(water, "sage")
    x0 = water.conformers[0]
    offsets = [[2.9, 0.3, 0.1], [-1.2, 2.7, 0.4], [0.4, -2.4, 1.6], [0.2, 0.5, -2.9]]
    region = split_region([system] * 5, [x0] + [x0 + np.array(o) for o in offsets], [0])
    cluster = compute_qmmm([region], METHOD)[0][0]
    start = time.perf_counter()
    shell = run_qmmm("CO", workdir / "accuracy_methanol", QMMMSettings(method=METHOD, n_frames=1))
    md_s = time.perf_counter() - start
    print(f"{'case':28s} {'charges':>7s} {'|dE| Eh':>9s} {'|dg_QM|':>9s} {'|dg_MM|':>9s} "
          f"{'FD err kcal/mol/A':>17s}")
    for label, record in (("water in 4 waters", cluster),
                          ("methanol, 9 A water shell", shell.records[0])):
        de, dqm, dmm = direct(record)
        print(f"{label:28s} {len(record.mm_charges):7d} {de:9.1e} {dqm:9.1e} {dmm:9.1e} "
              f"{finite_difference_error(record):17.1e}")
    print(f"(methanol snapshot: MD + QM/MM {md_s:.0f} s; gradient norm on MM charges "
          f"{np.linalg.norm(shell.records[0].mm_gradient):.2f} kcal/mol/A)")


def ipolq_table(names: list[str], workdir: Path) -> None:
    settings = QMMMSettings(method="hf/6-31g*")
    print(f"\n{'molecule':18s} {'QM gas':>7s} {'QM water':>8s} {'RESP gas':>8s} "
          f"{'RESP water':>10s} {'IPolQ':>6s} {'AM1-BCC':>7s} {'rms IPolQ-BCC':>13s} {'wall s':>6s}"
          "   (dipoles in Debye)")
    for name in names:
        start = time.perf_counter()
        molecule = Molecule.from_smiles(MOLECULES[name], name=name).generate_conformers(1, seed=7)
        system = assign_parameters(molecule, "sage", charges="am1bcc")
        out = workdir / name
        with Store(out / "qmmm.sqlite") as store:
            geometry = optimized_geometry(system, "hf/6-31g*", store, None, "IPolQ")
            result = ipolq_charges(system, out, settings, store, None, geometry)
        bcc = system.charges()
        print(f"{name:18s} {result.qm_dipole_gas_debye:7.3f} {result.qm_dipole_water_debye:8.3f} "
              f"{result.charge_dipole_debye(result.gas_charges):8.3f} "
              f"{result.charge_dipole_debye(result.water_charges):10.3f} "
              f"{result.charge_dipole_debye(result.charges):6.3f} "
              f"{result.charge_dipole_debye(bcc):7.3f} "
              f"{np.sqrt(np.mean((result.charges - bcc) ** 2)):13.3f} "
              f"{time.perf_counter() - start:6.0f}")
        print("  IPolQ charges:", " ".join(f"{s}{q:+.3f}" for s, q in
                                           zip(molecule.symbols, result.charges)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(f"# bench_qmmm on {platform.node()} ({os.cpu_count()} CPUs, load "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}), {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"1 Debye = {DEBYE_E_ANGSTROM} e*A\n")
    with tempfile.TemporaryDirectory() as tmp:
        accuracy(Path(tmp))
        names = list(MOLECULES)[:2] if args.quick else list(MOLECULES)
        ipolq_table(names, Path(tmp))


if __name__ == "__main__":
    main()
