"""Are a liquid's slow torsions in equilibrium? The trend of conformer populations over a run.

A torsion whose barrier is crossed every few ns (1,2-dichloroethane's Cl-C-C-Cl) keeps
the populations the box was packed with for the whole of a 0.2-1 ns liquid run, and the
energy/density equilibration detector does not see it (the populations drift slowly, not
in a transient). Here every rotatable bond gets one heavy-atom torsion; each molecule and
frame is put in the trans (|phi| > 120 deg) or the gauche well (gauche+ and gauche-
together: mirror images, of equal energy in a liquid of achiral molecules, whose slow
exchange changes nothing), and the fraction of trans molecules is followed frame by frame.
A straight line through that series gives the change over the run; its slope's standard
error comes from the residuals with pymbar's statistical inefficiency. A slope beyond
``threshold`` errors that also moves the population by more than ``min_change`` over the
run is drift: the conformers were not in equilibrium, and neither are the density and
Hvap.

Angles in degrees; positions in Angstrom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rdkit import Chem

from ffparam.chem import Molecule
from ffparam.liquid.simulate import load_trajectory
from ffparam.liquid.statistics import inefficiency

ROTATABLE = Chem.MolFromSmarts("[!$([NH])&!$([NH2])&!$(C(F)(F)F)&!D1]-&!@[!D1&!$(C(F)(F)F)]")
"""A single, non-ring bond between two atoms that each have another heavy neighbour."""


def rotatable_torsions(molecule: Molecule) -> list[tuple[int, int, int, int]]:
    """One heavy-atom torsion (a, b, c, d) per rotatable bond b-c (lowest-index heavy
    neighbours), skipping bonds whose end has no other heavy neighbour."""
    mol = molecule.rdmol
    out = []
    for b, c in mol.GetSubstructMatches(ROTATABLE):
        ends = []
        for centre, other in ((b, c), (c, b)):
            heavy = sorted(n.GetIdx() for n in mol.GetAtomWithIdx(centre).GetNeighbors()
                           if n.GetAtomicNum() > 1 and n.GetIdx() != other)
            ends.append(heavy[0] if heavy else None)
        if None not in ends:
            out.append((ends[0], b, c, ends[1]))
    return out


def dihedral_deg(positions: np.ndarray, quartet: tuple[int, int, int, int]) -> np.ndarray:
    """Dihedral angles (deg) of atoms ``quartet`` in positions (..., n_atoms, 3)."""
    p = np.asarray(positions, dtype=np.float64)[..., list(quartet), :]
    b0 = p[..., 0, :] - p[..., 1, :]
    b1 = p[..., 2, :] - p[..., 1, :]
    b2 = p[..., 3, :] - p[..., 2, :]
    b1 = b1 / np.linalg.norm(b1, axis=-1, keepdims=True)
    v = b0 - (b0 * b1).sum(-1, keepdims=True) * b1
    w = b2 - (b2 * b1).sum(-1, keepdims=True) * b1
    return np.degrees(np.arctan2((np.cross(b1, v) * w).sum(-1), (v * w).sum(-1)))


@dataclass
class TorsionDrift:
    """Trend of one torsion's well populations over a liquid production.

    Attributes:
        atoms: the torsion (molecule atom indices).
        start, end: trans fraction of the first and last tenth of the frames.
        change: fitted linear change of the trans fraction over the whole run.
        z: |slope| / its standard error (the error from the residuals' statistical
            inefficiency).
        drifting: z above the threshold and the change larger than ``min_change``.
    """

    atoms: tuple[int, int, int, int]
    start: float
    end: float
    change: float
    z: float
    drifting: bool

    def to_json(self) -> dict:
        return {"atoms": list(self.atoms), "trans_start": round(self.start, 4),
                "trans_end": round(self.end, 4), "trans_change": round(self.change, 4),
                "z": round(self.z, 2), "drifting": self.drifting}

    @classmethod
    def from_json(cls, data: dict) -> TorsionDrift:
        return cls(tuple(data["atoms"]), data["trans_start"], data["trans_end"],
                   data["trans_change"], data["z"], data["drifting"])


def _slope(series: np.ndarray) -> tuple[float, float]:
    """Least-squares slope per frame of a correlated series and its standard error."""
    t = np.arange(len(series), dtype=np.float64)
    tc = t - t.mean()
    slope = float(tc @ (series - series.mean()) / (tc @ tc))
    residual = series - series.mean() - slope * tc
    if np.ptp(residual) == 0:
        return slope, 0.0
    g = inefficiency(residual)
    error = math.sqrt(g * residual.var(ddof=2) / (tc @ tc))
    return slope, error


def torsion_drift(molecule: Molecule, positions: np.ndarray, threshold: float = 4.0,
                  min_change: float = 0.03) -> list[TorsionDrift]:
    """Trend of every rotatable torsion's populations over liquid frames ``positions``
    (n_frames, n_molecules * n_atoms, 3) Angstrom, in frame order."""
    positions = np.asarray(positions)
    n_frames = positions.shape[0]
    per_molecule = positions.reshape(n_frames, -1, molecule.n_atoms, 3)
    tenth = max(1, n_frames // 10)
    out = []
    for quartet in rotatable_torsions(molecule):
        phi = dihedral_deg(per_molecule, quartet)  # (F, M)
        trans = (np.abs(phi) > 120.0).mean(axis=1)  # (F,)
        slope, error = _slope(trans)
        change = slope * (n_frames - 1)
        z = abs(slope) / error if error > 0 else (math.inf if slope else 0.0)
        out.append(TorsionDrift(quartet, float(trans[:tenth].mean()),
                                float(trans[-tenth:].mean()), float(change), float(z),
                                bool(z > threshold and abs(change) > min_change)))
    return out


def liquid_drift(directory, molecule: Molecule, save_interval_ps: float
                 ) -> list[TorsionDrift]:
    """:func:`torsion_drift` of the liquid production frames in run ``directory`` (for
    runs stored before results carried it)."""
    trajectory = load_trajectory(Path(directory) / "liquid", save_interval_ps)
    return torsion_drift(molecule, trajectory.positions)


def stored_drift(torsion_drift: list[dict] | None, directory, molecule: Molecule,
                 save_interval_ps: float) -> list[TorsionDrift]:
    """The torsion drift of a finished liquid run: the ``torsion_drift`` its result
    (:attr:`LiquidResult.torsion_drift`) carries, or, when it is None (a result stored
    before results carried it), :func:`liquid_drift` of its frames in ``directory``."""
    if torsion_drift is not None:
        return [TorsionDrift.from_json(d) for d in torsion_drift]
    return liquid_drift(directory, molecule, save_interval_ps)


def drift_message(name: str, drifts: list[TorsionDrift]) -> str | None:
    """One warning line naming the drifting torsions of ``name`` (None if none drift)."""
    bad = [d for d in drifts if d.drifting]
    if not bad:
        return None
    parts = [f"{'-'.join(map(str, d.atoms))} trans {d.start:.2f} -> {d.end:.2f} (z {d.z:.0f})"
             for d in bad]
    return (f"{name}: torsion populations still drifting over the production ({'; '.join(parts)}"
            "): the conformers are not equilibrated, so neither are density and Hvap; "
            "lengthen the equilibration")
