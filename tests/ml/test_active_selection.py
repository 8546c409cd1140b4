"""The integrated-variance batch criterion (ffparam.ml.active.integrated): exact GP
bookkeeping against a direct recomputation, diverse batches, determinism, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from ffparam.errors import InputError
from ffparam.ml.active import ActiveSettings
from ffparam.ml.active.integrated import (
    conditional_covariance,
    frame_kernel,
    greedy_integrated,
    permuted_descriptors,
    select_integrated,
)

NOISE = 1e-2


def _direct_trace(k: np.ndarray, observed: list[int], cand: np.ndarray, noise: float,
                  weights: np.ndarray) -> float:
    """sum_j w_j var(j | observed) of the candidates, by a plain numpy solve."""
    if not observed:
        return float(weights @ np.diag(k)[cand])
    k_oo = k[np.ix_(observed, observed)] + noise * np.eye(len(observed))
    k_oc = k[np.ix_(observed, cand)]
    post = np.diag(k)[cand] - np.einsum("oc,oc->c", k_oc, np.linalg.solve(k_oo, k_oc))
    return float(weights @ post)


def _tiny_pool(seed: int = 0):
    """A labelled set (first 3) and 12 candidates in a 4-D descriptor space, and their
    kernel (one permutation)."""
    x = np.random.default_rng(seed).normal(size=(15, 4))
    return frame_kernel(x, x[None], length=1.5), np.arange(3), np.arange(3, 15)


@pytest.mark.parametrize("weighted", [False, True])
def test_greedy_bookkeeping_matches_direct_recomputation(weighted):
    k, labelled, cand = _tiny_pool()
    weights = (np.random.default_rng(1).uniform(0.2, 2.0, len(cand)) if weighted
               else np.ones(len(cand)))
    cov = conditional_covariance(k[np.ix_(labelled, labelled)], k[np.ix_(labelled, cand)],
                                 k[np.ix_(cand, cand)], NOISE)
    chosen, gains = greedy_integrated(cov, 5, NOISE, weights if weighted else None)
    observed = list(labelled)
    for pick, gain in zip(chosen, gains):
        before = _direct_trace(k, observed, cand, NOISE, weights)
        reductions = [before - _direct_trace(k, [*observed, int(c)], cand, NOISE, weights)
                      for c in cand]
        # each pick's gain is the exact reduction of the (weighted) summed variance, and
        # the largest one among the candidates not yet chosen
        assert gain == pytest.approx(reductions[pick], rel=1e-8, abs=1e-12)
        free = [i for i in range(len(cand)) if int(cand[i]) not in observed]
        assert gain == pytest.approx(max(reductions[i] for i in free), rel=1e-8)
        observed.append(int(cand[pick]))
    assert len(set(chosen.tolist())) == 5


def test_conditional_covariance_is_the_gp_posterior():
    k, labelled, cand = _tiny_pool(2)
    cov = conditional_covariance(k[np.ix_(labelled, labelled)], k[np.ix_(labelled, cand)],
                                 k[np.ix_(cand, cand)], NOISE)
    k_ll = k[np.ix_(labelled, labelled)] + NOISE * np.eye(3)
    direct = k[np.ix_(cand, cand)] - k[np.ix_(cand, labelled)] @ np.linalg.solve(
        k_ll, k[np.ix_(labelled, cand)])
    np.testing.assert_allclose(cov, direct, atol=1e-12)
    no_labels = conditional_covariance(np.zeros((0, 0)), np.zeros((0, 12)),
                                       k[np.ix_(cand, cand)], NOISE)
    np.testing.assert_array_equal(no_labels, k[np.ix_(cand, cand)])


def _clustered(ethanol, n_clusters: int = 4, copies: int = 6):
    """``copies`` near-copies (0.002 A noise) of each of ``n_clusters`` ethanol frames."""
    rng = np.random.default_rng(0)
    data = ethanol.subset(np.repeat(np.arange(n_clusters), copies))
    data.positions[:] = data.positions + 2e-3 * rng.normal(size=data.positions.shape)
    return data


def test_batch_spreads_over_clusters_not_near_copies(ethanol):
    data = _clustered(ethanol)
    chosen, gains = select_integrated(None, None, data, 4)
    assert sorted(chosen // 6) == [0, 1, 2, 3]  # one frame of each cluster
    assert np.all(np.diff(gains) <= 1e-12) and gains[0] > 0
    # a cluster already labelled is not picked again while others are uncovered
    chosen, _ = select_integrated(None, ethanol.subset([0]), data, 3)
    assert sorted(chosen // 6) == [1, 2, 3]


def test_dense_region_is_preferred_to_an_outlier(ethanol):
    # 6 near-copies of frame 0 and single frames 1..3: the first pick covers the dense
    # cluster, whose variance makes up most of the candidates' sum
    data = ethanol.subset([0] * 6 + [1, 2, 3])
    data.positions[:54] += 2e-3 * np.random.default_rng(1).normal(size=(6 * 9, 3))
    chosen, _ = select_integrated(None, None, data, 1)
    assert chosen[0] < 6


def test_selection_is_deterministic(ethanol):
    data = ethanol.subset(np.arange(5, 45))
    first = select_integrated(None, ethanol.subset(np.arange(5)), data, 7)
    again = select_integrated(None, ethanol.subset(np.arange(5)), data, 7)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert len(set(first[0].tolist())) == 7


def test_permutations_and_weights_of_the_model_enter_the_descriptor(ethanol):
    class Model:  # the public attributes a GP potential has
        permutations = np.array([list(range(9)), [0, 1, 2, 4, 3, 5, 6, 7, 8]])
        descriptor_weights = None

    x = permuted_descriptors(Model(), ethanol.subset([0, 1]))
    assert x.shape == (2, 2, 36)
    swapped = ethanol.subset([0])
    swapped.positions[:] = swapped.positions[[0, 1, 2, 4, 3, 5, 6, 7, 8]]
    np.testing.assert_allclose(permuted_descriptors(None, swapped)[0, 0], x[1, 0])
    # the symmetrized kernel cannot tell a frame from its permuted copy
    both = permuted_descriptors(Model(), ethanol.subset([0, 0]))
    sym = frame_kernel(both[0], both, 0.3)
    swapped_sym = frame_kernel(permuted_descriptors(Model(), swapped)[0], both, 0.3)
    np.testing.assert_allclose(swapped_sym, sym[:1], rtol=1e-12)


def test_bad_input_one_line(ethanol):
    with pytest.raises(InputError, match="noise must be positive"):
        greedy_integrated(np.eye(3), 2, 0.0)
    with pytest.raises(InputError, match="square"):
        greedy_integrated(np.ones((3, 2)), 2, 1e-3)
    with pytest.raises(InputError, match="weights"):
        greedy_integrated(np.eye(3), 2, 1e-3, np.array([1.0, -1.0, 1.0]))
    with pytest.raises(InputError, match="must be positive"):
        select_integrated(None, None, ethanol.subset([0, 1]), 1, length_factor=0.0)
    with pytest.raises(InputError, match="criterion must be one of"):
        ActiveSettings(criterion="largest")
    with pytest.raises(InputError, match="coverage_length"):
        ActiveSettings(coverage_length=-1.0)


@pytest.mark.parametrize("criterion", ["integrated", "weighted"])
def test_pool_loop_records_the_variance_reduction(tmp_path, ethanol, ethanol_refs, criterion):
    from ffparam.ml.active import PoolLabeller, run_active
    from ffparam.workflows.mlp_active import MlpActiveSettings, make_trainer

    trainer = make_trainer(MlpActiveSettings(), ethanol_refs,
                           options={"length_scale": 1.6, "learn_weights": False,
                                    "symmetrize": False})
    loop = ActiveSettings(budget=13, initial=8, per_round=5, criterion=criterion)
    summary = run_active(PoolLabeller(ethanol.subset(np.arange(30))), trainer, loop, tmp_path)
    selected = summary["rounds"][1]["selected"]
    assert len(set(selected["ids"])) == 5 and summary["n_labels"] == 13
    gains = selected["variance_reduction"]
    assert len(gains) == 5 and all(0 < g <= 1 for g in gains)


def test_identical_frames_give_the_first_k(ethanol):
    chosen, gains = select_integrated(None, None, ethanol.subset([3, 3, 3, 3]), 2)
    assert list(chosen) == [0, 1] and list(gains) == [0.0, 0.0]
