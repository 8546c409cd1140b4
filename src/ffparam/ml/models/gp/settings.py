"""Hyperparameters and size limits of the Gaussian process (descriptor x in 1/Angstrom)."""

from __future__ import annotations

from dataclasses import dataclass

from ffparam.errors import InputError
from ffparam.settings import Settings, require_at_least, require_positive


@dataclass(frozen=True)
class GPSettings(Settings):
    """Hyperparameters and size limits of the GP (descriptor x in 1/Angstrom).

    The field names are those of the ``gp`` section of a saved GP's ``model.json`` (models
    saved with the former ``GPConfig`` load unchanged).

    Attributes:
        length_scale: Matern length scale l (1/Angstrom); None selects it from
            ``length_scales`` (and, with ``select_noise``, lambda_G from ``force_noises``)
            by the force MAE on the validation set (exact GP on ``n_select`` training
            frames); the training data enter only through the fit, the choice only through
            the validation frames.
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

    what = "GP settings"

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

    def __post_init__(self) -> None:
        require_positive(self, "length_scale", "energy_noise", "force_noise", "weight_lr",
                         "weight_cpu_s")
        require_at_least(self, 1, "max_exact", "n_inducing", "max_permutations", "n_select",
                         "chunk_frames", "weight_frames")
        require_at_least(self, 0, "seed", "weight_steps")
        for name in ("length_scales", "force_noises"):
            values = getattr(self, name)
            object.__setattr__(self, name, tuple(values))
            if not values or any(not v > 0 for v in values):
                raise InputError(f"{self.what}: {name} must be positive numbers, got {values}")
