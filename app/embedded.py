"""The sandbox tenant run inside the connector's own process (``[backend.graph] sandbox = ...``), so
``make run`` exercises the real Graph path — msgraph-sdk, azure-identity, HTTP — on a fresh machine.
Its calendars are loaded from and saved to ``sandbox_data`` so consecutive runs see one tenant."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from sandbox import persist
from sandbox.config import load_conditions, load_tenant
from sandbox.server import Sandbox


@dataclass
class EmbeddedSandbox:
    server: Sandbox
    data: Path | None

    @classmethod
    def start(cls, tenant_file: Path, data: Path | None) -> EmbeddedSandbox:
        tenant = load_tenant(tenant_file)
        if data is not None and data.exists():
            persist.load(tenant, data)
        state = Path(tempfile.mkdtemp(prefix="connector-embedded-sandbox-"))
        server = Sandbox(tenant, conditions=load_conditions(tenant_file), state_dir=state).start()
        return cls(server, data)

    def stop(self) -> None:
        if self.data is not None:
            persist.save(self.server.tenant, self.data)
        self.server.stop()
