"""Shared pytest configuration: small thread counts so two xdist workers share 2 cores,
and the seed of the stochastic tests.

Stochastic tests (MD, Langevin, Monte Carlo, replica exchange, random splits and
initializations, stochastic optimizers) are marked ``@pytest.mark.stochastic`` and take
their seed from the ``seed`` fixture: ``FFPARAM_TEST_SEED`` (environment) or
``--test-seed N`` (command line), default :data:`DEFAULT_SEED`, so ``make test`` is
reproducible while ``tests/seed_sweep.sh`` reruns them for several seeds. Such a test must
assert only what holds for every valid trajectory (a tolerance from a stated statistical
argument, or a construction that fails deterministically): it has to pass for any seed.
"""

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENMM_CPU_THREADS", "1")

import torch

torch.set_num_threads(1)

DEFAULT_SEED = 1


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--test-seed", type=int, default=None,
                     help="seed of the stochastic tests (default: $FFPARAM_TEST_SEED or "
                          f"{DEFAULT_SEED})")


def test_seed(config: pytest.Config) -> int:
    """The seed of this session's stochastic tests (option, else environment, else 1)."""
    value = config.getoption("--test-seed")
    if value is None:
        value = int(os.environ.get("FFPARAM_TEST_SEED", DEFAULT_SEED))
    return int(value)


test_seed.__test__ = False  # a helper, not a test


@pytest.fixture(scope="session")
def seed(request: pytest.FixtureRequest) -> int:
    """Seed for a stochastic test (see the module docstring); always >= 1."""
    return max(1, test_seed(request.config))


def pytest_report_header(config: pytest.Config) -> str:
    return f"ffparam stochastic-test seed: {test_seed(config)}"
