"""Gaussian process regression on energies and forces (sGDML-like derivative kernel).

One GP models the energy of one molecule (fixed composition and atom order) as a function of
its inverse-distance descriptor, with the kernel of :mod:`.kernel`, trained jointly on
energies and gradients (= -forces). Two variants (:mod:`.solvers`):

* exact: all training frames, Cholesky of the full (N(1+3n))^2 kernel; for small sets.
* sparse (deterministic training conditional, inducing points): M frames chosen by
  farthest-point sampling in descriptor space carry all their energy and gradient
  variables; the whitened B = I + L^-1 K_mn Lambda^-1 K_nm L^-T (K_mm = L L^T) is
  accumulated over chunks of training frames (well conditioned even for tiny noise).

With the relative noise Lambda = diag(lambda_E^2 for energies, lambda_G^2 for gradients) the
posterior mean is K_*b alpha. The signal variance sigma_f^2 is the maximum-likelihood value
y^T (K + Lambda)^-1 y / N_obs (Woodbury form for the sparse variant), then (by default)
rescaled so that validation force errors have unit variance in units of the predicted
sigma (and the energy variances by their own factor, so that validation energy errors do).

Modules by job: :mod:`.settings` (:class:`GPSettings`), :mod:`.kernel` (derivative
kernels), :mod:`.solvers` (linear algebra), :mod:`.hyperparameters` (length scale and noise
on the validation set), :mod:`.metric` (learned descriptor weights), :mod:`.model` (the
fitted :class:`GaussianProcessPotential`), :mod:`.fit` (:func:`fit_gp`, the ``ffparam mlp``
trainer).
"""

from ffparam.ml.models.gp.fit import fit_gp, train_gp
from ffparam.ml.models.gp.model import GaussianProcessPotential
from ffparam.ml.models.gp.settings import GPSettings

__all__ = ["GPSettings", "GaussianProcessPotential", "fit_gp", "train_gp"]
