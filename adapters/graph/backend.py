"""``CalendarBackend`` on Microsoft Graph (msgraph-sdk + azure-identity).

Writes travel in ``$batch`` requests of up to 20. Updates and deletes first read the targeted events
(one batched GET) and go ahead only for events that carry our tag: an event a person made is never
touched, whatever id we are given.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from adapters.graph.batch import BatchRunner, Part, PartResult
from adapters.graph.config import GraphConfig
from adapters.graph.connection import GraphConnection, GraphResponse
from adapters.graph.errors import error_for
from adapters.graph.events import EXPAND, TAG_ID, event_json, remote_event
from adapters.graph.gate import MailboxGate
from connector.backend import OpOutcome
from connector.errors import ConnectorError, EventNotFoundError, TransientError
from connector.models import Create, Delete, Op, RemoteEvent, Target, Update

PAGE_SIZE = 100
#: Keys per find request: each becomes one ``Any(...)`` clause of an ``or`` filter.
KEYS_PER_FILTER = 10
LIST_SELECT = "id,changeKey,subject,start,end,isAllDay"


def _user(target: Target) -> str:
    return f"/users/{quote(target.address, safe='@')}"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GraphBackend:
    name = "graph"

    def __init__(
        self,
        config: GraphConfig,
        *,
        connection: GraphConnection | None = None,
        gate: MailboxGate | None = None,
    ) -> None:
        self.config = config
        self.max_batch = config.batch_size
        self.connection = connection or GraphConnection(config)
        self.gate = gate or MailboxGate.shared(
            (config.base_url, config.tenant_id, config.client_id),
            per_mailbox=config.requests_per_mailbox,
            total=config.max_requests,
            max_wait=config.max_retry_wait_s,
        )
        self.batches = BatchRunner(self.connection, self.gate, config)

    # -- reads ---------------------------------------------------------------------------------------
    def _get(self, target: Target, path: str) -> GraphResponse:
        """One GET, retried after its Retry-After while that is short (see ``MailboxGate``)."""
        for _ in range(max(1, self.config.max_rounds)):
            with self.gate.turn(target.address):
                response = self.connection.send("GET", path, headers={"Prefer": 'outlook.timezone="UTC"'})
            if response.status == 200:
                return response
            error = error_for(
                response.status,
                response.body,
                response.headers,
                mailbox=target.address,
                client_id=self.config.client_id,
                on_event=False,
            )
            if not isinstance(error, TransientError):
                raise error
            self.gate.defer(target.address, error.retry_after or 1.0)
        raise error

    def _pages(self, target: Target, path: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        next_path: str | None = path
        while next_path:
            body = self._get(target, next_path).body or {}
            events.extend(body.get("value", []))
            next_path = body.get("@odata.nextLink")
        return events

    def probe(self, target: Target) -> None:
        self._get(target, f"{_user(target)}/calendar?$select=id")

    def list_tagged(self, target: Target, start: datetime, end: datetime) -> list[RemoteEvent]:
        # Our tag cannot be filtered on in a calendar view; read ids and times only, keep what is ours.
        query = urlencode(
            {
                "startDateTime": _utc(start),
                "endDateTime": _utc(end),
                "$select": LIST_SELECT,
                "$expand": EXPAND,
                "$top": PAGE_SIZE,
            },
            quote_via=quote,
        )
        found = (
            remote_event(e, all_day_zone=self.config.all_day_zone)
            for e in self._pages(target, f"{_user(target)}/calendarView?{query}")
        )
        return [e for e in found if e is not None]

    def find_tagged(self, target: Target, source_keys: Sequence[str]) -> list[RemoteEvent]:
        found: list[RemoteEvent] = []
        keys = list(dict.fromkeys(source_keys))
        for first in range(0, len(keys), KEYS_PER_FILTER):
            clauses = [
                f"singleValueExtendedProperties/Any(ep: ep/id eq '{TAG_ID}' and ep/value eq '{_odata(k)}')"
                for k in keys[first : first + KEYS_PER_FILTER]
            ]
            query = urlencode(
                {
                    "$filter": " or ".join(clauses),
                    "$select": LIST_SELECT,
                    "$expand": EXPAND,
                    "$top": PAGE_SIZE,
                },
                quote_via=quote,
            )
            for event in self._pages(target, f"{_user(target)}/events?{query}"):
                remote = remote_event(event, all_day_zone=self.config.all_day_zone)
                if remote is not None and remote.source_key in keys:
                    found.append(remote)
        return found

    # -- writes --------------------------------------------------------------------------------------
    def apply(self, target: Target, ops: Sequence[Op]) -> list[OpOutcome]:
        if len(ops) > self.max_batch:
            raise ValueError(f"apply takes at most {self.max_batch} ops, got {len(ops)}")
        outcomes: list[OpOutcome | None] = [None] * len(ops)
        ours = self._ours(target, [op for op in ops if isinstance(op, Update | Delete)])
        parts: list[Part] = []
        sent: list[int] = []
        for index, op in enumerate(ops):
            if isinstance(op, Update | Delete) and op.remote_id not in ours:
                outcomes[index] = OpOutcome(
                    op, error=EventNotFoundError(f"event {op.remote_id} is not ours or is gone")
                )
                continue
            parts.append(self._part(target, op))
            sent.append(index)
        if parts:
            for index, result in zip(sent, self.batches.run(target.address, parts), strict=True):
                outcomes[index] = self._outcome(ops[index], result)
        return [
            o if o is not None else OpOutcome(ops[i], error=TransientError("not sent"))
            for i, o in enumerate(outcomes)
        ]

    def _ours(self, target: Target, ops: Sequence[Update | Delete]) -> set[str]:
        """Which of the targeted events exist and carry our tag (one batched read)."""
        if not ops:
            return set()
        query = urlencode({"$select": "id", "$expand": EXPAND}, quote_via=quote)
        parts = [Part("GET", f"{_user(target)}/events/{quote(op.remote_id, safe='')}?{query}") for op in ops]
        ours = set()
        for op, result in zip(ops, self.batches.run(target.address, parts), strict=True):
            if isinstance(result, GraphResponse) and _has_tag(result.body):
                ours.add(op.remote_id)
        return ours

    def _part(self, target: Target, op: Op) -> Part:
        zone = self.config.all_day_zone
        if isinstance(op, Create):
            return Part(
                "POST",
                f"{_user(target)}/events",
                event_json(op.spec, all_day_zone=zone, transaction_id=op.transaction_id),
                on_event=False,
            )
        event = f"{_user(target)}/events/{quote(op.remote_id, safe='')}"
        if isinstance(op, Update):
            return Part("PATCH", event, event_json(op.spec, all_day_zone=zone))
        return Part("DELETE", event)

    @staticmethod
    def _outcome(op: Op, result: PartResult) -> OpOutcome:
        if isinstance(result, ConnectorError):
            return OpOutcome(op, error=result)
        body = result.body if isinstance(result.body, dict) else {}
        if isinstance(op, Delete):
            return OpOutcome(op, remote_id=op.remote_id)
        remote_id = str(body.get("id") or (op.remote_id if isinstance(op, Update) else ""))
        if not remote_id:
            return OpOutcome(op, error=TransientError("Graph answered without the event's id"))
        return OpOutcome(op, remote_id=remote_id, change_key=str(body.get("changeKey") or ""))

    def close(self) -> None:
        self.connection.close()


def _has_tag(body: Any) -> bool:
    properties = body.get("singleValueExtendedProperties") if isinstance(body, dict) else None
    return any(str(p.get("id", "")).lower() == TAG_ID.lower() for p in properties or ())


def _odata(value: str) -> str:
    return value.replace("'", "''")
