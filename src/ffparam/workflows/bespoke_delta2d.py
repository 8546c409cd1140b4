"""2-D torsion drives in the bespoke workflow (``ffparam bespoke --drive-2d J-K,L-M``):
a pair of coupled rotors driven together as one 2-D grid, fitted to the whole surface.

Per pair: one 2-D torsion drive of the two bonds' dihedrals on the parent molecule
(``spacing_2d_deg``, default 30 degrees: 144 grid points), with the method's LOW part when
``high_budget`` is set and with the method itself otherwise. With ``high_budget`` the
correction HIGH - LOW on the 2-D grid is learned by the product periodic GP of
:mod:`ffparam.fit.profile_gp` (five start points spread on the torus, then one HIGH
single point at a time where the relative corrected surface is least certain: exactly
:func:`~ffparam.workflows.bespoke_delta.learn_correction` with 2-D angles), and the surface
becomes LOW + the GP mean. The pair is one :class:`~ffparam.workflows.bespoke_scans.RotorScan`
(``bond`` and ``bond2``), so it goes through the same joint fit as the 1-D rotors: both
bonds get bespoke torsions, the torsion target restrains both dihedrals at each grid point,
and points are weighed by their GP sigma (:func:`~ffparam.workflows.bespoke_delta.weigh_by_sigma`).
Every LOW optimization and HIGH single point is an ordinary Store record, so a rerun
computes nothing. The two bonds of a pair are not also scanned as 1-D rotors (nor the
bonds symmetry-equivalent to them). 2-D drives run on the parent molecule, never on a
fragment.

Plots: the reference and MM surfaces with their difference (:func:`profile_2d_plot`, the
rotor's profile plot), and for a Delta-learned pair the corrected surface with the HIGH
points marked and the GP's sigma map (:func:`delta_2d_plot`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from ffparam.chem import Molecule, Topology
from ffparam.errors import InputError
from ffparam.fit.targets.torsion import TorsionProfile
from ffparam.workflows.bespoke_scans import RotorScan

Bond = tuple[int, int]
Pair = tuple[Bond, Bond]


def check_pairs(pairs) -> None:
    """InputError unless every pair names two different bonds and no bond is in two pairs
    (checked when the settings are made, before anything runs)."""
    seen: dict[Bond, int] = {}
    for n, pair in enumerate(pairs or []):
        if len(pair) != 2 or any(len(b) != 2 for b in pair):
            raise InputError(f"drives_2d[{n}]: give two bonds of two atoms each, got {pair}")
        first, second = (tuple(sorted(int(a) for a in b)) for b in pair)
        for bond in (first, second):
            if bond[0] == bond[1]:
                raise InputError(f"drives_2d[{n}]: {bond[0]}-{bond[1]} is not a bond")
        if first == second:
            raise InputError(f"drives_2d[{n}]: both rotors are bond {first[0]}-{first[1]}; "
                             "a 2-D drive needs two different bonds")
        for bond in (first, second):
            if bond in seen:
                raise InputError(f"drives_2d[{n}]: bond {bond[0]}-{bond[1]} is already in "
                                 f"drives_2d[{seen[bond]}]")
            seen[bond] = n


def check_pairs_in_molecule(molecule: Molecule, pairs) -> None:
    """InputError unless every bond of every pair is a rotatable bond of ``molecule``
    (before any calculation or output)."""
    rotatable = {tuple(sorted(b)) for b in
                 Topology(molecule).find_rotatable_bonds(True).tolist()}
    for n, pair in enumerate(pairs or []):
        for bond in pair:
            if tuple(sorted(int(a) for a in bond)) not in rotatable:
                raise InputError(f"drives_2d[{n}]: {bond[0]}-{bond[1]} is not a rotatable "
                                 f"bond of {molecule.name}")


def unpaired_bonds(molecule: Molecule, bonds: list[Bond], pairs) -> list[Bond]:
    """``bonds`` (the 1-D rotors) without the bonds of ``pairs`` and those
    symmetry-equivalent to them."""
    from ffparam.fit.smirks import equivalent_bonds

    topology = Topology(molecule)
    covered: set[Bond] = set()
    for pair in pairs or []:
        for bond in pair:
            bond = (int(bond[0]), int(bond[1]))
            covered |= {tuple(sorted(b)) for b in equivalent_bonds(topology, bond)}
            covered.add(tuple(sorted(bond)))
    return [b for b in bonds if tuple(sorted(b)) not in covered]


def drive_pair(molecule: Molecule, pair: Pair, settings, store, executor) -> RotorScan:
    """The 2-D drive of ``pair`` (and with ``settings.high_budget`` its Delta-learned
    ``HIGH//LOW`` surface) as one RotorScan; a failed drive is reported, never fatal."""
    from ffparam.errors import FFParamError
    from ffparam.reference.spec import CompositeSpec
    from ffparam.reference.torsiondrive import run_torsiondrive

    topology = Topology(molecule)
    bonds = [(int(b[0]), int(b[1])) for b in pair]
    dihedrals = [tuple(int(a) for a in topology.dihedral_for_bond(b)) for b in bonds]
    delta = settings.high_budget is not None
    spec = CompositeSpec.parse(settings.method) if delta else None
    method = spec.low.canonical() if delta else settings.method
    rotor = RotorScan(bonds[0], dihedrals[0], bond2=bonds[1], dihedral2=dihedrals[1])
    try:
        result = run_torsiondrive(molecule, dihedrals, method=method,
                                  spacing_deg=settings.spacing_2d_deg, store=store,
                                  executor=executor, retry_failed=settings.retry_failed,
                                  progress=settings.progress)
    except FFParamError as exc:
        rotor.error = str(exc)
        return rotor
    rotor.missing = list(result.missing)
    rotor.n_jobs, rotor.n_cached = result.summary.n_jobs, result.summary.n_cached
    rotor.n_failed = result.summary.n_failed
    if len(result.energies):
        rotor.profile = TorsionProfile(np.array(dihedrals), result.angles, result.geometries,
                                       result.energies, pair_label(bonds))
    if not rotor.usable:
        rotor.error = (f"only {len(result.energies)} grid point(s) of the 2-D drive "
                       "succeeded")
        return rotor
    if not delta:
        return rotor
    from ffparam.workflows.bespoke_delta import correct_rotor

    return correct_rotor(rotor, molecule, spec, settings, store, executor)


def pair_label(bonds) -> str:
    """``J-K x L-M``: the name of a 2-D rotor."""
    return " x ".join(f"{b[0]}-{b[1]}" for b in bonds)


def pair_rotors(molecule: Molecule, settings, store, executor,
                say: Callable[[str], None] | None = None) -> list[RotorScan]:
    """One RotorScan per pair of ``settings.drives_2d`` (:func:`drive_pair`)."""
    rotors = []
    for pair in settings.drives_2d or []:
        if say is not None:
            say(f"2-D torsion drive of bonds {pair_label(pair)} with {settings.method} "
                f"({settings.spacing_2d_deg}-degree grid)")
        rotors.append(drive_pair(molecule, pair, settings, store, executor))
    return rotors


def surface(angles_deg: np.ndarray, values: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid axes (degrees) and the (n2, n1) array of ``values`` on the 2-D grid of
    ``angles_deg`` (n, 2), NaN where the grid has no point."""
    angles = np.asarray(angles_deg, dtype=float)
    x, y = np.unique(angles[:, 0]), np.unique(angles[:, 1])
    grid = np.full((len(y), len(x)), np.nan)
    grid[np.searchsorted(y, angles[:, 1]), np.searchsorted(x, angles[:, 0])] = values
    return x, y, grid


def _heat_maps(path: Path, angles: np.ndarray, panels: Mapping[str, tuple[np.ndarray, str]],
               title: str, marks: Mapping[str, tuple[np.ndarray, str]] | None = None) -> Path:
    """One heat map per ``panels`` entry (title -> (values (n,), colour map)) on the 2-D
    grid ``angles`` (n, 2) degrees; ``marks``: label -> (grid indices, matplotlib marker
    spec) drawn on every panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ffparam.io.atomic import savefig_atomic

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), dpi=110,
                             squeeze=False)
    for ax, (name, (values, cmap)) in zip(axes[0], panels.items()):
        x, y, grid = surface(angles, values)
        mesh = ax.pcolormesh(x, y, grid, shading="nearest", cmap=cmap)
        fig.colorbar(mesh, ax=ax, shrink=0.85)
        for label, (indices, style) in (marks or {}).items():
            if len(indices):
                ax.plot(angles[indices, 0], angles[indices, 1], style, markersize=6,
                        markerfacecolor="none", label=label)
        ax.set(xlabel="dihedral 1 (degrees)", ylabel="dihedral 2 (degrees)")
        ax.set_title(name, fontsize=9)
    if marks and any(len(i) for i, _ in marks.values()):
        axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        return savefig_atomic(fig, path)
    finally:
        plt.close(fig)


def profile_2d_plot(path: Path, angles: np.ndarray, reference: np.ndarray,
                    fitted: np.ndarray, title: str, rmse: float | None = None) -> Path:
    """Heat maps of a 2-D profile: the reference surface, the fitted MM surface (both
    relative to the reference minimum, kcal/mol) and their difference (kcal/mol)."""
    fit_name = "bespoke MM" + ("" if rmse is None else f" (RMSE {rmse:.2f} kcal/mol)")
    return _heat_maps(path, angles, {"reference (kcal/mol)": (reference, "viridis"),
                                     fit_name: (fitted, "viridis"),
                                     "bespoke - reference (kcal/mol)":
                                         (fitted - reference, "coolwarm")}, title)


def delta_2d_plot(path: Path, delta) -> Path:
    """Heat maps of a Delta-learned 2-D drive (``delta``: a
    :class:`~ffparam.workflows.bespoke_delta.DeltaScan`): the corrected surface LOW + GP
    mean relative to its minimum, the correction relative to its mean, and the predicted
    sigma of the relative corrected surface (kcal/mol); computed HIGH points circled,
    failed ones crossed."""
    learned = delta.learned
    corrected = delta.corrected - delta.corrected.min()
    correction = learned.posterior.mean - learned.posterior.mean.mean()
    marks = {f"{delta.high_method} ({len(learned.computed)})":
             (np.array(learned.computed, dtype=int), "ko"),
             f"failed ({len(learned.failed)})": (np.array(learned.failed, dtype=int), "rx")}
    return _heat_maps(path, delta.angles, {
        "corrected surface (kcal/mol)": (corrected, "viridis"),
        f"{delta.high_method} - {delta.low_method}, relative (kcal/mol)":
            (correction, "coolwarm"),
        "GP sigma (kcal/mol)": (delta.sigma, "magma")},
        f"{delta.high_method}//{delta.low_method}: 2-D correction", marks)


__all__ = [
    "check_pairs",
    "check_pairs_in_molecule",
    "delta_2d_plot",
    "drive_pair",
    "pair_label",
    "pair_rotors",
    "profile_2d_plot",
    "surface",
    "unpaired_bonds",
]
