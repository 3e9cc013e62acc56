"""The Graph face over HTTP: bearer-token authentication, the request log, Graph's response headers,
and dropped connections for injected faults. What each request does lives in ``handlers``; how it meets
throttling and faults in ``pipeline``; ``$batch`` in ``batch``."""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from sandbox.graph import connection, csdl
from sandbox.graph.batch import batch_mailbox, run_batch
from sandbox.graph.errors import GraphError, new_request_id
from sandbox.graph.handlers import Answer, Call, resolve
from sandbox.graph.pipeline import error_answer, faulted, run
from sandbox.requestlog import LogEntry, now
from sandbox.tenant import Principal

if TYPE_CHECKING:
    from sandbox.server import Sandbox

PREFIX = "/v1.0"
JSON_TYPE = (
    "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"
)
#: Token audiences Graph refuses: the Exchange resource (EWS tokens) is not Graph's.
FOREIGN_AUDIENCES = {"outlook.office365.com", "outlook.office.com"}
_DIAGNOSTIC = '{"ServerInfo":{"DataCenter":"Sandbox","Slice":"E","Ring":"5","ScaleUnit":"000","RoleInstance":"SANDBOX"}}'


def authenticate(sandbox: Sandbox, headers: dict[str, str]) -> Principal:
    header = headers.get("authorization", "").strip()
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if not header or scheme.lower() != "bearer" or not token:
        raise _unauthorized("Access token is empty.")
    principal = sandbox.tokens.principal(token)
    if principal is None or principal.app is None:
        expired = sandbox.tokens.scope(token) is not None
        raise _unauthorized(
            "Lifetime validation failed, the token is expired."
            if expired
            else "IDX14100: JWT is not well formed."
        )
    resource = (sandbox.tokens.scope(token) or "").split(" ")[0].removesuffix("/.default")
    if (urlsplit(resource).hostname or resource) in FOREIGN_AUDIENCES:
        raise _unauthorized("Access token validation failure. Invalid audience.")
    return principal


def _unauthorized(message: str) -> GraphError:
    challenge = 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"'
    return GraphError(401, "InvalidAuthenticationToken", message, {"WWW-Authenticate": challenge})


def _permission(principal: Principal, operation: str) -> None:
    """The app must hold Graph's calendar permission (Calendars.ReadWrite, and User.Read.All for users)."""
    if principal.app is not None and principal.app.graph:
        return
    if operation == "GET user":
        raise GraphError(
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        )
    raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")


def _headers(request: Request) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


def _render(answer: Answer, request_id: str, client_request_id: str) -> Response:
    headers = {
        "request-id": request_id,
        "client-request-id": client_request_id,
        "x-ms-ags-diagnostic": _DIAGNOSTIC,
        "OData-Version": "4.0",
        **answer.headers,
    }
    if answer.body is None:
        return Response(status_code=answer.status, headers=headers)
    body = json.dumps(answer.body, ensure_ascii=False).encode()
    return Response(body, status_code=answer.status, headers=headers, media_type=JSON_TYPE)


class _Endpoint:
    """A raw ASGI endpoint (not a Starlette function endpoint) so that it holds ``send`` and can drop the
    connection for the "reset" and "drop_after_commit" faults."""

    batch = False

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        started, clock = now(), time.perf_counter()
        headers = _headers(request)
        request_id = new_request_id()
        client_request_id = headers.get("client-request-id", request_id)
        raw = await request.body()
        base_url = f"{request.url.scheme}://{request.url.netloc}{PREFIX}"
        entry: dict[str, Any] = {
            "operation": "batch" if self.batch else f"{request.method} unknown",
            "mailbox": None,
        }
        principal: Principal | None = None
        drop = False
        try:
            path = str(scope["path"])[len(PREFIX) :]
            call = Call(request.method, path, dict(request.query_params), headers, raw, base_url)
            if not self.batch:
                resolved = resolve(self.sandbox, call.method, call.path)
                if resolved is not None:
                    entry.update(operation=resolved.operation, mailbox=resolved.mailbox)
            principal = authenticate(self.sandbox, headers)
            _permission(principal, entry["operation"])
            if self.batch:
                answer, drop = await self._batch(principal, raw, base_url, request_id, entry)
            else:
                outcome = await run(self.sandbox, principal, call, request_id)
                entry.update(
                    operation=outcome.operation,
                    mailbox=outcome.mailbox,
                    write=outcome.write,
                    fault=outcome.fault,
                )
                answer, drop = outcome.answer, outcome.drop
        except GraphError as exc:
            answer = error_answer(exc, request_id)
        # Logged before answering: a client that reads the log right after its answer must find the entry.
        self._log(entry, answer, drop, principal, started, clock)
        if drop:
            await connection.drop(send)
        else:
            assert answer is not None
            await _render(answer, request_id, client_request_id)(scope, receive, send)

    async def _batch(
        self, principal: Principal, raw: bytes, base_url: str, request_id: str, entry: dict[str, Any]
    ) -> tuple[Answer | None, bool]:
        # The batch as a whole meets faults aimed at operation "batch" and its mailbox; it holds no mailbox
        # slot itself (its parts do, one by one).
        entry["mailbox"] = batch_mailbox(raw)
        async with self.sandbox.conditions.admit(
            "graph", "batch", entry["mailbox"], hold_slot=False
        ) as admission:
            fault = admission.fault
            if fault is not None and fault.kind != "drop_after_commit":
                entry["fault"] = fault.kind
                answer = await faulted(fault, request_id)
                return answer, answer is None
            result = await run_batch(self.sandbox, principal, raw, base_url, request_id)
            entry.update(
                mailbox=result.mailbox, write=result.write, parts=tuple(result.parts), fault=result.fault
            )
            if fault is not None:
                entry["fault"] = fault.kind
            return Answer(200, result.body), result.drop or fault is not None

    def _log(
        self,
        entry: dict[str, Any],
        answer: Answer | None,
        drop: bool,
        principal: Principal | None,
        started: Any,
        clock: float,
    ) -> None:
        status = 0 if drop or answer is None else answer.status
        detail = (
            f"connection dropped; the answer would have been {answer.status}"
            if drop and answer is not None
            else ""
        )
        if drop and answer is None:
            detail = "connection reset before any answer"
        self.sandbox.log.append(
            LogEntry(
                face="graph",
                operation=entry["operation"],
                mailbox=entry["mailbox"],
                status=status,
                started=started,
                duration_ms=(time.perf_counter() - clock) * 1000,
                principal=principal.name if principal else "",
                write=bool(entry.get("write")),
                error_code=answer.error_code if answer is not None else None,
                fault=entry.get("fault"),
                parts=entry.get("parts", ()),
                detail=detail,
            )
        )


class _BatchEndpoint(_Endpoint):
    batch = True


def routes(sandbox: Sandbox) -> list[BaseRoute]:
    # Parse the CSDL (about 0.2 s) off the event loop now rather than inside the first POST.
    threading.Thread(target=csdl.schema, name="graph-csdl", daemon=True).start()
    return [
        Route(f"{PREFIX}/$batch", _BatchEndpoint(sandbox), methods=["POST"]),
        Route(PREFIX + "/{path:path}", _Endpoint(sandbox), methods=["GET", "POST", "PATCH", "DELETE", "PUT"]),
    ]
