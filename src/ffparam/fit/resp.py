"""Two-stage RESP charges (Bayly, Cieplak, Cornell, Kollman, J. Phys. Chem. 97, 10269 (1993)).

The fit works in atomic units like AmberTools' ``resp`` program (whose restraint weights
a = 0.0005 and 0.001 are defined for potentials in Hartree/e and distances in Bohr):

* design matrix  A_pi = 1 / |r_p - R_i|  (1/Bohr), ESP V_p (Hartree/e);
* normal equations  (A^T A + diag(w_i)) q = A^T V  with Lagrange multipliers for the total
  charge (and any other charge-group constraints), equivalenced atoms sharing one unknown
  and frozen atoms moved to the right-hand side;
* hyperbolic restraint towards zero on restrained atoms: w_i = a / sqrt(q_i^2 + b^2),
  b = 0.1 e, iterated to self-consistency from a first solve with the harmonic weight
  w_i = a towards the initial charges — exactly the scheme of ``resp``'s ``rstran`` and
  ``charge_opt`` (its fixed point is the minimum of sum_p (V_p - V^_p)^2 +
  2 a sum_i (sqrt(q_i^2 + b^2) - b)). Hydrogens are unrestrained (``ihfree = 1``).

Two stages, as AmberTools' ``respgen`` sets them up:

1. a = 0.0005, all charges free; symmetry-equivalent atoms (by the bond graph without bond
   orders, so resonance partners too) share a charge except the methyl/methylene carbons
   and their hydrogens; total-charge constraint.
2. a = 0.001, only methyl/methylene carbons (sp3 carbon with >= 2 H) and their hydrogens
   are refitted, with symmetry equivalences; every other atom is frozen at its stage-1
   charge.

Units at the API: geometry and points in Angstrom, ESP in kcal/mol/e (the reference
layer's), charges in e.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ffparam.chem.topology import Topology
from ffparam.errors import CalculationError, InputError
from ffparam.params.system import ParameterizedSystem
from ffparam.units import BOHR_ANGSTROM, HARTREE_KCAL_MOL

STAGE1_A = 0.0005
STAGE2_A = 0.001
RESTRAINT_B = 0.1
MIN_POINT_DISTANCE = 0.5
"""ESP points closer than this (Angstrom) to a nucleus mean the points belong to another
geometry or atom order."""


@dataclass
class ChargeFit:
    """Result of one restrained fit: charges (N,) e, iterations, and the relative RMS of
    the ESP fit rrms = sqrt(sum (V - V^)^2 / sum V^2)."""

    charges: np.ndarray
    iterations: int
    rrms: float


@dataclass
class RESPResult:
    """Two-stage RESP: ``charges`` (N,) e are the final (stage 2) charges."""

    stage1: ChargeFit
    stage2: ChargeFit

    @property
    def charges(self) -> np.ndarray:
        return self.stage2.charges


# ---------------------------------------------------------------------- linear algebra
def esp_design_matrix(geometries, points) -> np.ndarray:
    """Inverse distances (m, N) in 1/Bohr between ESP points (m, 3) and atoms (N, 3),
    both Angstrom; for several conformers pass sequences and the rows are stacked."""
    if np.asarray(geometries, dtype=np.float64).ndim == 2:
        geometries, points = [geometries], [points]
    blocks = []
    for geometry, pts in zip(geometries, points, strict=True):
        geometry = np.asarray(geometry, dtype=np.float64)
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 3)
        dist = np.linalg.norm(pts[:, None, :] - geometry[None, :, :], axis=-1)
        if dist.size and dist.min() < MIN_POINT_DISTANCE:
            raise InputError(f"an ESP point is {dist.min():.2f} A from a nucleus: the points "
                             "do not belong to this geometry/atom order")
        blocks.append(BOHR_ANGSTROM / dist)
    return np.concatenate(blocks)


def unknowns_matrix(n_atoms: int, equivalences: Sequence[Sequence[int]],
                    frozen: dict[int, float]) -> np.ndarray:
    """(n_atoms, n_unknowns) 0/1 matrix T with q_free = T u: one unknown per equivalence
    group of free atoms, one per other free atom, none for frozen atoms."""
    owner = -np.ones(n_atoms, dtype=np.int64)
    n_free = 0
    for group in equivalences:
        members = [int(i) for i in group if int(i) not in frozen]
        if len(members) > 1 and all(owner[i] < 0 for i in members):
            owner[members] = n_free
            n_free += 1
    for i in range(n_atoms):
        if owner[i] < 0 and i not in frozen:
            owner[i] = n_free
            n_free += 1
    if n_free == 0:
        raise InputError("every charge is frozen: nothing to fit")
    t = np.zeros((n_atoms, n_free))
    t[owner >= 0, owner[owner >= 0]] = 1.0
    return t


def fit_charges(design: np.ndarray, esp_au: np.ndarray, total_charge: float,
                restraint_a: float, restrained: np.ndarray,
                equivalences: Sequence[Sequence[int]] = (),
                frozen: dict[int, float] | None = None, initial: np.ndarray | None = None,
                restraint_b: float = RESTRAINT_B, hyperbolic: bool = True,
                tolerance: float = 1e-10, max_iterations: int = 500) -> ChargeFit:
    """Restrained, constrained ESP fit (atomic units, see the module docstring).

    Args:
        design: (m, N) inverse distances, 1/Bohr.
        esp_au: (m,) potential, Hartree/e.
        total_charge: constraint on sum(q), e.
        restraint_a: restraint weight a (atomic units); 0 gives a plain ESP fit.
        restrained: (N,) bool, atoms that feel the restraint.
        equivalences: groups of atoms constrained to one common charge.
        frozen: atom -> fixed charge (e).
        initial: (N,) charges the harmonic first step restrains towards (default 0).
        hyperbolic: hyperbolic restraint towards 0 (else harmonic towards ``initial``).
    """
    n = design.shape[1]
    if design.shape[0] == 0:
        raise InputError("no ESP points to fit charges to")
    if esp_au.shape != (design.shape[0],):
        raise InputError(f"{esp_au.size} ESP values for {design.shape[0]} points")
    frozen = dict(frozen or {})
    q0 = np.zeros(n) if initial is None else np.asarray(initial, dtype=np.float64).copy()
    for i, value in frozen.items():
        q0[i] = value
    t = unknowns_matrix(n, equivalences, frozen)
    n_free = t.shape[1]
    fixed = np.zeros(n)
    for i, value in frozen.items():
        fixed[i] = value
    ata = design.T @ design
    atb = design.T @ esp_au
    weight_mask = np.asarray(restrained, dtype=bool) & (restraint_a > 0)

    def solve(weights: np.ndarray, rhs_extra: np.ndarray) -> np.ndarray:
        a = ata + np.diag(weights)
        b = atb + rhs_extra - a @ fixed
        lhs = np.zeros((n_free + 1, n_free + 1))
        lhs[:n_free, :n_free] = t.T @ a @ t
        ones = t.sum(0)
        lhs[:n_free, n_free] = ones
        lhs[n_free, :n_free] = ones
        rhs = np.concatenate([t.T @ b, [total_charge - fixed.sum()]])
        try:
            solution = np.linalg.solve(lhs, rhs)
        except np.linalg.LinAlgError:
            raise CalculationError("singular RESP equations (too few ESP points?)") from None
        return t @ solution[:n_free] + fixed

    harmonic = np.where(weight_mask, restraint_a, 0.0)
    q = solve(harmonic, harmonic * q0)
    iterations = 0
    while hyperbolic and weight_mask.any():
        iterations += 1
        weights = np.where(weight_mask, restraint_a / np.sqrt(q**2 + restraint_b**2), 0.0)
        new = solve(weights, np.zeros(n))
        change = np.sqrt(np.sum((new - q) ** 2)) / n
        q = new
        if change < tolerance:
            break
        if iterations >= max_iterations:
            raise CalculationError(f"RESP did not converge in {max_iterations} iterations")
    residual = esp_au - design @ q
    rrms = float(np.sqrt(np.sum(residual**2) / np.sum(esp_au**2)))
    return ChargeFit(q, iterations, rrms)


# ---------------------------------------------------------------------- two-stage RESP
def methyl_methylene_atoms(topology: Topology) -> np.ndarray:
    """(N,) bool: sp3 carbons with at least two hydrogens, and those hydrogens."""
    numbers = topology.molecule.atomic_numbers
    mask = np.zeros(topology.n_atoms, dtype=bool)
    for atom in range(topology.n_atoms):
        nbrs = topology.neighbours(atom)
        hydrogens = [j for j in nbrs if numbers[j] == 1]
        if numbers[atom] == 6 and len(nbrs) == 4 and len(hydrogens) >= 2:
            mask[atom] = True
            mask[hydrogens] = True
    return mask


def charge_symmetry_classes(topology: Topology) -> np.ndarray:
    """(N,) int64 classes of atoms equivalent by the element-labelled bond graph, ignoring
    bond orders and formal charges, so resonance partners share a class (the two oxygens of
    a carboxylate, the nitrogens of an amidinium) where :attr:`Topology.symmetry_classes`
    (which sees one Kekule structure) separates them."""
    from rdkit import Chem

    graph = Chem.RWMol(topology.molecule.rdmol)
    for bond in graph.GetBonds():
        bond.SetBondType(Chem.BondType.SINGLE)
        bond.SetIsAromatic(False)
    for atom in graph.GetAtoms():
        atom.SetFormalCharge(0)
        atom.SetIsAromatic(False)
        atom.SetNoImplicit(True)
    graph.UpdatePropertyCache(strict=False)
    Chem.FastFindRings(graph)
    ranks = Chem.CanonicalRankAtoms(graph, breakTies=False, includeChirality=False)
    return np.unique(np.array(list(ranks)), return_inverse=True)[1].astype(np.int64)


def symmetry_groups(topology: Topology, atoms: np.ndarray) -> list[list[int]]:
    """Groups (size > 1) of equivalent atoms (:func:`charge_symmetry_classes`) among
    ``atoms`` (bool mask)."""
    classes = charge_symmetry_classes(topology)
    groups: dict[int, list[int]] = {}
    for i in np.nonzero(atoms)[0]:
        groups.setdefault(int(classes[i]), []).append(int(i))
    return [g for g in groups.values() if len(g) > 1]


def esp_to_atomic_units(esp) -> np.ndarray:
    """kcal/mol/e -> Hartree/e."""
    return np.asarray(esp, dtype=np.float64).reshape(-1) / HARTREE_KCAL_MOL


def resp(topology: Topology, geometries, points, esp, total_charge: int | None = None,
         stage1_a: float = STAGE1_A, stage2_a: float = STAGE2_A,
         restraint_b: float = RESTRAINT_B) -> RESPResult:
    """Two-stage RESP charges for ``topology``'s molecule.

    Args:
        geometries: (N, 3) Angstrom, or a sequence of conformers (multi-conformer RESP).
        points: (m, 3) Angstrom ESP points (or one array per conformer).
        esp: (m,) kcal/mol/e (or one array per conformer).
        total_charge: e; default the molecule's formal charge.
    """
    single = np.asarray(geometries, dtype=np.float64).ndim == 2
    geoms = [geometries] if single else list(geometries)
    pts = [points] if single else list(points)
    values = [esp] if single else list(esp)
    n = topology.n_atoms
    for g in geoms:
        if np.asarray(g).shape != (n, 3):
            raise InputError(f"geometry has shape {np.asarray(g).shape}, molecule needs ({n}, 3)")
    if any(np.asarray(p).size == 0 for p in pts):
        raise InputError("no ESP points to fit charges to")
    design = esp_design_matrix(geoms, pts)
    esp_au = np.concatenate([esp_to_atomic_units(v) for v in values])
    if not np.all(np.isfinite(esp_au)):
        raise InputError("non-finite ESP value")
    charge = topology.molecule.total_charge if total_charge is None else total_charge
    heavy = topology.molecule.atomic_numbers > 1
    refit = methyl_methylene_atoms(topology)
    stage1 = fit_charges(design, esp_au, charge, stage1_a, heavy,
                         symmetry_groups(topology, ~refit), restraint_b=restraint_b)
    if not refit.any():
        return RESPResult(stage1, stage1)
    frozen = {int(i): float(stage1.charges[i]) for i in np.nonzero(~refit)[0]}
    stage2 = fit_charges(design, esp_au, charge, stage2_a, heavy,
                         symmetry_groups(topology, refit), frozen=frozen,
                         initial=stage1.charges, restraint_b=restraint_b)
    return RESPResult(stage1, stage2)


# ---------------------------------------------------------------------- systems and files
def apply_charges(system: ParameterizedSystem, charges) -> ParameterizedSystem:
    """A copy of ``system`` whose ``Charges`` parameters hold ``charges`` (N,) e. Atoms that
    share a charge id must get equal charges."""
    charges = np.asarray(charges, dtype=np.float64)
    if charges.shape != (system.n_atoms,):
        raise InputError(f"{charges.size} charges for {system.n_atoms} atoms")
    if not np.all(np.isfinite(charges)):
        raise InputError("non-finite charge")
    params = system.parameters.copy()
    keys = params.keys()
    by_key: dict[int, list[int]] = {}
    for atom, index in enumerate(system.nonbonded.charge_index.tolist()):
        by_key.setdefault(index, []).append(atom)
    for index, atoms in by_key.items():
        values = charges[atoms]
        if np.ptp(values) > 1e-6:
            raise InputError(f"atoms {atoms} share charge parameter {keys[index]} but get "
                             f"different charges {np.round(values, 4).tolist()}")
        key = keys[index]
        params.sections[key.section][key.id].values[key.field] = float(values.mean())
    return system.with_parameters(params)


def write_resp_espot(path: str | Path, geometry, points, esp) -> Path:
    """Write AmberTools ``resp``'s ESP file: ``natom npoint`` (2I5), atoms (17X,3E16.7)
    and points ``V x y z`` (1X,4E16.7), coordinates in Bohr and V in Hartree/e (from
    Angstrom and kcal/mol/e)."""
    geometry = np.asarray(geometry, dtype=np.float64) / BOHR_ANGSTROM
    pts = np.asarray(points, dtype=np.float64) / BOHR_ANGSTROM
    values = esp_to_atomic_units(esp)
    lines = [f"{len(geometry):5d}{len(pts):5d}"]
    lines += [" " * 17 + "".join(f"{c:16.7E}" for c in xyz) for xyz in geometry]
    lines += [" " + "".join(f"{c:16.7E}" for c in (v, *xyz)) for v, xyz in zip(values, pts)]
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path
