"""The diff: what one mailbox should hold versus what we know it holds → a plan. Pure; no I/O.

The rules (DESIGN §4) as they apply here:

* Ownership: every op targets an event we wrote (known from the store, or found by our tag).
* Window: an op may only touch an event that overlaps the window; a create only makes an event in the
  window. An entry rescheduled from inside the window into the past is moved there (its event is in the
  window); one rescheduled past the window's end loses its event until it comes back; an entry whose
  old event lies outside the window gets a new event instead, so history is never rewritten.
* Idempotence: same specs and same store → no ops.
* Deletes: a stored event in the window whose entry is gone from the source is deleted, unless the
  entry is quarantined (its row is broken, not gone).
* Verifying mode (``remote`` given): the calendar's tagged events in the window are the truth about
  what exists — edited ones are put back, deleted ones re-created, unknown ones adopted, duplicates
  removed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from connector.models import (
    Adopt,
    Create,
    Delete,
    EventSpec,
    MailboxPlan,
    Op,
    RemoteEvent,
    StoredMapping,
    Update,
)
from connector.window import Window


@dataclass(frozen=True, slots=True)
class _Key:
    spec: EventSpec | None
    mapping: StoredMapping | None  # never an intent: intents are split off before
    intent: StoredMapping | None
    remotes: tuple[RemoteEvent, ...]


def diff(
    mailbox: str,
    desired: Mapping[str, EventSpec],
    stored: Mapping[str, StoredMapping],
    window: Window,
    *,
    new_transaction_id: Callable[[], str],
    remote: Sequence[RemoteEvent] | None = None,
    protected: Collection[str] = (),
) -> MailboxPlan:
    verifying = remote is not None
    remote_by_key: dict[str, list[RemoteEvent]] = {}
    for event in remote or ():
        # A listing may return a little more than asked; only what overlaps the window may be touched.
        if window.overlaps_utc(event.start_utc, event.end_utc):
            remote_by_key.setdefault(event.source_key, []).append(event)

    ops: list[Op] = []
    adopt: list[Adopt] = []
    forget: list[str] = []
    unchanged = 0

    for key in sorted(set(desired) | set(stored) | set(remote_by_key)):
        if key not in desired and _protected(key, protected):
            continue
        mapping = stored.get(key)
        item = _Key(
            spec=desired.get(key),
            mapping=mapping if mapping is not None and not mapping.is_intent else None,
            intent=mapping if mapping is not None and mapping.is_intent else None,
            remotes=tuple(remote_by_key.get(key, ())),
        )

        def create(spec: EventSpec, item: _Key = item) -> Create:
            # Reusing the intent's id lets the server dedupe a create whose answer was lost.
            txn = item.intent.transaction_id if item.intent and item.intent.transaction_id else None
            return Create(spec, txn or new_transaction_id())

        if verifying:
            key_ops, key_adopt, key_forget, same = _verify_key(mailbox, key, item, window, create)
        else:
            key_ops, key_forget, same = _fast_key(mailbox, key, item, window, create)
            key_adopt = []
        ops.extend(key_ops)
        adopt.extend(key_adopt)
        forget.extend(key_forget)
        unchanged += same

    return MailboxPlan(
        mailbox=mailbox, ops=tuple(ops), adopt=tuple(adopt), forget=tuple(forget), unchanged=unchanged
    )


MOVED_BEYOND = "moved beyond the end of the window"


def _beyond(window: Window, spec: EventSpec) -> bool:
    """An entry rescheduled past the window's end is not synced until it comes back into the window:
    its event goes (it would otherwise sit outside the window, beyond our reach, and be duplicated when
    the entry returns). A move into the past is an update instead: the past is history, kept as is."""
    return spec.span.utc_bounds(window.zone)[0] >= window.end


def _in_window(window: Window, mapping: StoredMapping) -> bool:
    return window.overlaps_utc(mapping.start_utc, mapping.end_utc)


def _fast_key(
    mailbox: str, key: str, item: _Key, window: Window, create: Callable[[EventSpec], Create]
) -> tuple[list[Op], list[str], int]:
    spec, mapping = item.spec, item.mapping
    if spec is None:
        if mapping is not None and mapping.remote_id and _in_window(window, mapping):
            return [Delete(mailbox, key, mapping.remote_id, mapping.change_key)], [], 0
        if item.intent is not None:
            # A create that was only intended, for an entry that is gone: nothing to undo.
            return [], [key], 0
        return [], [], 0

    spec_in = window.contains(spec.span)
    if mapping is not None and mapping.remote_id and _in_window(window, mapping):
        if _beyond(window, spec):
            return [Delete(mailbox, key, mapping.remote_id, mapping.change_key, MOVED_BEYOND)], [], 0
        if mapping.content_hash != spec.content_hash:
            return [Update(spec, mapping.remote_id, mapping.change_key)], [], 0
        return [], [], 1
    if spec_in:
        # No event yet, or the old one lies outside the window (left as history): make a new one.
        return [create(spec)], [], 0
    return [], [key] if item.intent is not None else [], 0


def _verify_key(
    mailbox: str, key: str, item: _Key, window: Window, create: Callable[[EventSpec], Create]
) -> tuple[list[Op], list[Adopt], list[str], int]:
    spec, mapping, remotes = item.spec, item.mapping, item.remotes

    def delete(event: RemoteEvent, reason: str) -> Delete:
        return Delete(mailbox, key, event.remote_id, event.change_key, reason)

    if spec is None:
        ops: list[Op] = [delete(r, "removed from the source") for r in remotes]
        # The store's event is gone from the calendar already (and was in the window): forget it.
        gone = mapping is not None and _in_window(window, mapping) and not _holds(remotes, mapping)
        forget = [key] if gone or (item.intent is not None and not remotes) else []
        return ops, [], forget, 0

    if remotes and _beyond(window, spec):
        return [delete(r, MOVED_BEYOND) for r in remotes], [], [key] if mapping else [], 0
    if remotes:
        keep = _choose(remotes, mapping, spec)
        ops = [delete(r, "duplicate of our event") for r in remotes if r.remote_id != keep.remote_id]
        known = mapping is not None and mapping.remote_id == keep.remote_id
        if known and mapping is not None:
            if keep.change_key != mapping.change_key:
                ops.insert(0, Update(spec, keep.remote_id, keep.change_key, "edited outside the connector"))
                return ops, [], [], 0
            if mapping.content_hash != spec.content_hash:
                ops.insert(0, Update(spec, keep.remote_id, keep.change_key))
                return ops, [], [], 0
            return ops, [], [], 1
        # A tagged event the store does not know (restore, backend switch, lost answer): adopt it.
        if keep.content_hash == spec.content_hash:
            return ops, [Adopt(mailbox, key, keep)], [], 1
        ops.insert(0, Update(spec, keep.remote_id, keep.change_key, "adopted and brought up to date"))
        return ops, [], [], 0

    # Nothing of ours in the window for this key.
    if window.contains(spec.span):
        return [create(spec)], [], [], 0
    if mapping is not None and _in_window(window, mapping):
        # Its event was deleted in Outlook and the entry has moved out of the window: nothing to put back.
        return [], [], [key], 0
    return [], [], [], 0


def _holds(remotes: Sequence[RemoteEvent], mapping: StoredMapping) -> bool:
    return any(r.remote_id == mapping.remote_id for r in remotes)


def _choose(remotes: Sequence[RemoteEvent], mapping: StoredMapping | None, spec: EventSpec) -> RemoteEvent:
    """Which of several tagged events for one key survives: the one the store knows, else one already
    holding the wanted content, else the first by id (deterministic across runs and workers)."""
    if mapping is not None:
        for event in remotes:
            if event.remote_id == mapping.remote_id:
                return event
    matching = [r for r in remotes if r.content_hash == spec.content_hash]
    return min(matching or remotes, key=lambda r: r.remote_id)


#: Separates a series' key from an occurrence's part (``UID#20261130T080000Z``, see the iCalendar source).
SERIES_SEPARATOR = "#"


def _protected(key: str, protected: Collection[str]) -> bool:
    """A quarantined key protects its own event and, when it names a whole series (a recurring event
    whose rule could not be read), the events of the series' occurrences: a broken entry is not a
    removed one (DESIGN §4.9)."""
    if key in protected:
        return True
    series, separator, _ = key.partition(SERIES_SEPARATOR)
    return bool(separator) and series in protected
