"""``POST /v1.0/$batch``: up to 20 requests in one, each answered on its own inside a 200.

As in Graph: parts without ``dependsOn`` run concurrently (so a batch to one mailbox meets the
4-in-flight limit, and inner 429s come back with their own ``Retry-After``), a part runs after the parts
it depends on and gets 424 if one of them failed, and each part is throttled and faulted on its own. A
"reset" or "drop_after_commit" part drops the whole batch connection, as a lost front end would.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from sandbox.graph.errors import GraphError, error_body
from sandbox.graph.handlers import Answer, Call, resolve
from sandbox.graph.pipeline import Outcome, run
from sandbox.tenant import Principal

if TYPE_CHECKING:
    from sandbox.server import Sandbox

MAX_REQUESTS = 20


@dataclass
class BatchResult:
    body: dict[str, Any] | None
    parts: list[dict[str, Any]] = field(default_factory=list)
    mailbox: str | None = None
    write: bool = False
    drop: bool = False
    fault: str | None = None


def _bad(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


def _parse(raw: bytes) -> list[dict[str, Any]]:
    try:
        payload = json.loads(raw or b"")
    except ValueError:
        raise _bad("Invalid batch payload format.") from None
    requests = payload.get("requests") if isinstance(payload, dict) else None
    if not isinstance(requests, list) or not requests:
        raise _bad("Invalid batch payload format.")
    if len(requests) > MAX_REQUESTS:
        raise _bad(f"Number of requests in a batch cannot exceed {MAX_REQUESTS}.")
    ids: list[str] = []
    for request in requests:
        if (
            not isinstance(request, dict)
            or not request.get("id")
            or not request.get("method")
            or not request.get("url")
        ):
            raise _bad("Each batch request needs an id, a method and a url.")
        if str(request["id"]) in ids:
            raise _bad(f"Batch request ids must be unique; '{request['id']}' is repeated.")
        depends = request.get("dependsOn") or []
        if not isinstance(depends, list) or any(str(d) not in ids for d in depends):
            # Graph wants dependencies declared earlier in the batch, which also rules out cycles.
            raise _bad(
                f"Request '{request['id']}' depends on a request that does not precede it in the batch."
            )
        ids.append(str(request["id"]))
    return requests


def _inner_call(request: dict[str, Any], base_url: str) -> Call:
    url = str(request["url"])
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.scheme:  # absolute: the SDK sends its full URL, Graph takes the part below /v1.0
        path = path.split("/v1.0", 1)[-1] if "/v1.0" in path else path
    path = "/" + path.lstrip("/")
    headers = {str(k).lower(): str(v) for k, v in (request.get("headers") or {}).items()}
    body = request.get("body")
    raw: bytes | None
    if body is None:
        raw = None
    elif isinstance(body, str):  # a base64 body, as Graph allows for non-JSON content
        try:
            raw = base64.b64decode(body)
        except ValueError:
            raw = body.encode()
    else:
        raw = json.dumps(body).encode()
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    return Call(str(request["method"]).upper(), path, query, headers, raw, base_url)


def _response(request_id: str, outcome: Outcome, trace_id: str) -> dict[str, Any]:
    answer = outcome.answer
    assert answer is not None
    headers = {
        "Content-Type": "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"
    }
    headers.update(answer.headers)
    out: dict[str, Any] = {"id": request_id, "status": answer.status, "headers": headers}
    if answer.body is not None:
        out["body"] = answer.body
    else:
        del out["headers"]["Content-Type"]
    return out


async def run_batch(
    sandbox: Sandbox, principal: Principal, raw: bytes, base_url: str, trace_id: str
) -> BatchResult:
    requests = _parse(raw)
    outcomes: dict[str, Outcome] = {}
    responses: dict[str, dict[str, Any]] = {}
    result = BatchResult(None)
    pending = list(requests)
    while pending:
        ready = [r for r in pending if all(str(d) in responses for d in r.get("dependsOn") or [])]
        pending = [r for r in pending if r not in ready]

        async def one(request: dict[str, Any]) -> tuple[str, Outcome]:
            request_id = str(request["id"])
            call = _inner_call(request, base_url)
            failed = [d for d in request.get("dependsOn") or [] if responses[str(d)]["status"] >= 400]
            if failed:
                return request_id, _failed_dependency(sandbox, call, trace_id)
            return request_id, await run(sandbox, principal, call, trace_id)

        for request_id, outcome in await asyncio.gather(*(one(r) for r in ready)):
            outcomes[request_id] = outcome
            if outcome.fault:
                result.fault = outcome.fault
            if outcome.drop:
                result.drop = True
            if outcome.answer is not None:
                responses[request_id] = _response(request_id, outcome, trace_id)
        if any(o.answer is None for o in outcomes.values()):
            break  # a reset part: the whole connection goes, nothing more runs
    mailboxes = {o.mailbox for o in outcomes.values()}
    result.mailbox = next(iter(mailboxes)) if len(mailboxes) == 1 else None
    result.write = any(o.write for o in outcomes.values())
    result.parts = [
        {
            "id": request_id,
            "method": str(next(r for r in requests if str(r["id"]) == request_id)["method"]).upper(),
            "operation": o.operation,
            "mailbox": o.mailbox,
            "status": o.answer.status if o.answer else 0,
            "write": o.write,
            "error_code": o.answer.error_code if o.answer else None,
            "fault": o.fault,
        }
        for request_id, o in outcomes.items()
    ]
    result.body = {"responses": [responses[str(r["id"])] for r in requests if str(r["id"]) in responses]}
    return result


def _failed_dependency(sandbox: Sandbox, call: Call, trace_id: str) -> Outcome:
    resolved = resolve(sandbox, call.method, call.path)
    body = error_body(
        "FailedDependency", "Failed dependency: a request this one depends on failed.", trace_id
    )
    return Outcome(
        Answer(424, body, {}, "FailedDependency"),
        resolved.operation if resolved else f"{call.method} unknown",
        resolved.mailbox if resolved else None,
        False,
    )


_USER = re.compile(r"/users/([^/?]+)", re.IGNORECASE)


def batch_mailbox(raw: bytes) -> str | None:
    """The one mailbox every part of a batch addresses, or None (several, none, or unreadable)."""
    try:
        requests = json.loads(raw or b"{}").get("requests") or []
        found = {unquote(m.group(1)).lower() for r in requests if (m := _USER.search(str(r.get("url", ""))))}
    except (ValueError, AttributeError):
        return None
    return next(iter(found)) if len(found) == 1 and len(requests) > 0 else None
