"""The sandbox's OAuth2 authority (served over HTTPS): the OpenID configuration MSAL reads and the v2.0
token endpoint for the client-credentials grant, with a client secret or a certificate-signed client
assertion (RFC 7523), answering errors in Entra ID's JSON shape with its AADSTS codes.

What MSAL (behind azure-identity) calls with ``disable_instance_discovery=True``:
``GET /{tenant}/v2.0/.well-known/openid-configuration``, then ``POST`` to the ``token_endpoint`` it
names. Assertions are verified with ``cryptography`` against the app's registered certificate: RS256
(azure-identity sends a SHA-1 thumbprint), PS256 (MSAL with a SHA-256 thumbprint) and ES256.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from sandbox.graph import connection
from sandbox.requestlog import LogEntry, now
from sandbox.tenant import AppRegistration

if TYPE_CHECKING:
    from sandbox.server import Sandbox

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_RESERVED_SCOPES = {"openid", "profile", "offline_access"}
_NO_CACHE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


@dataclass
class AuthError(Exception):
    status: int
    error: str
    code: int
    description: str

    def response(self) -> JSONResponse:
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return JSONResponse(
            {
                "error": self.error,
                "error_description": f"AADSTS{self.code}: {self.description} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {stamp}",
                "error_codes": [self.code],
                "timestamp": stamp,
                "trace_id": trace,
                "correlation_id": correlation,
                "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
            },
            status_code=self.status,
            # Closing after a refusal: MSAL's transport does not hand a refused connection back to its
            # pool, so a kept-alive one would linger until the server stops (and delay its shutdown).
            headers={**_NO_CACHE, "Connection": "close"},
        )


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _thumbprint(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).decode().rstrip("=")


def verify_assertion(assertion: str, app: AppRegistration, audiences: set[str]) -> None:
    """Raise AuthError unless ``assertion`` is a live JWT for ``app``, signed by its certificate's key,
    addressed to one of ``audiences`` (the token endpoint as the client reached it)."""

    def invalid(why: str, code: int = 700027) -> AuthError:
        return AuthError(401, "invalid_client", code, why)

    if not app.certificate_pem:
        raise invalid(
            f"The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: 'unknown', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{app.client_id}'.]"
        )
    try:
        head_b64, payload_b64, signature_b64 = assertion.split(".")
        header = json.loads(_b64url(head_b64))
        claims = json.loads(_b64url(payload_b64))
        signature = _b64url(signature_b64)
    except (ValueError, binascii.Error):
        raise invalid("Client assertion is not a well-formed JWT.") from None
    certificate = x509.load_pem_x509_certificate(app.certificate_pem.encode())
    thumbprints = {
        "x5t": _thumbprint(certificate.fingerprint(hashes.SHA1())),
        "x5t#S256": _thumbprint(certificate.fingerprint(hashes.SHA256())),
    }
    for name, expected in thumbprints.items():
        if name in header and str(header[name]).rstrip("=") != expected:  # MSAL pads its base64url
            raise invalid(
                f"The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{header[name]}']"
            )
    _check_signature(
        certificate, str(header.get("alg", "")), f"{head_b64}.{payload_b64}".encode(), signature, invalid
    )
    if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
        raise invalid("The issuer and subject of the client assertion must both be the client id.")
    if str(claims.get("aud", "")).rstrip("/") not in audiences:
        raise invalid(
            f"The audience '{claims.get('aud')}' of the client assertion is not this token endpoint."
        )
    moment = time.time()
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] < moment - 300:
        raise invalid("Client assertion is not within its valid time range.", 700024)
    if isinstance(claims.get("nbf"), int | float) and claims["nbf"] > moment + 300:
        raise invalid("Client assertion is not within its valid time range.", 700024)


def _check_signature(
    certificate: x509.Certificate, alg: str, signed: bytes, signature: bytes, invalid: Any
) -> None:
    key = certificate.public_key()
    try:
        if alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "PS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(
                signature,
                signed,
                padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO),
                hashes.SHA256(),
            )
        elif alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey) and len(signature) == 64:
            der = utils.encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
        else:
            raise invalid(
                f"The client assertion's algorithm '{alg}' does not fit the registered certificate."
            )
    except InvalidSignature:
        raise invalid("Client assertion contains an invalid signature.") from None


class TokenEndpoint:
    """``POST /{tenant}/oauth2/v2.0/token``: a raw ASGI endpoint so an injected "reset" can drop it."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        started, clock = now(), time.perf_counter()
        # Parsed by hand: Starlette's form parser needs python-multipart, which the project does not ship.
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        client_id = form.get("client_id", "")
        method = (
            "assertion" if form.get("client_assertion") else "secret" if form.get("client_secret") else ""
        )
        error_code, fault = None, None
        response: Response | None = None
        async with self.sandbox.conditions.admit("auth", "token", None) as admission:
            if admission.fault is not None:
                fault = admission.fault.kind
                if fault not in ("reset", "drop_after_commit"):
                    response = JSONResponse(
                        {
                            "error": "temporarily_unavailable",
                            "error_description": "AADSTS90033: A transient error has occurred. Please try again.",
                        },
                        status_code=500 if fault == "500" else 503,
                        headers={"Retry-After": str(max(1, int(admission.fault.retry_after)))},
                    )
            else:
                try:
                    client_id, method = self._client(request, form)
                    response = self._issue(request, form)
                except AuthError as exc:
                    response, error_code = exc.response(), f"AADSTS{exc.code}"
        # Logged before answering: a client that reads the log right after its answer must find the entry.
        self.sandbox.log.append(
            LogEntry(
                face="auth",
                operation="token",
                mailbox=None,
                status=response.status_code if response is not None else 0,
                started=started,
                duration_ms=(time.perf_counter() - clock) * 1000,
                principal=client_id,
                error_code=error_code,
                fault=fault,
                detail=f"client_credentials with {method or 'no credential'}",  # never the secret itself
            )
        )
        if response is None:
            await connection.drop(send)
        else:
            await response(scope, receive, send)

    @staticmethod
    def _client(request: Request, form: dict[str, str]) -> tuple[str, str]:
        """client_secret_basic: the client id and secret may come in an Authorization: Basic header."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                user, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, binascii.Error):
                raise AuthError(
                    401,
                    "invalid_client",
                    7000216,
                    "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
                ) from None
            form.setdefault("client_id", user)
            form.setdefault("client_secret", secret)
        method = (
            "assertion" if form.get("client_assertion") else "secret" if form.get("client_secret") else ""
        )
        return form.get("client_id", ""), method

    def _issue(self, request: Request, form: dict[str, str]) -> Response:
        tenant = self.sandbox.tenant
        tenant_name = request.path_params["tenant"]
        if tenant_name.lower() not in (tenant.tenant_id.lower(), tenant.domain.lower()):
            raise AuthError(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant_name}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.",
            )
        if form.get("grant_type") != "client_credentials":
            raise AuthError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{form.get('grant_type', '')}'.",
            )
        client_id = form.get("client_id", "")
        app = tenant.apps.get(client_id)
        if app is None or app.tenant_id != tenant.tenant_id:
            raise AuthError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant.domain}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
            )
        if form.get("client_assertion"):
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                raise AuthError(
                    400,
                    "invalid_request",
                    50027,
                    "Invalid client_assertion_type; expected the JWT bearer type.",
                )
            token_url = f"{request.url.scheme}://{request.url.netloc}{request.url.path}".rstrip("/")
            audiences = {token_url, _issuer(request, tenant_name).rstrip("/")}
            verify_assertion(form["client_assertion"], app, audiences)
        elif form.get("client_secret"):
            if app.secret is None or form["client_secret"] != app.secret:
                raise AuthError(
                    401,
                    "invalid_client",
                    7000215,
                    f"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'.",
                )
        else:
            raise AuthError(
                401,
                "invalid_client",
                7000216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
            )
        scope = " ".join(s for s in form.get("scope", "").split() if s not in _RESERVED_SCOPES)
        if not scope or not scope.endswith("/.default") or len(scope.split()) != 1:
            raise AuthError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope or '(none)'} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
            )
        token, lifetime = self.sandbox.tokens.issue(app, scope)
        return JSONResponse(
            {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": token,
            },
            headers=_NO_CACHE,
        )


def _base(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _issuer(request: Request, tenant_name: str) -> str:
    return f"{_base(request)}/{tenant_name}/v2.0"


def routes(sandbox: Sandbox) -> list[BaseRoute]:
    async def openid_configuration(request: Request) -> Response:
        tenant = sandbox.tenant
        name = request.path_params["tenant"]
        if name.lower() not in (tenant.tenant_id.lower(), tenant.domain.lower()):
            error = AuthError(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{name}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.",
            )
            return error.response()
        base = f"{_base(request)}/{tenant.tenant_id}"
        return JSONResponse(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{base}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{_base(request)}/oidc/userinfo",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "ver"],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
            }
        )

    async def keys(request: Request) -> Response:
        return JSONResponse({"keys": []})  # our tokens are opaque; nothing verifies them but us

    return [
        Route("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration),
        Route("/{tenant}/.well-known/openid-configuration", openid_configuration),
        Route("/{tenant}/discovery/v2.0/keys", keys),
        Route("/{tenant}/oauth2/v2.0/token", TokenEndpoint(sandbox), methods=["POST"]),
    ]
