"""Drude oscillators: per-atom-type polarizability and Thole screening, bound to a system.

A polarizable atom carries a Drude particle of charge ``q_D`` on a harmonic spring to its
parent (core). Conventions (internal units):

* spring ``E = k_D/2 |d|^2`` with ``k_D`` in kcal/mol/A^2 (default 1000, the CHARMM Drude
  value; CHARMM writes it as ``K_D = 500`` in its ``E = K_D |d|^2`` convention: using 500
  in the ``k/2`` convention is the trap, it gives Drude charges too small by sqrt(2));
* isotropic polarizability ``alpha = C q_D^2 / k_D`` (A^3) with ``C`` the Coulomb constant
  332.0637 kcal/mol A/e^2, so ``q_D = -sqrt(k_D alpha / C)`` (e; negative, as CHARMM);
  OpenMM's ``DrudeForce`` takes (q_D, alpha) and builds ``k = C q_D^2 / alpha`` with
  ``E = k/2 |d|^2``, the same spring;
* the parent (core) charge is ``q - q_D`` where ``q`` is the atom's charge of the
  ``Charges`` section, so the atom's total charge is unchanged;
* Thole screening of the induced dipoles of atoms that are 1-2 or 1-3 (excluded pairs):
  pair factor ``a = thole_i + thole_j`` (per-type value, CHARMM default 1.3 each; OpenMM's
  ``DrudeGenerator`` sums them the same way), ``u = a r / (alpha_i alpha_j)^(1/6)``,
  screening ``S(u) = 1 - (1 + u/2) exp(-u)`` on each of the four charge pairs of the two
  dipoles (Drude ``q_D`` and core ``-q_D``), as OpenMM ``DrudeForce`` screened pairs.

The parameters live in section ``Drude`` of the :class:`ParameterSet` under a type id
(fields ``alpha`` in A^3 and ``thole``, dimensionless), so they are entries of the flat
vector and can be fitted like any other field.

Optional field ``hbond_thole`` (dimensionless ``a``; CHARMM Drude's NBTHOLE idea applied to
hydrogen bonds): Thole screening of the interaction of this type's Drude dipole with the
charge of every H-bond donor hydrogen (an H bonded to N, O or S) it has a full nonbonded
pair with (other molecules; 1-2, 1-3 and 1-4 pairs are left alone). The bare
``C q_D q_H (1/r_DH - 1/r_cH)`` (Drude D and its core c) becomes
``C q_D q_H (S(u_DH)/r_DH - S(u_cH)/r_cH)``, ``S(u) = 1 - (1 + u/2) exp(-u)``,
``u = a r / alpha^(1/3)`` (the hydrogen carries no polarizability, so the Thole width is
the acceptor's alone). It vanishes for an unpolarized Drude (d = 0): permanent charges are
untouched; it softens the short-range pull of a donor H on the acceptor's Drude, the
over-polarized H bond (polarization catastrophe) of point Drudes in alcohols.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ffparam.errors import InputError
from ffparam.params.parameter_set import Parameter, ParameterKey, ParameterSet
from ffparam.params.system import ParameterizedSystem
from ffparam.units import COULOMB_CONSTANT_KCAL_MOL_A_E2

DRUDE_SECTION = "Drude"
DRUDE_K_KCAL_MOL_A2 = 1000.0
"""Default Drude spring constant, E = k/2 d^2 (CHARMM Drude K_D = 500 in E = K_D d^2)."""
DEFAULT_THOLE = 1.3
"""CHARMM Drude default per-atom Thole factor (pair factor 2.6)."""
DRUDE_MASS_AMU = 0.4
"""Mass moved from the parent to its Drude particle for dynamics (CHARMM Drude/OpenMM)."""

STARTING_ALPHA_A3: dict[str, float] = {
    "C": 1.2, "N": 1.1, "O": 0.9, "F": 0.5, "P": 2.8, "S": 2.8, "Cl": 2.4, "Br": 3.4,
    "I": 5.2,
}
"""Starting guesses of the polarizability (A^3) of a heavy atom *including* its
hydrogens' share (one hydrogen adds :data:`HYDROGEN_SHARE_A3`); values to fit from, not
fitted values: rounded, and kept low enough that aromatic rings with Thole 1.3 stay
clear of the polarization catastrophe (benzene's Drude Hessian turns indefinite near
alpha(CH) = 1.9 A^3)."""
HYDROGEN_SHARE_A3 = 0.3
HBOND_THOLE_FIELD = "hbond_thole"
"""Optional Drude field: Thole factor of the H-bond screening (module docstring)."""
DONOR_ELEMENTS = (7, 8, 16)
"""Atomic numbers whose hydrogens are H-bond donors for ``hbond_thole`` (N, O, S)."""


@dataclass
class DrudeTerms:
    """The Drude particles of a system.

    Attributes:
        parents: int64 (n_drude,) atom index of each Drude particle's parent, ascending.
        type_ids: (n_drude,) id in section ``Drude`` of each.
        alpha_index, thole_index: int64 (n_drude,) into ``ParameterSet.vector()``.
        screened: int64 (n_pairs, 2) Drude indices (into ``parents``) whose parents are
            1-2 or 1-3 (excluded pairs): Thole-screened dipole-dipole interactions.
        k_kcal_mol_a2: spring constant, E = k/2 |d|^2.
        hbond_index: int64 (n_drude,) index of each Drude's ``hbond_thole`` into the
            vector, -1 where its type has none (module docstring).
        donors: int64 (n_donors,) atom indices of the H-bond donor hydrogens.
        hbond_pairs: int64 (n, 2) (Drude index, donor atom) full nonbonded pairs of the
            system (different molecules of one system, or far apart in one) whose Drude
            type has ``hbond_thole``.
    """

    parents: np.ndarray
    type_ids: list[str]
    alpha_index: np.ndarray
    thole_index: np.ndarray
    screened: np.ndarray
    k_kcal_mol_a2: float = DRUDE_K_KCAL_MOL_A2
    hbond_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    donors: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    hbond_pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))

    def __len__(self) -> int:
        return len(self.parents)

    def alphas(self, vector: np.ndarray) -> np.ndarray:
        """Polarizabilities (n_drude,) in A^3 from a parameter vector."""
        return np.asarray(vector)[self.alpha_index]

    def charges(self, vector: np.ndarray) -> np.ndarray:
        """Drude charges (n_drude,) in e: -sqrt(k alpha / C)."""
        return drude_charge(self.alphas(vector), self.k_kcal_mol_a2)


def drude_charge(alpha_a3, k_kcal_mol_a2: float = DRUDE_K_KCAL_MOL_A2):
    """Drude charge q_D = -sqrt(k alpha / C) in e (works on floats, arrays and tensors)."""
    return -(k_kcal_mol_a2 * alpha_a3 / COULOMB_CONSTANT_KCAL_MOL_A_E2) ** 0.5


def element_drude_types(system: ParameterizedSystem, hydrogens: bool = False
                        ) -> list[str | None]:
    """Default Drude typing: every heavy atom gets ``<element><hybridization>`` (``C3``,
    ``C2``, ``Car``, ``O2``...), with ``hydrogens`` also ``H<count>`` of its attached
    hydrogens (``C3H3``, ``CarH1``; the typing of polarizability fits, where the
    hydrogens' share differs by count); hydrogens get none (their polarizability is
    lumped onto the parent, as in CHARMM Drude)."""
    types: list[str | None] = []
    for atom in system.molecule.rdmol.GetAtoms():
        if atom.GetAtomicNum() == 1:
            types.append(None)
            continue
        hyb = "ar" if atom.GetIsAromatic() else str(atom.GetHybridization())[-1]
        n_h = f"H{atom.GetTotalNumHs(includeNeighbors=True)}" if hydrogens else ""
        types.append(f"{atom.GetSymbol()}{hyb}{n_h}")
    return types


def starting_drude_parameters(system: ParameterizedSystem, types: Sequence[str | None]
                              ) -> ParameterSet:
    """A ``Drude`` section with a starting alpha per type (:data:`STARTING_ALPHA_A3` plus
    the hydrogens of the first atom of that type) and the default Thole factor."""
    out = ParameterSet()
    mol = system.molecule
    for i, tid in enumerate(types):
        if tid is None or (DRUDE_SECTION, tid) in out:
            continue
        symbol = mol.symbols[i]
        if symbol not in STARTING_ALPHA_A3:
            raise InputError(f"no starting polarizability for element {symbol} (type {tid}); "
                             "give its alpha in the Drude section")
        n_h = sum(1 for j in system.topology.neighbours(i) if mol.symbols[j] == "H")
        alpha = STARTING_ALPHA_A3[symbol] + HYDROGEN_SHARE_A3 * n_h
        out.add(DRUDE_SECTION, Parameter(tid, {"alpha": alpha, "thole": DEFAULT_THOLE}))
    return out


def check_drude_parameters(source: ParameterSet, types: Sequence[str | None]) -> None:
    """One-line InputError for a type without a Drude parameter or polarizability, a
    negative or zero alpha, or a non-positive Thole factor (before any calculation)."""
    for tid in dict.fromkeys(t for t in types if t is not None):
        if (DRUDE_SECTION, tid) not in source:
            raise InputError(f"Drude type {tid!r} has no polarizability (no {DRUDE_SECTION} "
                             "parameter)")
        values = source.get(DRUDE_SECTION, tid).values
        if "alpha" not in values:
            raise InputError(f"Drude type {tid!r} has no polarizability (alpha)")
        alpha = values["alpha"]
        if not math.isfinite(alpha) or alpha <= 0:
            raise InputError(f"Drude type {tid!r}: polarizability alpha must be positive "
                             f"(A^3), got {alpha}")
        thole = values.get("thole", DEFAULT_THOLE)
        if not math.isfinite(thole) or thole <= 0:
            raise InputError(f"Drude type {tid!r}: Thole factor must be positive, got {thole}")
        hbond = values.get(HBOND_THOLE_FIELD, 1.0)
        if not math.isfinite(hbond) or hbond <= 0:
            raise InputError(f"Drude type {tid!r}: {HBOND_THOLE_FIELD} must be positive, "
                             f"got {hbond}")


def add_drude(system: ParameterizedSystem, types: Sequence[str | None] | None = None,
              source: ParameterSet | None = None,
              k_kcal_mol_a2: float = DRUDE_K_KCAL_MOL_A2) -> ParameterizedSystem:
    """A copy of ``system`` with Drude particles on the atoms whose type is not None.

    Args:
        system: a fixed-charge system (its ``Charges`` are the atoms' total charges).
        types: per-atom Drude type id or None (default :func:`element_drude_types`).
        source: parameters holding section ``Drude`` (default
            :func:`starting_drude_parameters`); only the used types are copied.
        k_kcal_mol_a2: spring constant, E = k/2 d^2 (kcal/mol/A^2).
    """
    types = list(element_drude_types(system) if types is None else types)
    if len(types) != system.n_atoms:
        raise InputError(f"need one Drude type (or None) per atom ({system.n_atoms}), "
                         f"got {len(types)}")
    if not k_kcal_mol_a2 > 0:
        raise InputError(f"Drude spring constant must be positive, got {k_kcal_mol_a2}")
    source = starting_drude_parameters(system, types) if source is None else source
    check_drude_parameters(source, types)
    params = system.parameters.copy()
    params.sections.pop(DRUDE_SECTION, None)
    for tid in dict.fromkeys(t for t in types if t is not None):
        values = dict(source.get(DRUDE_SECTION, tid).values)
        values.setdefault("thole", DEFAULT_THOLE)
        params.add(DRUDE_SECTION, Parameter(tid, values))
        for fname in values:
            key = ParameterKey(DRUDE_SECTION, tid, fname)
            if key in source.free:
                params.free[key] = source.free[key]
    params.settings["drude_k_kcal_mol_a2"] = float(k_kcal_mol_a2)
    return _rebind(system, params, types, float(k_kcal_mol_a2))


def _rebind(system: ParameterizedSystem, params: ParameterSet, types: list[str | None],
            k: float) -> ParameterizedSystem:
    """``system`` re-indexed into ``params`` (which has gained or lost fields) with the
    Drude terms of ``types``."""
    remap = np.array([-1 if key.section == DRUDE_SECTION else params.index(key)
                      for key in system.parameters.keys()], dtype=np.int64)

    def moved(index: np.ndarray) -> np.ndarray:
        return remap[np.asarray(index, dtype=np.int64)] if len(index) else index

    terms = [replace(g, param_index={f: moved(i) for f, i in g.param_index.items()})
             for g in system.terms]
    nb = system.nonbonded
    nonbonded = replace(nb, charge_index=moved(nb.charge_index),
                        sigma_index=moved(nb.sigma_index),
                        epsilon_index=moved(nb.epsilon_index),
                        nbfix_sigma_index=moved(nb.nbfix_sigma_index),
                        nbfix_epsilon_index=moved(nb.nbfix_epsilon_index))
    parents = np.array([i for i, t in enumerate(types) if t is not None], dtype=np.int64)
    type_ids = [types[i] for i in parents.tolist()]
    slot = {int(a): n for n, a in enumerate(parents.tolist())}
    screened = [(slot[a], slot[b]) for a, b in system.topology.exclusions.tolist()
                if a in slot and b in slot]
    drude = DrudeTerms(
        parents=parents, type_ids=type_ids,
        alpha_index=np.array([params.index(ParameterKey(DRUDE_SECTION, t, "alpha"))
                              for t in type_ids], dtype=np.int64),
        thole_index=np.array([params.index(ParameterKey(DRUDE_SECTION, t, "thole"))
                              for t in type_ids], dtype=np.int64),
        screened=np.array(screened, dtype=np.int64).reshape(-1, 2), k_kcal_mol_a2=k,
        **hbond_terms(system, params, type_ids, parents))
    return ParameterizedSystem(system.topology, params, terms, nonbonded, system.source,
                               drude=drude)



def donor_hydrogens(system: ParameterizedSystem) -> np.ndarray:
    """Atom indices (int64) of the hydrogens bonded to N, O or S (H-bond donors)."""
    out = [a.GetIdx() for a in system.molecule.rdmol.GetAtoms() if a.GetAtomicNum() == 1
           and any(n.GetAtomicNum() in DONOR_ELEMENTS for n in a.GetNeighbors())]
    return np.array(out, dtype=np.int64)


def hbond_terms(system: ParameterizedSystem, params: ParameterSet, type_ids: list[str],
                parents: np.ndarray) -> dict[str, np.ndarray]:
    """``hbond_index``, ``donors`` and ``hbond_pairs`` of :class:`DrudeTerms` (the Drudes
    whose type has ``hbond_thole``, paired with the donors they have full pairs with)."""
    index = np.array([params.index(ParameterKey(DRUDE_SECTION, t, HBOND_THOLE_FIELD))
                      if HBOND_THOLE_FIELD in params.get(DRUDE_SECTION, t).values else -1
                      for t in type_ids], dtype=np.int64)
    donors = donor_hydrogens(system)
    slot = {int(a): n for n, a in enumerate(parents.tolist()) if index[n] >= 0}
    donor_set = set(donors.tolist())
    pairs = []
    for a, b in system.topology.nonbonded_pairs.tolist():
        for heavy, h in ((a, b), (b, a)):
            if heavy in slot and h in donor_set:
                pairs.append((slot[heavy], h))
    return {"hbond_index": index, "donors": donors,
            "hbond_pairs": np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)}


def drude_types(system: ParameterizedSystem) -> list[str | None]:
    """The per-atom Drude type ids of a Drude system (None for atoms without a Drude)."""
    if system.drude is None:
        raise InputError("system has no Drude particles (use params.drude.add_drude)")
    types: list[str | None] = [None] * system.n_atoms
    for parent, tid in zip(system.drude.parents.tolist(), system.drude.type_ids):
        types[parent] = tid
    return types


def with_hbond_thole(system: ParameterizedSystem, thole_by_type: dict[str, float]
                     ) -> ParameterizedSystem:
    """A copy of the Drude ``system`` whose types in ``thole_by_type`` get that
    ``hbond_thole`` (dimensionless; module docstring); InputError for a type the system
    does not have."""
    types = drude_types(system)
    unknown = sorted(set(thole_by_type) - {t for t in types if t is not None})
    if unknown:
        raise InputError(f"no Drude type {', '.join(unknown)} in {system.molecule.name}")
    source = ParameterSet()
    for tid in dict.fromkeys(t for t in types if t is not None):
        values = dict(system.parameters.get(DRUDE_SECTION, tid).values)
        if tid in thole_by_type:
            values[HBOND_THOLE_FIELD] = float(thole_by_type[tid])
        source.add(DRUDE_SECTION, Parameter(tid, values))
    return add_drude(system, types, source, system.drude.k_kcal_mol_a2)
