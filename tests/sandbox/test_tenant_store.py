"""The sandbox's own store, tenant file, conditions and request log, without any protocol face."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sandbox.conditions import Conditions, Fault, Throttled
from sandbox.config import DEMO, TenantFileError, conditions_from_dict, load_tenant, tenant_from_dict
from sandbox.requestlog import LogEntry, RequestLog
from sandbox.tenant import ChangeKeyConflict, ItemNotFound, MailboxNotFound, prop_key

GUID = "{C11FF724-AA03-4555-9952-8FA248A11C3E}"
ASA = "asa.lindqvist@contoso.example"
T0 = datetime(2027, 3, 29, 7, tzinfo=UTC)


def test_the_demo_tenant_holds_the_example_targets_and_the_grants_the_docs_promise() -> None:
    tenant = load_tenant(DEMO)
    addresses = {m.address for m in tenant.mailboxes()}
    assert len(addresses) == 24 and "svc-planning@contoso.example" in addresses
    assert {m.kind.value for m in tenant.mailboxes()} == {"user", "room", "equipment"}
    scoped = tenant.apps["5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"]
    assert scoped.may_reach(ASA) and not scoped.may_reach("bjorn.ostergaard@contoso.example")
    delegate = tenant.service_accounts["svc-delegate@contoso.example"]
    assert delegate.may_delegate(ASA) and not delegate.may_impersonate(ASA)
    assert tenant.check_basic("svc-planning@contoso.example", "Sandbox-Pa55!") is not None
    assert tenant.check_basic("svc-planning@contoso.example", "wrong") is None
    assert tenant.check_basic(ASA, "User-Pa55!") is not None  # personal credentials


def test_items_are_created_found_updated_and_deleted_with_change_keys() -> None:
    tenant = load_tenant()
    key = prop_key(GUID, "SourceKey")
    item = tenant.create_item(
        ASA, subject="Früh 日本 😀", start=T0, end=T0 + timedelta(hours=8), extended=((key, "K1"),)
    )
    assert prop_key(GUID.lower().strip("{}"), "SourceKey") == key
    assert tenant.item(item.id).prop(key) == "K1"
    found = tenant.items(ASA, where=lambda i: i.prop(key) == "K1")
    assert [i.id for i in found] == [item.id]
    with pytest.raises(ChangeKeyConflict):
        tenant.update_item(item.id, if_change_key="stale", subject="x")
    updated = tenant.update_item(item.id, if_change_key=item.change_key, subject="Spät")
    assert updated.change_key != item.change_key and updated.prop(key) == "K1"
    tenant.delete_item(item.id)
    with pytest.raises(ItemNotFound):
        tenant.item(item.id)
    with pytest.raises(MailboxNotFound):
        tenant.items("nobody@contoso.example")


def test_a_repeated_transaction_id_returns_the_first_item() -> None:
    tenant = load_tenant()
    first = tenant.create_item(ASA, subject="a", start=T0, end=T0, transaction_id="txn-1")
    again = tenant.create_item(ASA, subject="b", start=T0, end=T0, transaction_id="txn-1")
    assert again.id == first.id and len(tenant.items(ASA)) == 1


def test_views_use_overlap_with_zero_length_items_at_their_instant() -> None:
    tenant = load_tenant()
    hour = timedelta(hours=1)
    tenant.create_item(ASA, subject="before", start=T0 - hour, end=T0)
    tenant.create_item(ASA, subject="inside", start=T0, end=T0 + hour)
    tenant.create_item(ASA, subject="instant", start=T0, end=T0)
    tenant.create_item(ASA, subject="after", start=T0 + 2 * hour, end=T0 + 3 * hour)
    seen = [i.subject for i in tenant.items(ASA, start=T0, end=T0 + 2 * hour)]
    assert sorted(seen) == ["inside", "instant"]


def test_dedicated_mailbox_folders() -> None:
    tenant = load_tenant()
    service = "svc-planning@contoso.example"
    folder = tenant.create_folder(service, "Åsa Lindqvist")
    tenant.create_item(service, folder.id, subject="in the folder", start=T0, end=T0)
    assert [i.subject for i in tenant.items(service, folder.id)] == ["in the folder"]
    assert tenant.items(service) == []  # the main calendar is separate
    assert tenant.find_mailbox_of_folder(folder.id).address == service


def test_tenant_file_problems_are_listed_together() -> None:
    with pytest.raises(TenantFileError) as caught:
        tenant_from_dict(
            {
                "tenant": {"domain": "x.example"},
                "mailboxes": [{"address": "nope"}, {"address": "a@x.example", "kind": "robot"}],
                "service_accounts": [
                    {"username": "svc", "password": "p", "impersonate": ["ghost@x.example"]}
                ],
                "apps": [{"client_id": "c"}],
            }
        )
    problems = caught.value.problems
    assert len(problems) == 5, problems
    assert any("tenant.id" in p for p in problems) and any("ghost@x.example" in p for p in problems)
    assert any("secret or a certificate" in p for p in problems)


def test_conditions_from_the_tenant_file_validate_faults() -> None:
    conditions = conditions_from_dict(
        {"conditions": {"latency_ms": 5, "faults": [{"kind": "503", "probability": 0.5}]}}
    )
    assert conditions.latency_ms == 5 and conditions.faults[0].kind == "503"
    with pytest.raises(TenantFileError, match="unknown fault kind"):
        conditions_from_dict({"conditions": {"faults": [{"kind": "teapot"}]}})
    with pytest.raises(TenantFileError, match="latncy_ms"):
        conditions_from_dict({"conditions": {"latncy_ms": 5}})


def test_the_fifth_concurrent_request_to_one_mailbox_is_refused() -> None:
    conditions = Conditions(concurrency_limit=4)
    outcomes: list[str] = []

    async def one(mailbox: str) -> None:
        try:
            async with conditions.admit("graph", "GET events", mailbox):
                await asyncio.sleep(0.05)
                outcomes.append("ok")
        except Throttled as exc:
            outcomes.append(exc.reason)

    async def main() -> None:
        await asyncio.gather(*(one(ASA) for _ in range(5)), one("other@contoso.example"))

    asyncio.run(main())
    assert sorted(outcomes) == ["MailboxConcurrency"] + ["ok"] * 5
    assert conditions.peak_concurrency()[ASA] == 5


def test_budgets_and_faults_by_pattern_and_count() -> None:
    conditions = Conditions(budget=2, budget_window_s=60, seed=1)
    conditions.add_fault(Fault("503", face="ews", operation="Create*", times=1))

    async def admit(face: str, operation: str) -> str:
        try:
            async with conditions.admit(face, operation, ASA) as admission:
                return admission.fault.kind if admission.fault else "ok"
        except Throttled as exc:
            return exc.reason

    async def main() -> list[str]:
        return [
            await admit("graph", "CreateItem"),
            await admit("ews", "CreateItem"),
            await admit("ews", "CreateItem"),
        ]

    assert asyncio.run(main()) == ["ok", "503", "ApplicationThrottled"]


def test_request_log_keeps_entries_and_writes_json_lines(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "log.jsonl")
    entry = LogEntry(
        "graph", "batch", ASA, 200, T0, 12.5, write=True, parts=({"method": "POST"},), fault="429"
    )
    log.append(entry)
    log.append(LogEntry("ews", "GetFolder", ASA, 200, T0, 3.0))
    assert log.writes(ASA) == [entry] and len(log.entries()) == 2
    lines = (tmp_path / "log.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["fault"] == "429" and json.loads(lines[1])["operation"] == "GetFolder"
    assert entry.finished - entry.started == timedelta(milliseconds=12.5)
