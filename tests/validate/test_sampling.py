"""Held-out geometries: torsion-randomized MMFF94 relaxation spreads dihedrals over the full
circle (barriers included), keeps the rest relaxed, honours the energy cap, and samples the
right rotors."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit.Chem import rdForceFieldHelpers

from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.validate.sampling import held_out_geometries, randomize_torsions, sampled_dihedrals
from tests.validate.conftest import pairwise_min_rmsd


def test_sampled_rotors_skip_methyl_but_keep_phenyl_and_amide():
    acetanilide = Molecule.from_smiles("CC(=O)Nc1ccccc1")
    central = {tuple(sorted(q[1:3])) for q in sampled_dihedrals(acetanilide)}
    assert central == {(1, 3), (3, 4)}  # amide C-N and N-phenyl; not the methyl C0-C1
    butane = Molecule.from_smiles("CCCC")
    assert [tuple(sorted(q[1:3])) for q in sampled_dihedrals(butane)] == [(1, 2)]
    ethanol = Molecule.from_smiles("CCO")
    assert [tuple(sorted(q[1:3])) for q in sampled_dihedrals(ethanol)] == [(1, 2)]  # C-OH


@pytest.mark.stochastic
def test_randomized_torsions_cover_the_circle_and_hold(butane, seed):
    """120 uniform targets: a sextant of the circle gets fewer than 2 of them with
    probability 6 x 1e-8, and no target lands within 20 degrees of syn (or of anti) with
    (8/9)^120 = 7e-7 (with the former 40 targets these were 4 % and 2 % of the seeds)."""
    n = 120
    starts = butane.generate_conformers(n, seed=seed, rms_threshold=0.0, optimize=None)
    geometries, energies = randomize_torsions(butane, starts.conformers, seed=seed)
    targets = np.random.default_rng(seed).uniform(-180.0, 180.0, n)
    phi = np.degrees([_dihedral(g, 0, 1, 2, 3) for g in geometries])
    assert np.abs((phi - targets + 180.0) % 360.0 - 180.0).max() < 0.5  # restraint held
    assert np.histogram(phi, bins=6, range=(-180, 180))[0].min() >= 2  # all sextants
    # independent MMFF94 energies of the returned geometries, unrestrained
    props = rdForceFieldHelpers.MMFFGetMoleculeProperties(butane.rdmol)
    mol = butane.with_conformers(geometries).rdmol
    for k in (0, 17, 39):
        field = rdForceFieldHelpers.MMFFGetMoleculeForceField(mol, props, confId=k)
        assert field.CalcEnergy() == pytest.approx(energies[k], abs=1e-6)
    # everything but the dihedral is relaxed: bond lengths at MMFF94 values (raw ETKDG
    # scatters them by several hundredths of an Angstrom)
    cc = np.linalg.norm(geometries[:, 1] - geometries[:, 2], axis=-1)
    assert np.all(np.abs(cc - 1.51) < 0.05)
    # syn barrier (phi near 0) is about 5-6 kcal/mol above anti in MMFF94
    syn, anti = np.abs(phi) < 20.0, np.abs(phi) > 160.0
    assert syn.any() and anti.any()
    assert 3.0 < energies[syn].mean() - energies[anti].mean() < 9.0


@pytest.mark.stochastic
def test_energy_cap_and_pruning(butane, seed):
    # the cap and the RMSD pruning hold by construction; a high-energy candidate (|phi| <
    # ~100 degrees of butane's circle is above 2 kcal/mol) is among the candidates for any
    # seed
    held = held_out_geometries(butane, 10, seed=seed, max_energy_kcal_mol=2.0)
    phi = np.degrees([_dihedral(g, 0, 1, 2, 3) for g in held.geometries])
    assert held.n_high_energy > 0 and not np.any(np.abs(phi) < 40.0)  # no near-syn left
    assert pairwise_min_rmsd(held.geometries) > 0.25
    assert held.n_candidates >= len(held.geometries) + held.n_high_energy
    with pytest.raises(InputError, match="relax"):
        held_out_geometries(butane, 3, seed=1, relax="md")


def _dihedral(x, i, j, k, m):
    b0, b1, b2 = x[j] - x[i], x[k] - x[j], x[m] - x[k]
    n1, n2 = np.cross(b0, b1), np.cross(b1, b2)
    return np.arctan2(np.dot(np.cross(n1, n2), b1 / np.linalg.norm(b1)), np.dot(n1, n2))
