"""Whole syncs through the Graph backend into the sandbox tenant (real msgraph-sdk, azure-identity, HTTP),
with the engine and a real SQLite state store: the request counts, throttling, lost answers and scoping
that Microsoft 365 admins judge a connector by."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.graph.backend import GraphBackend
from adapters.state import open_store
from connector.models import ScheduleEntry
from connector.state import MailboxStatus, RunStatus, StateStore, SyncMode
from connector.sync import SyncEngine
from sandbox.conditions import Fault
from sandbox.requestlog import LogEntry
from sandbox.server import Sandbox
from sandbox.tenant import AppRegistration
from tests.contract.sandbox_harness import graph_config
from tests.integration.whole_sync import (
    PARIS,
    entries_for,
    mailboxes,
    provision,
    run,
    run_until_settled,
    sync_engine,
    tagged_counts,
    writes_by_mailbox,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    """A fresh SQLite state store (this module's own: the folder's ``store`` fixture is parametrized)."""
    opened = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield opened
    opened.close()


def engine(
    sandbox: Sandbox, store: StateStore, entries: list[ScheduleEntry], addresses: list[str], **config: object
) -> SyncEngine:
    return sync_engine(store, entries, addresses, GraphBackend(graph_config(sandbox, PARIS, **config)))


def test_fifty_mailboxes_of_a_hundred_entries_take_five_write_requests_each_then_none(
    sandbox: Sandbox, store: StateStore
) -> None:
    addresses = mailboxes(50)
    provision(sandbox, addresses)
    entries = entries_for(addresses, 100)
    first = run(engine(sandbox, store, entries, addresses))
    assert first.run.status is RunStatus.SUCCEEDED, first.run
    assert first.run.counts.created == 5000
    writes = writes_by_mailbox(sandbox)
    assert set(writes) == set(addresses)
    assert max(writes.values()) <= 5  # ceil(100 / 20)
    throttled = [
        e for e in sandbox.log.entries() if e.status == 429 or any(p.get("status") == 429 for p in e.parts)
    ]
    assert throttled == []  # the sandbox enforces 4 concurrent requests per mailbox: none was refused
    assert all(set(tagged_counts(sandbox, a).values()) == {1} for a in addresses)

    sandbox.log.clear()
    again = run(engine(sandbox, store, entries, addresses))
    assert again.run.counts.writes == 0 and again.run.counts.unchanged == 5000
    assert sandbox.log.writes() == []
    assert sandbox.log.entries() == []  # a fast sync of an unchanged source sends nothing at all


def test_twenty_percent_throttling_converges_and_every_retry_after_is_honoured(
    sandbox: Sandbox, store: StateStore
) -> None:
    addresses = mailboxes(6)
    provision(sandbox, addresses)
    entries = entries_for(addresses, 60)
    sandbox.conditions.reseed(20261121)
    sandbox.conditions.add_fault(Fault("429", probability=0.2, face="graph", retry_after=1.0))
    report = run_until_settled(lambda: engine(sandbox, store, entries, addresses))
    assert report.run.status is RunStatus.SUCCEEDED
    sandbox.conditions.clear_faults()
    assert dict.fromkeys((e.source_key for e in entries if e.owner == addresses[0]), 1) == dict(
        tagged_counts(sandbox, addresses[0])
    )
    for address in addresses:
        assert set(tagged_counts(sandbox, address).values()) == {1}
        assert len(tagged_counts(sandbox, address)) == 60
    verify = run(engine(sandbox, store, entries, addresses), SyncMode.VERIFY)
    assert verify.run.counts.writes == 0

    injected = 0
    by_mailbox: dict[str | None, list[LogEntry]] = defaultdict(list)
    for entry in sandbox.log.entries():
        by_mailbox[entry.mailbox].append(entry)
    assert None not in {e.mailbox for e in sandbox.log.entries() if e.face == "graph"}
    for mailbox, entries_seen in by_mailbox.items():
        entries_seen.sort(key=lambda e: e.started)
        for before, after in itertools.pairwise(entries_seen):
            told_to_wait = before.status == 429 or any(p.get("status") == 429 for p in before.parts)
            if told_to_wait:
                injected += 1
                gap = (after.started - before.finished).total_seconds()
                assert gap >= 0.95, f"{mailbox}: next request {gap:.3f} s after a Retry-After of 1 s"
    assert injected > 5  # the faults really fired


def test_creates_whose_answer_is_lost_leave_no_duplicate_after_the_next_sync(
    sandbox: Sandbox, store: StateStore
) -> None:
    addresses = mailboxes(3)
    provision(sandbox, addresses)
    entries = entries_for(addresses, 45)
    sandbox.conditions.add_fault(Fault("drop_after_commit", face="graph", operation="batch", times=4))
    run(engine(sandbox, store, entries, addresses))
    sandbox.conditions.clear_faults()
    run(engine(sandbox, store, entries, addresses))
    assert sum(1 for e in sandbox.log.entries() if e.fault == "drop_after_commit") == 4
    for address in addresses:
        counts = tagged_counts(sandbox, address)
        assert len(counts) == 45 and set(counts.values()) == {1}, counts
    assert run(engine(sandbox, store, entries, addresses), SyncMode.VERIFY).run.counts.writes == 0


def test_a_mailbox_outside_the_apps_scope_is_unhealthy_with_the_fix_and_the_others_sync(
    sandbox: Sandbox, store: StateStore
) -> None:
    addresses = mailboxes(4)
    provision(sandbox, addresses)
    app = next(iter(sandbox.tenant.apps.values()))
    sandbox.tenant.apps[app.client_id] = AppRegistration(
        app.client_id, app.tenant_id, secret=app.secret, mailboxes=frozenset(addresses[1:])
    )
    report = run(engine(sandbox, store, entries_for(addresses, 10), addresses))
    results = {r.mailbox: r for r in report.run.results}
    denied = results[addresses[0]]
    assert denied.status is MailboxStatus.FAILED and denied.error_code == "permission"
    assert denied.error is not None
    assert "RBAC for Applications" in denied.error and "New-ApplicationAccessPolicy" in denied.error
    assert all(
        results[a].status is MailboxStatus.OK and results[a].counts.created == 10 for a in addresses[1:]
    )
    health = {h.mailbox: h for h in store.health()}
    assert health[addresses[0]].error_code == "permission"
    assert report.run.status is RunStatus.PARTIAL


def test_bad_credentials_are_an_auth_error_naming_the_fix(sandbox: Sandbox, store: StateStore) -> None:
    addresses = mailboxes(1)
    provision(sandbox, addresses)
    report = run(engine(sandbox, store, entries_for(addresses, 2), addresses, client_secret="wrong"))
    (result,) = report.run.results
    assert result.error_code == "auth"
    assert result.error is not None and "client secret" in result.error and "wrong" not in result.error


def test_certificate_credentials_sync_and_a_foreign_certificate_is_refused(
    sandbox: Sandbox, store: StateStore, tmp_path: Path
) -> None:
    from tests.sandbox.graph_client import make_certificate

    addresses = mailboxes(2)
    provision(sandbox, addresses)
    registered, certificate_pem = make_certificate(tmp_path, "registered")
    stranger, _ = make_certificate(tmp_path, "stranger")
    app = next(iter(sandbox.tenant.apps.values()))
    sandbox.tenant.apps[app.client_id] = AppRegistration(
        app.client_id, app.tenant_id, certificate_pem=certificate_pem, mailboxes=frozenset({"*"})
    )
    entries = entries_for(addresses, 5)
    report = run(engine(sandbox, store, entries, addresses, client_secret=None, certificate_path=registered))
    assert report.run.status is RunStatus.SUCCEEDED and report.run.counts.created == 10

    refused = run(
        engine(
            sandbox,
            store,
            entries_for(addresses, 6),
            addresses,
            client_secret=None,
            certificate_path=stranger,
        )
    )
    assert {r.error_code for r in refused.run.results} == {"auth"}
    assert all("certificate" in (r.error or "") for r in refused.run.results)
