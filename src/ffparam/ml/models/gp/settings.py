"""Hyperparameters and size limits of the Gaussian process (descriptor x in 1/Angstrom)."""

from __future__ import annotations

from dataclasses import dataclass

from ffparam.errors import InputError
from ffparam.settings import Settings, require_at_least, require_choice, require_positive


@dataclass(frozen=True)
class GPSettings(Settings):
    """Hyperparameters and size limits of the GP (descriptor x in 1/Angstrom).

    The field names are those of the ``gp`` section of a saved GP's ``model.json`` (models
    saved with the former ``GPConfig`` load unchanged); each field's docstring follows it.
    """

    what = "GP settings"

    length_scale: float | None = None
    """Matern length scale l (1/Angstrom); None selects it from ``length_scales`` (and,
    with ``select_noise``, lambda_G from ``force_noises``) by the force MAE on the
    validation set (exact GP on ``n_select`` training frames); the training data enter only
    through the fit, the choice only through the validation frames."""
    length_scales: tuple[float, ...] = (0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6)
    """Candidates for l."""
    energy_noise: float = 1e-3
    """Relative noise lambda_E on energies (units of sigma_f)."""
    force_noise: float = 1e-3
    """Relative noise lambda_G on gradient components (the selected one when it is
    selected)."""
    select_noise: bool = True
    """Select lambda_G jointly with l (only when l is selected). The gradient prior
    variance scales as 1/l^2, so a fixed relative lambda_G means a very different
    regularization at each l: they have to be chosen together."""
    force_noises: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
    """Candidates for lambda_G."""
    max_exact: int = 200
    """Largest training set fitted exactly; beyond it the sparse variant."""
    n_inducing: int | None = None
    """Number of inducing frames of the sparse variant (None: ``max_exact``)."""
    symmetrize: bool = True
    """Average the kernel over the molecule's graph automorphisms."""
    max_permutations: int = 64
    """Cap on the number of automorphisms used."""
    n_select: int = 100
    """Training frames used to select l."""
    chunk_frames: int = 32
    """Training frames per chunk in the sparse accumulation."""
    seed: int = 0
    """Seeds the subset used to select l and the first inducing frame."""
    learn_weights: bool = True
    """Learn the per-orbit descriptor weights on the validation forces (needs a validation
    set; without one the weights stay 1)."""
    weight_steps: int = 30
    """Adam steps of the weight learning (in log w and log lambda_G)."""
    weight_frames: int = 50
    """Training frames of the exact GP the weights are learned with."""
    weight_lr: float = 0.1
    """Adam learning rate of the weight learning."""
    weight_cpu_s: float = 60.0
    """CPU seconds after which the weight learning stops early; the weights of the best
    validation step are kept."""
    variance_frames: int = 30
    """Largest number of basis frames the predictive variance is computed on: beyond it a
    farthest-point subset of this many frames (a rank-limited DTC variance with all training
    frames), so that variances cost O(variance_frames) kernel work per frame; the factors
    are saved with the model."""
    variance_selection: str = "greedy"
    """How the variance basis is chosen when it is smaller than the model's basis:
    "greedy" (training frames picked by a pivoted Cholesky of their energy kernel that
    minimizes the unexplained prior variance of all training frames, so the basis represents
    where the data are; :func:`ffparam.ml.models.gp.variance.select_variance_frames`) or
    "fps" (a farthest-point subset of the basis frames: the outliers, which ranks the
    errors of typical frames worse; the choice of models fitted before issue 16's second
    session)."""
    calibrate: bool = True
    """Rescale sigma_f^2 so that the validation force errors have unit variance in units
    of their predicted sigma (mean (error/sigma)^2 = 1)."""
    calibration: str = "variance"
    """What the force-sigma scale fits on the validation set: "variance" (mean
    (error/sigma)^2 = 1) or "area" (then the factor that minimizes the miscalibration area,
    :func:`ffparam.ml.calibration.area_scale`: better for heavy-tailed errors)."""

    def __post_init__(self) -> None:
        require_positive(self, "length_scale", "energy_noise", "force_noise", "weight_lr",
                         "weight_cpu_s")
        require_at_least(self, 1, "max_exact", "n_inducing", "max_permutations", "n_select",
                         "chunk_frames", "weight_frames", "variance_frames")
        require_at_least(self, 0, "seed", "weight_steps")
        require_choice(self, "calibration", ("variance", "area"))
        require_choice(self, "variance_selection", ("greedy", "fps"))
        for name in ("length_scales", "force_noises"):
            values = getattr(self, name)
            object.__setattr__(self, name, tuple(values))
            if not values or any(not v > 0 for v in values):
                raise InputError(f"{self.what}: {name} must be positive numbers, got {values}")
