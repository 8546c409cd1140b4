"""Import what the commands import lazily once, before the fuzz cases fork from this
process (see :func:`tests.fuzz.runner.preload`)."""

import pytest


@pytest.fixture(scope="session")
def preloaded() -> None:
    from tests.fuzz.runner import preload

    preload()
