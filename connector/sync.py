"""The sync use case: read the source, work out each mailbox's plan, carry it out through the backend,
and record what happened. It talks to the world only through the ports (source, store, backend), so the
same code runs in the CLI, in a Dramatiq worker and in tests.

Exactly-once effect (DESIGN §4.4): before a create, an intent is stored; after the remote call succeeds
the mapping is stored. An intent left by a crash is resolved on the next sync by looking the event up by
its tag, so it is adopted instead of created twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime

from connector.backend import CalendarBackend
from connector.diff import diff
from connector.directory import Directory
from connector.errors import ConnectorError, TransientError, UsageError
from connector.execution import MailboxExecution
from connector.guard import DeleteGuard
from connector.models import (
    EventSpec,
    MailboxPlan,
    RemoteEvent,
    StoredMapping,
    Target,
    utc_now,
)
from connector.prepare import Prepared, TextLimits, prepare
from connector.render import RenderRules
from connector.source import ScheduleSource, TargetSource
from connector.state import (
    Counts,
    MailboxResult,
    MailboxStatus,
    QuarantineEntry,
    RunRecord,
    RunStatus,
    StateStore,
    SyncMode,
    run_status,
)
from connector.window import Window

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SyncRequest:
    mode: SyncMode = SyncMode.FAST
    #: Mailbox addresses (or owner keys) to sync; empty means every enabled target.
    users: tuple[str, ...] = ()
    force: bool = False
    trigger: str = "cli"


@dataclass(frozen=True, slots=True)
class Loaded:
    """A source read once, ready to be planned per mailbox."""

    window: Window
    directory: Directory
    prepared: Prepared
    selected: tuple[Target, ...]
    partial: bool


@dataclass(frozen=True, slots=True)
class MailboxPreview:
    target: Target
    plan: MailboxPlan
    quarantined: int


@dataclass(frozen=True, slots=True)
class RunReport:
    run: RunRecord
    loaded: Loaded | None
    quarantine: tuple[QuarantineEntry, ...] = ()

    @property
    def blocked(self) -> bool:
        return any(r.status is MailboxStatus.BLOCKED for r in self.run.results)


@dataclass
class _Planned:
    plan: MailboxPlan
    #: Intents resolved to events found by tag: stored before anything else happens.
    resolved: list[StoredMapping] = field(default_factory=list)


class SyncEngine:
    def __init__(
        self,
        *,
        source: ScheduleSource,
        targets: TargetSource,
        store: StateStore,
        backend: CalendarBackend,
        rules: RenderRules,
        window: Callable[[], Window],
        guard: DeleteGuard | None = None,
        limits: TextLimits | None = None,
        owners_are_addresses: bool = False,
        clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.source = source
        self.targets = targets
        self.store = store
        self.backend = backend
        self.rules = rules
        self.window = window
        self.guard = guard or DeleteGuard()
        self.limits = limits or TextLimits()
        self.owners_are_addresses = owners_are_addresses
        self.clock = clock
        self.new_id = new_id

    # -- reading --------------------------------------------------------------------------------------
    def load(self, request: SyncRequest, *, keep_specs: bool = True) -> Loaded:
        """Read targets and source once. Raises ``SourceError`` if either cannot be read as a whole,
        ``UsageError`` if a requested user is not an enabled target."""
        directory, bad_targets = Directory.build(
            self.targets.read_targets(), owners_are_addresses=self.owners_are_addresses
        )
        window = self.window()
        prepared = prepare(
            self.source.read(window), directory, self.rules, self.limits, keep_specs=keep_specs
        )
        for rejected in bad_targets:
            prepared.quarantined.append(
                QuarantineEntry(
                    source_key="", owner=rejected.owner, reason=rejected.reason, origin=rejected.origin
                )
            )
        selected = self._select(directory, prepared, request.users)
        return Loaded(window, directory, prepared, selected, partial=bool(request.users))

    def _select(self, directory: Directory, prepared: Prepared, users: Sequence[str]) -> tuple[Target, ...]:
        if not users:
            enabled = list(directory.enabled())
            if directory.owners_are_addresses:
                known = {t.address for t in enabled}
                enabled += [Target(a, a) for a in sorted(prepared.mailboxes) if a not in known]
            return tuple(enabled)
        chosen = {target.address: target for target in map(directory.enabled_target, users)}
        return tuple(chosen.values())

    # -- planning (no writes) ----------------------------------------------------------------------
    def preview(self, request: SyncRequest) -> tuple[Loaded, list[MailboxPreview]]:
        """What a sync would do, per mailbox; nothing is written anywhere."""
        loaded = self.load(request)
        previews = []
        for target in loaded.selected:
            planned = self._plan(target, loaded, request)
            previews.append(
                MailboxPreview(target, planned.plan, loaded.prepared.quarantined_for(target.address))
            )
        return loaded, previews

    def _plan(self, target: Target, loaded: Loaded, request: SyncRequest) -> _Planned:
        stored = self.store.mappings(target.address)
        resolved = self._resolve_intents(target, stored)
        for mapping in resolved:
            stored[mapping.source_key] = mapping
        remote: list[RemoteEvent] | None = None
        if request.mode is SyncMode.VERIFY:
            remote = self.backend.list_tagged(target, loaded.window.start, loaded.window.end)
        desired: dict[str, EventSpec] = loaded.prepared.specs.get(target.address, {})
        plan = diff(
            target.address,
            desired,
            stored,
            loaded.window,
            new_transaction_id=self.new_id,
            remote=remote,
            protected=loaded.prepared.protected,
        )
        managed = {
            k
            for k, m in stored.items()
            if not m.is_intent and loaded.window.overlaps_utc(m.start_utc, m.end_utc)
        }
        managed |= {r.source_key for r in remote or ()}
        plan = self.guard.check(
            plan,
            managed_in_window=len(managed),
            source_items=loaded.prepared.source_items,
            force=request.force,
        )
        return _Planned(plan, resolved)

    def _resolve_intents(self, target: Target, stored: dict[str, StoredMapping]) -> list[StoredMapping]:
        intents = {k: m for k, m in stored.items() if m.is_intent}
        if not intents:
            return []
        found: dict[str, list[RemoteEvent]] = {}
        for event in self.backend.find_tagged(target, sorted(intents)):
            found.setdefault(event.source_key, []).append(event)
        resolved = []
        for key, events in found.items():
            intent = intents[key]
            event = min(events, key=lambda e: (e.content_hash != intent.content_hash, e.remote_id))
            resolved.append(
                replace(
                    intent,
                    remote_id=event.remote_id,
                    change_key=event.change_key,
                    content_hash=event.content_hash,
                    start_utc=event.start_utc,
                    end_utc=event.end_utc,
                    last_pushed=self.clock(),
                )
            )
        return resolved

    # -- running ---------------------------------------------------------------------------------
    def run(self, request: SyncRequest, *, threads: int = 1) -> RunReport:
        """A whole run in this process, the source read once, on a pool of ``threads``: for tests and
        embedding. The commands run the same steps as jobs (``open_run``, ``sync_one``)."""
        try:
            loaded = self.load(request)
        except UsageError:
            raise
        except ConnectorError as exc:
            run_id = self.store.start_run(
                trigger=request.trigger, mode=request.mode, forced=request.force, mailboxes_total=0
            )
            return RunReport(self.store.finish_run(run_id, status=RunStatus.FAILED, error=str(exc)), None)

        run_id = self.store.start_run(
            trigger=request.trigger,
            mode=request.mode,
            forced=request.force,
            mailboxes_total=len(loaded.selected),
        )
        quarantine = self._record_quarantine(loaded)

        def one(target: Target) -> MailboxResult:
            result = self.sync_mailbox(target, loaded, request)
            self.store.record_mailbox_result(run_id, result)
            return result

        # One mailbox per thread at a time; never two threads on one mailbox (DESIGN §5).
        with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="sync") as pool:
            results = list(pool.map(one, loaded.selected))
        record = self.store.finish_run(run_id, status=run_status(results))
        return RunReport(record, loaded, tuple(quarantine))

    # -- the same run as background jobs: one fan-out, then one job per mailbox ---------------------
    def open_run(self, run_id: int, request: SyncRequest) -> Loaded | None:
        """The fan-out step of a queued run: read the source whole, record the quarantine and how many
        mailboxes the run covers. ``None`` when the source (or the target directory) cannot be read:
        the run is then FAILED and nothing is deleted anywhere. ``UsageError`` for a bad user list."""
        try:
            # The mailbox jobs read their own entries: the fan-out keeps no events in memory.
            loaded = self.load(request, keep_specs=False)
        except UsageError as exc:
            self.store.finish_run(run_id, status=RunStatus.FAILED, error=str(exc))
            raise
        except ConnectorError as exc:
            self.store.finish_run(run_id, status=RunStatus.FAILED, error=str(exc))
            return None
        self._record_quarantine(loaded)
        self.store.begin_run(run_id, mailboxes_total=len(loaded.selected))
        return loaded

    def sync_one(
        self, address: str, request: SyncRequest, *, source_items: int | None = None
    ) -> MailboxResult:
        """One mailbox's job: read the directory and only this mailbox's entries (a source that can
        narrow its read by owner does), then plan and carry out. ``source_items`` is the whole source's
        size as the fan-out saw it: an owner with no entries left is not an empty source (DESIGN §4.5).
        Never raises for the mailbox's own failures (see ``sync_mailbox``)."""
        started = self.clock()
        try:
            directory, _ = Directory.build(
                self.targets.read_targets(), owners_are_addresses=self.owners_are_addresses
            )
            target = directory.resolve(address)
            if target is None or not target.enabled:
                return MailboxResult(
                    mailbox=address,
                    status=MailboxStatus.OK,
                    counts=Counts(),
                    started_at=started,
                    finished_at=self.clock(),
                    error_code="skipped",
                    error=f"{address} is no longer an enabled target; nothing was changed",
                )
            window = self.window()
            items = self.source.read(window, owner=target.owner_key)
            prepared = prepare(items, directory, self.rules, self.limits)
        except ConnectorError as exc:
            return self._failed(Target(address, address), started, exc, Counts())
        if source_items is not None:
            prepared.source_items = source_items
        loaded = Loaded(window, directory, prepared, (target,), partial=True)
        return self.sync_mailbox(target, loaded, request)

    def _record_quarantine(self, loaded: Loaded) -> list[QuarantineEntry]:
        if not loaded.partial:
            self.store.replace_quarantine(loaded.prepared.quarantined, owners=None)
            return loaded.prepared.quarantined
        mailboxes = {t.address for t in loaded.selected}
        mine = [q for q in loaded.prepared.quarantined if q.mailbox in mailboxes]
        owners = {t.owner_key for t in loaded.selected} | mailboxes | {q.owner for q in mine}
        self.store.replace_quarantine(mine, owners=sorted(owners))
        return mine

    def sync_mailbox(self, target: Target, loaded: Loaded, request: SyncRequest) -> MailboxResult:
        """Plan and carry out one mailbox's sync. Never raises for the mailbox's own failures: they
        become a FAILED result (and an unhealthy mailbox), so the other mailboxes go on."""
        started = self.clock()
        quarantined = loaded.prepared.quarantined_for(target.address)
        try:
            planned = self._plan(target, loaded, request)
            if planned.resolved:
                self.store.save_mappings(planned.resolved)
            return MailboxExecution(
                store=self.store,
                backend=self.backend,
                target=target,
                plan=planned.plan,
                window=loaded.window,
                started=started,
                quarantined=quarantined,
                clock=self.clock,
                new_id=self.new_id,
            ).run()
        except ConnectorError as exc:
            return self._failed(target, started, exc, Counts(quarantined=quarantined))
        except Exception as exc:  # a bug must not stop the other mailboxes; it is logged in full
            log.exception("unexpected error while syncing %s", target.address)
            error = ConnectorError(f"internal error: {type(exc).__name__}: {exc}", fix="see the worker log")
            return self._failed(target, started, error, Counts(quarantined=quarantined))

    def _failed(
        self, target: Target, started: datetime, exc: ConnectorError, counts: Counts
    ) -> MailboxResult:
        return MailboxResult(
            mailbox=target.address,
            status=MailboxStatus.FAILED,
            counts=counts,
            started_at=started,
            finished_at=self.clock(),
            error_code=exc.code,
            error=str(exc),
            retryable=isinstance(exc, TransientError),
            retry_after=exc.retry_after if isinstance(exc, TransientError) else None,
        )
