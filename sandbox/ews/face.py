"""The EWS endpoint, ``/EWS/Exchange.asmx``, as an Exchange 2019 server answers exchangelib.

One request, in the order a real server applies its checks: the tenant's EWS policy (Exchange Online's
switch-off: 403 + ``X-EWS-Policy-Reason``), authentication (401), the SOAP body against the schema
(ErrorSchemaValidation), the request version, impersonation, then the sandbox's conditions (latency,
per-mailbox concurrency and budget → ErrorServerBusy, injected faults) and finally the operation. Every
request lands in the request log.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lxml import etree
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from sandbox.conditions import Fault, Throttled
from sandbox.ews import schema
from sandbox.ews.access import Caller, authenticate, resolve_caller
from sandbox.ews.context import Context
from sandbox.ews.errors import (
    INVALID_OPERATION,
    INVALID_SERVER_VERSION,
    SCHEMA_VALIDATION,
    SERVER_BUSY,
    EwsError,
    request_fault,
)
from sandbox.ews.operations import MAILBOXLESS, OPERATIONS, WRITES
from sandbox.ews.soap import (
    ACCEPTED_VERSIONS,
    SoapParseError,
    SoapRequest,
    envelope,
    fault,
    m,
    operation_response,
    parse_request,
)
from sandbox.requestlog import LogEntry, now

if TYPE_CHECKING:
    from sandbox.server import Sandbox

PATH = "/EWS/Exchange.asmx"
XML = "text/xml; charset=utf-8"
SERVER_BUSY_TEXT = "The server cannot service this request right now. Try again later."


@dataclass
class _Outcome:
    """What the log entry needs to know about a request once it is answered."""

    operation: str = "unknown"
    mailbox: str | None = None
    principal: str = ""
    error_code: str | None = None
    fault: str | None = None
    detail: str = ""


class _DroppedResponse(Response):
    """Headers that promise ``claimed`` bytes, then part of them, then a closed connection: what a client
    sees when the server (or a proxy) dies mid-response. uvicorn closes the socket when the app returns
    without completing the body."""

    def __init__(self, partial: bytes, claimed: int) -> None:
        super().__init__(content=b"", media_type=XML)
        self.partial = partial
        self.claimed = claimed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", XML.encode()), (b"content-length", str(self.claimed).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.partial, "more_body": True})


def _first_error(messages: list[etree._Element]) -> str | None:
    for msg in messages:
        code = msg.findtext(m("ResponseCode"))
        if code and code != "NoError":
            return code
    return None


def _www_authenticate(request: Request) -> dict[str, str]:
    realm = request.url.hostname or "127.0.0.1"
    return {"WWW-Authenticate": f'Basic realm="{realm}", Bearer'}


class EwsFace:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    # -- HTTP ------------------------------------------------------------------------------------------------
    async def post(self, request: Request) -> Response:
        started, clock = now(), time.monotonic()
        outcome = _Outcome()
        response = await self._handle(request, outcome)
        status = response.status_code if not isinstance(response, _DroppedResponse) else 0
        self.sandbox.log.append(
            LogEntry(
                face="ews",
                operation=outcome.operation,
                mailbox=outcome.mailbox,
                status=status,
                started=started,
                duration_ms=(time.monotonic() - clock) * 1000,
                principal=outcome.principal,
                write=outcome.operation in WRITES,
                error_code=outcome.error_code,
                fault=outcome.fault,
                detail=outcome.detail,
            )
        )
        return response

    async def get(self, request: Request) -> Response:
        """Exchange answers a browser's GET with a login challenge, and ``?wsdl`` with the service
        description; exchangelib itself only POSTs."""
        tenant = self.sandbox.tenant
        if not tenant.ews_policy.allowed:
            return PlainTextResponse("EWS is blocked", 403, {"X-EWS-Policy-Reason": tenant.ews_policy.reason})
        if "wsdl" in {k.lower() for k in request.query_params}:
            return FileResponse(schema.XSD_DIR / "services.wsdl", media_type=XML)
        if authenticate(tenant, self.sandbox.tokens, request.headers.get("authorization")) is None:
            return PlainTextResponse("401 Unauthorized", 401, _www_authenticate(request))
        return PlainTextResponse("Exchange Web Services (sandbox)", 200)

    # -- one request -------------------------------------------------------------------------------------------
    async def _handle(self, request: Request, outcome: _Outcome) -> Response:
        tenant = self.sandbox.tenant  # read per request: tests swap the tenant between tests
        # Parsed before the checks so the log names the operation of refused requests too.
        try:
            soap: SoapRequest | SoapParseError = parse_request(await request.body())
        except SoapParseError as exc:
            soap = exc
        outcome.operation = soap.name if isinstance(soap, SoapRequest) else "unknown"
        if not tenant.ews_policy.allowed:
            outcome.detail = tenant.ews_policy.reason
            return PlainTextResponse(
                "EWS is not allowed for this tenant.", 403, {"X-EWS-Policy-Reason": tenant.ews_policy.reason}
            )
        principal = authenticate(tenant, self.sandbox.tokens, request.headers.get("authorization"))
        if principal is None:
            return PlainTextResponse("401 Unauthorized", 401, _www_authenticate(request))
        outcome.principal = principal.name
        if isinstance(soap, SoapParseError):
            return self._fault(
                outcome, EwsError(SCHEMA_VALIDATION, str(soap), violation=(soap.line, soap.column, str(soap)))
            )
        # Before the schema: exchangelib negotiates versions on ErrorInvalidServerVersion.
        version = soap.request_version
        if version is not None and version not in ACCEPTED_VERSIONS:
            return self._fault(
                outcome, request_fault(INVALID_SERVER_VERSION, "The specified server version is invalid.")
            )
        violations = schema.validate_envelope(soap.operation.getroottree().getroot())
        if violations:
            self._record(f"request {soap.name}", violations)
            first = violations[0]
            message = f"The request failed schema validation: {first.message}"
            return self._fault(
                outcome,
                EwsError(SCHEMA_VALIDATION, message, violation=(first.line, first.column, first.message)),
            )
        operation = OPERATIONS.get(soap.name)
        if operation is None:
            return self._fault(
                outcome, request_fault(INVALID_OPERATION, f"The sandbox does not offer {soap.name}.")
            )
        try:
            caller = resolve_caller(tenant, principal, soap.header_child("ExchangeImpersonation"))
        except EwsError as exc:
            return self._fault(outcome, exc)
        outcome.mailbox = self._target_mailbox(caller, request, soap.name)
        try:
            async with self.sandbox.conditions.admit("ews", soap.name, outcome.mailbox) as admission:
                if admission.fault is not None and admission.fault.kind != "drop_after_commit":
                    return await self._injected(outcome, admission.fault)
                try:
                    messages = operation(Context(tenant, caller, soap))
                except EwsError as exc:
                    return self._fault(outcome, exc)
                outcome.error_code = _first_error(messages)
                data = envelope(operation_response(soap.name, messages))
                self._check_response(soap.name, data)
                if admission.fault is not None:  # drop_after_commit: the write is done, the answer is lost
                    outcome.fault = admission.fault.kind
                    return _DroppedResponse(data[: len(data) // 2], len(data))
                return Response(data, 200, media_type=XML)
        except Throttled as exc:
            outcome.detail = exc.reason
            back_off = str(int(exc.retry_after * 1000))
            return self._fault(
                outcome,
                EwsError(SERVER_BUSY, SERVER_BUSY_TEXT, fault=True, values={"BackOffMilliseconds": back_off}),
            )

    @staticmethod
    def _target_mailbox(caller: Caller, request: Request, operation: str) -> str | None:
        """The mailbox the request works in, for throttling and the log: the impersonated one, else the
        one exchangelib names in X-AnchorMailbox (delegate access), else the caller's own."""
        if operation in MAILBOXLESS:
            return None
        if caller.impersonating:
            return caller.impersonating
        anchor = request.headers.get("x-anchormailbox")
        return anchor.strip().lower() if anchor else caller.principal.name.lower()

    async def _injected(self, outcome: _Outcome, injected: Fault) -> Response:
        outcome.fault = injected.kind
        if injected.kind in ("server_busy", "429"):
            back_off = str(int(injected.retry_after * 1000))
            return self._fault(
                outcome,
                EwsError(SERVER_BUSY, SERVER_BUSY_TEXT, fault=True, values={"BackOffMilliseconds": back_off}),
            )
        if injected.kind == "500":
            # The ASP.NET error page exchangelib recognises as a transient server error.
            return PlainTextResponse("Server Error in '/EWS' Application.", 500)
        if injected.kind == "503":
            return PlainTextResponse(
                "Service Unavailable", 503, {"Retry-After": str(max(1, round(injected.retry_after)))}
            )
        if injected.kind == "timeout":
            await asyncio.sleep(injected.delay)
            return PlainTextResponse("Gateway Timeout", 504)
        # "reset": the connection dies before any of the answer arrives.
        return _DroppedResponse(b"", 4096)

    def _fault(self, outcome: _Outcome, error: EwsError) -> Response:
        outcome.error_code = error.code
        outcome.detail = outcome.detail or error.message
        data = fault(error.code, error.message, error.values or None, error.violation)
        self._check_response(outcome.operation, data)
        return Response(data, 500, media_type=XML)

    # -- schema checks ---------------------------------------------------------------------------------------
    def _check_response(self, operation: str, data: bytes) -> None:
        if self.sandbox.validate_soap:
            self._record(f"response {operation}", schema.validate_bytes(data))

    def _record(self, what: str, violations: list[schema.Violation]) -> None:
        if self.sandbox.validate_soap and violations:
            self.sandbox.soap_violations.extend(f"{what}: {v}" for v in violations)


def routes(sandbox: Sandbox) -> list[BaseRoute]:
    face = EwsFace(sandbox)

    def schema_file(name: str) -> Route:
        async def serve(request: Request) -> Response:
            path: Path = schema.XSD_DIR / name
            if not path.is_file():
                return PlainTextResponse("not found", 404)
            return FileResponse(path, media_type=XML)

        return Route(f"/EWS/{'Services.wsdl' if name == 'services.wsdl' else name}", serve, methods=["GET"])

    return [
        Route(PATH, face.post, methods=["POST"]),
        Route(PATH, face.get, methods=["GET", "HEAD"]),
        schema_file("messages.xsd"),
        schema_file("types.xsd"),
        schema_file("services.wsdl"),
    ]
