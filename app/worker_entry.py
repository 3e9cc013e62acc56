"""The module each ``connector worker`` process imports (through Dramatiq's own CLI, which manages the
processes and their graceful shutdown): it reads the settings named by ``CONNECTOR_SETTINGS``, sets
up the broker and declares the actors on it. Dramatiq finds the broker as ``app.worker_entry:broker``.
"""

from __future__ import annotations

import atexit
import logging

from app import bootstrap
from app.jobs import build_jobs

_settings = bootstrap.read_settings(bootstrap.settings_path(None))
system = build_jobs(_settings)
broker = system.broker
# Built at start-up rather than with the first job: bad backend settings stop the worker at once.
system.context.services  # noqa: B018
atexit.register(system.close)
logging.getLogger(__name__).info(
    "worker ready: %d threads, backend %s", system.context.limits.threads, _settings.backend.kind
)
