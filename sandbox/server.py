"""One process serving the emulated tenant: EWS SOAP and Graph REST over plain HTTP on loopback, and
the OAuth2 authority over HTTPS (azure-identity refuses a plain-http authority), both from one
Starlette app on two uvicorn listeners that share one event loop in a background thread.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from sandbox.conditions import Conditions
from sandbox.requestlog import RequestLog
from sandbox.tenant import Tenant
from sandbox.tls import TlsFiles, generate

log = logging.getLogger(__name__)


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


@dataclass
class Sandbox:
    tenant: Tenant
    conditions: Conditions = field(default_factory=Conditions)
    host: str = "127.0.0.1"
    port: int = 0
    tls_port: int = 0
    state_dir: Path | None = None
    log_path: Path | None = None
    #: Hold every EWS request and response against the XSD and record violations (tests turn it on).
    validate_soap: bool = False

    def __post_init__(self) -> None:
        self.log = RequestLog(self.log_path)
        #: Schema violations seen while ``validate_soap`` is on, one line each.
        self.soap_violations: list[str] = []
        self._state_dir = self.state_dir or Path(tempfile.mkdtemp(prefix="connector-sandbox-"))
        self.tls: TlsFiles = generate(self._state_dir)
        from sandbox.tokens import TokenService

        self.tokens = TokenService(self)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._servers: list[uvicorn.Server] = []
        self._started = threading.Event()
        self._error: BaseException | None = None

    # -- addresses ---------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ews_url(self) -> str:
        return f"{self.base_url}/EWS/Exchange.asmx"

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/v1.0"

    @property
    def authority(self) -> str:
        """What azure-identity takes as ``authority`` (it appends ``/{tenant}/oauth2/v2.0/token``)."""
        return f"https://{self.host}:{self.tls_port}"

    def info(self) -> dict[str, Any]:
        """Endpoints and demo credentials, as ``connector sandbox --json`` prints them."""
        app = next(iter(self.tenant.apps.values()), None)
        account = next(iter(self.tenant.service_accounts.values()), None)
        return {
            "ews_url": self.ews_url,
            "graph_url": self.graph_url,
            "authority": self.authority,
            "token_url": f"{self.authority}/{self.tenant.tenant_id}/oauth2/v2.0/token",
            "ca_file": str(self.tls.ca_file),
            "tenant_id": self.tenant.tenant_id,
            "client_id": app.client_id if app else None,
            "client_secret": app.secret if app else None,
            "service_account": account.username if account else None,
            "password": account.password if account else None,
            "mailboxes": [m.address for m in self.tenant.mailboxes()],
            "admin_url": f"{self.base_url}/sandbox",
        }

    # -- the app -----------------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        from sandbox import admin, auth
        from sandbox.ews import face as ews
        from sandbox.graph import face as graph

        return [*ews.routes(self), *graph.routes(self), *auth.routes(self), *admin.routes(self)]

    def app(self) -> Starlette:
        return Starlette(routes=self.routes())

    # -- running -----------------------------------------------------------------------------------------
    def start(self) -> Sandbox:
        """Listen in a background thread; returns once both listeners accept connections."""
        plain = _listen(self.host, self.port)
        secure = _listen(self.host, self.tls_port)
        self.port, self.tls_port = plain.getsockname()[1], secure.getsockname()[1]
        app = self.app()
        common: dict[str, Any] = {
            "log_level": "warning",
            "access_log": False,
            "lifespan": "off",
            "timeout_keep_alive": 30,
        }
        self._servers = [
            uvicorn.Server(uvicorn.Config(app, **common)),
            uvicorn.Server(
                uvicorn.Config(
                    app, ssl_certfile=str(self.tls.cert_file), ssl_keyfile=str(self.tls.key_file), **common
                )
            ),
        ]
        # uvicorn leaves signals alone outside the main thread: the caller's handlers stay in charge.

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)

            async def main() -> None:
                tasks = [
                    asyncio.create_task(self._servers[0].serve(sockets=[plain])),
                    asyncio.create_task(self._servers[1].serve(sockets=[secure])),
                ]
                while not all(s.started for s in self._servers):
                    if any(t.done() for t in tasks):
                        break
                    await asyncio.sleep(0.01)
                self._started.set()
                await asyncio.gather(*tasks)

            try:
                loop.run_until_complete(main())
            except BaseException as exc:  # reported to the thread that waits in start()
                self._error = exc
                self._started.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="sandbox", daemon=True)
        self._thread.start()
        self._started.wait(timeout=30)
        if self._error is not None or not all(s.started for s in self._servers):
            raise RuntimeError(f"the sandbox could not start: {self._error!r}")
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def wait(self) -> None:
        """Block until stopped (the CLI's foreground mode)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def reset(self) -> None:
        """Back to an empty calendar set, an empty log and default conditions (between tests)."""
        self.tenant.clear()
        self.log.clear()
        self.conditions.update(
            latency_ms=0.0, jitter_ms=0.0, concurrency_limit=4, budget=None, budget_window_s=600.0, faults=[]
        )
        self.conditions.reset_counters()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
