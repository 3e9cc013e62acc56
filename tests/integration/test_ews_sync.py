"""Whole syncs through the EWS backend into the sandbox tenant (real exchangelib over HTTP), with the
engine and a real SQLite state store: request counts, parity with the Graph backend, permissions, Exchange
Online's EWS block, throttling, text, and every connection method."""

from __future__ import annotations

import math
import time as clock
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.ews.backend import EwsBackend
from adapters.graph.backend import GraphBackend
from adapters.state import open_store
from connector.models import ScheduleEntry, Target, TimedSpan
from connector.state import MailboxStatus, RunStatus, StateStore, SyncMode
from sandbox.conditions import Fault
from sandbox.server import Sandbox
from sandbox.tenant import EwsPolicy
from tests.contract.sandbox_harness import EWS_DELEGATE, EWS_SERVICE, ews_config, graph_config
from tests.integration.whole_sync import (
    PARIS,
    TAG,
    calendars,
    entries_for,
    mailboxes,
    provision,
    run,
    run_until_settled,
    tagged_counts,
    writes_by_mailbox,
)
from tests.integration.whole_sync import sync_engine as engine

pytestmark = pytest.mark.sandbox

ASA = "asa.lindqvist@contoso.example"
BJORN = "bjorn.ostergaard@contoso.example"
HANAKO = "hanako.yamada@contoso.example"
USER_PASSWORD = "User-Pa55!"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    """A fresh SQLite state store (this module's own: the folder's ``store`` fixture is parametrized)."""
    opened = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield opened
    opened.close()


def ews(sandbox: Sandbox, **config: Any) -> EwsBackend:
    return EwsBackend(ews_config(sandbox, PARIS, **config))


# -- must show ---------------------------------------------------------------------------------------------


def test_fifty_mailboxes_of_a_hundred_entries_take_four_writes_each_then_none_and_equal_graphs_calendars(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    addresses = mailboxes(50)
    provision(sandbox, addresses)
    entries = entries_for(addresses, 100)
    with closing(open_store(f"sqlite:///{tmp_path / 'ews.db'}")) as ews_store:
        started = clock.monotonic()
        first = run(engine(ews_store, entries, addresses, ews(sandbox)))
        took = clock.monotonic() - started
        assert first.run.status is RunStatus.SUCCEEDED, first.run
        assert first.run.counts.created == 5000
        writes = writes_by_mailbox(sandbox)
        assert set(writes) == set(addresses)
        assert max(writes.values()) <= math.ceil(100 / 25)
        assert all(set(tagged_counts(sandbox, a).values()) == {1} for a in addresses)
        print(f"EWS: 50 x 100 created in {took:.1f} s")

        sandbox.log.clear()
        again = run(engine(ews_store, entries, addresses, ews(sandbox)))
        assert again.run.counts.writes == 0 and again.run.counts.unchanged == 5000
        assert sandbox.log.writes() == []
        verify = run(engine(ews_store, entries, addresses, ews(sandbox)), SyncMode.VERIFY)
        assert verify.run.counts.writes == 0 and sandbox.log.writes() == []
    through_ews = calendars(sandbox, addresses)

    sandbox.tenant.clear()  # the same mailboxes, empty: a fresh tenant for the Graph backend
    with closing(open_store(f"sqlite:///{tmp_path / 'graph.db'}")) as graph_store:
        graph = run(engine(graph_store, entries, addresses, GraphBackend(graph_config(sandbox, PARIS))))
    assert graph.run.status is RunStatus.SUCCEEDED
    through_graph = calendars(sandbox, addresses)
    assert sum(len(c) for c in through_ews.values()) == 5000
    for address in addresses:
        assert through_ews[address] == through_graph[address], address


def test_a_mailbox_without_impersonation_is_unhealthy_with_the_fix_and_the_others_sync(
    sandbox: Sandbox, store: StateStore
) -> None:
    addresses = mailboxes(4)
    provision(sandbox, addresses)
    accounts = sandbox.tenant.service_accounts
    key = EWS_SERVICE[0].lower()
    accounts[key] = replace(accounts[key], impersonate=frozenset(addresses[1:]))
    report = run(engine(store, entries_for(addresses, 10), addresses, ews(sandbox)))
    results = {r.mailbox: r for r in report.run.results}
    denied = results[addresses[0]]
    assert denied.status is MailboxStatus.FAILED and denied.error_code == "permission"
    assert denied.error is not None
    assert "New-ManagementRoleAssignment" in denied.error and "-Role ApplicationImpersonation" in denied.error
    assert f"-User {EWS_SERVICE[0]}" in denied.error
    assert all(
        results[a].status is MailboxStatus.OK and results[a].counts.created == 10 for a in addresses[1:]
    )
    assert {h.mailbox: h.error_code for h in store.health()}[addresses[0]] == "permission"
    assert report.run.status is RunStatus.PARTIAL
    assert tagged_counts(sandbox, addresses[0]) == {}


def test_ews_blocked_by_policy_names_the_retirement_and_the_switch_to_graph(
    sandbox: Sandbox, store: StateStore
) -> None:
    addresses = mailboxes(2)
    provision(sandbox, addresses)
    sandbox.tenant.ews_policy = EwsPolicy(allowed=False, reason="EwsDisabledForTenant")
    report = run(engine(store, entries_for(addresses, 3), addresses, ews(sandbox)))
    assert {r.error_code for r in report.run.results} == {"policy_blocked"}
    error = report.run.results[0].error or ""
    assert "EwsDisabledForTenant" in error and "retired" in error
    assert "2026-10-01" in error and "2027-04-01" in error
    assert 'kind = "graph"' in error and "Calendars.ReadWrite" in error
    assert {e.status for e in sandbox.log.entries()} == {403}


def test_server_busy_on_a_fifth_of_requests_converges_without_duplicates(
    sandbox: Sandbox, store: StateStore
) -> None:
    addresses = mailboxes(6)
    provision(sandbox, addresses)
    entries = entries_for(addresses, 60)
    sandbox.conditions.reseed(20261121)
    sandbox.conditions.add_fault(Fault("server_busy", probability=0.2, face="ews", retry_after=2.0))
    report = run_until_settled(lambda: engine(store, entries, addresses, ews(sandbox)))
    assert report.run.status is RunStatus.SUCCEEDED
    assert sandbox.log.entries(lambda e: e.fault == "server_busy")  # the faults really fired
    sandbox.conditions.clear_faults()
    for address in addresses:
        counts = tagged_counts(sandbox, address)
        assert len(counts) == 60 and set(counts.values()) == {1}, counts
    assert run(engine(store, entries, addresses, ews(sandbox)), SyncMode.VERIFY).run.counts.writes == 0


def test_non_ascii_text_round_trips_and_control_characters_are_replaced(
    sandbox: Sandbox, store: StateStore
) -> None:
    subject = "å ä ö ß ł 日本語 漢字 😀🎉 Zoë"
    start = datetime(2027, 3, 3, 9, tzinfo=PARIS)
    entry = ScheduleEntry(
        "utf-1",
        ASA,
        TimedSpan(start, start + timedelta(hours=2), "Europe/Paris"),
        subject,
        body="Zeile 1\nZeile\x0b2\x00 Ende\x1f ✓",
        location="Besprechungsraum Süd 会議室",
    )
    report = run(engine(store, [entry], [ASA], ews(sandbox)))
    assert report.run.status is RunStatus.SUCCEEDED and report.run.counts.created == 1
    (item,) = sandbox.tenant.items(ASA)
    assert (item.subject, item.location) == (subject, "Besprechungsraum Süd 会議室")
    assert "Zeile 1\nZeile\ufffd2\ufffd Ende\ufffd ✓" in item.body
    assert not any(ord(c) < 32 and c not in "\n\r\t" for c in item.body)
    assert {e.status for e in sandbox.log.entries()} == {200}
    (remote,) = ews(sandbox).list_tagged(
        Target(ASA, ASA), start - timedelta(days=1), start + timedelta(days=1)
    )
    assert remote.subject == subject


# -- the four connection methods and OAuth -----------------------------------------------------------------


def small(addresses: list[str]) -> list[ScheduleEntry]:
    return entries_for(addresses, 3)


def assert_synced_and_idempotent(
    sandbox: Sandbox, store: StateStore, addresses: list[str], backend: Any, where: dict[str, str]
) -> None:
    """Synced: each address's three events in ``where[address]``'s mailbox; then a verify writes nothing."""
    entries = small(addresses)
    report = run(engine(store, entries, addresses, backend()))
    assert report.run.status is RunStatus.SUCCEEDED, report.run
    for address in addresses:
        keys = {e.source_key for e in entries if e.owner == address}
        found = {i.prop(TAG): i for i in sandbox.tenant.items(where[address], None) if i.prop(TAG) in keys}
        assert set(found) == keys
    sandbox.log.clear()
    verify = run(engine(store, entries, addresses, backend()), SyncMode.VERIFY)
    assert verify.run.counts.writes == 0 and sandbox.log.writes() == []


def test_personal_credentials_write_into_each_users_own_calendar(sandbox: Sandbox, store: StateStore) -> None:
    users = [ASA, HANAKO]
    passwords = dict.fromkeys(users, USER_PASSWORD)
    assert_synced_and_idempotent(
        sandbox,
        store,
        users,
        lambda: ews(sandbox, method="personal", username="", password="", user_passwords=passwords),
        {u: u for u in users},
    )
    assert {e.principal for e in sandbox.log.entries()} == set(users)


def test_a_dedicated_mailbox_keeps_one_calendar_folder_per_person(
    sandbox: Sandbox, store: StateStore
) -> None:
    users = [ASA, HANAKO]
    service = EWS_SERVICE[0]
    assert_synced_and_idempotent(
        sandbox,
        store,
        users,
        lambda: ews(sandbox, method="dedicated", service_mailbox=service),
        dict.fromkeys(users, service),
    )
    folders = {f.name: f.id for f in sandbox.tenant.mailbox(service).folders.values()}
    assert set(folders) >= set(users)
    for user in users:
        in_folder = sandbox.tenant.items(service, folders[user])
        assert {i.prop(TAG) for i in in_folder} == {e.source_key for e in small([user])}
        assert sandbox.tenant.items(user) == []  # nothing in the person's own mailbox
    assert sandbox.tenant.items(service) == []  # nor loose in the service mailbox's main calendar


def test_delegate_access_writes_through_editor_rights(sandbox: Sandbox, store: StateStore) -> None:
    users = [ASA, BJORN]
    assert_synced_and_idempotent(
        sandbox,
        store,
        users,
        lambda: ews(sandbox, method="delegate", username=EWS_DELEGATE[0], password=EWS_DELEGATE[1]),
        {u: u for u in users},
    )


def test_delegate_access_missing_names_the_folder_permission_to_grant(
    sandbox: Sandbox, store: StateStore
) -> None:
    report = run(
        engine(
            store,
            small([HANAKO]),
            [HANAKO],
            ews(sandbox, method="delegate", username=EWS_DELEGATE[0], password=EWS_DELEGATE[1]),
        )
    )
    (result,) = report.run.results
    assert result.error_code == "permission" and result.error is not None
    assert (
        f"Add-MailboxFolderPermission -Identity {HANAKO}:\\Calendar -User {EWS_DELEGATE[0]}" in result.error
    )
    assert "-AccessRights Editor" in result.error


def test_impersonation_syncs_a_small_source(sandbox: Sandbox, store: StateStore) -> None:
    users = [ASA, HANAKO, BJORN]
    assert_synced_and_idempotent(sandbox, store, users, lambda: ews(sandbox), {u: u for u in users})


def test_oauth_app_token_with_the_impersonation_header(sandbox: Sandbox, store: StateStore) -> None:
    info = sandbox.info()
    users = [ASA, HANAKO]

    def backend() -> EwsBackend:
        return ews(
            sandbox,
            auth="oauth2",
            url=f"{sandbox.authority}/EWS/Exchange.asmx",  # OAuth needs TLS end to end
            username="",
            password="",
            tenant_id=info["tenant_id"],
            client_id=info["client_id"],
            client_secret=info["client_secret"],
            authority=sandbox.authority,
            ca_file=sandbox.tls.ca_file,
        )

    assert_synced_and_idempotent(sandbox, store, users, backend, {u: u for u in users})
    assert {e.principal for e in sandbox.log.entries(lambda e: e.face == "ews")} == {info["client_id"]}


def test_a_wrong_password_is_an_auth_error_without_the_password(sandbox: Sandbox, store: StateStore) -> None:
    report = run(engine(store, small([ASA]), [ASA], ews(sandbox, password="Wr0ng-Secret!")))
    (result,) = report.run.results
    assert result.error_code == "auth"
    assert result.error is not None and EWS_SERVICE[0] in result.error and "Wr0ng-Secret!" not in result.error


def test_an_unknown_mailbox_is_not_found(sandbox: Sandbox, store: StateStore) -> None:
    report = run(engine(store, small(["nobody@contoso.example"]), ["nobody@contoso.example"], ews(sandbox)))
    (result,) = report.run.results
    assert result.error_code == "mailbox_not_found"
