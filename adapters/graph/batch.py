"""Sending up to 20 requests to one mailbox as one JSON ``$batch``, and getting every part answered.

Graph runs a batch's parts side by side and counts each against the mailbox's limit of 4 concurrent
requests, so the parts are arranged in at most ``requests_per_mailbox`` chains with ``dependsOn``.
Throttled parts (429/503/504 inside the 200 — the SDK does not retry those) are sent again after their
``Retry-After``, and so are parts that only failed because an earlier part of their chain did (424).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from adapters.graph.config import GraphConfig
from adapters.graph.connection import GraphConnection, GraphResponse
from adapters.graph.errors import error_for, retry_after
from adapters.graph.gate import MailboxGate
from connector.errors import (
    AuthError,
    ConnectorError,
    MailboxNotFoundError,
    PermissionDeniedError,
    ThrottledError,
    TransientError,
)

RETRY_STATUSES = {429, 503, 504}
FAILED_DEPENDENCY = 424


@dataclass(frozen=True, slots=True)
class Part:
    method: str
    url: str  # relative to the API root, e.g. "/users/a%40b/events"
    body: dict[str, Any] | None = None
    #: The part addresses one event (so a 404 means the event, not the mailbox, is gone).
    on_event: bool = True


PartResult = GraphResponse | ConnectorError


class BatchRunner:
    def __init__(self, connection: GraphConnection, gate: MailboxGate, config: GraphConfig) -> None:
        self.connection = connection
        self.gate = gate
        self.config = config

    def run(self, mailbox: str, parts: Sequence[Part]) -> list[PartResult]:
        """One result per part, in order. Raises a mailbox-wide error (auth, permission, no mailbox)."""
        if len(parts) > self.config.batch_size:
            raise ValueError(f"a batch holds at most {self.config.batch_size} requests, got {len(parts)}")
        results: list[PartResult | None] = [None] * len(parts)
        pending = list(range(len(parts)))
        transport_retries = 1
        last_wait = 0.0
        for _ in range(self.config.max_rounds):
            if not pending:
                break
            try:
                with self.gate.turn(mailbox):
                    response = self.connection.send("POST", "/$batch", body=self._body(parts, pending))
            except ThrottledError as exc:
                # Told to wait longer than we wait in place: the rest goes back to the job queue.
                last_wait = exc.retry_after or last_wait
                break
            except TransientError:
                # The connection dropped. Creates carry transactionId, so sending again is safe.
                if transport_retries == 0:
                    raise
                transport_retries -= 1
                continue
            if response.status != 200:
                error = error_for(
                    response.status,
                    response.body,
                    response.headers,
                    mailbox=mailbox,
                    client_id=self.config.client_id,
                    on_event=False,
                )
                if not isinstance(error, TransientError):
                    raise error
                last_wait = error.retry_after or 1.0
                self.gate.defer(mailbox, last_wait)
                continue
            pending, last_wait = self._collect(mailbox, parts, pending, response.body, results)
        for index in pending:
            results[index] = ThrottledError(
                f"Microsoft Graph kept throttling requests to {mailbox}", retry_after=last_wait or 1.0
            )
        fatal = next(
            (r for r in results if isinstance(r, AuthError | PermissionDeniedError | MailboxNotFoundError)),
            None,
        )
        if fatal is not None:
            raise fatal
        return [r if r is not None else TransientError("no answer for this request") for r in results]

    def _body(self, parts: Sequence[Part], pending: Sequence[int]) -> dict[str, Any]:
        chains = max(1, min(self.config.requests_per_mailbox, len(pending)))
        requests = []
        for position, index in enumerate(pending):
            part = parts[index]
            request: dict[str, Any] = {
                "id": str(index),
                "method": part.method,
                "url": part.url,
                "headers": {"Prefer": 'IdType="ImmutableId", outlook.timezone="UTC"'},
            }
            if part.body is not None:
                request["body"] = part.body
                request["headers"]["Content-Type"] = "application/json"
            if position >= chains:
                request["dependsOn"] = [str(pending[position - chains])]
            requests.append(request)
        return {"requests": requests}

    def _collect(
        self,
        mailbox: str,
        parts: Sequence[Part],
        pending: Sequence[int],
        body: Any,
        results: list[PartResult | None],
    ) -> tuple[list[int], float]:
        answered: dict[int, dict[str, Any]] = {}
        for response in (body or {}).get("responses", []):
            try:
                answered[int(response["id"])] = response
            except (KeyError, TypeError, ValueError):
                continue
        again: list[int] = []
        wait = 0.0
        for index in pending:
            response = answered.get(index)
            if response is None:
                again.append(index)
                continue
            status = int(response.get("status", 0))
            headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
            if 200 <= status < 300:
                results[index] = GraphResponse(status, headers, response.get("body"))
            elif status in RETRY_STATUSES:
                again.append(index)
                wait = max(wait, retry_after(headers, 1.0))
            elif status == FAILED_DEPENDENCY:
                again.append(index)
            else:
                results[index] = error_for(
                    status,
                    response.get("body"),
                    headers,
                    mailbox=mailbox,
                    client_id=self.config.client_id,
                    on_event=parts[index].on_event,
                )
        if wait:
            self.gate.defer(mailbox, wait)
        return again, wait
