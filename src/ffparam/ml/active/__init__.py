"""Active learning: label where the model is unsure, retrain, repeat.

* :func:`run_active` (:mod:`.loop`): the resumable loop with per-round records under
  ``DIR/rounds/NNN`` and the final model in ``DIR``; :class:`ActiveSettings`.
* :mod:`.selection`: per-frame force uncertainty and the diverse greedy selection.
* :mod:`.integrated`: the batch that most reduces a GP surrogate's posterior variance
  summed over all candidates (``ActiveSettings.criterion``, the default).
* :class:`PoolLabeller` (:mod:`.pool`): candidates and labels from a labelled pool; the
  on-the-fly labeller (MD + reference Store) is in :mod:`ffparam.workflows.mlp_active`.
"""

from ffparam.ml.active.integrated import select_integrated
from ffparam.ml.active.loop import ActiveSettings, LabelBatch, run_active, split_labelled
from ffparam.ml.active.pool import PoolLabeller, RandomPoolLabeller
from ffparam.ml.active.selection import frame_descriptors, frame_uncertainty, select_diverse

__all__ = [
    "ActiveSettings",
    "LabelBatch",
    "PoolLabeller",
    "RandomPoolLabeller",
    "frame_descriptors",
    "frame_uncertainty",
    "run_active",
    "select_diverse",
    "select_integrated",
    "split_labelled",
]
