"""Small real molecules with Sage (AM1-BCC charges) and deliberately perturbed copies."""

from __future__ import annotations

import numpy as np
import pytest

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.params.system import ParameterizedSystem

CCCC = "[#6X4:1]-[#6X4:2]-[#6X4:3]-[#6X4:4]"
CC_BOND = "[#6X4:1]-[#6X4:2]"


def perturbed(system: ParameterizedSystem, section: str, pid: str, field: str,
              delta: float | None = None, value: float | None = None) -> ParameterizedSystem:
    """A copy of ``system`` with one parameter field shifted by ``delta`` or set to ``value``."""
    params = system.parameters.copy()
    values = params.get(section, pid).values
    values[field] = value if value is not None else values[field] + delta
    return system.with_parameters(params)


@pytest.fixture(scope="session")
def butane() -> Molecule:
    return Molecule.from_smiles("CCCC", name="butane").generate_conformers(1, seed=5)


@pytest.fixture(scope="session")
def butane_sage(butane) -> ParameterizedSystem:
    return assign_parameters(butane, "sage", charges="am1bcc")


@pytest.fixture(scope="session")
def ethanol() -> Molecule:
    return Molecule.from_smiles("CCO", name="ethanol").generate_conformers(1, seed=5)


@pytest.fixture(scope="session")
def ethanol_sage(ethanol) -> ParameterizedSystem:
    return assign_parameters(ethanol, "sage", charges="am1bcc")


@pytest.fixture(scope="session")
def butane_variants(butane_sage) -> dict[str, ParameterizedSystem]:
    """Sage; the C-C-C-C torsion's periodicity-1 term (phase 180 degrees) with k + 3
    kcal/mol, which lowers gauche against anti by 4.5 kcal/mol; the C-C bond length
    + 0.05 A."""
    torsion = butane_sage.parameters.get("ProperTorsions", CCCC)
    n1 = next(f"k{n}" for n in range(1, torsion.n_terms() + 1)
              if torsion.fixed[f"periodicity{n}"] == 1)
    assert abs(torsion.values[f"phase{n1[1:]}"] - np.pi) < 1e-9
    return {
        "start": butane_sage,
        "torsion": perturbed(butane_sage, "ProperTorsions", CCCC, n1, delta=3.0),
        "bond": perturbed(butane_sage, "Bonds", CC_BOND, "length", delta=0.05),
    }


def pairwise_min_rmsd(geometries: np.ndarray) -> float:
    from ffparam.validate import kabsch_rmsd

    best = np.inf
    for i in range(len(geometries)):
        for j in range(i):
            best = min(best, kabsch_rmsd(geometries[i], geometries[j]))
    return best
