"""Gaussian process regression on energies and forces (sGDML-like derivative kernel).

One GP models the energy of one molecule (fixed composition and atom order) as a function of
its inverse-distance descriptor, with the kernel of :mod:`ffparam.ml.models.gp_kernel`,
trained jointly on energies and gradients (= -forces). Two variants:

* exact: all training frames, Cholesky of the full (N(1+3n))^2 kernel; for small sets.
* sparse (deterministic training conditional, inducing points): M frames chosen by
  farthest-point sampling in descriptor space carry all their energy and gradient
  variables; the whitened B = I + L^-1 K_mn Lambda^-1 K_nm L^-T (K_mm = L L^T) is
  accumulated over chunks of training frames (well conditioned even for tiny noise).

With the relative noise Lambda = diag(lambda_E^2 for energies, lambda_G^2 for gradients) the
posterior mean is K_*b alpha; the energy is evaluated as a differentiable function of the
positions and the forces are its negative gradient (autograd), so the model is
energy-conserving. The signal variance sigma_f^2 is the maximum-likelihood value
y^T (K + Lambda)^-1 y / N_obs (Woodbury form for the sparse variant), then (by default)
rescaled so that validation force errors have unit variance in units of the predicted
sigma (and the energy variances by their own factor, so that validation energy errors do);
predictive variances

    exact:  sigma_f^2 (k_** - k_*^T (K + Lambda)^-1 k_*)
    sparse: sigma_f^2 (k_** - k_*m^T K_mm^-1 k_m* + k_*m^T A^-1 k_m*)

are those of the latent energy and forces plus the fitted noise sigma_f^2 lambda^2.

Descriptor weights (automatic relevance determination): the kernel sees w * x, with one
weight per orbit of atom pairs under the molecule's automorphisms (so the model stays
invariant), learned after the (l, lambda_G) grid choice by minimizing the validation force
error of an exact GP on a seeded subset of the training frames with Adam (the validation
frames are the ones every model of :mod:`ffparam.ml` uses for its choices; the test set is
never seen). On rMD17 ethanol with 50 training frames this moves the test force MAE from 79
to 54 meV/A (benchmarks/RESULTS.md).
Per-atom energies are an attribution: integrated gradients of the GP energy along the path
x(t) = t x from the dissociated limit (x = 0), each pair's share split evenly between its
two atoms, plus the per-element reference energies; they sum to the total energy.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ffparam.errors import CalculationError, InputError
from ffparam.ml.batch import Batch
from ffparam.ml.checkpoint import load_weights, read_model_json, write_model_dir
from ffparam.ml.data import MLDataset, check_elements, element_symbol, reference_energy_per_frame
from ffparam.ml.models.gp_kernel import (
    inverse_distances,
    matern52_differentiable,
    pair_indices,
    pair_orbits,
    permuted_features,
    symmetric_kernel,
    weighted_features,
)
from ffparam.ml.potential import Potential, Prediction

_GAUSS_NODES = 32


@dataclass
class GPConfig:
    """Hyperparameters and size limits of the GP (descriptor x in 1/Angstrom).

    Attributes:
        length_scale: Matern length scale l; None selects it from ``length_scales`` (and,
            with ``select_noise``, lambda_G from ``force_noises``) by the force MAE on the
            validation set (exact GP on ``n_select`` training frames); the training data
            enter only through the fit, the choice only through the validation frames.
        length_scales: candidates for l.
        energy_noise: relative noise lambda_E on energies (units of sigma_f).
        force_noise: relative noise lambda_G on gradient components (the selected one
            when it is selected).
        select_noise: select lambda_G jointly with l (only when l is selected). The
            gradient prior variance scales as 1/l^2, so a fixed relative lambda_G means a
            very different regularization at each l: they have to be chosen together.
        force_noises: candidates for lambda_G.
        max_exact: largest training set fitted exactly; beyond it the sparse variant.
        n_inducing: number of inducing frames of the sparse variant (None: ``max_exact``).
        symmetrize: average the kernel over the molecule's graph automorphisms.
        max_permutations: cap on the number of automorphisms used.
        n_select: training frames used to select l.
        chunk_frames: training frames per chunk in the sparse accumulation.
        learn_weights: learn the per-orbit descriptor weights on the validation forces
            (needs a validation set); ``weight_steps`` Adam steps of learning rate
            ``weight_lr`` in log w (and log lambda_G), exact GP on ``weight_frames``
            training frames, stopping early once the steps have used ``weight_cpu_s`` CPU
            seconds; the weights of the best validation step are kept. Without a
            validation set the weights stay 1.
        calibrate: rescale sigma_f^2 so that the validation force errors have unit
            variance in units of their predicted sigma (mean (error/sigma)^2 = 1).
        seed: seeds the subset used to select l and the first inducing frame.
    """

    length_scale: float | None = None
    length_scales: tuple[float, ...] = (0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6)
    energy_noise: float = 1e-3
    force_noise: float = 1e-3
    select_noise: bool = True
    force_noises: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
    max_exact: int = 200
    n_inducing: int | None = None
    symmetrize: bool = True
    max_permutations: int = 64
    n_select: int = 100
    chunk_frames: int = 32
    seed: int = 0
    learn_weights: bool = True
    weight_steps: int = 30
    weight_frames: int = 50
    weight_lr: float = 0.1
    weight_cpu_s: float = 60.0
    calibrate: bool = True
    timings: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: dict) -> GPConfig:
        values = dict(values)
        for key in ("length_scales", "force_noises"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


def molecule_automorphisms(
    numbers: np.ndarray, positions: np.ndarray, limit: int = 64
) -> np.ndarray:
    """(P, n) atom permutations that map the bond graph onto itself (identity first).

    Bonds are perceived from the geometry (RDKit ``DetermineConnectivity``); matching uses
    elements and connectivity only. The permutations form a group, which keeps the
    symmetrized kernel symmetric; a group larger than ``limit`` (or a failed perception)
    gives the identity alone rather than a subset that is not a group.
    """
    from rdkit import Chem
    from rdkit.Chem import rdDetermineBonds

    n = len(numbers)
    identity = np.arange(n)[None]
    lines = [str(n), ""] + [
        f"{element_symbol(int(z))} {x:.6f} {y:.6f} {w:.6f}"
        for z, (x, y, w) in zip(numbers, positions)
    ]
    try:
        mol = Chem.MolFromXYZBlock("\n".join(lines))
        rdDetermineBonds.DetermineConnectivity(mol)
        matches = mol.GetSubstructMatches(
            mol, uniquify=False, useChirality=False, maxMatches=limit + 1
        )
    except Exception:  # perception failure: no symmetrization
        return identity
    if len(matches) > limit:
        return identity
    perms = [np.asarray(m) for m in matches if len(m) == n]
    perms = [p for p in perms if not np.array_equal(p, identity[0])]
    return np.concatenate([identity, np.asarray(perms, dtype=np.int64).reshape(-1, n)])


def farthest_point_sampling(x: torch.Tensor, m: int, first: int = 0) -> np.ndarray:
    """Indices of ``m`` rows of ``x`` (N, D) chosen greedily far from each other."""
    chosen = [first]
    dist = ((x - x[first]) ** 2).sum(1)
    for _ in range(1, min(m, x.shape[0])):
        nxt = int(torch.argmax(dist))
        chosen.append(nxt)
        dist = torch.minimum(dist, ((x - x[nxt]) ** 2).sum(1))
    return np.sort(np.asarray(chosen))


def _observations(energies: torch.Tensor, forces: torch.Tensor) -> torch.Tensor:
    """[energies (N,), gradients (N*3n,)] with gradients = -forces."""
    return torch.cat([energies, -forces.reshape(-1)])


def _noise(n_frames: int, n_grad: int, cfg: GPConfig, dtype) -> torch.Tensor:
    return torch.cat(
        [
            torch.full((n_frames,), cfg.energy_noise**2, dtype=dtype),
            torch.full((n_frames * n_grad,), cfg.force_noise**2, dtype=dtype),
        ]
    )


def _cholesky(matrix: torch.Tensor, what: str, min_jitter: float = 0.0) -> torch.Tensor:
    """Cholesky factor, adding the smallest sufficient diagonal jitter (relative to the mean
    diagonal) when the matrix is numerically singular."""
    jitter = min_jitter
    scale = float(matrix.diagonal().mean())
    for _ in range(6):
        eye = torch.eye(matrix.shape[0], dtype=matrix.dtype)
        factor, info = torch.linalg.cholesky_ex(matrix + jitter * scale * eye)
        if int(info) == 0:
            return factor
        jitter = 1e-10 if jitter == 0.0 else jitter * 10
    raise CalculationError(f"GP {what} matrix is not positive definite; increase the noise")


class GaussianProcessPotential(Potential):
    """A fitted GP (see the module docstring). Build it with :func:`fit_gp`."""

    model_type = "gpr"

    def __init__(
        self,
        numbers: np.ndarray,
        basis_positions: torch.Tensor,
        alpha: torch.Tensor,
        train_positions: torch.Tensor,
        permutations: np.ndarray,
        length_scale: float,
        signal_variance: float,
        mean_energy: float,
        reference_energies: dict[int, float],
        cfg: GPConfig,
        sparse: bool,
        metadata: dict | None = None,
        descriptor_weights: torch.Tensor | None = None,
    ) -> None:
        self.numbers = np.asarray(numbers, dtype=np.int64)
        self.descriptor_weights = (
            None if descriptor_weights is None else torch.as_tensor(descriptor_weights).double()
        )
        self.basis_positions = basis_positions.double()
        self.alpha = alpha.double()
        self.train_positions = train_positions.double()
        self.permutations = torch.as_tensor(np.asarray(permutations), dtype=torch.int64)
        self.length_scale = float(length_scale)
        self.signal_variance = float(signal_variance)
        self.mean_energy = float(mean_energy)
        self.reference_energies = {int(z): float(e) for z, e in reference_energies.items()}
        self.cfg = cfg
        self.sparse = bool(sparse)
        self.metadata = metadata or {}
        self.energy_variance_scale = float(self.metadata.get("energy_variance_scale", 1.0))
        self._factors: dict[str, torch.Tensor] | None = None
        self._prepare_mean()

    # --- interface ----------------------------------------------------------------------

    @property
    def elements(self) -> tuple[int, ...]:
        return tuple(sorted({int(z) for z in self.numbers}))

    @property
    def has_uncertainty(self) -> bool:
        return True

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    def descriptor(self, positions: torch.Tensor) -> torch.Tensor:
        """(B, D) weighted inverse distances w * x(R) of (B, n, 3) positions (Angstrom)."""
        x = inverse_distances(positions)
        return x if self.descriptor_weights is None else x * self.descriptor_weights

    def _prepare_mean(self) -> None:
        m = self.basis_positions.shape[0]
        g = 3 * self.n_atoms
        alpha_e, alpha_g = self.alpha[:m], self.alpha[m:].view(m, g)
        xs, vs = [], []
        for perm in self.permutations:
            x, jac = permuted_features(self.basis_positions, perm, self.descriptor_weights)
            xs.append(x)
            vs.append(torch.einsum("bdg,bg->bd", jac, alpha_g))
        self._basis_x = torch.cat(xs)  # (P M, D)
        self._basis_v = torch.cat(vs)
        self._alpha_e = alpha_e.repeat(len(self.permutations))
        self._ref_total = sum(self.reference_energies[int(z)] for z in self.numbers)

    def check_frames(self, numbers: np.ndarray) -> None:
        """The frames must be the training molecule (same elements in the same order)."""
        check_elements(numbers, self.elements, what="the GP model")
        n = self.n_atoms
        if numbers.size % n or not np.array_equal(
            numbers.reshape(-1, n), np.broadcast_to(self.numbers, (numbers.size // n, n))
        ):
            formula = "".join(
                f"{element_symbol(z)}{(self.numbers == z).sum()}" for z in self.elements
            )
            raise InputError(
                f"the GP model describes one molecule ({formula}, {n} atoms in "
                "training order); these frames differ"
            )

    def energy_of_descriptor(self, x: torch.Tensor) -> torch.Tensor:
        """(B,) GP energy (eV) as a differentiable function of descriptors x (B, D)."""
        l2 = self.length_scale**2
        bx, bv = self._basis_x, self._basis_v
        sq = (x * x).sum(1, keepdim=True) - 2.0 * x @ bx.T + (bx * bx).sum(1)
        g0, g1 = matern52_differentiable(torch.clamp(sq, min=0.0) / l2)
        dv = x @ bv.T - (bx * bv).sum(1)  # (x - x_b) . v_b
        value = (g0 * self._alpha_e - 2.0 * g1 / l2 * dv).sum(1) / len(self.permutations)
        return value + self.mean_energy + self._ref_total

    def predict_batch(
        self, batch: Batch, forces: bool = True, uncertainty: bool = False
    ) -> Prediction:
        self.check_frames(batch.numbers.numpy())
        n = self.n_atoms
        positions = batch.positions.detach().double().view(-1, n, 3).clone()
        positions.requires_grad_(forces)
        with torch.enable_grad() if forces else torch.no_grad():
            x = self.descriptor(positions)
            energy = self.energy_of_descriptor(x)
            force = None
            if forces:
                (grad,) = torch.autograd.grad(energy.sum(), positions)
                force = -grad.reshape(-1, 3).numpy()
        atom_e = self.atom_energies(positions.detach())
        pred = Prediction(
            energy=energy.detach().numpy(), forces=force, atom_energies=atom_e.reshape(-1).numpy()
        )
        if uncertainty:
            var_e, var_g = self.predictive_variance(positions.detach())
            pred.energy_sigma = np.sqrt(var_e.numpy())
            pred.forces_sigma = np.sqrt(var_g.reshape(-1, 3).numpy())
        return pred

    def atom_energies(self, positions: torch.Tensor) -> torch.Tensor:
        """(B, n) integrated-gradient attribution of the energy to atoms (eV)."""
        x = self.descriptor(positions)
        nodes, weights = np.polynomial.legendre.leggauss(_GAUSS_NODES)
        nodes = torch.tensor(0.5 * (nodes + 1.0), dtype=torch.float64)
        weights = torch.tensor(0.5 * weights, dtype=torch.float64)
        path = (nodes.view(-1, 1, 1) * x.unsqueeze(0)).reshape(-1, x.shape[1])
        path.requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(self.energy_of_descriptor(path).sum(), path)
        mean_grad = (weights.view(-1, 1, 1) * grad.view(len(nodes), *x.shape)).sum(0)
        contrib = (x * mean_grad).detach()  # (B, D)
        base = self.energy_of_descriptor(torch.zeros_like(x[:1])).detach() - self._ref_total
        i, j = pair_indices(self.n_atoms)
        atoms = x.new_zeros(x.shape[0], self.n_atoms)
        atoms.index_add_(1, i, 0.5 * contrib)
        atoms.index_add_(1, j, 0.5 * contrib)
        refs = torch.tensor(
            [self.reference_energies[int(z)] for z in self.numbers], dtype=torch.float64
        )
        return atoms + base / self.n_atoms + refs

    # --- variance -------------------------------------------------------------------------

    def _kernel(self, pos_a: torch.Tensor, pos_b: torch.Tensor, features_a=None) -> torch.Tensor:
        return symmetric_kernel(pos_a, pos_b, self.length_scale, self.permutations, features_a,
                                self.descriptor_weights)

    def _variance_factors(self) -> dict[str, torch.Tensor]:
        if self._factors is None:
            if self.sparse:
                chol_mm, chol_b, _ = _accumulate(self, self.train_positions, None)
                self._factors = {"kmm": chol_mm, "b": chol_b}
            else:
                k = self._kernel(self.train_positions, self.train_positions)
                n_grad = 3 * self.n_atoms
                noise = _noise(self.train_positions.shape[0], n_grad, self.cfg, k.dtype)
                self._factors = {"k": _cholesky(k + torch.diag(noise), "training")}
        return self._factors

    def predictive_variance(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Variances of energies (B,) eV^2 and force components (B, 3n) (eV/Angstrom)^2."""
        factors = self._variance_factors()
        n_frames, g = positions.shape[0], 3 * self.n_atoms
        prior = torch.stack(
            [
                self._kernel(positions[k : k + 1], positions[k : k + 1]).diagonal()
                for k in range(n_frames)
            ]
        )  # (B, 1 + G) in [E, G] order
        cross = self._kernel(self.basis_positions, positions)  # (M_obs, B (1 + G))
        q = torch.linalg.solve_triangular(
            factors["kmm" if self.sparse else "k"], cross, upper=False
        )
        explained = (q * q).sum(0)
        if self.sparse:
            r = torch.linalg.solve_triangular(factors["b"], q, upper=False)
            explained = explained - (r * r).sum(0)
        latent_e = prior[:, 0] - explained[:n_frames]
        latent_g = prior[:, 1:] - explained[n_frames:].view(n_frames, g)
        var_e = self.signal_variance * (latent_e.clamp(min=0.0) + self.cfg.energy_noise**2)
        var_e = var_e * self.energy_variance_scale
        var_g = self.signal_variance * (latent_g.clamp(min=0.0) + self.cfg.force_noise**2)
        return var_e, var_g

    # --- persistence ----------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        config = {
            "gp": {k: v for k, v in asdict(self.cfg).items() if k != "timings"},
            "numbers": self.numbers.tolist(),
            "length_scale": self.length_scale,
            "signal_variance": self.signal_variance,
            "energy_variance_scale": self.energy_variance_scale,
            "mean_energy": self.mean_energy,
            "reference_energies": {str(z): e for z, e in self.reference_energies.items()},
            "sparse": self.sparse,
        }
        state = {
            "basis_positions": self.basis_positions,
            "alpha": self.alpha,
            "train_positions": self.train_positions,
            "permutations": self.permutations,
        }
        if self.descriptor_weights is not None:
            state["descriptor_weights"] = self.descriptor_weights
        return write_model_dir(directory, self.model_type, config, state, self.metadata)

    @classmethod
    def load(cls, directory: str | Path, expected_type: str | None = None):
        info = read_model_json(directory, expected_type or cls.model_type)
        cfg, state = info["config"], load_weights(directory)
        missing = {"basis_positions", "alpha", "train_positions", "permutations"} - set(state)
        if missing:
            raise InputError(
                f"weights in {directory} do not match a GP model "
                f"(missing {', '.join(sorted(missing))})"
            )
        model = cls(
            np.asarray(cfg["numbers"]),
            state["basis_positions"],
            state["alpha"],
            state["train_positions"],
            state["permutations"].numpy(),
            cfg["length_scale"],
            cfg["signal_variance"],
            cfg["mean_energy"],
            {int(z): e for z, e in cfg["reference_energies"].items()},
            GPConfig.from_dict(cfg["gp"]),
            cfg["sparse"],
            info.get("metadata"),
            state.get("descriptor_weights"),
        )
        model.energy_variance_scale = float(cfg.get("energy_variance_scale", 1.0))
        return model


# --- fitting ------------------------------------------------------------------------------


def _accumulate(
    model_like, positions: torch.Tensor, y: torch.Tensor | None, progress: bool = False
):
    """Whitened sparse normal equations over chunks of training frames.

    With L L^T = K_mm and V = L^-1 K_mn: B = I + V Lambda^-1 V^T (eigenvalues >= 1, well
    conditioned even for tiny noise) and c = V Lambda^-1 y. Then A = L B L^T.

    Returns:
        (L, L_B, c) with L_B the Cholesky factor of B.
    """
    basis = model_like.basis_positions
    feats = weighted_features(basis, model_like.descriptor_weights)
    chol_mm = _cholesky(model_like._kernel(basis, basis, feats), "inducing", min_jitter=1e-10)
    b_matrix = torch.eye(chol_mm.shape[0], dtype=chol_mm.dtype)
    c = torch.zeros(chol_mm.shape[0], dtype=chol_mm.dtype)
    n, g = positions.shape[0], 3 * positions.shape[1]
    step = model_like.cfg.chunk_frames
    starts = range(0, n, step)
    if progress:
        from rich.progress import track

        starts = track(starts, description="GP sparse fit", transient=True)
    for start in starts:
        chunk = positions[start : start + step]
        v = torch.linalg.solve_triangular(
            chol_mm, model_like._kernel(basis, chunk, feats), upper=False
        )
        inv_noise = 1.0 / _noise(chunk.shape[0], g, model_like.cfg, v.dtype)
        b_matrix += (v * inv_noise) @ v.T
        if y is not None:
            k = chunk.shape[0]
            y_chunk = torch.cat([y[start : start + k], y[n + start * g : n + (start + k) * g]])
            c += v @ (inv_noise * y_chunk)
    return chol_mm, _cholesky(b_matrix, "posterior"), c


class _Fitter:
    """Holds what the kernel helpers need during fitting (same attributes as the model)."""

    def __init__(self, basis_positions, length_scale, permutations, cfg, weights=None):
        self.basis_positions = basis_positions
        self.length_scale = length_scale
        self.permutations = permutations
        self.cfg = cfg
        self.descriptor_weights = weights

    def _kernel(self, pos_a, pos_b, features_a=None):
        return symmetric_kernel(pos_a, pos_b, self.length_scale, self.permutations, features_a,
                                self.descriptor_weights)


def _solve_exact(positions, y, length, perms, cfg, weights=None):
    k = symmetric_kernel(positions, positions, length, perms, weights=weights)
    return _solve_kernel(k, y, positions.shape[0], 3 * positions.shape[1], cfg)


def _solve_kernel(k, y, n_frames: int, n_grad: int, cfg):
    """alpha = (K + Lambda)^-1 y, the ML signal variance and the Cholesky factor."""
    noise = _noise(n_frames, n_grad, cfg, k.dtype)
    factor = _cholesky(k + torch.diag(noise), "training")
    alpha = torch.cholesky_solve(y.unsqueeze(1), factor).squeeze(1)
    signal = float(y @ alpha) / y.numel()
    return alpha, signal, {"k": factor}


def _solve_sparse(positions, basis_idx, y, length, perms, cfg, progress=False, weights=None):
    fitter = _Fitter(positions[basis_idx], length, perms, cfg, weights)
    chol_mm, chol_b, c = _accumulate(fitter, positions, y, progress)
    beta = torch.cholesky_solve(c.unsqueeze(1), chol_b)
    alpha = torch.linalg.solve_triangular(chol_mm.T, beta, upper=True).squeeze(1)
    inv_noise = 1.0 / _noise(positions.shape[0], 3 * positions.shape[1], cfg, y.dtype)
    signal = float((y * inv_noise) @ y - c @ beta.squeeze(1)) / y.numel()
    return alpha, signal, {"kmm": chol_mm, "b": chol_b}


def _frames(data: MLDataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = int(data.n_atoms[0])
    pos = torch.as_tensor(data.positions, dtype=torch.float64).view(-1, n, 3)
    forces = torch.as_tensor(data.forces, dtype=torch.float64).view(-1, n, 3)
    return pos, torch.as_tensor(data.energies, dtype=torch.float64), forces


def _check_single_molecule(data: MLDataset, numbers: np.ndarray, what: str) -> None:
    n = len(numbers)
    if np.any(data.n_atoms != n) or not np.array_equal(
        data.numbers.reshape(-1, n), np.broadcast_to(numbers, (len(data), n))
    ):
        raise InputError(f"{what}: the GP needs frames of one molecule in one atom order")


def fit_gp(
    train: MLDataset,
    reference_energies: dict[int, float],
    valid: MLDataset | None = None,
    config: GPConfig | None = None,
    progress: bool = False,
) -> GaussianProcessPotential:
    """Fit the GP on ``train`` (energies eV, forces eV/Angstrom of one molecule)."""
    cfg = config or GPConfig()
    train.require_energies()
    train.require_forces()
    numbers = train.frame_numbers(0).copy()
    _check_single_molecule(train, numbers, train.source or "training set")
    check_elements(train.numbers, reference_energies, what="the reference energies")
    if valid is not None and len(valid):
        check_elements(valid.numbers, train.elements, what="the training set")
        _check_single_molecule(valid, numbers, valid.source or "validation set")
        valid.require_forces()
    t0, c0 = time.perf_counter(), time.process_time()
    pos, energies, forces = _frames(train)
    residual = energies - torch.as_tensor(reference_energy_per_frame(train, reference_energies))
    mean_energy = float(residual.mean())
    y = _observations(residual - mean_energy, forces)
    perms = (
        molecule_automorphisms(numbers, pos[0].numpy(), cfg.max_permutations)
        if cfg.symmetrize
        else np.arange(len(numbers))[None]
    )
    perms_t = torch.as_tensor(perms)

    length, scores = cfg.length_scale, {}
    if length is None:
        length, force_noise, scores = _select_hyperparameters(
            pos, y, perms_t, cfg, valid, reference_energies, numbers, mean_energy
        )
        cfg = replace(cfg, force_noise=force_noise)
    weights, weight_history = None, None
    if cfg.learn_weights and valid is not None and len(valid):
        valid_targets = None
        if valid.has_energies:  # validation energies on the scale of y's energy rows
            refs_valid = reference_energy_per_frame(valid, reference_energies)
            valid_targets = (torch.as_tensor(valid.energies) - torch.as_tensor(refs_valid)
                             - mean_energy)
        weights, force_noise, weight_history = _learn_descriptor_weights(
            pos, y, perms_t, cfg, valid, length, valid_targets)
        cfg = replace(cfg, force_noise=force_noise)
    n_frames = pos.shape[0]
    sparse = cfg.n_inducing is not None or n_frames > cfg.max_exact
    if sparse:
        m = min(cfg.n_inducing or cfg.max_exact, n_frames)
        first = int(np.random.default_rng(cfg.seed).integers(n_frames))
        basis_idx = farthest_point_sampling(weighted_features(pos, weights)[0], m, first)
        alpha, signal, factors = _solve_sparse(pos, basis_idx, y, length, perms_t, cfg, progress,
                                               weights)
        basis = pos[basis_idx]
    else:
        alpha, signal, factors = _solve_exact(pos, y, length, perms_t, cfg, weights)
        basis = pos
    metadata = {
        "n_train": n_frames,
        "n_basis": int(basis.shape[0]),
        "sparse": sparse,
        "n_permutations": len(perms),
        "selection_scores": scores,
        "weight_learning": weight_history,
        "force_noise": cfg.force_noise,
        "fit_wall_time_s": time.perf_counter() - t0,
        "fit_cpu_time_s": time.process_time() - c0,
        "train_source": train.source,
    }
    model = GaussianProcessPotential(
        numbers,
        basis,
        alpha,
        pos,
        perms,
        length,
        signal,
        mean_energy,
        reference_energies,
        cfg,
        sparse,
        metadata,
        weights,
    )
    model._factors = factors  # reuse the fit's factorization for predictive variances
    if cfg.calibrate and valid is not None and len(valid):
        scale = _variance_scale(model, valid)
        model.signal_variance *= scale
        model.metadata["variance_scale"] = scale
        if valid.has_energies:
            energy_scale = _energy_variance_scale(model, valid)
            model.energy_variance_scale = energy_scale
            model.metadata["energy_variance_scale"] = energy_scale
    return model


def _energy_variance_scale(model: GaussianProcessPotential, valid: MLDataset) -> float:
    """mean((E_pred - E_ref)^2 / var_E) over the validation frames, after the force scaling.

    Energies get their own factor: with the fixed relative energy noise lambda_E the fitted
    noise sigma_f^2 lambda_E^2 dominates var_E when sigma_f is large (long l, tiny lambda_G).
    """
    vpos, venergies, _ = _frames(valid)
    with torch.no_grad():
        pred = model.energy_of_descriptor(model.descriptor(vpos))
    var_e, _ = model.predictive_variance(vpos)
    return float(((pred - venergies) ** 2 / var_e).mean())


def _variance_scale(model: GaussianProcessPotential, valid: MLDataset) -> float:
    """mean((F_pred - F_ref)^2 / var_F) over the validation force components."""
    vpos, _, vforces = _frames(valid)
    x = vpos.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.energy_of_descriptor(model.descriptor(x)).sum(), x)
    _, var_g = model.predictive_variance(vpos)
    z2 = ((-grad - vforces).reshape(len(valid), -1) ** 2 / var_g).mean()
    return float(z2)


def _select_hyperparameters(pos, y, perms, cfg, valid, refs, numbers, mean_energy):
    """Pick (l, lambda_G) on the grid ``length_scales`` x ``force_noises`` by the validation
    force MAE of an exact GP on a seeded subset of ``n_select`` training frames.

    Returns:
        (l, lambda_G, scores) with scores {"l/lambda_G": MAE eV/Angstrom}.
    """
    n = pos.shape[0]
    if valid is None or len(valid) == 0:
        raise InputError(
            "the GP needs a validation set to choose its length scale (or a fixed length_scale)"
        )
    rng = np.random.default_rng(cfg.seed)
    subset = np.sort(rng.permutation(n)[: min(n, cfg.n_select)])
    g = 3 * pos.shape[1]
    y_sub = torch.cat([y[subset], y[n:].view(n, g)[subset].reshape(-1)])
    vpos, _, vforces = _frames(valid)
    noises = cfg.force_noises if cfg.select_noise else (cfg.force_noise,)
    scores, best, best_score = {}, None, float("inf")
    for length in cfg.length_scales:
        kernel = symmetric_kernel(pos[subset], pos[subset], length, perms)
        for noise in noises:
            trial = replace(cfg, force_noise=noise)
            try:
                alpha, signal, _ = _solve_kernel(kernel, y_sub, len(subset), g, trial)
            except CalculationError:
                continue
            model = GaussianProcessPotential(
                numbers,
                pos[subset],
                alpha,
                pos[subset],
                perms.numpy(),
                length,
                signal,
                mean_energy,
                refs,
                trial,
                False,
            )
            vx = vpos.clone().requires_grad_(True)
            energy = model.energy_of_descriptor(model.descriptor(vx))
            (grad,) = torch.autograd.grad(energy.sum(), vx)
            score = float((-grad - vforces).abs().mean())
            scores[f"{length:g}/{noise:g}"] = score
            if score < best_score:
                best, best_score = (float(length), float(noise)), score
    if best is None:
        raise CalculationError("no GP length scale gave a positive definite kernel")
    return best[0], best[1], scores


def _learn_descriptor_weights(pos, y, perms, cfg, valid, length, valid_targets=None):
    """Per-orbit descriptor weights w (D,) and lambda_G that minimize the validation error
    of an exact GP on ``weight_frames`` seeded training frames; Adam in (log w,
    log lambda_G) from w = 1 and the grid's lambda_G.

    The loss is the validation force mean squared error, plus, with ``valid_targets``
    (validation energies, eV, on the scale of the energy rows of y), the energy mean squared
    error, each divided by its step-0 value. A step is then only eligible if its validation
    energy MAE stays within 10 % of step 0's, so forces are never bought with energies.

    Returns:
        (w, lambda_G, history) with history {"valid_force_mae_ev_a": [...],
        "valid_energy_mae_ev": [...], "best_step": k, "cpu_s": ...}; the eligible step with
        the lowest validation force MAE is returned (step 0 is w = 1, so learning never
        returns something worse on the validation set than the grid choice).
    """
    n, g = pos.shape[0], 3 * pos.shape[1]
    rng = np.random.default_rng(cfg.seed + 1)
    subset = torch.as_tensor(np.sort(rng.permutation(n)[: min(n, cfg.weight_frames)]))
    k = len(subset)
    y_sub = torch.cat([y[subset], y[n:].view(n, g)[subset].reshape(-1)])
    sub = pos[subset]
    vpos, _, vforces = _frames(valid)
    nv = vpos.shape[0]
    orbits = pair_orbits(perms, pos.shape[1])
    log_w = torch.zeros(int(orbits.max()) + 1, dtype=torch.float64, requires_grad=True)
    log_noise = torch.tensor(float(np.log(cfg.force_noise)), dtype=torch.float64,
                             requires_grad=True)
    optimizer = torch.optim.Adam([log_w, log_noise], lr=cfg.weight_lr)
    history, energy_history, best = [], [], (float("inf"), None, None, 0)
    scale0 = None
    start = time.process_time()
    for _ in range(cfg.weight_steps + 1):
        if history and time.process_time() - start > cfg.weight_cpu_s:
            break
        optimizer.zero_grad()
        weights = torch.exp(log_w)[orbits]
        kernel = symmetric_kernel(sub, sub, length, perms, weights=weights)
        noise = torch.cat([torch.full((k,), cfg.energy_noise**2, dtype=torch.float64),
                           torch.exp(2.0 * log_noise).expand(k * g)])
        try:
            factor = torch.linalg.cholesky(kernel + torch.diag(noise))
        except RuntimeError:  # a step made the kernel singular: stop at the best so far
            break
        alpha = torch.cholesky_solve(y_sub.unsqueeze(1), factor).squeeze(1)
        cross = symmetric_kernel(vpos, sub, length, perms, weights=weights)
        pred_forces = -(cross[nv:] @ alpha).view(nv, -1, 3)
        error = pred_forces - vforces
        mae = float(error.detach().abs().mean())
        history.append(mae)
        eligible = True
        energy_error = None if valid_targets is None else cross[:nv] @ alpha - valid_targets
        if energy_error is not None:
            energy_history.append(float(energy_error.detach().abs().mean()))
            eligible = energy_history[-1] <= 1.1 * energy_history[0]
        if eligible and mae < best[0]:
            best = (mae, weights.detach().clone(), float(torch.exp(log_noise.detach())),
                    len(history) - 1)
        # forces and energies, each relative to its step-0 mean squared error
        loss = (error**2).mean()
        if energy_error is not None:
            energy_mse = (energy_error**2).mean()
            if scale0 is None:
                scale0 = (float(loss.detach()), float(energy_mse.detach()))
            loss = loss / scale0[0] + energy_mse / scale0[1]
        loss.backward()
        optimizer.step()
    if best[1] is None:
        raise CalculationError("GP descriptor-weight learning failed at its first step")
    return best[1], best[2], {"valid_force_mae_ev_a": history,
                              "valid_energy_mae_ev": energy_history, "best_step": best[3],
                              "cpu_s": time.process_time() - start}
