"""The web API source against a real HTTP server on 127.0.0.1: both paging styles, auth headers, the
window and owner parameters, field mapping, retries with back-off and Retry-After, and the errors that
fail a whole read (naming the URL and status, never a credential)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.source.http import (
    HttpAuth,
    HttpEndpoint,
    HttpScheduleSource,
    HttpTargetSource,
    shown_url,
)
from connector.errors import SourceError
from connector.models import Rejected, ScheduleEntry, Target, TargetKind, TimedSpan
from connector.window import Window
from sandbox.server import Sandbox
from tests.http_api import Answer, ApiServer, Seen, serve

PARIS = ZoneInfo("Europe/Paris")
# 2026-11-16 00:00 .. 2027-01-15 00:00 in Paris, i.e. 2026-11-15T23:00Z .. 2027-01-14T23:00Z.
WINDOW = Window.around(date(2026, 11, 16), PARIS, days_before=0, days_after=60)
TOKEN = "tok-9f8e7d6c5b4a"


@pytest.fixture
def api() -> Iterator[ApiServer]:
    yield from serve()


def item(n: int, owner: str = "E1", **fields: Any) -> dict[str, Any]:
    return {
        "id": f"S{n:03}",
        "employee": {"number": owner, "name": "Åsa"},
        "from": f"2026-12-{1 + n % 28:02}T09:00",
        "to": f"2026-12-{1 + n % 28:02}T17:00",
        "title": f"Shift {n}",
        **fields,
    }


COLUMNS = {"key": "id", "owner": "employee.number", "start": "from", "end": "to"}


def source(api: ApiServer, path: str = "/shifts", sleep: Any = None, **settings: Any) -> HttpScheduleSource:
    window = {
        k: settings.pop(k)
        for k in ("window_start_param", "window_end_param", "window_format")
        if k in settings
    }
    owner_param = settings.pop("owner_param", "")
    columns = settings.pop("columns", COLUMNS)
    endpoint = HttpEndpoint(
        url=api.base + path, auth=HttpAuth("bearer", token=TOKEN), backoff_s=0.01, timeout_s=2, **settings
    )
    extra = {"sleep": sleep} if sleep is not None else {}
    return HttpScheduleSource(
        endpoint, default_zone="Europe/Paris", columns=columns, owner_param=owner_param, **window, **extra
    )


def keys(items: list[ScheduleEntry | Rejected]) -> list[str]:
    assert all(isinstance(i, ScheduleEntry) for i in items), [i for i in items if isinstance(i, Rejected)]
    return [i.source_key for i in items]


def fails(src: HttpScheduleSource, owner: str | None = None) -> SourceError:
    with pytest.raises(SourceError) as caught:
        list(src.read(WINDOW, owner))
    assert TOKEN not in str(caught.value)
    return caught.value


# --- paging --------------------------------------------------------------------------------------


def test_next_link_paging_follows_odata_links_absolute_and_relative(api: ApiServer) -> None:
    pages = {
        "/shifts": {"value": [item(1), item(2)], "@odata.nextLink": f"{api.base}/shifts/p2?$skiptoken=abc"},
        "/shifts/p2": {
            "value": [item(3, project="Apollo", hours=8, tags=["x"])],
            "@odata.nextLink": "p3?$skiptoken=def",
        },
        "/shifts/p3": {"value": [item(4)]},
    }
    api.answer = lambda seen: Answer(body=pages[seen.path])
    src = source(
        api,
        paging="next_link",
        items_path="value",
        next_path="@odata.nextLink",
        window_start_param="from",
        window_end_param="to",
    )
    found = list(src.read(WINDOW))
    assert keys(found) == ["S001", "S002", "S003", "S004"]
    assert api.paths() == ["/shifts", "/shifts/p2", "/shifts/p3"]
    first, second = api.requests[0], api.requests[1]
    assert first.query == {"from": "2026-11-15T23:00:00Z", "to": "2027-01-14T23:00:00Z"}
    assert second.query == {"$skiptoken": "abc"}  # a next link carries its own query
    assert all(seen.headers["authorization"] == f"Bearer {TOKEN}" for seen in api.requests)
    entry = found[2]
    assert isinstance(entry, ScheduleEntry)
    assert entry.owner == "E1" and entry.origin == "http page 2 item 1 (key S003)"
    assert isinstance(entry.span, TimedSpan) and entry.span.start == datetime(2026, 12, 4, 9, tzinfo=PARIS)
    # Unmapped plain fields pass through for the templates; nested ones that are not mapped do not.
    assert entry.extra == {"project": "Apollo", "hours": "8"}


def test_next_link_at_a_dotted_path_or_in_the_link_header(api: ApiServer) -> None:
    def answer(seen: Seen) -> Answer:
        if seen.path == "/a":
            return Answer(body={"data": [item(1)], "links": {"next": "/b"}})
        if seen.path == "/b":
            return Answer(body={"data": [item(2)], "links": {"next": None}})
        if seen.path == "/h":
            return Answer(body=[item(3)], headers={"Link": f'<{api.base}/h2>; rel="next"'})
        return Answer(body=[item(4)])

    api.answer = answer
    dotted = source(api, "/a", paging="next_link", items_path="data", next_path="links.next")
    assert keys(list(dotted.read(WINDOW))) == ["S001", "S002"]
    header = source(api, "/h", paging="next_link")
    assert keys(list(header.read(WINDOW))) == ["S003", "S004"]


def test_page_paging_stops_on_an_empty_page_and_sends_the_page_size(api: ApiServer) -> None:
    data = [item(n) for n in range(7)]
    api.answer = lambda seen: Answer(
        body={"items": data[(int(seen.query["page"]) - 1) * 3 :][:3], "total": len(data)}
    )
    src = source(api, paging="page", items_path="items", page_size_param="per_page", page_size=3)
    assert len(keys(list(src.read(WINDOW)))) == 7
    assert [seen.query for seen in api.requests] == [
        {"per_page": "3", "page": str(n)}
        for n in (1, 2, 3, 4)  # the 4th page is the empty one
    ]
    api.requests.clear()
    short = source(
        api, paging="page", items_path="items", page_size_param="per_page", page_size=3, stop_on="short"
    )
    assert len(list(short.read(WINDOW))) == 7 and len(api.requests) == 3
    api.requests.clear()
    total = source(api, paging="page", items_path="items", stop_on="total", total_path="total")
    assert len(list(total.read(WINDOW))) == 7 and len(api.requests) == 3


def test_offset_paging_counts_the_items_read_and_can_start_pages_at_zero(api: ApiServer) -> None:
    data = [item(n) for n in range(5)]
    api.answer = lambda seen: Answer(
        body=data[int(seen.query.get("skip", "0")) :][: int(seen.query.get("top", "2"))]
    )
    src = source(api, paging="offset", offset_param="skip", page_size_param="top", page_size=2)
    assert len(keys(list(src.read(WINDOW)))) == 5
    assert [seen.query["skip"] for seen in api.requests] == ["0", "2", "4", "5"]
    api.requests.clear()
    api.answer = lambda seen: Answer(
        body=[item(int(seen.query["p"]))] if seen.query["p"] in ("0", "1") else []
    )
    zero = source(api, paging="page", page_param="p", page_start=0)
    assert keys(list(zero.read(WINDOW))) == ["S000", "S001"]


def test_a_server_that_ignores_the_page_parameter_is_caught(api: ApiServer) -> None:
    api.answer = lambda seen: Answer(body=[item(1), item(2)])
    error = fails(source(api, paging="page"))
    assert "same items as page 1" in error.message and "paging" in (error.fix or "")
    assert len(api.requests) == 2


def test_a_next_link_that_points_back_is_caught(api: ApiServer) -> None:
    api.answer = lambda seen: Answer(body={"value": [item(1)], "next": f"{api.base}/shifts"})
    error = fails(source(api, paging="next_link", items_path="value", next_path="next"))
    assert "already read page" in error.message


# --- parameters and auth ---------------------------------------------------------------------------


def test_window_formats_owner_parameter_and_fixed_parameters_and_headers(api: ApiServer) -> None:
    api.answer = lambda seen: Answer(body=[item(1, "E7")])
    src = source(
        api,
        "/shifts?tenant=north&status=draft",
        window_start_param="start",
        window_end_param="end",
        window_format="local",
        owner_param="employee",
        params={"status": "active"},
        headers={"X-Client": "connector-test"},
    )
    keys(list(src.read(WINDOW, owner="E7")))
    keys(list(src.read(WINDOW)))
    narrowed, everything = api.requests
    assert narrowed.query == {
        "tenant": "north",  # the URL's own query stays, a parameter of the same name wins
        "status": "active",
        "start": "2026-11-16T00:00:00",
        "end": "2027-01-15T00:00:00",
        "employee": "E7",
    }
    assert "employee" not in everything.query
    assert narrowed.headers["x-client"] == "connector-test"
    api.requests.clear()
    dates = source(api, window_start_param="from", window_end_param="until", window_format="date")
    keys(list(dates.read(WINDOW)))
    assert api.requests[0].query == {"from": "2026-11-16", "until": "2027-01-15"}


def test_basic_and_custom_header_auth_are_sent(api: ApiServer) -> None:
    api.answer = lambda seen: Answer(body=[item(1)])
    basic = replace(source(api)._pages.endpoint, auth=HttpAuth("basic", username="svc", password="pa55-word"))
    HttpScheduleSource(basic, default_zone="UTC", columns=COLUMNS).read(WINDOW).__next__()
    assert api.requests[-1].headers["authorization"] == "Basic c3ZjOnBhNTUtd29yZA=="
    custom = replace(basic, auth=HttpAuth("header", header_name="X-Api-Key", header_value="k-123"))
    list(HttpScheduleSource(custom, default_zone="UTC", columns=COLUMNS).read(WINDOW))
    assert api.requests[-1].headers["x-api-key"] == "k-123"
    assert "authorization" not in api.requests[-1].headers


# --- rows ----------------------------------------------------------------------------------------


def test_bad_items_are_rejected_with_reasons_and_the_rest_is_read(api: ApiServer) -> None:
    api.answer = lambda seen: Answer(
        body=[
            item(1),
            "not an object",
            item(2, **{"from": "31.12.2026"}),
            item(3, employee={"number": None}),
            item(4, reminder_minutes=[15]),
            item(5, status="cancelled"),
        ]
    )
    found = list(source(api).read(WINDOW))
    good = [i for i in found if isinstance(i, ScheduleEntry)]
    bad = {i.origin: i.reason for i in found if isinstance(i, Rejected)}
    assert [g.source_key for g in good] == ["S001"]
    assert "not an object" in bad["http page 1 item 2"]
    assert "'31.12.2026' is not a date/time" in bad["http page 1 item 3 (key S002)"]
    assert "owner is missing" in bad["http page 1 item 4 (key S003)"]
    assert "structured value" in bad["http page 1 item 5 (key S004)"]
    assert len(found) == 5  # the cancelled item yields nothing


def test_a_mapping_no_item_matches_is_a_source_error(api: ApiServer) -> None:
    api.answer = lambda seen: Answer(body=[item(1), item(2)])
    error = fails(source(api, columns=COLUMNS | {"owner": "employee.id"}))
    assert "employee.id (for owner)" in error.message and "id, employee, from, to, title" in error.message
    error = fails(source(api, columns={"key": "id"}))
    assert "owner, start" in error.message


def test_items_at_the_wrong_path_or_no_json_are_source_errors(api: ApiServer) -> None:
    api.answer = lambda seen: Answer(body={"data": {"rows": [item(1)]}, "count": 1})
    error = fails(source(api, items_path="items"))
    assert "holds nothing at 'items'" in error.message and "data, count" in (error.fix or "")
    assert keys(list(source(api, items_path="/data/rows").read(WINDOW))) == ["S001"]
    api.answer = lambda seen: Answer(body=b"<html>login</html>", headers={"Content-Type": "text/html"})
    assert "is not JSON (text/html)" in fails(source(api)).message


# --- failures, retries ----------------------------------------------------------------------------


def test_a_timeout_is_retried_then_fails_with_a_clear_error(api: ApiServer) -> None:
    def slow(seen: Seen) -> Answer:
        time.sleep(0.6)
        return Answer(body=[item(1)])

    api.answer = slow
    src = source(api, params={"api_key": "query-secret"}, retries=2)
    endpoint = replace(src._pages.endpoint, timeout_s=0.2)
    started = time.monotonic()
    error = fails(HttpScheduleSource(endpoint, default_zone="UTC", columns=COLUMNS))
    assert time.monotonic() - started < 3
    assert len(api.requests) == 3  # the first try and two retries
    assert error.message == (
        f"reading {api.base}/shifts?api_key=*** failed after 3 attempts: no answer within 0.2 s"
    )
    assert "query-secret" not in str(error) and "timeout_s" in (error.fix or "")
    assert "nothing is deleted" in (error.fix or "")


def test_a_500_is_retried_with_back_off_then_fails_naming_url_and_status(api: ApiServer) -> None:
    api.answer = lambda seen: Answer(500, {"error": f"database down, token {TOKEN}"})
    waits: list[float] = []
    error = fails(source(api, retries=3, sleep=waits.append))
    assert len(api.requests) == 4
    assert waits == [0.01, 0.02, 0.04]
    assert (
        error.message == f"reading {api.base}/shifts failed after 4 attempts: HTTP 500 Internal Server Error"
    )
    assert "check its health" in (error.fix or "")


def test_429_and_503_honour_retry_after_and_then_succeed(api: ApiServer) -> None:
    answers = iter(
        [
            Answer(429, {}, {"Retry-After": "2"}),
            Answer(503, {}, {"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"}),  # a date in the past: now
            Answer(body=[item(1)]),
        ]
    )
    api.answer = lambda seen: next(answers)
    waits: list[float] = []
    assert keys(list(source(api, sleep=waits.append).read(WINDOW))) == ["S001"]
    assert waits == [2.0, 0.0]


def test_a_retry_after_longer_than_allowed_fails_at_once(api: ApiServer) -> None:
    api.answer = lambda seen: Answer(429, {}, {"Retry-After": "3600"})
    error = fails(source(api, sleep=lambda s: None, max_retry_wait_s=30))
    assert len(api.requests) == 1
    assert "asks to wait 3600 s, longer than source.max_retry_wait_s (30 s)" in error.message
    assert "throttles" in (error.fix or "")


def test_refusals_are_not_retried_and_name_the_fix(api: ApiServer) -> None:
    api.answer = lambda seen: Answer(401, {"error": f"bad token {TOKEN}"})
    error = fails(source(api))
    assert len(api.requests) == 1
    assert "refused the request: HTTP 401 Unauthorized" in error.message
    assert "***" in error.message  # the server echoed the token: masked
    assert "credentials" in (error.fix or "")
    api.answer = lambda seen: Answer(404, {"error": "no such route"})
    assert "check source.url" in (fails(source(api)).fix or "")
    api.answer = lambda seen: Answer(302, b"", {"Location": "https://elsewhere.example/login?token=zzz"})
    error = fails(source(api))
    assert "redirects (HTTP 302) to https://elsewhere.example/login?token=***" in error.message


def test_a_server_that_is_not_there_is_retried_then_a_source_error() -> None:
    endpoint = HttpEndpoint(url="http://127.0.0.1:1/shifts", retries=1, backoff_s=0.01, timeout_s=2)
    with pytest.raises(SourceError) as caught:
        list(HttpScheduleSource(endpoint, default_zone="UTC", columns=COLUMNS).read(WINDOW))
    assert caught.value.message.startswith(
        "reading http://127.0.0.1:1/shifts failed after 2 attempts: cannot connect"
    )


def test_a_failure_on_a_later_page_fails_the_read_after_earlier_pages(api: ApiServer) -> None:
    api.answer = lambda seen: (
        Answer(body=[item(1)]) if seen.query["page"] == "1" else Answer(503, {"error": "maintenance"})
    )
    items = source(api, paging="page", retries=0).read(WINDOW)
    assert next(items).source_key == "S001"
    with pytest.raises(SourceError, match=r"page=2 failed after 1 attempt: HTTP 503"):
        next(items)


@pytest.mark.sandbox
def test_https_needs_a_trusted_certificate_and_ca_file_adds_one(sandbox_server: Sandbox) -> None:
    # The sandbox's OAuth authority serves TLS with a CA of its own; any path will do for the handshake.
    info = sandbox_server.info()
    endpoint = HttpEndpoint(url=info["authority"] + "/shifts", retries=3, backoff_s=0.01)
    with pytest.raises(SourceError) as caught:
        list(HttpScheduleSource(endpoint, default_zone="UTC", columns=COLUMNS).read(WINDOW))
    assert "is not trusted" in caught.value.message and "ca_file" in (caught.value.fix or "")
    trusted = replace(endpoint, ca_file=Path(info["ca_file"]))
    with pytest.raises(SourceError, match="refused the request: HTTP 404"):
        list(HttpScheduleSource(trusted, default_zone="UTC", columns=COLUMNS).read(WINDOW))
    missing = replace(endpoint, ca_file=Path("/nonexistent/ca.pem"))
    with pytest.raises(SourceError, match=r"cannot load the CA file /nonexistent/ca\.pem"):
        list(HttpScheduleSource(missing, default_zone="UTC", columns=COLUMNS).read(WINDOW))


# --- targets -------------------------------------------------------------------------------------


def test_targets_from_a_paged_api(api: ApiServer) -> None:
    pages = {
        "1": [
            {"mail": "Anna@Contoso.example", "staff": {"no": "E1"}, "active": True, "name": "Anna"},
            {"mail": "room1@contoso.example", "staff": {"no": "R1"}, "type": "room", "active": 1},
        ],
        "2": [{"mail": "bo@contoso.example", "staff": {"no": "E2"}, "active": False}],
    }
    api.answer = lambda seen: Answer(body={"users": pages.get(seen.query["page"], [])})
    endpoint = HttpEndpoint(url=api.base + "/users", items_path="users", paging="page")
    targets = HttpTargetSource(
        endpoint,
        columns={
            "address": "mail",
            "owner_key": "staff.no",
            "kind": "type",
            "enabled": "active",
            "display_name": "name",
        },
    )
    found = list(targets.read_targets())
    assert found == [
        Target("anna@contoso.example", "E1", TargetKind.USER, True, "Anna"),
        Target("room1@contoso.example", "R1", TargetKind.ROOM, True, ""),
        Target("bo@contoso.example", "E2", TargetKind.USER, False, ""),
    ]
    assert targets.describe() == f"web API {api.base}/users"


def test_shown_urls_lose_credentials_and_secret_query_values() -> None:
    assert (
        shown_url("https://user:pw@api.example.com:8443/v1/x?page=2&access_token=abc&apiKey=k&q=a b")
        == "https://api.example.com:8443/v1/x?page=2&access_token=***&apiKey=***&q=a+b"
    )
    assert shown_url("https://[::1]/x") == "https://[::1]/x"
    assert WINDOW.start == datetime(2026, 11, 15, 23, tzinfo=UTC)
