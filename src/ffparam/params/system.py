"""The :class:`ParameterizedSystem`: a molecule's terms bound to a :class:`ParameterSet`.

Pure data, no physics: for every term group the atom index rows and, per parameter field,
the position of that field in ``parameters.vector()``. The MM engine gathers term
parameters from that vector, so it can evaluate energies for any parameter vector (and
differentiate with respect to it) without re-assigning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ffparam.chem.topology import Topology
from ffparam.errors import InputError
from ffparam.forms import FORMS
from ffparam.params.parameter_set import ParameterKey, ParameterSet

if TYPE_CHECKING:
    from ffparam.params.drude import DrudeTerms


@dataclass
class TermGroup:
    """All terms of one functional form.

    Attributes:
        form: name of a registered :class:`~ffparam.forms.Form` (e.g.
            ``periodic_torsion``).
        name: label for per-term energy tables (``ProperTorsions``, ``ImproperTorsions``).
        atoms: int64 (n_terms, atoms_per_term).
        param_index: field -> int64 (n_terms,) index into ``ParameterSet.vector()``.
        periodicity: int64 (n_terms,) for periodic forms, else None.
        scale: float64 (n_terms,) multiplier on the energy of each term (e.g. 1/3 for each
            SMIRNOFF improper permutation).
        parameter_ids: (n_terms,) id of the parameter each term uses (for reports).
    """

    form: str
    name: str
    atoms: np.ndarray
    param_index: dict[str, np.ndarray]
    periodicity: np.ndarray | None = None
    scale: np.ndarray | None = None
    parameter_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        form = FORMS.get(self.form)
        self.atoms = np.asarray(self.atoms, dtype=np.int64).reshape(-1, form.n_atoms)
        n = len(self.atoms)
        for name in form.fields:
            idx = np.asarray(self.param_index[name], dtype=np.int64)
            if idx.shape != (n,):
                raise InputError(f"{self.name}: {name} index has shape {idx.shape}, want ({n},)")
            self.param_index[name] = idx
        if self.scale is None:
            self.scale = np.ones(n)
        self.scale = np.asarray(self.scale, dtype=np.float64)
        if form.periodic:
            if self.periodicity is None:
                raise InputError(f"{self.name}: {form.label} need periodicities")
            self.periodicity = np.asarray(self.periodicity, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.atoms)


@dataclass
class NonbondedTerms:
    """Per-atom nonbonded parameters and the pair lists they act on.

    Attributes:
        charge_index, sigma_index, epsilon_index: int64 (n_atoms,) into the vector.
        pairs: int64 (n_pairs, 2) all interacting pairs (full and 1-4).
        coulomb_scale, lj_scale: float64 (n_pairs,) (1 for full pairs, 1-4 scales).
        nbfix_rows: int64 (m,) rows of ``pairs`` whose LJ uses a pair override.
        nbfix_sigma_index, nbfix_epsilon_index: int64 (m,) into the vector.
        combining_rule: ``lorentz-berthelot`` (sigma arithmetic, epsilon geometric mean)
            or ``geometric`` (both geometric, OPLS).
    """

    charge_index: np.ndarray
    sigma_index: np.ndarray
    epsilon_index: np.ndarray
    pairs: np.ndarray
    coulomb_scale: np.ndarray
    lj_scale: np.ndarray
    nbfix_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    nbfix_sigma_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    nbfix_epsilon_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    combining_rule: str = "lorentz-berthelot"
    vdw_ids: list[str] = field(default_factory=list)

    @classmethod
    def from_topology(
        cls,
        topology: Topology,
        charge_index: np.ndarray,
        sigma_index: np.ndarray,
        epsilon_index: np.ndarray,
        coulomb_14_scale: float,
        lj_14_scale: float,
        combining_rule: str = "lorentz-berthelot",
        vdw_ids: list[str] | None = None,
    ) -> NonbondedTerms:
        """Full pairs from ``topology.nonbonded_pairs`` (scale 1) and 1-4 pairs (scaled)."""
        full, p14 = topology.nonbonded_pairs, topology.pairs_14
        pairs = np.concatenate([full, p14]).astype(np.int64)
        cs = np.concatenate([np.ones(len(full)), np.full(len(p14), coulomb_14_scale)])
        ls = np.concatenate([np.ones(len(full)), np.full(len(p14), lj_14_scale)])
        return cls(np.asarray(charge_index, np.int64), np.asarray(sigma_index, np.int64),
                   np.asarray(epsilon_index, np.int64), pairs, cs, ls,
                   combining_rule=combining_rule, vdw_ids=list(vdw_ids or []))


@dataclass
class ParameterizedSystem:
    """A molecule with every term bound to a parameter of ``parameters``.

    Attributes:
        topology: the molecule's topology (its ``molecule`` carries the conformers).
        parameters: the parameters the terms index (usually only those used).
        terms: bonded term groups.
        nonbonded: charges, LJ and pair lists.
        source: provenance string (e.g. ``openff-2.2.1 + am1bcc``).
        drude: Drude oscillators (:class:`ffparam.params.drude.DrudeTerms`) or None for a
            fixed-charge system.
    """

    topology: Topology
    parameters: ParameterSet
    terms: list[TermGroup]
    nonbonded: NonbondedTerms
    source: str = ""
    drude: DrudeTerms | None = None

    @property
    def molecule(self):
        return self.topology.molecule

    @property
    def n_atoms(self) -> int:
        return self.topology.n_atoms

    def charges(self) -> np.ndarray:
        """Partial charges in e (n_atoms,) from the current parameter values."""
        return self.parameters.vector()[self.nonbonded.charge_index]

    def term_group(self, name: str) -> TermGroup | None:
        return next((g for g in self.terms if g.name == name), None)

    def used_keys(self) -> set[ParameterKey]:
        """Keys of every parameter field that some term or atom reads."""
        keys = self.parameters.keys()
        used: set[int] = set()
        for group in self.terms:
            for idx in group.param_index.values():
                used.update(idx.tolist())
        nb = self.nonbonded
        for arr in (nb.charge_index, nb.sigma_index, nb.epsilon_index,
                    nb.nbfix_sigma_index, nb.nbfix_epsilon_index):
            used.update(arr.tolist())
        if self.drude is not None:
            used.update(self.drude.alpha_index.tolist() + self.drude.thole_index.tolist())
            used.update(i for i in self.drude.hbond_index.tolist() if i >= 0)
        return {keys[i] for i in used}

    def with_parameters(self, parameters: ParameterSet) -> ParameterizedSystem:
        """The same terms bound to ``parameters`` (must have the same keys in the same order)."""
        if parameters.keys() != self.parameters.keys():
            raise InputError("parameter set does not match this system's parameter keys")
        return ParameterizedSystem(self.topology, parameters, self.terms, self.nonbonded,
                                   self.source, self.drude)
