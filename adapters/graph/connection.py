"""Sending requests through msgraph-sdk from synchronous code.

The SDK is async. Each calling thread (a worker thread) gets its own event loop and its own SDK
adapter + httpx client, created on first use and reused for every call from that thread: one shared
client across loops fails with "Event loop is closed" (DESIGN §3). Requests go through the SDK's
request adapter (authentication via azure-identity, its middleware) and come back raw
(``NativeResponseHandler``) so throttling and batching stay under our control; the SDK's own retry
handler is switched off for the same reason.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import httpx
from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.method import Method
from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import ResponseHandlerOption, RetryHandlerOption
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph_core import GraphClientFactory  # type: ignore[import-untyped]

from adapters.graph.config import GraphConfig
from connector.errors import AuthError, TransientError


@dataclass(frozen=True, slots=True)
class GraphResponse:
    status: int
    headers: dict[str, str]
    body: Any


def build_credential(config: GraphConfig) -> TokenCredential:
    from azure.identity import CertificateCredential, ClientSecretCredential

    common: dict[str, Any] = {"authority": config.authority, "disable_instance_discovery": True}
    if config.ca_file is not None:
        common["connection_verify"] = str(config.ca_file)
    if config.certificate_path is not None:
        return CertificateCredential(
            config.tenant_id,
            config.client_id,
            certificate_path=str(config.certificate_path),
            password=config.certificate_password,
            **common,
        )
    return ClientSecretCredential(config.tenant_id, config.client_id, config.client_secret or "", **common)


@dataclass
class _ThreadClient:
    loop: asyncio.AbstractEventLoop
    http: httpx.AsyncClient
    # Closed by us: msgraph-core wraps the client's transport in one that does not close the pool.
    transport: httpx.AsyncHTTPTransport
    adapter: GraphRequestAdapter


class GraphConnection:
    def __init__(self, config: GraphConfig, credential: TokenCredential | None = None) -> None:
        self.config = config
        self.credential = credential or build_credential(config)
        self._local = threading.local()
        self._clients: list[_ThreadClient] = []
        self._lock = threading.Lock()

    def _client(self) -> _ThreadClient:
        client: _ThreadClient | None = getattr(self._local, "client", None)
        if client is None:
            loop = asyncio.new_event_loop()
            verify: ssl.SSLContext | bool = True
            if self.config.ca_file is not None:
                verify = ssl.create_default_context(cafile=str(self.config.ca_file))
            transport = httpx.AsyncHTTPTransport(verify=verify)
            http = httpx.AsyncClient(
                base_url=self.config.base_url, timeout=self.config.timeout_s, transport=transport
            )
            options = {
                RetryHandlerOption.get_key(): RetryHandlerOption(max_retries=0, delay=0, should_retry=False)
            }
            auth = AzureIdentityAuthenticationProvider(
                self.credential, scopes=[self.config.scope], allowed_hosts=[self.config.host]
            )
            adapter = GraphRequestAdapter(
                auth, GraphClientFactory.create_with_default_middleware(client=http, options=options)
            )
            adapter.base_url = self.config.base_url
            client = _ThreadClient(loop, http, transport, adapter)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def send(
        self, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None
    ) -> GraphResponse:
        """One request; ``path`` is relative to the base URL or absolute (a nextLink). Raises
        ``TransientError`` when no answer came back, ``AuthError`` when no token could be had."""
        client = self._client()
        return client.loop.run_until_complete(self._send(client, method, path, body, headers or {}))

    async def _send(
        self, client: _ThreadClient, method: str, path: str, body: Any, headers: dict[str, str]
    ) -> GraphResponse:
        info = RequestInformation()
        info.http_method = Method(method)
        info.url = path if path.startswith(("http://", "https://")) else self.config.base_url + path
        info.headers.try_add("Prefer", 'IdType="ImmutableId"')
        for name, value in headers.items():
            info.headers.try_add(name, value)
        if body is not None:
            info.headers.try_add("Content-Type", "application/json")
            info.content = json.dumps(body, ensure_ascii=False).encode()
        info.add_request_options([ResponseHandlerOption(NativeResponseHandler())])
        try:
            response: httpx.Response = await client.adapter.send_primitive_async(info, "bytes", None)
        except ClientAuthenticationError as exc:
            raise AuthError(
                f"no token for app {self.config.client_id} from {self.config.authority}: {_first_line(exc)}",
                fix="check tenant_id, client_id, the client secret or certificate, and the authority URL",
            ) from exc
        except httpx.HTTPError as exc:
            raise TransientError(f"no answer from Microsoft Graph ({type(exc).__name__}: {exc})") from exc
        try:
            parsed: Any = response.json() if response.content else None
        except ValueError:
            parsed = None
        return GraphResponse(response.status_code, dict(response.headers), parsed)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            if not client.loop.is_closed():
                client.loop.run_until_complete(client.http.aclose())
                client.loop.run_until_complete(client.transport.aclose())
                client.loop.close()
        close = getattr(self.credential, "close", None)
        if callable(close):
            close()


def _first_line(exc: Exception) -> str:
    return (str(getattr(exc, "message", "") or exc).strip().splitlines() or [""])[0]
