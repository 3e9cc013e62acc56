"""Fixtures shared across the suite. The sandbox tenant runs in-process on free loopback ports, one
per test worker, and is reset before each test that uses it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings as hypothesis_settings

from sandbox.config import load_tenant
from sandbox.server import Sandbox

# CI replays a fixed set of examples (a landing must not depend on a lucky draw); developers' runs
# keep exploring new ones, and what they find is saved in .hypothesis/ and replayed first.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    server = Sandbox(load_tenant(), state_dir=tmp_path_factory.mktemp("sandbox"))
    # Every SOAP request and response of the whole suite is held against the EWS schemas.
    server.validate_soap = True
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Iterator[Sandbox]:
    """The demo tenant, empty calendars, empty log, default conditions."""
    fresh = load_tenant()
    sandbox_server.tenant = fresh
    sandbox_server.tokens.reset()
    sandbox_server.reset()
    sandbox_server.soap_violations.clear()
    yield sandbox_server
    violations = list(sandbox_server.soap_violations)
    sandbox_server.reset()
    assert not violations, "SOAP outside the EWS schemas:\n" + "\n".join(violations)
