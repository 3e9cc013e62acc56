"""Building the REAL msgraph-sdk + azure-identity clients against the sandbox (no adapter of ours), a raw
httpx Graph client, and test certificates."""

from __future__ import annotations

import contextlib
import datetime as dt
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
from azure.core.credentials import TokenCredential
from azure.identity import CertificateCredential, ClientSecretCredential
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as sdk_options
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory  # type: ignore[import-untyped]

from sandbox.server import Sandbox

TAG = "String {6f1c0a5e-8d3b-4c2a-9e7f-1a2b3c4d5e6f} Name SourceKey"
CONNECTOR = "0c1d2e3f-4a5b-4c6d-8e7f-90a1b2c3d4e5"
SECRET = "sandbox-secret-not-for-production"
SCOPED = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
SCOPED_SECRET = "scoped-secret"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
ASA = "asa.lindqvist@contoso.example"
JUERGEN = "juergen.weiss@contoso.example"


def secret_credential(
    sandbox: Sandbox, client_id: str = CONNECTOR, secret: str = SECRET
) -> ClientSecretCredential:
    return ClientSecretCredential(
        sandbox.tenant.tenant_id,
        client_id,
        secret,
        authority=sandbox.authority,
        disable_instance_discovery=True,
        connection_verify=str(sandbox.tls.ca_file),  # azure-core's kwarg: a CA bundle path
    )


def certificate_credential(sandbox: Sandbox, client_id: str, pem_file: Path) -> CertificateCredential:
    return CertificateCredential(
        sandbox.tenant.tenant_id,
        client_id,
        certificate_path=str(pem_file),
        authority=sandbox.authority,
        disable_instance_discovery=True,
        connection_verify=str(sandbox.tls.ca_file),
    )


@contextlib.asynccontextmanager
async def sdk_http(
    sandbox: Sandbox, on_request: Callable[[httpx.Request], Awaitable[None]] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The httpx client under the SDK. msgraph-core wraps its transport in one whose ``aclose`` does not
    reach the wrapped pool, so we keep the pool and close it ourselves: no keep-alive connection may
    outlive the test's event loop (the server would wait for it on shutdown)."""
    transport = httpx.AsyncHTTPTransport()
    hooks = {"request": [on_request] if on_request else []}
    async with httpx.AsyncClient(
        base_url=sandbox.graph_url, timeout=30, event_hooks=hooks, transport=transport
    ) as http:
        try:
            yield http
        finally:
            await transport.aclose()


def sdk_client(sandbox: Sandbox, credential: TokenCredential, http: httpx.AsyncClient) -> GraphServiceClient:
    """GraphServiceClient on the sandbox's plain-http Graph URL. kiota sends a token over http only to
    localhost, and only to allowed hosts: so allow the loopback address and name the scope (else it is
    derived from the URL's host)."""
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE], allowed_hosts=[sandbox.host])
    adapter = GraphRequestAdapter(
        auth, GraphClientFactory.create_with_default_middleware(client=http, options=sdk_options)
    )
    adapter.base_url = sandbox.graph_url
    return GraphServiceClient(request_adapter=adapter)


def token(sandbox: Sandbox, client_id: str = CONNECTOR, secret: str = SECRET) -> str:
    response = httpx.post(
        f"{sandbox.authority}/{sandbox.tenant.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": GRAPH_SCOPE,
        },
        verify=ssl.create_default_context(cafile=str(sandbox.tls.ca_file)),
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def graph(sandbox: Sandbox, client_id: str = CONNECTOR, secret: str = SECRET) -> httpx.Client:
    return httpx.Client(
        base_url=sandbox.graph_url,
        headers={"Authorization": f"Bearer {token(sandbox, client_id, secret)}"},
        timeout=30,
    )


def event_body(
    subject: str, key: str, *, day: int = 4, hour: int = 9, zone: str = "Europe/Berlin"
) -> dict[str, object]:
    return {
        "subject": subject,
        "body": {"contentType": "text", "content": f"Managed by Planning ({key})"},
        "start": {"dateTime": f"2026-05-{day:02d}T{hour:02d}:00:00", "timeZone": zone},
        "end": {"dateTime": f"2026-05-{day:02d}T{hour + 1:02d}:00:00", "timeZone": zone},
        "categories": ["Planning"],
        "showAs": "busy",
        "isReminderOn": False,
        "responseRequested": False,
        "transactionId": f"txn-{key}",
        "singleValueExtendedProperties": [{"id": TAG, "value": key}],
    }


def tag_filter(key: str) -> str:
    return f"singleValueExtendedProperties/Any(ep: ep/id eq '{TAG}' and ep/value eq '{key}')"


def tag_expand() -> str:
    return f"singleValueExtendedProperties($filter=id eq '{TAG}')"


def make_certificate(folder: Path, name: str = "connector") -> tuple[Path, str]:
    """An RSA key and a self-signed certificate: the PEM file (key + certificate) azure-identity reads,
    and the certificate PEM to register on the app."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    moment = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment - dt.timedelta(minutes=5))
        .not_valid_after(moment + dt.timedelta(days=2))
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = folder / f"{name}.pem"
    path.write_text(key_pem + cert_pem, encoding="utf-8")
    return path, cert_pem
