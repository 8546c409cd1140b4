"""Export a :class:`ParameterizedSystem` to an OpenMM ``System`` and evaluate it.

Unit edge: kcal/mol -> kJ/mol (x4.184), Angstrom -> nm (x0.1). Conventions are the same
(harmonic k/2, LJ sigma), so only units change. Each term group becomes the Force its
functional form declares (:mod:`ffparam.forms`), in its own force group so per-term
energies can be compared with :class:`~ffparam.mm.engine.MMEngine`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import openmm
from openmm import unit as omm_unit

from ffparam.forms import FORMS
from ffparam.params.system import ParameterizedSystem, TermGroup
from ffparam.units import KJ_PER_KCAL, NM_PER_ANGSTROM


@dataclass
class OpenMMExport:
    """An OpenMM System plus the force-group -> ffparam term name map."""

    system: openmm.System
    group_names: dict[int, str]


def to_openmm(system: ParameterizedSystem, values: np.ndarray | None = None) -> openmm.System:
    """Build an OpenMM ``System`` (gas phase, NoCutoff) equivalent to ffparam's energy."""
    return build_openmm(system, values).system


def build_openmm(system: ParameterizedSystem, values: np.ndarray | None = None) -> OpenMMExport:
    """Like :func:`to_openmm` but also return which force group holds which term name."""
    p = system.parameters.vector() if values is None else np.asarray(values, dtype=float)
    omm = openmm.System()
    for mass in system.molecule.masses:
        omm.addParticle(float(mass))
    names: dict[int, str] = {}

    def group_of(name: str) -> int:
        for g, n in names.items():
            if n == name:
                return g
        names[len(names)] = name
        return len(names) - 1

    for g in system.terms:
        force = _bonded_force(g, p)
        force.setForceGroup(group_of(g.name))
        omm.addForce(force)
    nb_force = _nonbonded_force(system, p)
    nb_force.setForceGroup(group_of("Nonbonded"))
    omm.addForce(nb_force)
    return OpenMMExport(omm, names)


def _bonded_force(g: TermGroup, p: np.ndarray) -> openmm.Force:
    """The group's terms as its form's OpenMM Force (:meth:`ffparam.forms.Form.openmm_force`),
    parameters in internal units with the energy scale applied."""
    form = FORMS.get(g.form)
    params = form.scaled({name: p[index] for name, index in g.param_index.items()}, g.scale)
    if form.periodic:
        params["periodicity"] = g.periodicity
    return form.openmm_force(g.atoms.tolist(), params)


def _nonbonded_force(system: ParameterizedSystem, p: np.ndarray) -> openmm.NonbondedForce:
    """NonbondedForce with NoCutoff; 1-2/1-3 excluded, 1-4 and NBFIX pairs as exceptions.

    Exceptions carry the already-mixed and scaled values, so they are exact for any
    combining rule; only Lorentz-Berthelot pairs are left to OpenMM's own mixing.
    """
    nb = system.nonbonded
    topo = system.topology
    force = openmm.NonbondedForce()
    force.setNonbondedMethod(openmm.NonbondedForce.NoCutoff)
    q = p[nb.charge_index]
    sig = p[nb.sigma_index] * NM_PER_ANGSTROM
    eps = p[nb.epsilon_index] * KJ_PER_KCAL
    for qi, si, ei in zip(q, sig, eps):
        force.addParticle(float(qi), float(si), float(ei))
    for a, b in topo.exclusions.tolist():
        force.addException(a, b, 0.0, 0.1, 0.0)
    pair_sigma, pair_eps = _mixed(sig, eps, nb.pairs, nb.combining_rule)
    if len(nb.nbfix_rows):
        pair_sigma[nb.nbfix_rows] = p[nb.nbfix_sigma_index] * NM_PER_ANGSTROM
        pair_eps[nb.nbfix_rows] = p[nb.nbfix_epsilon_index] * KJ_PER_KCAL
    special = (nb.coulomb_scale != 1.0) | (nb.lj_scale != 1.0)
    if nb.combining_rule != "lorentz-berthelot":
        special[:] = True
    if len(nb.nbfix_rows):
        special[nb.nbfix_rows] = True
    for row in np.flatnonzero(special):
        a, b = nb.pairs[row]
        force.addException(int(a), int(b), float(q[a] * q[b] * nb.coulomb_scale[row]),
                           float(pair_sigma[row]), float(pair_eps[row] * nb.lj_scale[row]),
                           True)
    return force


def _mixed(sig: np.ndarray, eps: np.ndarray, pairs: np.ndarray, rule: str):
    i, j = pairs[:, 0], pairs[:, 1]
    e = np.sqrt(eps[i] * eps[j])
    s = 0.5 * (sig[i] + sig[j]) if rule == "lorentz-berthelot" else np.sqrt(sig[i] * sig[j])
    return s, e


def evaluate_openmm(
    omm_system: openmm.System,
    positions: np.ndarray,
    groups: dict[int, str] | None = None,
    platform: str = "Reference",
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Energies (n_conf,) kcal/mol, forces (n_conf, n_atoms, 3) kcal/mol/A and per-group
    energies of ``omm_system`` at ``positions`` (n_conf, n_atoms, 3) Angstrom."""
    positions = np.asarray(positions, dtype=float).reshape(-1, omm_system.getNumParticles(), 3)
    integrator = openmm.VerletIntegrator(1.0 * omm_unit.femtoseconds)
    context = openmm.Context(omm_system, integrator, openmm.Platform.getPlatformByName(platform))
    energies, forces = [], []
    per_group: dict[str, list[float]] = {name: [] for name in (groups or {}).values()}
    for xyz in positions:
        context.setPositions(xyz * NM_PER_ANGSTROM)
        state = context.getState(getEnergy=True, getForces=True)
        energies.append(state.getPotentialEnergy().value_in_unit(omm_unit.kilojoule_per_mole))
        forces.append(state.getForces(asNumpy=True).value_in_unit(
            omm_unit.kilojoule_per_mole / omm_unit.nanometer))
        for g, name in (groups or {}).items():
            e = context.getState(getEnergy=True, groups={g}).getPotentialEnergy()
            per_group[name].append(e.value_in_unit(omm_unit.kilojoule_per_mole))
    del context
    to_kcal = 1.0 / KJ_PER_KCAL
    return (np.array(energies) * to_kcal,
            np.array(forces) * to_kcal * NM_PER_ANGSTROM,
            {k: np.array(v) * to_kcal for k, v in per_group.items()})
