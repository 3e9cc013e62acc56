"""What workers agree on besides the queue: which mailbox sync is pending (so repeated triggers coalesce
into one), which worker holds a mailbox (never two syncs of one mailbox at once, on any machine), and
which scheduler replica enqueues a firing.

A *ticket* is one pending sync of one mailbox. Triggering a mailbox that already has a pending ticket
adds the run to that ticket instead of enqueueing a second job; the ticket keeps the strongest request
(verify beats fast, force beats no force). A worker *claims* the ticket when it starts: from then on new
triggers open a new ticket, because the data they want synced may be newer than what this sync reads.
The ticket itself lives until its sync is finished, so a job redelivered after a crash still knows which
runs it serves.

``RedisCoordinator`` is the real one (Lua scripts make each step atomic across workers);
``LocalCoordinator`` does the same inside one process for the embedded default.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import redis

from connector.state import SyncMode

log = logging.getLogger(__name__)

#: A pending ticket whose job vanished (it should not) stops coalescing after this long.
PENDING_TTL_S = 24 * 3600
#: A ticket's data outlives any retry schedule, then disappears on its own.
TICKET_TTL_S = 7 * 24 * 3600
#: A ticket opened this long ago whose job was never confirmed sent (the process died in between) is
#: handed out as opened again, so its job is sent. A second job for one ticket is harmless: whichever
#: runs second finds the ticket finished.
UNSENT_AFTER_S = 30


@dataclass(frozen=True, slots=True)
class Ticket:
    id: str
    mailbox: str
    mode: SyncMode
    force: bool
    #: The whole source's size as the latest fan-out saw it (DESIGN §4.5: an empty source deletes nothing).
    source_items: int | None
    run_ids: tuple[int, ...]
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class Trigger:
    ticket_id: str
    #: True when a new ticket was opened (the caller enqueues its job); False when coalesced.
    opened: bool


class Lease(Protocol):
    @property
    def lost(self) -> bool:
        """True if the lock expired under us (the process stalled longer than its TTL)."""
        ...

    def release(self) -> None: ...


class Coordinator(Protocol):
    def trigger(
        self, mailbox: str, run_id: int, *, mode: SyncMode, force: bool, source_items: int | None
    ) -> Trigger: ...

    def mark_sent(self, ticket_id: str) -> None:
        """The job of an opened ticket is in the queue."""
        ...

    def claim(self, mailbox: str, ticket_id: str) -> Ticket | None:
        """Start working on a ticket: later triggers open a new one. ``None`` if the ticket is already
        finished (a duplicate delivery)."""
        ...

    def note_error(self, ticket_id: str, error: str) -> None:
        """Keep the latest failure of a ticket's sync for the dead-letter path."""
        ...

    def finish(self, ticket_id: str) -> None: ...

    def ticket(self, ticket_id: str) -> Ticket | None: ...

    def lock(self, mailbox: str) -> Lease | None:
        """The mailbox's exclusive lock, or ``None`` while another sync holds it."""
        ...

    def first_to_fire(self, job: str, slot: str) -> bool:
        """True for exactly one caller per (job, slot): one scheduler replica enqueues each firing."""
        ...

    def ping(self) -> None:
        """Raise if the coordination store cannot be reached (readiness)."""
        ...

    def job_started(self, worker: str) -> int:
        """Count a sync starting in ``worker`` (a process); returns how many run there now."""
        ...

    def job_ended(self, worker: str) -> None: ...

    def peak(self, worker: str) -> int:
        """The most syncs ``worker`` ever ran at once (the thread limit, observed)."""
        ...


def _stronger(mode: SyncMode, other: SyncMode) -> SyncMode:
    return SyncMode.VERIFY if SyncMode.VERIFY in (mode, other) else SyncMode.FAST


# -- in-process ------------------------------------------------------------------------------------


@dataclass
class _LocalTicket:
    mailbox: str
    mode: SyncMode
    force: bool
    source_items: int | None
    runs: set[int] = field(default_factory=set)
    last_error: str = ""


class _LocalLease:
    def __init__(self, release: Callable[[], None]) -> None:
        self._release = release

    @property
    def lost(self) -> bool:
        return False

    def release(self) -> None:
        self._release()


class LocalCoordinator:
    """For the embedded default: one process, so a mutex does what Redis does for many machines."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._pending: dict[str, str] = {}
        self._tickets: dict[str, _LocalTicket] = {}
        self._locked: set[str] = set()
        self._fired: set[tuple[str, str]] = set()
        self._active: dict[str, int] = {}
        self._peak: dict[str, int] = {}

    def trigger(
        self, mailbox: str, run_id: int, *, mode: SyncMode, force: bool, source_items: int | None
    ) -> Trigger:
        with self._mutex:
            ticket_id = self._pending.get(mailbox)
            if ticket_id is None:
                ticket_id = uuid.uuid4().hex
                self._pending[mailbox] = ticket_id
                self._tickets[ticket_id] = _LocalTicket(mailbox, mode, force, source_items, {run_id})
                return Trigger(ticket_id, opened=True)
            data = self._tickets[ticket_id]
            data.mode = _stronger(data.mode, mode)
            data.force = data.force or force
            data.source_items = source_items if source_items is not None else data.source_items
            data.runs.add(run_id)
            return Trigger(ticket_id, opened=False)

    def mark_sent(self, ticket_id: str) -> None:
        # One process: a crash between opening and sending loses the tickets too.
        return None

    def claim(self, mailbox: str, ticket_id: str) -> Ticket | None:
        with self._mutex:
            if self._pending.get(mailbox) == ticket_id:
                del self._pending[mailbox]
            return self._view(ticket_id)

    def ticket(self, ticket_id: str) -> Ticket | None:
        with self._mutex:
            return self._view(ticket_id)

    def _view(self, ticket_id: str) -> Ticket | None:
        data = self._tickets.get(ticket_id)
        if data is None:
            return None
        return Ticket(
            ticket_id,
            data.mailbox,
            data.mode,
            data.force,
            data.source_items,
            tuple(sorted(data.runs)),
            data.last_error,
        )

    def note_error(self, ticket_id: str, error: str) -> None:
        with self._mutex:
            if ticket_id in self._tickets:
                self._tickets[ticket_id].last_error = error

    def finish(self, ticket_id: str) -> None:
        with self._mutex:
            self._tickets.pop(ticket_id, None)

    def lock(self, mailbox: str) -> Lease | None:
        with self._mutex:
            if mailbox in self._locked:
                return None
            self._locked.add(mailbox)

        def release() -> None:
            with self._mutex:
                self._locked.discard(mailbox)

        return _LocalLease(release)

    def first_to_fire(self, job: str, slot: str) -> bool:
        with self._mutex:
            if (job, slot) in self._fired:
                return False
            self._fired.add((job, slot))
            return True

    def ping(self) -> None:
        return None

    def job_started(self, worker: str) -> int:
        with self._mutex:
            now = self._active[worker] = self._active.get(worker, 0) + 1
            self._peak[worker] = max(self._peak.get(worker, 0), now)
            return now

    def job_ended(self, worker: str) -> None:
        with self._mutex:
            self._active[worker] -= 1

    def peak(self, worker: str) -> int:
        with self._mutex:
            return self._peak.get(worker, 0)


# -- Redis -----------------------------------------------------------------------------------------

# KEYS: pending, ticket prefix. ARGV: new id, run id, mode, force, source items, mailbox, ttls, now,
# unsent-after seconds.
_TRIGGER = """
local id = redis.call('GET', KEYS[1])
local opened = 0
local ticket = KEYS[2] .. (id or ARGV[1])
if not id then
  id = ARGV[1]
  opened = 1
  redis.call('SET', KEYS[1], id, 'EX', ARGV[7])
  redis.call('HSET', ticket, 'mailbox', ARGV[6], 'mode', ARGV[3], 'force', ARGV[4], 'last_error', '',
             'opened_at', ARGV[9])
else
  if ARGV[3] == 'verify' then redis.call('HSET', ticket, 'mode', 'verify') end
  if ARGV[4] == '1' then redis.call('HSET', ticket, 'force', '1') end
  local opened_at = tonumber(redis.call('HGET', ticket, 'opened_at') or '0')
  if redis.call('HEXISTS', ticket, 'sent') == 0 and tonumber(ARGV[9]) - opened_at > tonumber(ARGV[10]) then
    opened = 1
    redis.call('HSET', ticket, 'opened_at', ARGV[9])
  end
end
if ARGV[5] ~= '' then redis.call('HSET', ticket, 'source_items', ARGV[5]) end
redis.call('SADD', ticket .. ':runs', ARGV[2])
redis.call('EXPIRE', ticket, ARGV[8])
redis.call('EXPIRE', ticket .. ':runs', ARGV[8])
return {id, opened}
"""

# KEYS: pending, ticket. ARGV: ticket id.
_CLAIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
"""

# KEYS: ticket. ARGV: field, value. A finished (deleted) ticket must not come back as a stray hash.
_SET_IF_TICKET = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
"""

# KEYS: active, peak.
_STARTED = """
local now = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], 86400)
local peak = tonumber(redis.call('GET', KEYS[2]) or '0')
if now > peak then redis.call('SET', KEYS[2], now, 'EX', 604800) end
return now
"""

# KEYS: lock. ARGV: token, ttl ms. Renew or release only a lock we still hold.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class _RedisLease:
    """A mailbox lock with a TTL, renewed by a timer thread while the sync runs, so a worker killed
    with SIGKILL frees its mailboxes after at most ``ttl_s``."""

    def __init__(self, coordinator: RedisCoordinator, key: str, token: str, ttl_s: float) -> None:
        self._coordinator = coordinator
        self._key = key
        self._token = token
        self._ttl_ms = int(ttl_s * 1000)
        self._lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease {key}", daemon=True)
        self._thread.start()

    @property
    def lost(self) -> bool:
        return self._lost

    def _renew(self) -> None:
        while not self._stop.wait(self._ttl_ms / 3000):
            try:
                if not self._coordinator._renew(keys=[self._key], args=[self._token, self._ttl_ms]):
                    self._lost = True
                    log.warning("lost the lock %s: the sync took a stall longer than its TTL", self._key)
                    return
            except redis.RedisError as exc:
                # The TTL still covers us for a while; the next tick tries again.
                log.warning("could not renew the lock %s: %s", self._key, exc)

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self._coordinator._release(keys=[self._key], args=[self._token])
        except redis.RedisError as exc:
            log.warning("could not release the lock %s (it expires on its own): %s", self._key, exc)


class RedisCoordinator:
    def __init__(self, client: redis.Redis, *, namespace: str, lock_ttl_s: float) -> None:
        self._client = client
        self._prefix = f"{namespace}:"
        self.lock_ttl_s = lock_ttl_s
        self._trigger = client.register_script(_TRIGGER)
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._started = client.register_script(_STARTED)
        self._set_if_ticket = client.register_script(_SET_IF_TICKET)

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    def trigger(
        self, mailbox: str, run_id: int, *, mode: SyncMode, force: bool, source_items: int | None
    ) -> Trigger:
        ticket_id, opened = self._trigger(
            keys=[self._key("pending", mailbox), self._key("ticket", "")],
            args=[
                uuid.uuid4().hex,
                run_id,
                mode.value,
                "1" if force else "0",
                "" if source_items is None else source_items,
                mailbox,
                PENDING_TTL_S,
                TICKET_TTL_S,
                time.time(),
                UNSENT_AFTER_S,
            ],
        )
        return Trigger(_text(ticket_id), opened=bool(opened))

    def mark_sent(self, ticket_id: str) -> None:
        self._set_if_ticket(keys=[self._key("ticket", ticket_id)], args=["sent", "1"])

    def claim(self, mailbox: str, ticket_id: str) -> Ticket | None:
        self._claim(keys=[self._key("pending", mailbox)], args=[ticket_id])
        return self.ticket(ticket_id)

    def ticket(self, ticket_id: str) -> Ticket | None:
        key = self._key("ticket", ticket_id)
        with self._client.pipeline() as pipe:
            pipe.hgetall(key)
            pipe.smembers(key + ":runs")
            data, runs = pipe.execute()
        if not data:
            return None
        fields = {_text(k): _text(v) for k, v in data.items()}
        items = fields.get("source_items", "")
        return Ticket(
            ticket_id,
            fields["mailbox"],
            SyncMode(fields["mode"]),
            fields["force"] == "1",
            int(items) if items else None,
            tuple(sorted(int(_text(r)) for r in runs)),
            fields.get("last_error", ""),
        )

    def note_error(self, ticket_id: str, error: str) -> None:
        self._set_if_ticket(keys=[self._key("ticket", ticket_id)], args=["last_error", error])

    def finish(self, ticket_id: str) -> None:
        key = self._key("ticket", ticket_id)
        self._client.delete(key, key + ":runs")

    def lock(self, mailbox: str) -> Lease | None:
        key = self._key("lock", mailbox)
        token = uuid.uuid4().hex
        if not self._client.set(key, token, nx=True, px=int(self.lock_ttl_s * 1000)):
            return None
        return _RedisLease(self, key, token, self.lock_ttl_s)

    def first_to_fire(self, job: str, slot: str) -> bool:
        # Kept a day: far longer than any clock skew between replicas.
        return bool(self._client.set(self._key("fired", job, slot), str(time.time()), nx=True, ex=86_400))

    def ping(self) -> None:
        self._client.ping()

    def job_started(self, worker: str) -> int:
        return int(self._started(keys=[self._key("active", worker), self._key("peak", worker)]))

    def job_ended(self, worker: str) -> None:
        self._client.decr(self._key("active", worker))

    def peak(self, worker: str) -> int:
        value = self._client.get(self._key("peak", worker))
        return int(_text(value)) if value is not None else 0


def _text(value: bytes | str | int) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
