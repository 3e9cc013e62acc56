"""Runs every contract test once per backend harness."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest

from .harness import BackendHarness, MemoryHarness

#: Builds a harness with fresh, empty calendars and tears down what it started. It gets the pytest
#: request, so a harness needing a server (the emulated tenant) can pull that fixture by name.
HarnessFactory = Callable[[pytest.FixtureRequest], AbstractContextManager[BackendHarness]]


@contextmanager
def memory_harness(request: pytest.FixtureRequest) -> Iterator[BackendHarness]:
    yield MemoryHarness()


@contextmanager
def graph_on_sandbox(request: pytest.FixtureRequest) -> Iterator[BackendHarness]:
    from .sandbox_harness import graph_harness

    yield graph_harness(request.getfixturevalue("sandbox"))


@contextmanager
def ews_impersonation(request: pytest.FixtureRequest) -> Iterator[BackendHarness]:
    from .sandbox_harness import ews_harness

    yield ews_harness(request.getfixturevalue("sandbox"), "impersonation")


@contextmanager
def ews_delegate(request: pytest.FixtureRequest) -> Iterator[BackendHarness]:
    from .sandbox_harness import ews_harness

    yield ews_harness(request.getfixturevalue("sandbox"), "delegate")


#: One line per backend.
HARNESSES: dict[str, HarnessFactory] = {
    "memory": memory_harness,
    "graph": graph_on_sandbox,
    "ews-impersonation": ews_impersonation,
    "ews-delegate": ews_delegate,
}


@pytest.fixture(params=list(HARNESSES))
def harness(request: pytest.FixtureRequest) -> Iterator[BackendHarness]:
    with HARNESSES[request.param](request) as built:
        try:
            yield built
        finally:
            built.backend.close()
