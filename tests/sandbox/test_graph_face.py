"""The Graph face: the REAL msgraph-sdk with azure-identity (no adapter of ours) creates, finds by tag,
updates and deletes events; bodies are held against Graph's CSDL; throttling, faults, permissions, paging,
time zones and non-ASCII text behave as Graph does, and the request log shows it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.event import Event
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.single_value_legacy_extended_property import SingleValueLegacyExtendedProperty
from msgraph.generated.users.item.events.events_request_builder import EventsRequestBuilder
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core.requests.batch_request_content import BatchRequestContent  # type: ignore[import-untyped]
from msgraph_core.requests.batch_request_item import BatchRequestItem  # type: ignore[import-untyped]

from sandbox.conditions import Fault
from sandbox.graph import csdl
from sandbox.server import Sandbox
from sandbox.tenant import prop_key
from tests.sandbox.graph_client import (
    ASA,
    JUERGEN,
    SCOPED,
    SCOPED_SECRET,
    TAG,
    certificate_credential,
    event_body,
    graph,
    make_certificate,
    sdk_client,
    sdk_http,
    secret_credential,
    tag_expand,
    tag_filter,
)

pytestmark = pytest.mark.sandbox
TAG_KEY = prop_key("6f1c0a5e-8d3b-4c2a-9e7f-1a2b3c4d5e6f", "SourceKey")
NON_ASCII = "Schicht å ä ö ß ł 日本 😀"


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with graph(sandbox) as raw:
        yield raw


def _sdk_event(key: str, subject: str) -> Event:
    return Event(
        subject=subject,
        body=ItemBody(content="Managed by Planning"),
        start=DateTimeTimeZone(date_time="2026-05-04T09:00:00", time_zone="W. Europe Standard Time"),
        end=DateTimeTimeZone(date_time="2026-05-04T10:30:00", time_zone="W. Europe Standard Time"),
        categories=["Planning"],
        transaction_id=f"txn-{key}",
        is_reminder_on=False,
        response_requested=False,
        single_value_extended_properties=[SingleValueLegacyExtendedProperty(id=TAG, value=key)],
    )


# -- the real SDK ----------------------------------------------------------------------------------------
def test_the_real_sdk_creates_finds_by_tag_updates_and_deletes(sandbox: Sandbox) -> None:
    sent: list[dict[str, Any]] = []

    async def main() -> None:
        with secret_credential(sandbox) as credential:
            async with sdk_http(sandbox, on_request=lambda r: _capture(r, sent)) as http:
                await _lifecycle(sdk_client(sandbox, credential, http))

    async def _lifecycle(client: GraphServiceClient) -> None:
        events = client.users.by_user_id(ASA).events
        created = await events.post(_sdk_event("E-1", NON_ASCII))
        assert created is not None and created.id is not None

        query = EventsRequestBuilder.EventsRequestBuilderGetQueryParameters(
            filter=tag_filter("E-1"), expand=[tag_expand()]
        )
        config = RequestConfiguration(query_parameters=query)
        config.headers.add("Prefer", 'IdType="ImmutableId"')
        config.headers.add("Prefer", 'outlook.timezone="Europe/Berlin"')
        found = await events.get(request_configuration=config)
        assert found is not None and found.value is not None and len(found.value) == 1
        event = found.value[0]
        assert event.id == created.id and event.subject == NON_ASCII and event.categories == ["Planning"]
        assert event.start is not None and event.start.date_time == "2026-05-04T09:00:00.0000000"
        props = event.single_value_extended_properties or []
        assert [(p.id, p.value) for p in props] == [(TAG, "E-1")]
        assert (
            await events.get(
                request_configuration=RequestConfiguration(
                    query_parameters=EventsRequestBuilder.EventsRequestBuilderGetQueryParameters(
                        filter=tag_filter("E-2")
                    )
                )
            )
            is not None
        )

        await events.by_event_id(created.id).patch(Event(subject="Moved", location=None))
        updated = await events.by_event_id(created.id).get()
        assert updated is not None and updated.subject == "Moved" and updated.change_key != created.change_key

        await events.by_event_id(created.id).delete()
        with pytest.raises(ODataError) as missing:
            await events.by_event_id(created.id).get()
        assert missing.value.response_status_code == 404
        assert missing.value.error is not None and missing.value.error.code == "ErrorItemNotFound"

    asyncio.run(main())
    assert sandbox.tenant.items(ASA) == []
    operations = [(e.operation, e.status) for e in sandbox.log.entries(lambda e: e.face == "graph")]
    assert operations == [
        ("POST events", 201),
        ("GET events", 200),
        ("GET events", 200),
        ("PATCH event", 200),
        ("GET event", 200),
        ("DELETE event", 204),
        ("GET event", 404),
    ]
    # Every body the sandbox accepted from the SDK is a microsoft.graph.event per the CSDL.
    schema = csdl.schema()
    assert schema is not None and len(sent) == 2
    for body in sent:
        schema.validate(body, "microsoft.graph.event")


async def _capture(request: httpx.Request, sent: list[dict[str, Any]]) -> None:
    if request.method in ("POST", "PATCH") and request.content:
        sent.append(json.loads(request.content))


def test_the_real_sdk_with_a_certificate_reaches_only_its_scoped_mailboxes(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    from dataclasses import replace

    pem_file, cert_pem = make_certificate(tmp_path)
    sandbox.tenant.apps[SCOPED] = replace(sandbox.tenant.apps[SCOPED], certificate_pem=cert_pem)

    async def main() -> None:
        with certificate_credential(sandbox, SCOPED, pem_file) as credential:
            async with sdk_http(sandbox) as http:
                client = sdk_client(sandbox, credential, http)
                created = await client.users.by_user_id(ASA).events.post(_sdk_event("C-1", "Certificate"))
                assert created is not None and created.subject == "Certificate"
                with pytest.raises(ODataError) as refused:
                    await client.users.by_user_id(JUERGEN).events.post(_sdk_event("C-2", "Not mine"))
                assert refused.value.response_status_code == 403
                assert refused.value.error is not None and refused.value.error.code == "ErrorAccessDenied"
                assert refused.value.error.message == "Access is denied. Check credentials and try again."

    asyncio.run(main())
    assert [i.subject for i in sandbox.tenant.all_items()] == ["Certificate"]


def test_a_batch_through_the_sdk_returns_inner_429s_inside_a_200(sandbox: Sandbox) -> None:
    sandbox.conditions.update(latency_ms=300)

    async def main() -> dict[str, tuple[int, dict[str, str]]]:
        with secret_credential(sandbox) as credential:
            async with sdk_http(sandbox) as http:
                client = sdk_client(sandbox, credential, http)
                batch = BatchRequestContent()
                for n in range(6):
                    info = client.users.by_user_id(ASA).events.to_post_request_information(
                        _sdk_event(f"B-{n}", f"Batch {n}")
                    )
                    batch.add_request(None, BatchRequestItem(info))
                response = await client.batch.post(batch)
                return {
                    k: (v.status or 0, dict(v.headers or {})) for k, v in (response.responses or {}).items()
                }

    answers = asyncio.run(main())
    statuses = sorted(status for status, _ in answers.values())
    assert statuses == [201, 201, 201, 201, 429, 429]  # four in flight per mailbox, as Graph allows
    assert all(int(h["Retry-After"]) >= 1 for s, h in answers.values() if s == 429)
    [entry] = sandbox.log.entries(lambda e: e.face == "graph")
    assert (entry.operation, entry.status, entry.mailbox, entry.write) == ("batch", 200, ASA, True)
    assert sorted(p["status"] for p in entry.parts) == statuses
    assert {p["error_code"] for p in entry.parts if p["status"] == 429} == {"MailboxConcurrency"}
    assert len(sandbox.tenant.items(ASA)) == 4


def test_batch_dependencies_limits_and_mixed_mailboxes(sandbox: Sandbox, client: httpx.Client) -> None:
    requests = [
        {"id": "1", "method": "GET", "url": "/users/asa.lindqvist@contoso.example/events/nope"},
        {
            "id": "2",
            "method": "POST",
            "url": "/users/asa.lindqvist@contoso.example/events",
            "dependsOn": ["1"],
            "headers": {"Content-Type": "application/json"},
            "body": event_body("Dependent", "D-1"),
        },
        {
            "id": "3",
            "method": "POST",
            "url": "users/juergen.weiss@contoso.example/events",
            "headers": {"Content-Type": "application/json"},
            "body": event_body("Own", "D-2"),
        },
    ]
    response = client.post("/$batch", json={"requests": requests})
    assert response.status_code == 200
    by_id = {r["id"]: r for r in response.json()["responses"]}
    assert (by_id["1"]["status"], by_id["2"]["status"], by_id["3"]["status"]) == (404, 424, 201)
    assert by_id["3"]["body"]["subject"] == "Own"
    entry = sandbox.log.entries(lambda e: e.operation == "batch")[-1]
    assert entry.mailbox is None and entry.write and len(entry.parts) == 3
    too_many = [{"id": str(n), "method": "GET", "url": f"/users/{ASA}/events"} for n in range(21)]
    assert client.post("/$batch", json={"requests": too_many}).status_code == 400


# -- schema ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "accepted"),
    [
        ({}, True),
        ({"body": {"contentType": "HTML", "content": "<b>fett</b>"}}, True),
        ({"location": {"displayName": "Raum 1", "locationType": "default"}}, True),
        ({"attendees": [{"emailAddress": {"address": "x@contoso.example"}, "type": "required"}]}, True),
        ({"sensitivity": "private", "importance": "low", "@odata.type": "#microsoft.graph.event"}, True),
        ({"colour": "blue"}, False),  # no such property on event
        ({"start": {"dateTime": "2026-05-04T09:00:00", "zone": "UTC"}}, False),  # nor on dateTimeTimeZone
        ({"body": {"contentType": "markdown", "content": "x"}}, False),  # not a bodyType
        ({"isAllDay": "no"}, False),  # wrong JSON type
        ({"reminderMinutesBeforeStart": "15"}, False),
        ({"categories": "Planning"}, False),
        ({"singleValueExtendedProperties": [{"id": TAG, "value": "k", "extra": 1}]}, False),
    ],
)
def test_bodies_are_held_against_the_csdl(
    sandbox: Sandbox, client: httpx.Client, change: dict[str, Any], accepted: bool
) -> None:
    body = {**event_body("Schema", "S-1"), **change}
    response = client.post(f"/users/{ASA}/events", json=body)
    assert response.status_code == (201 if accepted else 400), response.text
    schema = csdl.schema()
    assert schema is not None
    if accepted:
        schema.validate(body, "microsoft.graph.event")
        patched = client.patch(
            f"/users/{ASA}/events/{response.json()['id']}", json=change or {"subject": "x"}
        )
        assert patched.status_code == 200
    else:
        assert response.json()["error"]["code"] == "RequestBodyRead"
        assert sandbox.tenant.items(ASA) == []


def test_an_unknown_property_gets_graphs_400(client: httpx.Client) -> None:
    response = client.post(f"/users/{ASA}/events", json={**event_body("x", "U-1"), "sourceKey": "U-1"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "RequestBodyRead"
    assert error["message"].startswith(
        "The property 'sourceKey' does not exist on type 'microsoft.graph.event'."
    )
    assert set(error["innerError"]) >= {"request-id", "date"}


# -- throttling and faults ----------------------------------------------------------------------------------------
def test_a_fifth_concurrent_request_to_one_mailbox_gets_429_mailbox_concurrency(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    sandbox.conditions.update(latency_ms=300)
    headers = dict(client.headers)

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=sandbox.graph_url, headers=headers) as concurrent:
            return list(await asyncio.gather(*(concurrent.get(f"/users/{ASA}/events") for _ in range(5))))

    responses = asyncio.run(main())
    refused = [r for r in responses if r.status_code == 429]
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 429]
    assert refused[0].json()["error"]["code"] == "ApplicationThrottled"
    assert "MailboxConcurrency" in refused[0].json()["error"]["message"]
    assert int(refused[0].headers["Retry-After"]) >= 1
    logged = sandbox.log.entries(lambda e: e.face == "graph" and e.status == 429)
    assert [(e.mailbox, e.error_code) for e in logged] == [(ASA, "MailboxConcurrency")]
    assert sandbox.conditions.peak_concurrency()[ASA] == 5


def test_an_injected_503_reaches_the_client_and_the_log(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.conditions.add_fault(Fault("503", face="graph", operation="POST events", times=1, retry_after=2))
    failed = client.post(f"/users/{ASA}/events", json=event_body("Faulted", "F-1"))
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "2"
    assert client.post(f"/users/{ASA}/events", json=event_body("Faulted", "F-1")).status_code == 201
    entries = sandbox.log.entries(lambda e: e.operation == "POST events")
    assert [(e.status, e.fault) for e in entries] == [(503, "503"), (201, None)]


def test_drop_after_commit_commits_and_the_client_sees_a_connection_error(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    sandbox.conditions.add_fault(Fault("drop_after_commit", face="graph", operation="POST events", times=1))
    with pytest.raises(httpx.TransportError):
        client.post(f"/users/{ASA}/events", json=event_body("Committed", "K-1"))
    [item] = sandbox.tenant.items(ASA)
    assert item.subject == "Committed" and item.prop(TAG_KEY) == "K-1"
    [entry] = sandbox.log.entries(lambda e: e.operation == "POST events")
    assert (entry.fault, entry.write, entry.status) == ("drop_after_commit", True, 0)
    # The retry with the same transactionId finds the committed event instead of creating another.
    again = client.post(f"/users/{ASA}/events", json=event_body("Committed", "K-1"))
    assert again.status_code == 201 and again.json()["id"] == item.id
    assert len(sandbox.tenant.items(ASA)) == 1


def test_the_real_sdk_sees_a_dropped_connection_as_an_error(sandbox: Sandbox) -> None:
    sandbox.conditions.add_fault(Fault("drop_after_commit", face="graph", operation="POST events", times=1))

    async def main() -> None:
        with secret_credential(sandbox) as credential:
            async with sdk_http(sandbox) as http:
                client = sdk_client(sandbox, credential, http)
                with pytest.raises(httpx.TransportError):
                    await client.users.by_user_id(ASA).events.post(_sdk_event("S-1", "Dropped"))

    asyncio.run(main())
    assert [i.subject for i in sandbox.tenant.items(ASA)] == ["Dropped"]


def test_reset_timeout_and_batch_wide_drop(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.conditions.add_fault(Fault("reset", face="graph", operation="GET events", times=1))
    with pytest.raises(httpx.TransportError):
        client.get(f"/users/{ASA}/events")
    sandbox.conditions.add_fault(Fault("timeout", face="graph", operation="GET events", times=1, delay=0.2))
    assert client.get(f"/users/{ASA}/events").status_code == 504
    sandbox.conditions.add_fault(Fault("drop_after_commit", face="graph", operation="POST events", times=1))
    body = {
        "requests": [
            {
                "id": "1",
                "method": "POST",
                "url": f"/users/{ASA}/events",
                "body": event_body("In batch", "BD-1"),
            }
        ]
    }
    with pytest.raises(httpx.TransportError):
        client.post("/$batch", json=body)
    assert [i.subject for i in sandbox.tenant.items(ASA)] == ["In batch"]
    assert [e.fault for e in sandbox.log.entries(lambda e: e.face == "graph")] == [
        "reset",
        "timeout",
        "drop_after_commit",
    ]


# -- auth and permissions --------------------------------------------------------------------------------------
def test_401_without_or_with_a_bad_or_expired_token(sandbox: Sandbox, client: httpx.Client) -> None:
    missing = httpx.get(f"{sandbox.graph_url}/users/{ASA}/events")
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "InvalidAuthenticationToken"
    bad = httpx.get(f"{sandbox.graph_url}/users/{ASA}/events", headers={"Authorization": "Bearer nonsense"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert client.get(f"/users/{ASA}/events").status_code == 200
    sandbox.tokens.expire_all()
    expired = client.get(f"/users/{ASA}/events")
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
    assert [e.status for e in sandbox.log.entries(lambda e: e.face == "graph")] == [401, 401, 200, 401]


def test_403_for_a_mailbox_outside_the_apps_scope(sandbox: Sandbox) -> None:
    with graph(sandbox, SCOPED, SCOPED_SECRET) as scoped:
        assert scoped.get(f"/users/{ASA}/calendar").status_code == 200
        refused = scoped.get(f"/users/{JUERGEN}/events")
        assert refused.status_code == 403
        assert refused.json()["error"] == {
            **refused.json()["error"],
            "code": "ErrorAccessDenied",
            "message": "Access is denied. Check credentials and try again.",
        }
        assert (
            scoped.get(f"/users/{JUERGEN}").status_code == 200
        )  # the directory is not scoped, the mailbox is
    assert sandbox.log.entries(lambda e: e.status == 403)[0].principal == SCOPED


def test_unknown_mailbox_and_unknown_event_are_404(client: httpx.Client) -> None:
    user = client.get("/users/nobody@contoso.example")
    assert user.status_code == 404 and user.json()["error"]["code"] == "Request_ResourceNotFound"
    assert client.get("/users/nobody@contoso.example/events").status_code == 404
    event = client.get(f"/users/{ASA}/events/AAMkNope")
    assert event.status_code == 404 and event.json()["error"]["code"] == "ErrorItemNotFound"


def test_if_match_with_a_stale_etag_is_412(sandbox: Sandbox, client: httpx.Client) -> None:
    created = client.post(f"/users/{ASA}/events", json=event_body("Etag", "I-1")).json()
    assert created["@odata.etag"] == f'W/"{created["changeKey"]}"'
    path = f"/users/{ASA}/events/{created['id']}"
    first = client.patch(path, json={"subject": "One"}, headers={"If-Match": created["@odata.etag"]})
    assert first.status_code == 200
    stale = client.patch(path, json={"subject": "Two"}, headers={"If-Match": created["@odata.etag"]})
    assert stale.status_code == 412 and stale.json()["error"]["code"] == "ErrorIrresolvableConflict"
    assert client.delete(path, headers={"If-Match": created["@odata.etag"]}).status_code == 412
    assert client.delete(path, headers={"If-Match": first.json()["@odata.etag"]}).status_code == 204


# -- queries -------------------------------------------------------------------------------------------------------
def test_paging_with_top_follows_absolute_next_links(sandbox: Sandbox, client: httpx.Client) -> None:
    for n in range(5):
        assert (
            client.post(f"/users/{ASA}/events", json=event_body(f"P{n}", f"P-{n}", day=10 - n)).status_code
            == 201
        )
    url: str | None = f"{sandbox.graph_url}/users/{ASA}/events?$top=2&$orderby=start/dateTime&$select=subject"
    pages: list[list[str]] = []
    while url:
        assert url.startswith("http://")
        page = client.get(url).json()
        pages.append([e["subject"] for e in page["value"]])
        assert all(set(e) <= {"@odata.etag", "id", "subject"} for e in page["value"])
        url = page.get("@odata.nextLink")
    assert pages == [["P4", "P3"], ["P2", "P1"], ["P0"]]


def test_tag_filter_is_case_sensitive_in_the_name_and_combines_with_or(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    for key in ("A", "B", "C"):
        client.post(f"/users/{ASA}/events", json=event_body(key, key))
    both = f"{tag_filter('A')} or {tag_filter('C')}".replace("Any(", "any(", 1)
    found = client.get(f"/users/{ASA}/events", params={"$filter": both}).json()["value"]
    assert sorted(e["subject"] for e in found) == ["A", "C"]
    assert "singleValueExtendedProperties" not in found[0]  # only with $expand
    lower = tag_filter("A").replace("SourceKey", "sourcekey")
    assert client.get(f"/users/{ASA}/events", params={"$filter": lower}).json()["value"] == []
    guid_upper = tag_filter("A").replace("6f1c0a5e", "6F1C0A5E")
    assert len(client.get(f"/users/{ASA}/events", params={"$filter": guid_upper}).json()["value"]) == 1
    combined = f"{tag_filter('B')} and start/dateTime ge '2026-05-04T00:00:00' and end/dateTime le '2026-05-05T00:00:00'"
    assert [
        e["subject"] for e in client.get(f"/users/{ASA}/events", params={"$filter": combined}).json()["value"]
    ] == ["B"]
    bad = client.get(f"/users/{ASA}/events", params={"$filter": "colour eq 'blue'"})
    assert bad.status_code == 400


def test_calendar_view_windows_and_expands(client: httpx.Client) -> None:
    client.post(f"/users/{ASA}/events", json=event_body("In", "V-1", day=4))
    client.post(f"/users/{ASA}/events", json=event_body("Out", "V-2", day=20))
    params = {
        "startDateTime": "2026-05-01T00:00:00Z",
        "endDateTime": "2026-05-08T00:00:00Z",
        "$expand": tag_expand(),
    }
    view = client.get(f"/users/{ASA}/calendar/calendarView", params=params).json()["value"]
    assert [(e["subject"], e["singleValueExtendedProperties"][0]["value"]) for e in view] == [("In", "V-1")]
    assert client.get(f"/users/{ASA}/calendarView").status_code == 400
    calendars = client.get(f"/users/{ASA}/calendars").json()["value"]
    assert [c["isDefaultCalendar"] for c in calendars] == [True]


def test_transaction_id_makes_a_repeated_post_return_the_first_event(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    first = client.post(f"/users/{ASA}/events", json=event_body("Once", "T-1"))
    second = client.post(f"/users/{ASA}/events", json=event_body("Once", "T-1"))
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] == second.json()["id"] and len(sandbox.tenant.items(ASA)) == 1


# -- time zones, all-day, text ----------------------------------------------------------------------------------------
def test_windows_zone_names_are_accepted_and_answers_follow_prefer(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    body = event_body("Zoned", "Z-1", zone="W. Europe Standard Time")
    created = client.post(f"/users/{ASA}/events", json=body).json()
    [item] = sandbox.tenant.items(ASA)
    assert item.timezone == "Europe/Berlin" and item.start == datetime(2026, 5, 4, 7, tzinfo=UTC)
    assert created["originalStartTimeZone"] == "W. Europe Standard Time"
    path = f"/users/{ASA}/events/{created['id']}"
    utc = client.get(path).json()
    assert utc["start"] == {"dateTime": "2026-05-04T07:00:00.0000000", "timeZone": "UTC"}
    pacific = client.get(path, headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'})
    assert pacific.json()["start"] == {
        "dateTime": "2026-05-04T00:00:00.0000000",
        "timeZone": "Pacific Standard Time",
    }
    assert pacific.headers["Preference-Applied"] == 'outlook.timezone="Pacific Standard Time"'
    unknown = client.post(f"/users/{ASA}/events", json=event_body("Bad", "Z-2", zone="Mars/Olympus"))
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "TimeZoneNotSupportedException"


def test_all_day_events_round_trip_as_midnights(sandbox: Sandbox, client: httpx.Client) -> None:
    body = {
        **event_body("Holiday", "AD-1"),
        "isAllDay": True,
        "start": {"dateTime": "2026-12-24T00:00:00", "timeZone": "Europe/Stockholm"},
        "end": {"dateTime": "2026-12-27T00:00:00", "timeZone": "Europe/Stockholm"},
    }
    created = client.post(f"/users/{ASA}/events", json=body).json()
    tokyo = client.get(
        f"/users/{ASA}/events/{created['id']}", headers={"Prefer": 'outlook.timezone="Asia/Tokyo"'}
    ).json()
    assert tokyo["isAllDay"] is True
    assert (tokyo["start"]["dateTime"], tokyo["end"]["dateTime"]) == (
        "2026-12-24T00:00:00.0000000",
        "2026-12-27T00:00:00.0000000",
    )
    not_midnight = {**body, "start": {"dateTime": "2026-12-24T08:00:00", "timeZone": "Europe/Stockholm"}}
    assert client.post(f"/users/{ASA}/events", json=not_midnight).status_code == 400


def test_non_ascii_text_round_trips(sandbox: Sandbox, client: httpx.Client) -> None:
    body = {**event_body(NON_ASCII, "Ü-ł-日本"), "location": {"displayName": "Konferenzraum Süd 会議室"}}
    body["body"] = {"contentType": "text", "content": f"{NON_ASCII}\nZeile 2"}
    created = client.post(f"/users/{ASA}/events", json=body).json()
    read = client.get(f"/users/{ASA}/events/{created['id']}", params={"$expand": tag_expand()}).json()
    assert read["subject"] == NON_ASCII and read["location"]["displayName"] == "Konferenzraum Süd 会議室"
    assert read["body"]["content"] == f"{NON_ASCII}\nZeile 2"
    assert read["singleValueExtendedProperties"][0]["value"] == "Ü-ł-日本"
    found = client.get(f"/users/{ASA}/events", params={"$filter": tag_filter("Ü-ł-日本")}).json()["value"]
    assert [e["id"] for e in found] == [created["id"]]
