"""The fitted Gaussian process potential: prediction, per-atom attribution, predictive
variance and persistence (see :mod:`ffparam.ml.models.gp` for the model).

The energy is evaluated as a differentiable function of the positions and the forces are
its negative gradient (autograd), so the model is energy-conserving. Predictive variances

    exact:  sigma_f^2 (k_** - k_*^T (K + Lambda)^-1 k_*)
    sparse: sigma_f^2 (k_** - k_*m^T K_mm^-1 k_m* + k_*m^T A^-1 k_m*)

are those of the latent energy and forces plus the fitted noise sigma_f^2 lambda^2.
Per-atom energies are an attribution: integrated gradients of the GP energy along the path
x(t) = t x from the dissociated limit (x = 0), each pair's share split evenly between its
two atoms, plus the per-element reference energies; they sum to the total energy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ffparam.errors import InputError
from ffparam.ml.batch import Batch
from ffparam.ml.checkpoint import load_weights, read_model_json, write_model_dir
from ffparam.ml.data import check_elements, element_symbol
from ffparam.ml.models.gp.kernel import (
    inverse_distances,
    matern52,
    matern52_differentiable,
    pair_indices,
    permuted_features,
    weighted_features,
)
from ffparam.ml.models.gp.settings import GPSettings
from ffparam.ml.models.gp.solvers import (
    KernelBasis,
    accumulate_sparse,
    cholesky_jittered,
    farthest_point_sampling,
    noise_diagonal,
)
from ffparam.ml.models.gp.variance import (
    VarianceBasis,
    latent_variance,
    select_variance_frames,
)
from ffparam.ml.potential import Potential, Prediction

_GAUSS_NODES = 32
"""Gauss-Legendre nodes of the integrated-gradient path."""


class GaussianProcessPotential(Potential):
    """A fitted GP (see the module docstring). Build it with
    :func:`ffparam.ml.models.gp.fit.fit_gp`."""

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
        cfg: GPSettings,
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
        scale = self.metadata.get("frame_sigma_scale")
        self.frame_sigma_scale: float | None = None if scale is None else float(scale)
        """1/Angstrom: the frame sigma (eV/Angstrom, the predicted RMS force error of a
        frame, :attr:`Prediction.frame_sigma`) is this times the latent energy sigma (eV),
        fitted on the validation frames when the sigmas are calibrated (at the fit, or by
        :func:`ffparam.ml.models.gp.fit.refresh_uncertainty`); None for models fitted
        without validation frames or saved before it existed, whose frames are ranked by
        their RMS force sigma."""
        self._factors: dict[str, torch.Tensor] | None = None
        self.variance_positions: torch.Tensor | None = None
        self._vbasis: VarianceBasis | None = None
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

    def energy_and_gradient(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) GP energy (eV) and its gradient dE/dx (B, D) at descriptors x (B, D), in
        closed form (no autograd graph; the same values as :meth:`energy_of_descriptor`):

            dE/dx = (2 / (P l^2)) [x sum_b w_b - sum_b w_b x_b - sum_b g'_b v_b],
            w_b = alpha_b g'_b - (2/l^2) g''_b (x - x_b) . v_b
        """
        l2 = self.length_scale**2
        bx, bv = self._basis_x, self._basis_v
        sq = (x * x).sum(1, keepdim=True) - 2.0 * x @ bx.T + (bx * bx).sum(1)
        g0, g1, g2 = matern52(torch.clamp(sq, min=0.0) / l2)
        dv = x @ bv.T - (bx * bv).sum(1)  # (x - x_b) . v_b
        n_perm = len(self.permutations)
        value = (g0 * self._alpha_e - 2.0 * g1 / l2 * dv).sum(1) / n_perm
        w = (self._alpha_e * g1 - (2.0 / l2) * g2 * dv) * (sq >= 0)
        grad = (x * w.sum(1, keepdim=True) - w @ bx - g1 @ bv) * (2.0 / (l2 * n_perm))
        return value + self.mean_energy + self._ref_total, grad

    def predict_batch(
        self, batch: Batch, forces: bool = True, uncertainty: bool = False,
        atom_energies: bool = True,
    ) -> Prediction:
        self.check_frames(batch.numbers.numpy())
        n = self.n_atoms
        positions = batch.positions.detach().double().view(-1, n, 3)
        x, jac = weighted_features(positions, self.descriptor_weights)
        energy, grad = self.energy_and_gradient(x)
        force = -torch.einsum("bdg,bd->bg", jac, grad).reshape(-1, 3).numpy() if forces \
            else None
        pred = Prediction(energy=energy.numpy(), forces=force)
        if atom_energies:
            pred.atom_energies = self.atom_energies(positions).reshape(-1).numpy()
        if uncertainty:
            var_e, var_g, latent_e = self._variances(positions)
            pred.energy_sigma = np.sqrt(var_e.numpy())
            pred.forces_sigma = np.sqrt(var_g.reshape(-1, 3).numpy())
            if self.frame_sigma_scale is not None:
                pred.frame_sigma = self.frame_sigma_scale * np.sqrt(latent_e.numpy())
        return pred

    def atom_energies(self, positions: torch.Tensor) -> torch.Tensor:
        """(B, n) integrated-gradient attribution of the energy to atoms (eV)."""
        x = self.descriptor(positions)
        nodes, weights = np.polynomial.legendre.leggauss(_GAUSS_NODES)
        nodes = torch.tensor(0.5 * (nodes + 1.0), dtype=torch.float64)
        weights = torch.tensor(0.5 * weights, dtype=torch.float64)
        contrib = x * self._path_mean_gradient(x, nodes, weights)  # (B, D)
        base = self.energy_and_gradient(torch.zeros_like(x[:1]))[0] - self._ref_total
        i, j = pair_indices(self.n_atoms)
        atoms = x.new_zeros(x.shape[0], self.n_atoms)
        atoms.index_add_(1, i, 0.5 * contrib)
        atoms.index_add_(1, j, 0.5 * contrib)
        refs = torch.tensor(
            [self.reference_energies[int(z)] for z in self.numbers], dtype=torch.float64
        )
        return atoms + base / self.n_atoms + refs

    def _path_mean_gradient(self, x: torch.Tensor, nodes: torch.Tensor,
                            weights: torch.Tensor) -> torch.Tensor:
        """(B, D) sum_k weights_k dE/dx(t_k x): the gradient of :meth:`energy_and_gradient`
        is linear in the per-basis coefficients w_b and g'_b, so only those are summed over
        the nodes; the matrix products with the basis are taken once."""
        l2 = self.length_scale**2
        bx, bv, alpha = self._basis_x, self._basis_v, self._alpha_e
        xx = (x * x).sum(1, keepdim=True)
        x_bx, x_bv = x @ bx.T, x @ bv.T
        bb, b_bv = (bx * bx).sum(1), (bx * bv).sum(1)
        sum_tw = torch.zeros_like(x_bx)
        sum_w = torch.zeros_like(x_bx)
        sum_g1 = torch.zeros_like(x_bx)
        for t, weight in zip(nodes.tolist(), weights.tolist()):
            sq = (t * t) * xx - (2.0 * t) * x_bx + bb
            _, g1, g2 = matern52(torch.clamp(sq, min=0.0) / l2)
            w = (alpha * g1 - (2.0 / l2) * g2 * (t * x_bv - b_bv)) * (sq >= 0)
            sum_tw.add_(w, alpha=weight * t)
            sum_w.add_(w, alpha=weight)
            sum_g1.add_(g1, alpha=weight)
        scale = 2.0 / (l2 * len(self.permutations))
        return (x * sum_tw.sum(1, keepdim=True) - sum_w @ bx - sum_g1 @ bv) * scale

    # --- variance -------------------------------------------------------------------------

    def _variance_basis(self) -> VarianceBasis:
        """The variance-basis frames (the whole basis unless :meth:`set_variance_basis`
        chose a subset) with their permuted features, built once."""
        if self._vbasis is None:
            positions = self.basis_positions if self.variance_positions is None \
                else self.variance_positions
            self._vbasis = VarianceBasis(positions, self.permutations, self.length_scale,
                                         self.descriptor_weights)
        return self._vbasis

    def _variance_factors(self) -> dict[str, torch.Tensor]:
        """Cholesky factors of the variance (saved with models fitted since issue 16;
        computed here, once, for older saved models)."""
        if self._factors is None:
            exact = not self.sparse and self.variance_positions is None
            self._factors = self._compute_variance_factors(exact)
        return self._factors

    def _compute_variance_factors(self, exact: bool) -> dict[str, torch.Tensor]:
        """Exact: Cholesky of K + Lambda on the training frames; else the whitened DTC
        factors of the variance basis accumulated over all training frames."""
        basis = self._variance_basis()
        if exact:
            k = basis.cross(self.train_positions)
            noise = noise_diagonal(self.train_positions.shape[0], 3 * self.n_atoms, self.cfg,
                                   k.dtype)
            return {"k": cholesky_jittered(k + torch.diag(noise), "training")}
        fitter = KernelBasis(basis.positions, self.length_scale, self.permutations, self.cfg,
                             self.descriptor_weights)
        chol_mm, chol_b, _ = accumulate_sparse(fitter, self.train_positions, None)
        return {"kmm": chol_mm, "b": chol_b}

    def set_variance_basis(self, fit_factors: dict[str, torch.Tensor] | None = None) -> None:
        """Choose the variance basis (at most ``cfg.variance_frames`` frames, chosen as
        ``cfg.variance_selection`` says) and compute its factors; ``fit_factors`` (the
        fit's own factorization of the whole basis) are reused when the subset is the whole
        basis."""
        n_basis = self.basis_positions.shape[0]
        limit = self.cfg.variance_frames
        self._vbasis = None
        if n_basis <= limit:
            self.variance_positions = None
            self._factors = fit_factors or self._compute_variance_factors(not self.sparse)
            return
        if self.cfg.variance_selection == "fps":
            x = self.descriptor(self.basis_positions)
            chosen = farthest_point_sampling(x, limit, 0)
            self.variance_positions = self.basis_positions[torch.as_tensor(chosen)]
        else:
            chosen = select_variance_frames(self.descriptor(self.train_positions),
                                            self.permutations, self.length_scale, limit,
                                            self.cfg.seed)
            self.variance_positions = self.train_positions[chosen]
        self._factors = self._compute_variance_factors(False)

    def predictive_variance(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Variances of energies (B,) eV^2 and force components (B, 3n) (eV/Angstrom)^2."""
        var_e, var_g, _ = self._variances(positions)
        return var_e, var_g

    def _variances(self, positions: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`predictive_variance` and the latent (noise-free) energy variance (B,)
        eV^2 that :attr:`frame_sigma_scale` turns into a frame sigma."""
        factors = self._variance_factors()
        latent_e, latent_g = latent_variance(self._variance_basis(), factors, positions)
        var_e = self.signal_variance * (latent_e + self.cfg.energy_noise**2)
        var_e = var_e * self.energy_variance_scale
        var_g = self.signal_variance * (latent_g + self.cfg.force_noise**2)
        return var_e, var_g, self.signal_variance * latent_e

    # --- persistence ----------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        config = {
            "gp": self.cfg.to_dict(),
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
        if self.variance_positions is not None:
            state["variance_positions"] = self.variance_positions
        for name, factor in self._variance_factors().items():
            state[f"variance_factor_{name}"] = factor
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
            GPSettings.from_dict(cfg["gp"]),
            cfg["sparse"],
            info.get("metadata"),
            state.get("descriptor_weights"),
        )
        model.energy_variance_scale = float(cfg.get("energy_variance_scale", 1.0))
        model.variance_positions = state.get("variance_positions")
        factors = {key[len("variance_factor_"):]: value for key, value in state.items()
                   if key.startswith("variance_factor_")}
        model._factors = factors or None  # models saved before issue 16: computed when used
        return model
