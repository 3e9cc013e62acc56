"""The sandbox authority: the real azure-identity credentials (secret and certificate) get tokens from it
over TLS, and it refuses what Entra ID refuses, with the same AADSTS codes."""

from __future__ import annotations

import base64
import json
import ssl
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sandbox.conditions import Fault
from sandbox.server import Sandbox
from tests.sandbox.graph_client import (
    CONNECTOR,
    GRAPH_SCOPE,
    SCOPED,
    SECRET,
    certificate_credential,
    make_certificate,
    secret_credential,
)

pytestmark = pytest.mark.sandbox
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _tls(sandbox: Sandbox) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(sandbox.tls.ca_file))


def _token_url(sandbox: Sandbox, tenant: str | None = None) -> str:
    return f"{sandbox.authority}/{tenant or sandbox.tenant.tenant_id}/oauth2/v2.0/token"


def _post(sandbox: Sandbox, data: dict[str, str], tenant: str | None = None) -> httpx.Response:
    return httpx.post(_token_url(sandbox, tenant), data=data, verify=_tls(sandbox))


def _register(sandbox: Sandbox, client_id: str, cert_pem: str) -> None:
    app = sandbox.tenant.apps[client_id]
    sandbox.tenant.apps[client_id] = replace(app, secret=None, certificate_pem=cert_pem)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_openid_configuration_names_the_token_endpoint_msal_uses(sandbox: Sandbox) -> None:
    tenant = sandbox.tenant.tenant_id
    config = httpx.get(
        f"{sandbox.authority}/{tenant}/v2.0/.well-known/openid-configuration", verify=_tls(sandbox)
    )
    assert config.status_code == 200
    assert config.json()["token_endpoint"] == _token_url(sandbox)
    unknown = httpx.get(
        f"{sandbox.authority}/nope.example/v2.0/.well-known/openid-configuration", verify=_tls(sandbox)
    )
    assert unknown.status_code == 400 and "AADSTS90002" in unknown.json()["error_description"]


def test_client_secret_credential_gets_a_token_and_the_log_keeps_no_secret(sandbox: Sandbox) -> None:
    with secret_credential(sandbox) as credential:
        access = credential.get_token(GRAPH_SCOPE)
    assert access.token and access.expires_on > time.time() + 600
    assert sandbox.tokens.principal(access.token) is not None
    entries = sandbox.log.entries(lambda e: e.face == "auth")
    assert [(e.operation, e.status, e.principal) for e in entries] == [("token", 200, CONNECTOR)]
    assert SECRET not in json.dumps([e.to_json() for e in sandbox.log.entries()])


def test_a_wrong_secret_is_aadsts7000215(sandbox: Sandbox) -> None:
    with (
        secret_credential(sandbox, secret="wrong") as credential,
        pytest.raises(ClientAuthenticationError, match="AADSTS7000215"),
    ):
        credential.get_token(GRAPH_SCOPE)
    raw = _post(
        sandbox,
        {
            "grant_type": "client_credentials",
            "client_id": CONNECTOR,
            "client_secret": "wrong",
            "scope": GRAPH_SCOPE,
        },
    )
    assert raw.status_code == 401 and raw.json()["error"] == "invalid_client"
    assert raw.json()["error_codes"] == [7000215]
    assert sandbox.log.entries(lambda e: e.face == "auth")[-1].error_code == "AADSTS7000215"


def test_an_unknown_client_is_aadsts700016_and_an_unknown_tenant_aadsts90002(sandbox: Sandbox) -> None:
    unknown = secret_credential(sandbox, client_id="11111111-2222-3333-4444-555555555555")
    with unknown, pytest.raises(ClientAuthenticationError, match="AADSTS700016"):
        unknown.get_token(GRAPH_SCOPE)
    form = {
        "grant_type": "client_credentials",
        "client_id": CONNECTOR,
        "client_secret": SECRET,
        "scope": GRAPH_SCOPE,
    }
    unknown_tenant = _post(sandbox, form, tenant="00000000-0000-0000-0000-000000000000")
    assert unknown_tenant.status_code == 400 and unknown_tenant.json()["error_codes"] == [90002]
    bad_scope = _post(sandbox, {**form, "scope": "Calendars.ReadWrite"})
    assert bad_scope.status_code == 400 and bad_scope.json()["error"] == "invalid_scope"


def test_certificate_credential_signs_an_assertion_the_authority_verifies(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    pem_file, cert_pem = make_certificate(tmp_path)
    _register(sandbox, SCOPED, cert_pem)
    with certificate_credential(sandbox, SCOPED, pem_file) as credential:
        access = credential.get_token(GRAPH_SCOPE)
    principal = sandbox.tokens.principal(access.token)
    assert principal is not None and principal.name == SCOPED
    assert sandbox.log.entries(lambda e: e.face == "auth")[-1].detail == "client_credentials with assertion"


def test_an_assertion_signed_by_another_key_is_aadsts700027(sandbox: Sandbox, tmp_path: Path) -> None:
    _, registered = make_certificate(tmp_path, "registered")
    other_file, _ = make_certificate(tmp_path, "other")
    _register(sandbox, SCOPED, registered)
    credential = certificate_credential(sandbox, SCOPED, other_file)
    with credential, pytest.raises(ClientAuthenticationError, match="AADSTS700027"):
        credential.get_token(GRAPH_SCOPE)


def _assertion(key: rsa.RSAPrivateKey, claims: dict[str, object]) -> str:
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{_b64(signature)}"


def test_a_tampered_expired_or_misaddressed_assertion_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    pem_file, cert_pem = make_certificate(tmp_path)
    _register(sandbox, SCOPED, cert_pem)
    key = serialization.load_pem_private_key(pem_file.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    good = {"aud": _token_url(sandbox), "iss": SCOPED, "sub": SCOPED, "exp": time.time() + 600, "jti": "1"}

    def post(assertion: str) -> httpx.Response:
        return _post(
            sandbox,
            {
                "grant_type": "client_credentials",
                "client_id": SCOPED,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion,
                "scope": GRAPH_SCOPE,
            },
        )

    assert post(_assertion(key, good)).status_code == 200
    header, _, signature = _assertion(key, good).split(".")
    forged = _b64(json.dumps({**good, "sub": "someone-else", "iss": "someone-else"}).encode())
    tampered = post(f"{header}.{forged}.{signature}")
    assert tampered.status_code == 401 and tampered.json()["error_codes"] == [700027]
    assert "invalid signature" in tampered.json()["error_description"]
    expired = post(_assertion(key, {**good, "exp": time.time() - 3600}))
    assert expired.status_code == 401 and expired.json()["error_codes"] == [700024]
    elsewhere = post(
        _assertion(key, {**good, "aud": "https://login.microsoftonline.com/x/oauth2/v2.0/token"})
    )
    assert elsewhere.status_code == 401 and elsewhere.json()["error_codes"] == [700027]


def test_an_injected_authority_fault_is_logged(sandbox: Sandbox) -> None:
    sandbox.conditions.add_fault(Fault("503", face="auth", times=1))
    form = {
        "grant_type": "client_credentials",
        "client_id": CONNECTOR,
        "client_secret": SECRET,
        "scope": GRAPH_SCOPE,
    }
    assert _post(sandbox, form).status_code == 503
    assert _post(sandbox, form).status_code == 200
    assert [(e.status, e.fault) for e in sandbox.log.entries(lambda e: e.face == "auth")] == [
        (503, "503"),
        (200, None),
    ]
