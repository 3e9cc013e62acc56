"""One Graph request through the realism knobs: admission (concurrency, budget), injected faults, then
the handler. Shared by plain requests and each ``$batch`` part, because Graph counts batch parts against
the mailbox one by one."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sandbox.conditions import Fault, Throttled
from sandbox.graph.errors import GraphError, error_body
from sandbox.graph.handlers import Answer, Call, resolve
from sandbox.tenant import MailboxNotFound, Principal, TenantError

if TYPE_CHECKING:
    from sandbox.server import Sandbox


@dataclass
class Outcome:
    answer: Answer | None  # None: the connection is reset before any answer
    operation: str
    mailbox: str | None
    write: bool
    fault: str | None = None
    #: The connection must be dropped (reset, or after the write was committed).
    drop: bool = False


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def error_answer(error: GraphError, request_id: str) -> Answer:
    return Answer(
        error.status, error_body(error.code, error.message, request_id), dict(error.headers), error.code
    )


def unknown_route(call: Call) -> GraphError:
    segment = call.path.rstrip("/").rsplit("/", 1)[-1] or call.path
    return GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


async def run(sandbox: Sandbox, principal: Principal, call: Call, request_id: str) -> Outcome:
    resolved = resolve(sandbox, call.method, call.path)
    if resolved is None:
        return Outcome(error_answer(unknown_route(call), request_id), f"{call.method} unknown", None, False)
    outcome = Outcome(None, resolved.operation, resolved.mailbox, resolved.write)
    try:
        async with sandbox.conditions.admit("graph", resolved.operation, resolved.mailbox) as admission:
            fault = admission.fault
            outcome.fault = fault.kind if fault else None
            if fault is not None and fault.kind != "drop_after_commit":
                outcome.answer = await faulted(fault, request_id)
                outcome.drop = outcome.answer is None
                return outcome
            try:
                outcome.answer = resolved.handler(sandbox, principal, call, resolved.params)
            except GraphError as exc:
                outcome.answer = error_answer(exc, request_id)
            except MailboxNotFound as exc:
                outcome.answer = error_answer(GraphError(404, "ErrorInvalidUser", str(exc)), request_id)
            except TenantError as exc:
                outcome.answer = error_answer(GraphError(400, "ErrorInvalidRequest", str(exc)), request_id)
            outcome.drop = fault is not None  # drop_after_commit: the work is done, the answer is lost
    except Throttled as exc:
        # Real Graph's words for a mailbox concurrency refusal; the log keeps the reason as error_code.
        limit = "MailboxConcurrency" if exc.reason == "MailboxConcurrency" else "Requests"
        error = GraphError(
            429,
            "ApplicationThrottled",
            f"Application is over its {limit} limit.",
            {"Retry-After": retry_after(exc.retry_after)},
        )
        outcome.answer = error_answer(error, request_id)
        outcome.answer.error_code = exc.reason
    return outcome


async def faulted(fault: Fault, request_id: str) -> Answer | None:
    kind = fault.kind
    if kind == "reset":
        return None
    if kind == "timeout":
        await asyncio.sleep(fault.delay)
        return error_answer(
            GraphError(504, "GatewayTimeout", "The gateway did not receive a response in time."), request_id
        )
    if kind == "429":
        return error_answer(
            GraphError(
                429, "TooManyRequests", "Too many requests.", {"Retry-After": retry_after(fault.retry_after)}
            ),
            request_id,
        )
    if kind in ("503", "server_busy"):
        return error_answer(
            GraphError(
                503,
                "ServiceNotAvailable",
                "The service is temporarily unavailable.",
                {"Retry-After": retry_after(fault.retry_after)},
            ),
            request_id,
        )
    return error_answer(
        GraphError(500, "InternalServerError", "An internal server error occurred."), request_id
    )
