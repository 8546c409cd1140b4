"""Boltzmann rotamer populations of a molecule from Monte Carlo, for several force fields
side by side, and from a set of conformer energies.

A rotamer is the tuple of torsion states of the molecule's rotatable bonds (symmetric
terminal rotors such as methyl left out; one heavy-atom dihedral per bond). The states of
each dihedral are the peaks of the pooled, smoothed circular histogram of all sampled
frames (every frame assigned to the nearest peak), so sp3 (60/180/300), amide (0/180) and
biaryl (+-40, +-140) torsions all get their own states, the same for every force field
compared. Populations of MC frames carry standard errors over independent chains; from
conformer energies (e.g. the reference method's) the estimate is the Boltzmann weight of
the lowest conformer of each rotamer (minima only: no vibrational entropy).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ffparam.chem.topology import Topology
from ffparam.errors import InputError
from ffparam.params.system import ParameterizedSystem
from ffparam.sample.mc import MCSettings, run_mc
from ffparam.sample.statistics import chain_average, dihedral_angles
from ffparam.units import BOLTZMANN_KCAL_MOL_K

OTHER = "other"


def rotamer_dihedrals(topology: Topology) -> np.ndarray:
    """One dihedral (n, 4) per rotatable bond, symmetric terminal rotors left out."""
    bonds = topology.find_rotatable_bonds(include_terminal_rotors=True)
    rows = [topology.dihedral_for_bond((int(j), int(k))) for j, k in bonds
            if not topology.is_symmetric_terminal_rotor((int(j), int(k)))]
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def torsion_peaks(angles_deg: np.ndarray, bin_deg: float = 10.0, min_fraction: float = 0.02,
                  min_separation_deg: float = 40.0) -> np.ndarray:
    """State centres (degrees, [0, 360)) of one torsion: the local maxima of its circular
    histogram (smoothed over 3 bins), highest first, each at least
    ``min_separation_deg`` from a higher one and nearest to at least ``min_fraction`` of
    the samples; at least one (the highest)."""
    a = np.mod(np.asarray(angles_deg, dtype=np.float64).ravel(), 360.0)
    n_bins = round(360.0 / bin_deg)
    counts = np.bincount((a / 360.0 * n_bins).astype(np.int64) % n_bins, minlength=n_bins)
    smooth = (np.roll(counts, 1) + counts + np.roll(counts, -1)) / 3.0
    is_peak = (smooth >= np.roll(smooth, 1)) & (smooth > np.roll(smooth, -1))
    centres = (np.arange(n_bins) + 0.5) * 360.0 / n_bins
    order = np.argsort(-smooth[is_peak], kind="stable")
    peaks: list[float] = []
    for centre in centres[is_peak][order]:
        if all(abs((centre - p + 180.0) % 360.0 - 180.0) >= min_separation_deg for p in peaks):
            peaks.append(float(centre))
    if not peaks:
        return centres[[int(np.argmax(smooth))]]
    kept = np.array(peaks)
    mass = np.bincount(_nearest(a, kept), minlength=len(kept)) / max(a.size, 1)
    return kept[mass >= min_fraction] if (mass >= min_fraction).any() else kept[:1]


def _nearest(angles_deg: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Index of the circularly nearest peak of each angle."""
    diff = np.abs(np.mod(angles_deg[..., None] - peaks + 180.0, 360.0) - 180.0)
    return np.argmin(diff, axis=-1)


def rotamer_labels(angles_deg: np.ndarray, peaks: list[np.ndarray]) -> np.ndarray:
    """Labels (...,) such as ``"180/60"`` of dihedral angles (..., n_dihedrals): each
    dihedral as its nearest peak, rounded to degrees."""
    a = np.mod(np.asarray(angles_deg, dtype=np.float64), 360.0)
    parts = []
    for d, centres in enumerate(peaks):
        index = _nearest(a[..., d], centres)
        parts.append(np.round(centres).astype(int).astype(str)[index])
    if not parts:
        return np.full(a.shape[:-1], "-", dtype=object)
    out = parts[0].astype(object)
    for p in parts[1:]:
        out = out + "/" + p
    return out


@dataclass
class ConformerPopulations:
    """Rotamer populations at one temperature from several sources.

    Attributes:
        temperature_k: K. dihedrals: (n, 4) the dihedral of each rotatable bond.
        peaks_deg: per dihedral, its state centres (degrees).
        labels: rotamer labels, most populated first (``other``: all below the cut).
        mc: source name -> label -> (fraction, standard error) from MC frames.
        reference: label -> fraction from conformer energies (empty when none given; a
            rotamer without a reference conformer has no entry).
        reference_method: what the reference energies came from.
        acceptance: source name -> move -> production acceptance rate.
        notes: how the numbers were made.
    """

    temperature_k: float
    dihedrals: np.ndarray
    peaks_deg: list[np.ndarray]
    labels: list[str]
    mc: dict[str, dict[str, tuple[float, float]]]
    reference: dict[str, float] = field(default_factory=dict)
    reference_method: str | None = None
    acceptance: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``metrics.json`` (rows: one per rotamer label)."""
        rows = []
        for label in self.labels:
            row: dict[str, Any] = {"rotamer": label}
            for name, table in self.mc.items():
                fraction, error = table.get(label, (0.0, 0.0))
                row[name] = {"fraction": float(fraction), "error": float(error)}
            if self.reference:  # None: no reference conformer of this rotamer
                value = self.reference.get(label)
                row["reference"] = None if value is None else float(value)
            rows.append(row)
        return {"temperature_k": self.temperature_k, "sources": list(self.mc),
                "dihedrals": self.dihedrals.tolist(),
                "peaks_deg": [np.round(p, 1).tolist() for p in self.peaks_deg],
                "rows": rows, "reference_method": self.reference_method,
                "has_reference": bool(self.reference),
                "acceptance": self.acceptance, "notes": list(self.notes)}


def conformer_populations(systems: Mapping[str, ParameterizedSystem], start: np.ndarray,
                          settings: MCSettings | None = None,
                          reference: tuple[np.ndarray, np.ndarray] | None = None,
                          reference_method: str | None = None,
                          min_fraction: float = 0.01) -> ConformerPopulations:
    """MC rotamer populations of each system (same molecule, atom order) and, with
    ``reference`` = (geometries (n, n_atoms, 3) Angstrom, energies (n,) kcal/mol), the
    Boltzmann populations of those conformers' rotamers (lowest conformer per rotamer).

    Rotamers below ``min_fraction`` in every source are pooled as ``other``.
    """
    if not systems:
        raise InputError("conformer populations need at least one system")
    settings = settings or MCSettings()
    topology = next(iter(systems.values())).topology
    dihedrals = rotamer_dihedrals(topology)
    if not len(dihedrals):
        return ConformerPopulations(settings.temperature_k, dihedrals, [], [], {}, notes=[
            "no rotatable bond (symmetric terminal rotors aside): one rotamer"])
    frames, acceptance = {}, {}
    for name, system in systems.items():
        result = run_mc(system, start, settings)
        frames[name] = result.frames
        acceptance[name] = {m: float(r[0]) for m, r in result.acceptance.items()
                            if np.isfinite(r[0])}
    angles = {n: dihedral_angles(f, dihedrals) for n, f in frames.items()}
    pooled = np.concatenate([a.reshape(-1, len(dihedrals)) for a in angles.values()])
    peaks = [torsion_peaks(pooled[:, d]) for d in range(len(dihedrals))]
    labelled = {n: rotamer_labels(a, peaks) for n, a in angles.items()}
    ref: dict[str, float] = {}
    if reference is not None and len(reference[1]):
        geometries, energies = reference
        ref = boltzmann_by_label(rotamer_labels(dihedral_angles(geometries, dihedrals), peaks),
                                 energies, settings.temperature_k)
    labels = _ordered_labels(labelled, ref, min_fraction)
    mc = {n: _mc_table(np.where(np.isin(x, labels), x, OTHER)) for n, x in labelled.items()}
    pooled_ref: dict[str, float] = {}
    for label, fraction in ref.items():
        key = label if label in labels else OTHER
        pooled_ref[key] = pooled_ref.get(key, 0.0) + fraction
    notes = [f"Metropolis MC at {settings.temperature_k:g} K, {settings.n_chains} chains x "
             f"{settings.n_steps} steps after {settings.equilibration_steps}; errors over "
             "chains. Rotamers: torsion states of the rotatable bonds (peaks of the pooled "
             "dihedral histograms)."]
    if pooled_ref:
        notes.append("Reference: Boltzmann weights of the lowest-energy reference conformer "
                     "of each rotamer (conformer energies only, no vibrational entropy; "
                     "n/a: no reference conformer in that rotamer).")
    return ConformerPopulations(settings.temperature_k, dihedrals, peaks, labels, mc,
                                pooled_ref, reference_method if ref else None, acceptance,
                                notes)


def boltzmann_by_label(labels: np.ndarray, energies_kcal_mol: np.ndarray,
                       temperature_k: float) -> dict[str, float]:
    """label -> Boltzmann population of its lowest energy (kcal/mol) at ``temperature_k``."""
    e = np.asarray(energies_kcal_mol, dtype=np.float64)
    lowest: dict[str, float] = {}
    for label, energy in zip(np.asarray(labels).ravel(), e):
        lowest[str(label)] = min(energy, lowest.get(str(label), np.inf))
    values = np.array(list(lowest.values()))
    weights = np.exp(-(values - values.min()) / (BOLTZMANN_KCAL_MOL_K * temperature_k))
    return dict(zip(lowest, (weights / weights.sum()).tolist()))


def _mc_table(labels: np.ndarray) -> dict[str, tuple[float, float]]:
    """label -> (fraction, standard error over chains) of (n_frames, n_chains) labels."""
    return {str(label): chain_average((labels == label).astype(np.float64))
            for label in np.unique(labels.ravel())}


def _ordered_labels(labelled: dict[str, np.ndarray], ref: dict[str, float],
                    min_fraction: float) -> list[str]:
    """Labels at ``min_fraction`` or more in some source, by their largest fraction; plus
    ``other`` when anything falls below."""
    best: dict[str, float] = dict(ref)
    for x in labelled.values():
        names, counts = np.unique(x.ravel(), return_counts=True)
        for label, count in zip(names, counts):
            best[str(label)] = max(best.get(str(label), 0.0), count / x.size)
    kept = sorted((k for k, v in best.items() if v >= min_fraction), key=lambda k: -best[k])
    return kept + ([OTHER] if len(kept) < len(best) else [])
