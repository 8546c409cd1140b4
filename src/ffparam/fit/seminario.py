"""Modified Seminario method: bond and angle force constants from a Hessian.

Reference: A. E. A. Allen, M. C. Payne, D. J. Cole, "Harmonic Force Constants for Molecular
Mechanics Force Fields via Hessian Matrix Projection", J. Chem. Theory Comput. 14, 274-281
(2018), doi:10.1021/acs.jctc.7b00785; building on J. M. Seminario, Int. J. Quantum Chem. 60,
1271 (1996).

For atoms A, B the interatomic block K_AB = -d2E/dx_A dx_B (3x3, kcal/mol/A^2) has eigen-
values lambda_i and unit eigenvectors v_i (real parts; K_AB is not symmetric in general).

* Bond A-B: k_AB = sum_i lambda_i |u_AB . v_i|, u_AB the unit bond vector; the value is the
  mean of the K_AB and K_BA projections.
* Angle A-B-C (apex B): with u_N the unit normal of the ABC plane, u_PA = u_N x u_AB (in
  plane, perpendicular to AB) and u_PC = u_CB x u_N,
      1/k_theta = f_A / (R_AB^2 sum_i lambda_i^AB |u_PA . v_i^AB|)
                + f_C / (R_CB^2 sum_i lambda_i^CB |u_PC . v_i^CB|).
  The *modified* method's factor f_A = 1 + mean_X |u_PA(ABC) . u_PA(ABX)|^2 over the other
  angles A-B-X at the same apex sharing bond AB (f_A = 1 if there are none) shares the bond's
  bending stiffness among the angles around B; f_C likewise.
* Linear angles (theta > 175 degrees): the plane is undefined; k_theta is averaged over 36
  planes through the AB axis with f = 1.

Units and convention: the projections are second derivatives, so k is the force constant of
E = k/2 (x - x0)^2 (ffparam's internal convention; the paper's E = K (x - x0)^2 uses
K = k/2): bonds kcal/mol/A^2, angles kcal/mol/rad^2. Equilibrium values are the geometry's
bond lengths (A) and angles (rad) — the geometry must be the minimum the Hessian belongs to.
An optional ``vibrational_scaling`` s multiplies every k by s^2 (frequency scale factor).
Values of symmetry-equivalent terms (same :attr:`Topology.symmetry_classes`) are averaged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ffparam.chem.topology import Topology
from ffparam.errors import InputError
from ffparam.fit.normal_modes import stretched_bond
from ffparam.params.parameter_set import Parameter, ParameterKey, ParameterSet
from ffparam.params.system import NonbondedTerms, ParameterizedSystem, TermGroup

LINEAR_ANGLE_DEGREES = 175.0
"""Angles wider than this are treated as linear (plane sampled around the bond axis)."""

LINEAR_SAMPLES = 36
"""Number of planes averaged for a linear angle."""


@dataclass
class SeminarioResult:
    """Bond and angle parameters from the modified Seminario method.

    Attributes:
        bonds: (n_bonds, 2) atom pairs, i < j (the topology's order).
        bond_k: (n_bonds,) kcal/mol/A^2 for E = k/2 (r - r0)^2.
        bond_length: (n_bonds,) Angstrom.
        angles: (n_angles, 3) i-j-k with apex j (the topology's order).
        angle_k: (n_angles,) kcal/mol/rad^2 for E = k/2 (theta - theta0)^2.
        angle_value: (n_angles,) rad.
    """

    bonds: np.ndarray
    bond_k: np.ndarray
    bond_length: np.ndarray
    angles: np.ndarray
    angle_k: np.ndarray
    angle_value: np.ndarray

    def bond(self, i: int, j: int) -> tuple[float, float]:
        """(k, length) of bond i-j (either order)."""
        row = np.nonzero((np.sort(self.bonds, 1) == sorted((i, j))).all(1))[0]
        if not len(row):
            raise InputError(f"no bond {i}-{j}")
        return float(self.bond_k[row[0]]), float(self.bond_length[row[0]])

    def angle(self, i: int, j: int, k: int) -> tuple[float, float]:
        """(k, angle in rad) of angle i-j-k with apex j (either direction)."""
        key = (min(i, k), j, max(i, k))
        canon = np.stack([np.minimum(self.angles[:, 0], self.angles[:, 2]), self.angles[:, 1],
                          np.maximum(self.angles[:, 0], self.angles[:, 2])], 1)
        row = np.nonzero((canon == key).all(1))[0]
        if not len(row):
            raise InputError(f"no angle {i}-{j}-{k}")
        return float(self.angle_k[row[0]]), float(self.angle_value[row[0]])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _block_eigen(hessian: np.ndarray, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (3,) and unit eigenvectors (3, 3) (columns) of K_ab = -H_ab (real parts)."""
    block = -hessian[3 * a:3 * a + 3, 3 * b:3 * b + 3]
    values, vectors = np.linalg.eig(block)
    vectors = np.real(vectors)
    return np.real(values), vectors / np.linalg.norm(vectors, axis=0)


def _projection(hessian: np.ndarray, a: int, b: int, direction: np.ndarray) -> float:
    """sum_i lambda_i |direction . v_i| of K_ab (kcal/mol/A^2)."""
    values, vectors = _block_eigen(hessian, a, b)
    return float(np.sum(values * np.abs(direction @ vectors)))


def _in_plane_perpendicular(xyz: np.ndarray, outer: int, apex: int, other: int) -> np.ndarray:
    """Unit vector in the plane outer-apex-other, perpendicular to the outer-apex bond."""
    u_ab = _unit(xyz[apex] - xyz[outer])
    u_cb = _unit(xyz[apex] - xyz[other])
    normal = _unit(np.cross(u_cb, u_ab))
    return _unit(np.cross(normal, u_ab))


def _scaling_factor(xyz: np.ndarray, neighbours: list[int], outer: int, apex: int,
                    other: int) -> float:
    """1 + mean |u_PA(outer-apex-other) . u_PA(outer-apex-x)|^2 over the other angles."""
    u_pa = _in_plane_perpendicular(xyz, outer, apex, other)
    extra = [abs(u_pa @ _in_plane_perpendicular(xyz, outer, apex, x)) ** 2
             for x in neighbours if x not in (outer, other)
             and not _is_linear(xyz, outer, apex, x)]
    return 1.0 + (float(np.mean(extra)) if extra else 0.0)


def _is_linear(xyz: np.ndarray, a: int, b: int, c: int) -> bool:
    u = _unit(xyz[a] - xyz[b])
    v = _unit(xyz[c] - xyz[b])
    return math.degrees(math.acos(np.clip(u @ v, -1.0, 1.0))) > LINEAR_ANGLE_DEGREES


def _angle_k(hessian: np.ndarray, xyz: np.ndarray, a: int, b: int, c: int, f_a: float,
             f_c: float, u_n: np.ndarray | None = None) -> float:
    """Series-spring angle force constant for one plane (normal ``u_n``, default ABC's)."""
    u_ab = _unit(xyz[b] - xyz[a])
    u_cb = _unit(xyz[b] - xyz[c])
    if u_n is None:
        u_n = _unit(np.cross(u_cb, u_ab))
    u_pa = _unit(np.cross(u_n, u_ab))
    u_pc = _unit(np.cross(u_cb, u_n))
    r_ab = np.linalg.norm(xyz[b] - xyz[a])
    r_cb = np.linalg.norm(xyz[b] - xyz[c])
    s_a = _projection(hessian, a, b, u_pa)
    s_c = _projection(hessian, c, b, u_pc)
    return abs(1.0 / (f_a / (r_ab**2 * s_a) + f_c / (r_cb**2 * s_c)))


def _linear_angle_k(hessian: np.ndarray, xyz: np.ndarray, a: int, b: int, c: int) -> float:
    axis = _unit(xyz[b] - xyz[a])
    trial = np.eye(3)[int(np.argmin(np.abs(axis)))]
    e1 = _unit(np.cross(axis, trial))
    e2 = np.cross(axis, e1)
    phis = np.linspace(0.0, np.pi, LINEAR_SAMPLES, endpoint=False)
    return float(np.mean([_angle_k(hessian, xyz, a, b, c, 1.0, 1.0,
                                   math.cos(p) * e1 + math.sin(p) * e2) for p in phis]))


def _symmetry_average(values: np.ndarray, keys: list[tuple]) -> np.ndarray:
    out = values.copy()
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    for rows in groups.values():
        out[rows] = values[rows].mean()
    return out


def modified_seminario(topology: Topology, geometry, hessian, vibrational_scaling: float = 1.0,
                       symmetrize: bool = True) -> SeminarioResult:
    """Bond and angle parameters of ``topology`` from a Cartesian ``hessian`` (3N, 3N)
    kcal/mol/A^2 at ``geometry`` (N, 3) Angstrom (a minimum); see the module docstring."""
    xyz = np.asarray(geometry, dtype=np.float64)
    n = topology.n_atoms
    hessian = np.asarray(hessian, dtype=np.float64)
    if xyz.shape != (n, 3):
        raise InputError(f"geometry has shape {xyz.shape}, molecule needs ({n}, 3)")
    if hessian.shape != (3 * n, 3 * n):
        raise InputError(f"Hessian has shape {hessian.shape}, molecule needs ({3 * n}, {3 * n})")
    if not (np.all(np.isfinite(xyz)) and np.all(np.isfinite(hessian))):
        raise InputError("non-finite geometry or Hessian for the Seminario method")
    bonds, angles = topology.bonds, topology.angles
    bad = stretched_bond(topology, xyz)
    if bad is not None:
        raise InputError(f"atoms {bad[0]} and {bad[1]} are bonded but {bad[2]:.2f} A apart: "
                         "the Hessian's geometry does not match the molecule's atom order")
    scale2 = float(vibrational_scaling) ** 2
    bond_k = np.array([0.5 * (_projection(hessian, a, b, _unit(xyz[b] - xyz[a]))
                              + _projection(hessian, b, a, _unit(xyz[a] - xyz[b])))
                       for a, b in bonds]) * scale2
    bond_length = np.linalg.norm(xyz[bonds[:, 1]] - xyz[bonds[:, 0]], axis=1) \
        if len(bonds) else np.zeros(0)
    angle_k, angle_value = [], []
    for a, b, c in angles:
        u, v = _unit(xyz[a] - xyz[b]), _unit(xyz[c] - xyz[b])
        angle_value.append(math.acos(np.clip(u @ v, -1.0, 1.0)))
        if _is_linear(xyz, a, b, c):
            angle_k.append(_linear_angle_k(hessian, xyz, a, b, c))
            continue
        nbrs = topology.neighbours(int(b))
        f_a = _scaling_factor(xyz, nbrs, a, b, c)
        f_c = _scaling_factor(xyz, nbrs, c, b, a)
        angle_k.append(_angle_k(hessian, xyz, a, b, c, f_a, f_c))
    angle_k = np.array(angle_k) * scale2
    angle_value = np.array(angle_value)
    if symmetrize:
        classes = topology.symmetry_classes
        bond_keys = [tuple(sorted((classes[a], classes[b]))) for a, b in bonds]
        angle_keys = [(min(classes[a], classes[c]), classes[b], max(classes[a], classes[c]))
                      for a, b, c in angles]
        bond_k = _symmetry_average(bond_k, bond_keys)
        bond_length = _symmetry_average(bond_length, bond_keys)
        angle_k = _symmetry_average(angle_k, angle_keys)
        angle_value = _symmetry_average(angle_value, angle_keys)
    return SeminarioResult(bonds.copy(), bond_k, bond_length, angles.copy(),
                           angle_k, angle_value)


# ---------------------------------------------------------------------- writing parameters
def _row_keys(atoms: np.ndarray) -> list[tuple[int, ...]]:
    """Order-independent keys of bond rows (i, j) -> (min, max) and angle rows (i, j, k)
    -> (min(i, k), j, max(i, k))."""
    atoms = np.asarray(atoms, dtype=np.int64)
    if atoms.shape[1] == 2:
        return [tuple(sorted(map(int, r))) for r in atoms]
    return [(int(min(x, z)), int(y), int(max(x, z))) for x, y, z in atoms]


def apply_seminario(system: ParameterizedSystem, result: SeminarioResult,
                    mode: str = "bespoke") -> ParameterizedSystem:
    """A copy of ``system`` whose harmonic bonds and angles take the Seminario values.

    ``mode="bespoke"``: every symmetry-distinct bond/angle gets its own parameter (ids
    ``seminario:bond:i-j`` / ``seminario:angle:i-j-k`` named after the first term of the
    group), so later fits can move them independently of the transferable force field.
    ``mode="shared"``: the existing parameter ids are kept and each gets the mean Seminario
    value over the terms that use it. Torsions, nonbonded terms and free specs of untouched
    parameters are carried over.
    """
    if mode not in ("bespoke", "shared"):
        raise InputError(f"unknown Seminario mode {mode!r}; use 'bespoke' or 'shared'")
    bond_group = next((g for g in system.terms if g.form == "harmonic_bond"), None)
    angle_group = next((g for g in system.terms if g.form == "harmonic_angle"), None)
    if bond_group is None and angle_group is None:
        raise InputError(f"{system.molecule.name}: no harmonic bonds or angles to set")
    lookup = {}
    for i, key in enumerate(_row_keys(result.bonds.reshape(-1, 2))):
        lookup[("harmonic_bond", key)] = (result.bond_k[i], result.bond_length[i])
    for i, key in enumerate(_row_keys(result.angles.reshape(-1, 3))):
        lookup[("harmonic_angle", key)] = (result.angle_k[i], result.angle_value[i])
    if mode == "shared":
        return _apply_shared(system, [g for g in (bond_group, angle_group) if g], lookup)
    return _apply_bespoke(system, [g for g in (bond_group, angle_group) if g], lookup)


_VALUE_FIELD = {"harmonic_bond": "length", "harmonic_angle": "angle"}
_SECTION = {"harmonic_bond": "Bonds", "harmonic_angle": "Angles"}


def _lookup_rows(group: TermGroup, lookup: dict) -> list[tuple[float, float]]:
    out = []
    for key in _row_keys(group.atoms):
        if (group.form, key) not in lookup:
            raise InputError(f"Seminario result has no {group.name} term {key}; was it "
                             "computed for this molecule?")
        out.append(lookup[(group.form, key)])
    return out


def _apply_shared(system: ParameterizedSystem, groups: list[TermGroup],
                  lookup: dict) -> ParameterizedSystem:
    params = system.parameters.copy()
    for group in groups:
        section = _SECTION[group.form]
        values = _lookup_rows(group, lookup)
        per_id: dict[str, list[tuple[float, float]]] = {}
        for pid, val in zip(group.parameter_ids, values):
            per_id.setdefault(pid, []).append(val)
        for pid, vals in per_id.items():
            arr = np.array(vals)
            par = params.get(section, pid)
            par.values["k"] = float(arr[:, 0].mean())
            par.values[_VALUE_FIELD[group.form]] = float(arr[:, 1].mean())
    return system.with_parameters(params)


def _apply_bespoke(system: ParameterizedSystem, groups: list[TermGroup],
                   lookup: dict) -> ParameterizedSystem:
    old = system.parameters
    old_keys = old.keys()
    classes = system.topology.symmetry_classes
    new = ParameterSet(settings=dict(old.settings))
    replaced = {_SECTION[g.form] for g in groups}
    for section, bucket in old.sections.items():
        for par in bucket.values():
            if section in replaced and any(section == _SECTION[g.form] and par.id in
                                           g.parameter_ids for g in groups):
                continue
            new.add(section, Parameter(par.id, dict(par.values), dict(par.fixed)))
    row_ids: dict[int, list[str]] = {}
    for gi, group in enumerate(groups):
        values = _lookup_rows(group, lookup)
        kind = "bond" if group.form == "harmonic_bond" else "angle"
        ids, seen = [], {}
        for key, (k, x0) in zip(_row_keys(group.atoms), values):
            cls = tuple(int(classes[a]) for a in key)
            cls = min(cls, cls[::-1])
            if cls not in seen:
                seen[cls] = f"seminario:{kind}:{'-'.join(map(str, key))}"
                new.add(_SECTION[group.form], Parameter(
                    seen[cls], {"k": float(k), _VALUE_FIELD[group.form]: float(x0)},
                    {"source": "modified Seminario"}))
            ids.append(seen[cls])
        row_ids[gi] = ids
    index = {key: i for i, key in enumerate(new.keys())}

    def remap(arr: np.ndarray) -> np.ndarray:
        return np.array([index[old_keys[i]] for i in np.asarray(arr).tolist()], dtype=np.int64)

    terms = []
    for group in system.terms:
        gi = next((i for i, g in enumerate(groups) if g is group), None)
        if gi is not None:
            section = _SECTION[group.form]
            param_index = {f: np.array([index[ParameterKey(section, pid, f)]
                                        for pid in row_ids[gi]], dtype=np.int64)
                           for f in group.param_index}
            terms.append(TermGroup(group.form, group.name, group.atoms.copy(), param_index,
                                   None, group.scale.copy(), list(row_ids[gi])))
        else:
            terms.append(TermGroup(group.form, group.name, group.atoms.copy(),
                                   {f: remap(v) for f, v in group.param_index.items()},
                                   None if group.periodicity is None
                                   else group.periodicity.copy(),
                                   group.scale.copy(), list(group.parameter_ids)))
    nb = system.nonbonded
    nonbonded = NonbondedTerms(remap(nb.charge_index), remap(nb.sigma_index),
                               remap(nb.epsilon_index), nb.pairs.copy(),
                               nb.coulomb_scale.copy(), nb.lj_scale.copy(),
                               nb.nbfix_rows.copy(), remap(nb.nbfix_sigma_index),
                               remap(nb.nbfix_epsilon_index), nb.combining_rule,
                               list(nb.vdw_ids))
    new.free = {k: spec for k, spec in old.free.items() if k in index}
    return ParameterizedSystem(system.topology, new, terms, nonbonded,
                               (system.source + " + modified Seminario").strip(" +"))
