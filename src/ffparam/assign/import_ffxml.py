"""OpenMM force-field XML files (``amber14-all.xml``, ``charmm36.xml``, a user's ffxml)
applied to a PDB, in.

OpenMM's own ``ForceField`` matches the residues to templates and builds the System (gas
phase: no cutoff, no constraints, flexible water); ffparam reads the System's forces back
into parameters keyed by the ffxml atom types of the matched templates:

* HarmonicBondForce: bonds of the PDB graph -> ``Bonds``, other pairs -> ``UreyBradley``;
* HarmonicAngleForce -> ``Angles``; PeriodicTorsionForce -> ``ProperTorsions`` (the four
  atoms a bonded chain) or ``ImproperTorsions``, every term of a quadruple in one parameter;
* CustomTorsionForce ``k*(theta-theta0)^2`` (charmm36 impropers) -> ``HarmonicImpropers``
  (k = 2 k_file); ffparam wraps theta - theta0 into [-pi, pi), which is the same energy
  when theta0 = 0 (every improper but two of charmm36.xml); others are refused;
* NonbondedForce charges, LJ and 1-4 exceptions; charmm36's ``LennardJonesForce`` (a
  CustomNonbondedForce with acoef/bcoef tables: per-type LJ from the diagonal, NBFIX from
  the entries that differ from Lorentz-Berthelot) and its CustomBondForce of 1-4 LJ
  (``LJ14``).

CMAP terms (charmm36 protein backbones) are refused naming the ffxml file and line.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ffparam.assign.import_common import ImportDraft, Pair14, assemble, periodic_fields, type_key
from ffparam.errors import ConventionError, InputError
from ffparam.io.files import read_text, require_file
from ffparam.params.system import ParameterizedSystem
from ffparam.units import KJ_PER_KCAL

NM = 10.0  # Angstrom per nm
HANDLED = {"HarmonicBondForce", "HarmonicAngleForce", "PeriodicTorsionForce",
           "CustomTorsionForce", "NonbondedForce", "CustomNonbondedForce", "CustomBondForce",
           "CMAPTorsionForce", "CMMotionRemover"}
IMPROPER_EXPRESSION = "k*(theta-theta0)^2"


def _ffxml_path(name: str) -> Path:
    if os.path.isfile(name):
        return Path(name)
    from openmm import app

    return Path(os.path.dirname(app.__file__)) / "data" / name


def _tag_line(files: Sequence[str], tag: str) -> str:
    """``file line N`` of the first ``<tag`` in the force-field files (or the file names)."""
    for name in files:
        path = _ffxml_path(name)
        if path.is_file():
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if f"<{tag}" in line:
                    return f"{path.name} line {number}"
    return ", ".join(files)


_FORCEFIELDS: dict[tuple, object] = {}
"""Loaded ForceFields by (file, modification time) (charmm36.xml takes seconds to parse)."""


def _forcefield(names: Sequence[str]):
    from openmm import app

    key = tuple((name, _ffxml_path(name).stat().st_mtime_ns if _ffxml_path(name).is_file()
                 else None) for name in names)
    if key not in _FORCEFIELDS:
        if len(_FORCEFIELDS) >= 4:
            _FORCEFIELDS.pop(next(iter(_FORCEFIELDS)))
        _FORCEFIELDS[key] = app.ForceField(*names)
    return _FORCEFIELDS[key]


def _atom_types(forcefield, topology, templates: dict) -> list[str]:
    """ffxml atom type of every atom, from OpenMM's own template matching."""
    from openmm.app import ForceField

    data = ForceField._SystemData(topology)
    forcefield._matchAllResiduesToTemplates(data, topology, templates, False)
    return [str(data.atomType[atom]) for atom in topology.atoms()]


def _scales_14(forcefield) -> tuple[float, float]:
    for generator in forcefield._forces:
        if type(generator).__name__ == "NonbondedGenerator":
            return float(generator.coulomb14scale), float(generator.lj14scale)
    return 1.0, 1.0


class _Decoder:
    """Reads an OpenMM System's forces into ImportDraft fields (internal units)."""

    def __init__(self, system, bonds: set[tuple[int, int]], types: list[str],
                 files: Sequence[str]) -> None:
        self.system, self.bonds, self.types, self.files = system, bonds, types, files
        self.terms: dict[str, list] = defaultdict(list)
        self.torsions: dict[tuple, list] = defaultdict(list)
        self.lj_table = None
        self.lj14: dict[tuple[int, int], tuple[float, float]] = {}
        self.nonbonded = None

    def run(self) -> None:
        for force in self.system.getForces():
            kind = type(force).__name__
            if kind not in HANDLED:
                raise ConventionError(f"{kind} ({force.getName()}) of "
                                      f"{', '.join(self.files)} is not supported by ffparam")
            getattr(self, f"_{kind}", lambda f: None)(force)
        for (atoms, improper), terms in self.torsions.items():
            values, fixed = periodic_fields(terms)
            names = [self.types[a] for a in atoms]
            self.terms["ImproperTorsions" if improper else "ProperTorsions"].append(
                (atoms, type_key(names, symmetric=not improper), values, fixed))

    def _names(self, atoms, symmetric=True) -> str:
        return type_key([self.types[a] for a in atoms], symmetric)

    def _HarmonicBondForce(self, force) -> None:
        for n in range(force.getNumBonds()):
            i, j, r0, k = force.getBondParameters(n)
            section = "Bonds" if tuple(sorted((i, j))) in self.bonds else "UreyBradley"
            values = {"k": k._value / KJ_PER_KCAL / NM**2, "length": r0._value * NM}
            self.terms[section].append(((i, j), self._names((i, j)), values, {}))

    def _HarmonicAngleForce(self, force) -> None:
        for n in range(force.getNumAngles()):
            i, j, k, theta0, kk = force.getAngleParameters(n)
            values = {"k": kk._value / KJ_PER_KCAL, "angle": theta0._value}
            self.terms["Angles"].append(((i, j, k), self._names((i, j, k)), values, {}))

    def _PeriodicTorsionForce(self, force) -> None:
        for n in range(force.getNumTorsions()):
            a, b, c, d, per, phase, k = force.getTorsionParameters(n)
            chain = all(tuple(sorted(p)) in self.bonds for p in ((a, b), (b, c), (c, d)))
            self.torsions[((a, b, c, d), not chain)].append(
                (k._value / KJ_PER_KCAL, phase._value, int(per)))

    def _CustomTorsionForce(self, force) -> None:
        if force.getEnergyFunction().replace(" ", "") != IMPROPER_EXPRESSION:
            raise ConventionError(f"CustomTorsionForce {force.getEnergyFunction()!r} of "
                                  f"{_tag_line(self.files, 'CustomTorsionForce')} is not "
                                  "supported by ffparam")
        for n in range(force.getNumTorsions()):
            a, b, c, d, (k, theta0) = force.getTorsionParameters(n)
            if theta0 != 0.0:
                raise ConventionError(
                    f"harmonic improper with theta0 = {math.degrees(theta0):g} deg "
                    f"({_tag_line(self.files, 'CustomTorsionForce')}): its unwrapped "
                    "k*(theta-theta0)^2 is not ffparam's harmonic improper")
            values = {"k": 2.0 * k / KJ_PER_KCAL, "angle": 0.0}
            self.terms["HarmonicImpropers"].append(
                ((a, b, c, d), self._names((a, b, c, d), symmetric=False), values, {}))

    def _CMAPTorsionForce(self, force) -> None:
        if force.getNumTorsions():
            raise ConventionError(f"{force.getNumTorsions()} CMAP torsion-torsion terms "
                                  f"({_tag_line(self.files, 'CMAPTorsionForce')}) are not "
                                  "supported by ffparam")

    def _NonbondedForce(self, force) -> None:
        self.nonbonded = force

    def _CustomNonbondedForce(self, force) -> None:
        names = [force.getTabulatedFunctionName(i) for i in
                 range(force.getNumTabulatedFunctions())]
        if sorted(names) != ["acoef", "bcoef"] or force.getNumPerParticleParameters() != 1:
            raise ConventionError(f"CustomNonbondedForce {force.getEnergyFunction()!r} is not "
                                  "supported by ffparam (only charmm36's LennardJonesForce)")
        tables = {}
        for i, name in enumerate(names):
            nx, ny, values = force.getTabulatedFunction(i).getFunctionParameters()
            tables[name] = np.asarray(values, dtype=float).reshape(ny, nx)
        index = [int(force.getParticleParameters(p)[0]) for p in range(force.getNumParticles())]
        self.lj_table = (tables["acoef"], tables["bcoef"], index)

    def _CustomBondForce(self, force) -> None:
        expression = force.getEnergyFunction().replace(" ", "")
        prefix, _, rest = expression.partition("*epsilon*")
        if rest != "((sigma/r)^12-(sigma/r)^6)":
            raise ConventionError(f"CustomBondForce {force.getEnergyFunction()!r} is not "
                                  "supported by ffparam (only charmm36's 1-4 LJ)")
        scale = float(prefix) / 4.0
        for n in range(force.getNumBonds()):
            i, j, (sigma, epsilon) = force.getBondParameters(n)
            self.lj14[tuple(sorted((i, j)))] = (sigma * NM, scale * epsilon / KJ_PER_KCAL)


def _lj_from_table(acoef: np.ndarray, bcoef: np.ndarray, m: int) -> tuple[float, float]:
    """(sigma A, epsilon kcal/mol) of a table entry A = 4 eps sigma^12, B = 4 eps sigma^6."""
    a, b = acoef[m, m], bcoef[m, m]
    if a <= 0.0 or b <= 0.0:
        return 1.0, 0.0
    return (a / b) ** (1.0 / 6.0) * NM, b * b / (4.0 * a) / KJ_PER_KCAL


def _lj_and_nbfix(dec: _Decoder) -> tuple[dict, dict]:
    """Per-type LJ and NBFIX pairs: from charmm36's table, else the NonbondedForce."""
    types, nb = dec.types, dec.nonbonded
    lj: dict[str, tuple[float, float]] = {}
    nbfix: dict[tuple[str, str], tuple[float, float]] = {}
    if dec.lj_table is None:
        for p, name in enumerate(types):
            _, sigma, epsilon = nb.getParticleParameters(p)
            lj.setdefault(name, (sigma._value * NM, epsilon._value / KJ_PER_KCAL))
        return lj, nbfix
    acoef, bcoef, index = dec.lj_table
    first = {}
    for p, name in enumerate(types):
        first.setdefault(name, index[p])
        lj.setdefault(name, _lj_from_table(acoef, bcoef, index[p]))
    names = sorted(first)
    for x, ta in enumerate(names):
        for tb in names[x + 1:]:
            m, n = first[ta], first[tb]
            (sa, ea), (sb, eb) = lj[ta], lj[tb]
            sigma6 = (0.5 * (sa + sb) / NM) ** 6
            expected = 4.0 * math.sqrt(ea * eb) * KJ_PER_KCAL * sigma6
            if not math.isclose(bcoef[m, n], expected, rel_tol=1e-9, abs_tol=1e-12) or \
                    not math.isclose(acoef[m, n], expected * sigma6, rel_tol=1e-9,
                                     abs_tol=1e-15):
                a, b = acoef[m, n], bcoef[m, n]
                nbfix[(ta, tb)] = ((a / b) ** (1 / 6) * NM, b * b / (4 * a) / KJ_PER_KCAL)
    return lj, nbfix


def _pairs_14(dec: _Decoder, lj: dict, scales: tuple[float, float]) -> list[Pair14]:
    nb, types = dec.nonbonded, dec.types
    q = [nb.getParticleParameters(p)[0]._value for p in range(nb.getNumParticles())]
    out = []
    for n in range(nb.getNumExceptions()):
        i, j, qq, sigma, epsilon = nb.getExceptionParameters(n)
        pair = tuple(sorted((i, j)))
        qq, sigma, epsilon = qq._value, sigma._value * NM, epsilon._value / KJ_PER_KCAL
        if qq == 0.0 and epsilon == 0.0 and pair not in dec.lj14:
            continue  # an exclusion
        coulomb = qq / (q[i] * q[j]) if q[i] * q[j] != 0.0 else scales[0]
        if math.isclose(coulomb, scales[0], rel_tol=1e-9):
            coulomb = scales[0]  # the file's scale, not its rounding in q_i q_j s
        if pair in dec.lj14:
            out.append(Pair14(pair, coulomb, 1.0, dec.lj14[pair]))
            continue
        (si, ei), (sj, ej) = lj[types[i]], lj[types[j]]
        combined = math.sqrt(ei * ej) * scales[1]
        if math.isclose(sigma, 0.5 * (si + sj), rel_tol=1e-9) and \
                math.isclose(epsilon, combined, rel_tol=1e-9, abs_tol=1e-15):
            out.append(Pair14(pair, coulomb, scales[1], None))
        else:
            out.append(Pair14(pair, coulomb, 1.0, (sigma, epsilon)))
    return out


def read_ffxml(pdb: str | Path, forcefields: Sequence[str],
               residue_templates: dict[str, str] | None = None) -> ParameterizedSystem:
    """The system OpenMM's ``ForceField(*forcefields)`` makes of ``pdb`` (file names of
    ffxml files, or those shipped with OpenMM such as ``amber14-all.xml``), with every
    parameter it applies in the ParameterSet; the PDB positions are the conformer.
    ``residue_templates``: residue name -> template name where several templates match
    (e.g. ``{"ALA": "ALAD"}`` for charmm36's alanine dipeptide)."""
    from openmm import app

    path = require_file(pdb, "PDB file")
    if not forcefields:
        raise InputError("an OpenMM force field needs its ffxml files (e.g. amber14-all.xml)")
    read_text(path, "PDB file")
    try:
        pdbfile = app.PDBFile(str(path))
        forcefield = _forcefield(list(forcefields))
        topology = pdbfile.topology
        templates = {res: residue_templates[res.name] for res in topology.residues()
                     if res.name in (residue_templates or {})}
        system = forcefield.createSystem(topology, nonbondedMethod=app.NoCutoff,
                                         constraints=None, rigidWater=False,
                                         removeCMMotion=False, residueTemplates=templates)
        types = _atom_types(forcefield, topology, templates)
    except (ValueError, KeyError, OSError, Exception) as exc:  # OpenMM raises plain Exception
        raise InputError(f"OpenMM cannot apply {', '.join(forcefields)} to {path.name}: "
                         f"{str(exc).splitlines()[0]}") from None
    bonds = {tuple(sorted((b[0].index, b[1].index))) for b in topology.bonds()}
    decoder = _Decoder(system, bonds, types, list(forcefields))
    decoder.run()
    lj, nbfix = _lj_and_nbfix(decoder)
    positions = np.asarray(pdbfile.getPositions(asNumpy=True)._value) * NM
    nb = decoder.nonbonded
    draft = ImportDraft(
        name=path.stem,
        atomic_numbers=[a.element.atomic_number for a in topology.atoms()],
        masses=[system.getParticleMass(p)._value for p in range(system.getNumParticles())],
        bonds=sorted(bonds), atom_types=types,
        charges=np.array([nb.getParticleParameters(p)[0]._value
                          for p in range(nb.getNumParticles())]),
        lj=lj, terms=dict(decoder.terms),
        pairs_14=_pairs_14(decoder, lj, _scales_14(forcefield)), nbfix=nbfix,
        positions=positions, source=f"OpenMM {'+'.join(forcefields)} on {path.name}")
    return assemble(draft)


__all__ = ["read_ffxml"]
