"""One tenant, two faces: an event written through EWS is found through Graph by the same ownership tag
with the same subject, times and categories, and the other way round (real exchangelib, raw Graph)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import exchangelib  # type: ignore[import-untyped]
import pytest
from exchangelib import IMPERSONATION, CalendarItem, EWSDateTime, EWSTimeZone
from exchangelib.items import SEND_TO_NONE  # type: ignore[import-untyped]

from sandbox.server import Sandbox

from .ews_client import SOURCE_SET_ID, account
from .graph_client import ASA, graph

TAG = f"String {{{SOURCE_SET_ID}}} Name SourceKey"
BERLIN = EWSTimeZone("Europe/Berlin")


@pytest.fixture
def tenant(sandbox: Sandbox) -> Iterator[Sandbox]:
    exchangelib.protocol.close_connections()
    yield sandbox
    exchangelib.protocol.close_connections()


def find_in_graph(sandbox: Sandbox, key: str, zone: str = "Europe/Berlin") -> list[dict[str, object]]:
    with graph(sandbox) as client:
        response = client.get(
            f"/users/{ASA}/events",
            params={
                "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{TAG}' and ep/value eq '{key}')",
                "$expand": f"singleValueExtendedProperties($filter=id eq '{TAG}')",
            },
            headers={"Prefer": f'outlook.timezone="{zone}"'},
        )
    assert response.status_code == 200, response.text
    found: list[dict[str, object]] = response.json()["value"]
    return found


def test_an_event_written_through_ews_is_found_through_graph_by_its_tag(tenant: Sandbox) -> None:
    mailbox = account(tenant, ASA, IMPERSONATION)
    item = CalendarItem(
        account=mailbox,
        folder=mailbox.calendar,
        subject="Frühschicht 日本 😀",
        start=EWSDateTime(2027, 3, 29, 9, 0, tzinfo=BERLIN),
        end=EWSDateTime(2027, 3, 29, 17, 0, tzinfo=BERLIN),
        categories=["Planning", "Früh"],
        legacy_free_busy_status="Busy",
        reminder_is_set=False,
    )
    item.source_key = "CROSS-1"
    (created,) = mailbox.bulk_create(mailbox.calendar, [item], send_meeting_invitations=SEND_TO_NONE)
    assert not isinstance(created, Exception)

    (event,) = find_in_graph(tenant, "CROSS-1")
    assert event["subject"] == "Frühschicht 日本 😀"
    assert event["categories"] == ["Planning", "Früh"]
    assert event["showAs"] == "busy" and event["isReminderOn"] is False
    assert event["start"] == {"dateTime": "2027-03-29T09:00:00.0000000", "timeZone": "Europe/Berlin"}
    assert event["end"] == {"dateTime": "2027-03-29T17:00:00.0000000", "timeZone": "Europe/Berlin"}
    assert event["singleValueExtendedProperties"] == [{"id": TAG, "value": "CROSS-1"}]
    assert event["id"] == created.id  # one item, one id, whichever face asks


def test_an_event_written_through_graph_is_found_through_ews_by_its_tag(tenant: Sandbox) -> None:
    body = {
        "subject": "Interview Åsa ß ł",
        "body": {"contentType": "text", "content": "Raum 3"},
        "start": {"dateTime": "2027-03-29T09:00:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2027-03-29T10:30:00", "timeZone": "Europe/Berlin"},
        "categories": ["Planning", "Interview"],
        "showAs": "tentative",
        "isReminderOn": False,
        "responseRequested": False,
        "singleValueExtendedProperties": [{"id": TAG, "value": "CROSS-2"}],
    }
    with graph(tenant) as client:
        posted = client.post(f"/users/{ASA}/events", json=body)
    assert posted.status_code == 201, posted.text

    mailbox = account(tenant, ASA, IMPERSONATION)
    (item,) = list(mailbox.calendar.filter(source_key="CROSS-2"))
    assert item.id == posted.json()["id"]
    assert item.subject == "Interview Åsa ß ł"
    assert item.categories == ["Planning", "Interview"]
    assert item.legacy_free_busy_status == "Tentative"
    assert item.start.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M") == "2027-03-29 09:00"
    assert item.end.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M") == "2027-03-29 10:30"
    assert item.source_key == "CROSS-2"


def test_all_day_events_keep_their_dates_across_faces(tenant: Sandbox) -> None:
    mailbox = account(tenant, ASA, IMPERSONATION)
    item = CalendarItem(
        account=mailbox,
        folder=mailbox.calendar,
        subject="Silvester",
        start=EWSDateTime(2026, 12, 31, 0, 0, tzinfo=BERLIN),
        end=EWSDateTime(2027, 1, 1, 0, 0, tzinfo=BERLIN),
        is_all_day=True,
    )
    item.source_key = "CROSS-3"
    mailbox.bulk_create(mailbox.calendar, [item], send_meeting_invitations=SEND_TO_NONE)
    (event,) = find_in_graph(tenant, "CROSS-3", zone="Asia/Tokyo")
    assert event["isAllDay"] is True
    assert str(event["start"]["dateTime"]).startswith(date(2026, 12, 31).isoformat())  # type: ignore[index]
    assert str(event["end"]["dateTime"]).startswith(date(2027, 1, 1).isoformat())  # type: ignore[index]
