"""``CalendarBackend`` on Exchange Web Services (exchangelib), for Exchange Server and, while Microsoft
still allows it, Exchange Online.

One ``apply`` costs at most four requests: a GetItem that checks the events to update or delete carry
our tag (an event a person made is never touched, whatever id we are given), then one CreateItem, one
UpdateItem and one DeleteItem, each for up to 25 items with ``SendToNone``. Per-item errors come back in
input order and are mapped to the op that caused them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from exchangelib.errors import ErrorAccessDenied  # type: ignore[import-untyped]
from exchangelib.items import (  # type: ignore[import-untyped]
    ALL_OCCURRENCES,
    ALWAYS_OVERWRITE,
    MOVE_TO_DELETED_ITEMS,
    SAVE_ONLY,
    SEND_TO_NONE,
)
from exchangelib.properties import ItemId  # type: ignore[import-untyped]

from adapters.ews.config import EwsConfig
from adapters.ews.connection import EwsConnection
from adapters.ews.errors import error_for
from adapters.ews.items import READ, TAG_FIELD, WRITTEN, changed_item, new_item, remote_event, span_problem
from connector.backend import OpOutcome
from connector.errors import MAILBOX_FATAL, ConnectorError, EventNotFoundError, TransientError
from connector.models import Create, Delete, Op, RemoteEvent, Target, Update

#: Keys per FindItem restriction (an Or of IsEqualTo on the tag).
KEYS_PER_FIND = 50


class EwsBackend:
    name = "ews"

    def __init__(self, config: EwsConfig, *, connection: EwsConnection | None = None) -> None:
        self.config = config
        self.max_batch = config.batch_size
        self.connection = connection or EwsConnection(config)

    # -- reads ---------------------------------------------------------------------------------------
    def probe(self, target: Target) -> None:
        # Opening the calendar folder checks login, impersonation or delegate rights and the mailbox.
        self.connection.call(target, lambda account, folder: folder.id)

    def list_tagged(self, target: Target, start: datetime, end: datetime) -> list[RemoteEvent]:
        def read(account: Any, folder: Any) -> list[Any]:
            return list(folder.view(start=_utc(start), end=_utc(end)).only(*READ))

        return self._ours(self.connection.call(target, read))

    def find_tagged(self, target: Target, source_keys: Sequence[str]) -> list[RemoteEvent]:
        keys = list(dict.fromkeys(source_keys))
        found: list[RemoteEvent] = []
        for first in range(0, len(keys), KEYS_PER_FIND):
            chunk = keys[first : first + KEYS_PER_FIND]

            def read(account: Any, folder: Any, chunk: list[str] = chunk) -> list[Any]:
                return list(folder.filter(**{f"{TAG_FIELD}__in": chunk}).only(*READ))

            found += [e for e in self._ours(self.connection.call(target, read)) if e.source_key in chunk]
        return found

    def _ours(self, items: list[Any]) -> list[RemoteEvent]:
        events = (remote_event(i, self.config.all_day_zone) for i in items if not isinstance(i, Exception))
        return [e for e in events if e is not None]

    # -- writes --------------------------------------------------------------------------------------
    def apply(self, target: Target, ops: Sequence[Op]) -> list[OpOutcome]:
        if len(ops) > self.max_batch:
            raise ValueError(f"apply takes at most {self.max_batch} ops, got {len(ops)}")
        outcomes: list[OpOutcome | None] = [None] * len(ops)
        creates: list[int] = []
        for index, op in enumerate(ops):
            if isinstance(op, Create | Update) and (problem := span_problem(op.spec)) is not None:
                outcomes[index] = OpOutcome(op, error=problem)
            elif isinstance(op, Create):
                creates.append(index)
        changes = [i for i, op in enumerate(ops) if isinstance(op, Update | Delete) and outcomes[i] is None]
        ours = self._check_ours(target, [ops[i] for i in changes]) if changes else {}
        updates: list[int] = []
        deletes: list[int] = []
        for index in changes:
            op = ops[index]
            assert isinstance(op, Update | Delete)
            if op.remote_id not in ours:
                outcomes[index] = OpOutcome(
                    op, error=EventNotFoundError(f"event {op.remote_id} is not ours or is gone")
                )
            else:
                (updates if isinstance(op, Update) else deletes).append(index)
        for indexes, send in ((creates, self._create), (updates, self._update), (deletes, self._delete)):
            if indexes:
                self._run(target, ops, indexes, outcomes, partial(send, ops=ops, indexes=indexes, ours=ours))
        return [
            o if o is not None else OpOutcome(ops[i], error=TransientError("not sent"))
            for i, o in enumerate(outcomes)
        ]

    def _run(
        self,
        target: Target,
        ops: Sequence[Op],
        indexes: list[int],
        outcomes: list[OpOutcome | None],
        work: Callable[[Any, Any], list[Any]],
    ) -> None:
        """One bulk call; its results (ids or exception objects, in input order) become the outcomes.
        A throttled or failed call becomes the outcome of each of its ops, so the engine retries them later;
        a whole-mailbox refusal is raised."""
        try:
            results = self.connection.call(target, work)
        except MAILBOX_FATAL:
            raise
        except ConnectorError as exc:
            for index in indexes:
                outcomes[index] = OpOutcome(ops[index], error=exc)
            return
        for index, result in zip(indexes, results, strict=True):
            op = ops[index]
            if isinstance(result, Exception):
                error = error_for(result, self.config, target.address)
                if isinstance(error, MAILBOX_FATAL):
                    raise error from result
                outcomes[index] = OpOutcome(op, error=error)
            elif isinstance(op, Delete):
                outcomes[index] = OpOutcome(op, remote_id=op.remote_id)
            else:
                item_id, change_key = _id_of(result)
                outcomes[index] = OpOutcome(op, remote_id=item_id, change_key=change_key)

    def _check_ours(self, target: Target, ops: Sequence[Op]) -> dict[str, str]:
        """Which targeted events exist, carry our tag and sit in the target's folder: id → change key."""

        def read(account: Any, folder: Any) -> dict[str, str]:
            ids = [ItemId(id=op.remote_id) for op in ops if isinstance(op, Update | Delete)]
            ours: dict[str, str] = {}
            fields = ["id", "changekey", "parent_folder_id", TAG_FIELD]
            try:
                found = list(account.fetch(ids=ids, only_fields=fields))
            except ErrorAccessDenied:
                # An id from another mailbox: exchangelib raises for the whole GetItem. The calendar itself was
                # opened fine, so look at the ids one by one and treat the refused ones as not ours.
                found = [_fetch_one(account, item_id, fields) for item_id in ids]
            for item in found:
                if isinstance(item, Exception) or not getattr(item, TAG_FIELD, None):
                    continue
                if item.parent_folder_id is not None and item.parent_folder_id.id != folder.id:
                    continue  # another person's folder in the dedicated mailbox
                ours[str(item.id)] = str(item.changekey)
            return ours

        return self.connection.call(target, read)

    def _create(
        self, account: Any, folder: Any, ops: Sequence[Op], indexes: list[int], ours: dict[str, str]
    ) -> list[Any]:
        zone = self.config.all_day_zone
        items = [new_item(account, folder, _spec(ops[i]), zone) for i in indexes]
        return list(
            account.bulk_create(
                folder=folder,
                items=items,
                message_disposition=SAVE_ONLY,
                send_meeting_invitations=SEND_TO_NONE,
            )
        )

    def _update(
        self, account: Any, folder: Any, ops: Sequence[Op], indexes: list[int], ours: dict[str, str]
    ) -> list[Any]:
        zone = self.config.all_day_zone
        changes = []
        for i in indexes:
            op = ops[i]
            assert isinstance(op, Update)
            item = changed_item(account, op.remote_id, ours[op.remote_id], op.spec, zone)
            changes.append((item, list(WRITTEN)))
        return list(
            account.bulk_update(
                items=changes,
                conflict_resolution=ALWAYS_OVERWRITE,  # the source is master: an Outlook edit is put back
                message_disposition=SAVE_ONLY,
                send_meeting_invitations_or_cancellations=SEND_TO_NONE,
            )
        )

    def _delete(
        self, account: Any, folder: Any, ops: Sequence[Op], indexes: list[int], ours: dict[str, str]
    ) -> list[Any]:
        ids = []
        for i in indexes:
            op = ops[i]
            assert isinstance(op, Delete)
            ids.append((op.remote_id, ours[op.remote_id]))
        return list(
            account.bulk_delete(
                ids=ids,
                delete_type=MOVE_TO_DELETED_ITEMS,
                send_meeting_cancellations=SEND_TO_NONE,
                affected_task_occurrences=ALL_OCCURRENCES,
            )
        )

    def close(self) -> None:
        self.connection.close()


def _fetch_one(account: Any, item_id: Any, fields: list[str]) -> Any:
    try:
        return next(iter(account.fetch(ids=[item_id], only_fields=fields)))
    except ErrorAccessDenied as exc:
        return exc


def _spec(op: Op) -> Any:
    assert isinstance(op, Create | Update)
    return op.spec


def _id_of(result: Any) -> tuple[str, str]:
    # bulk_create answers BulkCreateResult items, bulk_update (id, changekey) tuples.
    if isinstance(result, tuple):
        return str(result[0]), str(result[1] or "")
    return str(result.id), str(result.changekey or "")


def _utc(moment: datetime) -> Any:
    from exchangelib.ewsdatetime import EWSDateTime  # type: ignore[import-untyped]

    return EWSDateTime.from_datetime(moment.astimezone(UTC))
