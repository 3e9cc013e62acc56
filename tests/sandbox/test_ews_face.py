"""The sandbox's EWS face against the real exchangelib, used directly (no adapter of ours).

Every SOAP request and response these tests exchange is held against the EWS XSD (``ews`` fixture:
``validate_soap`` on, zero violations asserted after each test).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import exchangelib.protocol  # type: ignore[import-untyped]
import pytest
import requests
from exchangelib import (
    DELEGATE,
    IMPERSONATION,
    Account,
    CalendarItem,
    EWSDate,
    EWSDateTime,
    EWSTimeZone,
    Identity,
)
from exchangelib.errors import (  # type: ignore[import-untyped]
    ErrorAccessDenied,
    ErrorImpersonateUserDenied,
    ErrorInvalidExchangeImpersonationHeaderData,
    ErrorIrresolvableConflict,
    ErrorItemNotFound,
    ErrorNonExistentMailbox,
    ErrorServerBusy,
    ErrorTimeoutExpired,
    MalformedResponseError,
    UnauthorizedError,
)
from exchangelib.folders import Calendar  # type: ignore[import-untyped]
from exchangelib.items import SEND_TO_NONE  # type: ignore[import-untyped]
from exchangelib.properties import ItemId  # type: ignore[import-untyped]

from sandbox.conditions import Fault
from sandbox.ews.soap import SERVER_VERSION
from sandbox.server import Sandbox
from sandbox.tenant import EwsPolicy, prop_key
from tests.sandbox.ews_client import (
    DELEGATE_ACCOUNT,
    EXCHANGE_2019,
    SERVICE,
    SOURCE_SET_ID,
    USER_PASSWORD,
    SandboxOAuth2Credentials,
    account,
    basic,
    configuration,
    create_item_xml,
    envelope,
    post_raw,
    register_source_key,
)

pytestmark = pytest.mark.sandbox

ASA = "asa.lindqvist@contoso.example"
BJORN = "bjorn.ostergaard@contoso.example"
JUERGEN = "juergen.weiss@contoso.example"
BERLIN = EWSTimeZone("Europe/Berlin")
TAG = prop_key(SOURCE_SET_ID, "SourceKey", "String")


@pytest.fixture
def ews(sandbox: Sandbox) -> Iterator[Sandbox]:
    """The sandbox with SOAP schema validation on; fails the test on any violation."""
    exchangelib.protocol.close_connections()
    sandbox.validate_soap = True
    sandbox.soap_violations.clear()
    yield sandbox
    exchangelib.protocol.close_connections()
    violations = list(sandbox.soap_violations)
    sandbox.soap_violations.clear()
    assert violations == [], "SOAP traffic that breaks the EWS schema"


def _event(acct: Account, key: str, day: int = 4, hour: int = 9, **fields: Any) -> CalendarItem:
    return CalendarItem(
        account=acct,
        folder=acct.calendar,
        subject=fields.pop("subject", f"Shift {key}"),
        start=EWSDateTime(2027, 1, day, hour, 0, tzinfo=BERLIN),
        end=EWSDateTime(2027, 1, day, hour + 2, 0, tzinfo=BERLIN),
        source_key=key,
        categories=["Planning"],
        reminder_is_set=False,
        legacy_free_busy_status="Busy",
        **fields,
    )


def _crud_round_trip(sandbox: Sandbox, acct: Account, mailbox: str) -> None:
    """What the connector does with a mailbox: create tagged events, find them by tag and by calendar
    view, update them, delete them."""
    calendar = acct.calendar
    created = acct.bulk_create(
        folder=calendar,
        items=[_event(acct, f"entry-{n}", day=4 + n) for n in range(3)],
        send_meeting_invitations=SEND_TO_NONE,
    )
    assert all(not isinstance(r, Exception) for r in created)
    stored = sandbox.tenant.items(mailbox)
    assert sorted(i.prop(TAG) or "" for i in stored) == ["entry-0", "entry-1", "entry-2"]
    assert {i.categories for i in stored} == {("Planning",)}

    # By tag: a FindItem restriction on the extended property, then GetItem.
    (found,) = calendar.filter(source_key="entry-1")
    assert (found.subject, found.source_key) == ("Shift entry-1", "entry-1")
    assert found.start.astimezone(BERLIN) == EWSDateTime(2027, 1, 5, 9, 0, tzinfo=BERLIN)

    # By calendar view: only what overlaps [Jan 5, Jan 6).
    window = calendar.view(
        start=EWSDateTime(2027, 1, 5, tzinfo=BERLIN), end=EWSDateTime(2027, 1, 6, tzinfo=BERLIN)
    )
    assert [i.source_key for i in window] == ["entry-1"]

    # Update: one by save(update_fields), two by bulk_update.
    found.subject = "Late shift"
    found.location = "Hall 3"
    found.save(update_fields=["subject", "location"])
    others = list(calendar.filter(source_key__in=["entry-0", "entry-2"]))
    for item in others:
        item.end = item.end + dt.timedelta(hours=1)
    updated = acct.bulk_update(
        items=[(i, ["end"]) for i in others], send_meeting_invitations_or_cancellations=SEND_TO_NONE
    )
    assert all(not isinstance(r, Exception) for r in updated)
    by_key = {i.prop(TAG): i for i in sandbox.tenant.items(mailbox)}
    assert (by_key["entry-1"].subject, by_key["entry-1"].location) == ("Late shift", "Hall 3")
    assert by_key["entry-0"].end - by_key["entry-0"].start == dt.timedelta(hours=3)

    # Delete everything we made.
    deleted = acct.bulk_delete(
        ids=[(r.id, r.changekey) for r in created], send_meeting_cancellations=SEND_TO_NONE
    )
    assert deleted == [True, True, True]
    assert sandbox.tenant.items(mailbox) == []

    ops = [e for e in sandbox.log.entries() if e.face == "ews"]
    assert {e.mailbox for e in ops} == {mailbox}
    assert {e.operation for e in ops if e.write} == {"CreateItem", "UpdateItem", "DeleteItem"}
    assert all(e.status == 200 and e.error_code is None for e in ops)


def test_impersonation_creates_finds_updates_and_deletes(ews: Sandbox) -> None:
    acct = account(ews, ASA, IMPERSONATION)
    _crud_round_trip(ews, acct, ASA)
    assert {e.principal for e in ews.log.entries()} == {SERVICE[0]}


def test_delegate_access_creates_finds_updates_and_deletes(ews: Sandbox) -> None:
    acct = account(ews, BJORN, DELEGATE, *DELEGATE_ACCOUNT)
    _crud_round_trip(ews, acct, BJORN)


def test_personal_credentials_reach_the_own_mailbox(ews: Sandbox) -> None:
    acct = account(ews, ASA, DELEGATE, ASA, USER_PASSWORD)
    acct.bulk_create(
        folder=acct.calendar, items=[_event(acct, "mine")], send_meeting_invitations=SEND_TO_NONE
    )
    assert [i.prop(TAG) for i in ews.tenant.items(ASA)] == ["mine"]


def test_bulk_errors_come_back_per_item_in_input_order(ews: Sandbox) -> None:
    acct = account(ews, ASA, IMPERSONATION)
    first, second = acct.bulk_create(
        folder=acct.calendar,
        items=[_event(acct, "a"), _event(acct, "b")],
        send_meeting_invitations=SEND_TO_NONE,
    )
    missing = ItemId(id="U0JYbm8tc3VjaC1pdGVtLWF0LWFsbA", changekey="x")
    fetched = list(acct.fetch(ids=[first, missing, second]))
    assert [type(r) for r in fetched] == [CalendarItem, ErrorItemNotFound, CalendarItem]
    assert [r.source_key for r in fetched if isinstance(r, CalendarItem)] == ["a", "b"]
    deleted = acct.bulk_delete(ids=[first, missing, second])
    assert deleted[0] is True and isinstance(deleted[1], ErrorItemNotFound) and deleted[2] is True
    delete_entry = ews.log.entries(lambda e: e.operation == "DeleteItem")[-1]
    assert (delete_entry.write, delete_entry.error_code) == (True, "ErrorItemNotFound")


def test_a_stale_change_key_is_an_irresolvable_conflict(ews: Sandbox) -> None:
    acct = account(ews, ASA, IMPERSONATION)
    acct.bulk_create(folder=acct.calendar, items=[_event(acct, "k")], send_meeting_invitations=SEND_TO_NONE)
    (mine,) = acct.calendar.filter(source_key="k")
    (theirs,) = acct.calendar.filter(source_key="k")
    theirs.subject = "edited in Outlook"
    theirs.save(update_fields=["subject"])
    mine.subject = "from the source"
    with pytest.raises(ErrorIrresolvableConflict):
        mine.save(update_fields=["subject"], conflict_resolution="NeverOverwrite")
    mine.save(update_fields=["subject"], conflict_resolution="AlwaysOverwrite")
    assert ews.tenant.items(ASA)[0].subject == "from the source"


def test_refusals_have_exchanges_codes(ews: Sandbox) -> None:
    with pytest.raises(ErrorImpersonateUserDenied):
        _ = account(ews, ASA, IMPERSONATION, *DELEGATE_ACCOUNT).calendar
    with pytest.raises(ErrorAccessDenied):
        _ = account(ews, JUERGEN, DELEGATE, *DELEGATE_ACCOUNT).calendar
    with pytest.raises(ErrorNonExistentMailbox):
        _ = account(ews, "nobody@contoso.example", IMPERSONATION).calendar
    codes = [e.error_code for e in ews.log.entries()]
    assert {"ErrorImpersonateUserDenied", "ErrorAccessDenied", "ErrorNonExistentMailbox"} <= set(codes)


def test_a_wrong_password_is_401_with_a_basic_challenge(ews: Sandbox) -> None:
    with pytest.raises(UnauthorizedError):
        _ = account(ews, ASA, IMPERSONATION, SERVICE[0], "wrong").calendar
    raw = post_raw(ews, envelope(create_item_xml("x")), basic(SERVICE[0], "wrong"))
    assert raw.status_code == 401
    assert raw.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert ews.log.entries()[-1].status == 401


def test_a_blocked_tenant_answers_403_with_the_policy_reason(ews: Sandbox) -> None:
    ews.tenant.ews_policy = EwsPolicy(allowed=False, reason="EwsDisabledForTenant")
    raw = post_raw(ews, envelope(create_item_xml("x")), basic(*SERVICE))
    assert raw.status_code == 403
    assert raw.headers["X-EWS-Policy-Reason"] == "EwsDisabledForTenant"
    # exchangelib has no class for it: a MalformedResponseError whose text carries the status and header.
    with pytest.raises(
        MalformedResponseError, match=r"(?i)Code: 403.*x-ews-policy-reason.*EwsDisabledForTenant"
    ):
        _ = account(ews, ASA, IMPERSONATION).calendar
    assert {e.status for e in ews.log.entries()} == {403}


def test_a_fifth_concurrent_request_to_one_mailbox_is_told_to_back_off(ews: Sandbox) -> None:
    # Eight independent clients (each its own exchangelib protocol and connection: the query string only
    # makes the endpoint URL, exchangelib's cache key, distinct). One protocol shared by threads with
    # max_connections > 1 can deadlock in exchangelib 5.6 when several threads get ErrorServerBusy at
    # once: decrease_poolsize() holds the pool lock while get_session() calls increase_poolsize().
    calendars = [
        account(ews, ASA, IMPERSONATION, endpoint=f"{ews.ews_url}?client={n}").calendar for n in range(8)
    ]
    ews.conditions.update(latency_ms=400)

    def one(n: int) -> object:
        try:
            return list(calendars[n].filter(source_key="none"))
        except ErrorServerBusy as exc:
            return exc

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    busy = [r for r in results if isinstance(r, ErrorServerBusy)]
    assert busy, "more than 4 requests in flight must be refused"
    assert all(r.back_off == 1.0 for r in busy)
    assert len(busy) <= 4
    assert ews.conditions.peak_concurrency()[ASA] > 4
    refused = ews.log.entries(lambda e: e.error_code == "ErrorServerBusy")
    assert len(refused) == len(busy) and all(e.status == 500 and e.mailbox == ASA for e in refused)


def test_an_injected_server_busy_fault_carries_its_back_off_and_is_logged(ews: Sandbox) -> None:
    acct = account(ews, ASA, IMPERSONATION)
    calendar = acct.calendar
    ews.conditions.add_fault(Fault("server_busy", face="ews", operation="FindItem", retry_after=2.5, times=1))
    with pytest.raises(ErrorServerBusy) as caught:
        list(calendar.filter(source_key="x"))
    assert caught.value.back_off == 2.5
    (entry,) = ews.log.entries(lambda e: e.fault is not None)
    assert (entry.operation, entry.fault, entry.error_code) == ("FindItem", "server_busy", "ErrorServerBusy")
    assert list(calendar.filter(source_key="x")) == []  # the fault fired once


@pytest.mark.parametrize(
    ("kind", "raised"),
    [("500", ErrorServerBusy), ("503", ErrorServerBusy), ("reset", ErrorTimeoutExpired)],
)
def test_injected_transport_faults_reach_exchangelib_and_the_log(
    ews: Sandbox, kind: str, raised: type[Exception]
) -> None:
    acct = account(ews, ASA, IMPERSONATION)
    calendar = acct.calendar
    ews.conditions.add_fault(Fault(kind, face="ews", operation="CreateItem", times=1))
    with pytest.raises(raised):
        acct.bulk_create(folder=calendar, items=[_event(acct, "f")], send_meeting_invitations=SEND_TO_NONE)
    assert ews.tenant.items(ASA) == []  # refused before the write
    (entry,) = ews.log.entries(lambda e: e.fault is not None)
    assert (entry.operation, entry.fault) == ("CreateItem", kind)


def test_timeout_fault_hangs_then_answers_504(ews: Sandbox) -> None:
    acct = account(ews, ASA, IMPERSONATION)
    calendar = acct.calendar
    ews.conditions.add_fault(Fault("timeout", face="ews", operation="FindItem", delay=0.3, times=1))
    with pytest.raises(MalformedResponseError, match="Code: 504"):
        list(calendar.filter(source_key="x"))
    (entry,) = ews.log.entries(lambda e: e.fault == "timeout")
    assert entry.status == 504 and entry.duration_ms >= 300


def test_drop_after_commit_writes_then_loses_the_answer(ews: Sandbox) -> None:
    acct = account(ews, ASA, IMPERSONATION)
    calendar = acct.calendar
    ews.conditions.add_fault(Fault("drop_after_commit", face="ews", operation="CreateItem", times=1))
    with pytest.raises(ErrorTimeoutExpired, match=r"IncompleteRead|Connection broken"):
        acct.bulk_create(folder=calendar, items=[_event(acct, "dup?")], send_meeting_invitations=SEND_TO_NONE)
    assert [i.prop(TAG) for i in ews.tenant.items(ASA)] == ["dup?"]  # the write happened
    (entry,) = ews.log.entries(lambda e: e.fault is not None)
    assert (entry.operation, entry.fault, entry.write) == ("CreateItem", "drop_after_commit", True)
    # The connector's recovery: find it by tag before creating again.
    assert [i.source_key for i in calendar.filter(source_key="dup?")] == ["dup?"]


def test_a_berlin_event_keeps_its_wall_clock_and_zone(ews: Sandbox) -> None:
    acct = account(ews, ASA, IMPERSONATION)
    item = CalendarItem(
        account=acct,
        folder=acct.calendar,
        subject="Frühschicht",
        start=EWSDateTime(2027, 3, 29, 9, 0, tzinfo=BERLIN),
        end=EWSDateTime(2027, 3, 29, 17, 0, tzinfo=BERLIN),
        source_key="tz",
    )
    item.save(send_meeting_invitations=SEND_TO_NONE)
    stored = ews.tenant.items(ASA)[0]
    assert stored.timezone == "Europe/Berlin"
    assert stored.start == dt.datetime(2027, 3, 29, 7, 0, tzinfo=dt.UTC)  # CEST, the day after the switch
    (back,) = acct.calendar.filter(source_key="tz")
    assert back._start_timezone == BERLIN and back._end_timezone == BERLIN
    assert back.start.astimezone(back._start_timezone).strftime("%H:%M") == "09:00"
    assert back.end.astimezone(back._end_timezone).strftime("%H:%M") == "17:00"


def test_an_all_day_event_stays_on_its_date(ews: Sandbox) -> None:
    acct = account(ews, ASA, IMPERSONATION)
    item = CalendarItem(
        account=acct,
        folder=acct.calendar,
        subject="New Year's Eve",
        is_all_day=True,
        start=EWSDate(2026, 12, 31),
        end=EWSDate(2026, 12, 31),
        source_key="allday",
    )
    item.save(send_meeting_invitations=SEND_TO_NONE)
    stored = ews.tenant.items(ASA)[0]
    assert stored.is_all_day and stored.timezone == "Europe/Berlin"
    assert stored.start == dt.datetime(2026, 12, 30, 23, 0, tzinfo=dt.UTC)  # midnight in Berlin
    assert stored.end - stored.start == dt.timedelta(days=1)
    (back,) = acct.calendar.filter(source_key="allday")
    assert (back.is_all_day, back.start, back.end) == (True, dt.date(2026, 12, 31), dt.date(2026, 12, 31))


def test_non_ascii_text_round_trips_and_control_characters_never_arrive(ews: Sandbox) -> None:
    acct = account(ews, ASA, IMPERSONATION)
    subject = "å ä ö ß ł 日本 😀"
    item = _event(acct, "utf", subject=subject, body="Zeile 1\nZeile\x0b2", location="Besprechungsraum Süd")
    item.save(send_meeting_invitations=SEND_TO_NONE)
    (back,) = acct.calendar.filter(source_key="utf")
    assert (back.subject, back.location) == (subject, "Besprechungsraum Süd")
    # exchangelib itself replaces characters XML 1.0 forbids with "?" before sending.
    assert back.body == "Zeile 1\nZeile?2"


def test_invalid_xml_characters_and_schema_violations_are_refused(ews: Sandbox) -> None:
    auth = basic(*SERVICE)
    # A character reference to U+000B is not well-formed XML 1.0, as a raw byte is not either.
    for body in ("Zeile&#11;2", "Zeile\x0b2"):
        raw = post_raw(ews, envelope(create_item_xml("ctl", body), impersonate=ASA), auth)
        assert raw.status_code == 500
        assert b"ErrorSchemaValidation" in raw.content
    # Well-formed but not EWS: an element CalendarItem does not have.
    bogus = create_item_xml("bogus").replace("<t:Subject>", "<t:Colour>red</t:Colour><t:Subject>")
    raw = post_raw(ews, envelope(bogus, impersonate=ASA), auth)
    assert raw.status_code == 500 and b"ErrorSchemaValidation" in raw.content and b"Colour" in raw.content
    assert ews.tenant.items(ASA) == []
    assert [e.error_code for e in ews.log.entries()] == ["ErrorSchemaValidation"] * 3
    # The bogus request was recorded as a violation (a client bug); this test sent it on purpose.
    assert any("Colour" in v for v in ews.soap_violations)
    ews.soap_violations.clear()


def test_exchangelib_detects_auth_type_and_guesses_the_server_version(ews: Sandbox) -> None:
    register_source_key()
    from exchangelib import Credentials

    config = configuration(ews, Credentials(*SERVICE), auth_type=None, guess_version=True)
    acct = Account(ASA, access_type=IMPERSONATION, config=config, autodiscover=False)
    assert acct.version.build == EXCHANGE_2019
    assert acct.version.api_version == "Exchange2016"  # "V2017_07_11" is a server-only string
    assert acct.protocol.auth_type == "basic"  # from the 401 challenge to its unauthenticated probe
    assert acct.calendar.total_count == 0
    assert {"ConvertId", "GetFolder"} <= {e.operation for e in ews.log.entries()}


def test_oauth_app_token_with_impersonation(ews: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """exchangelib's own client-credentials flow against the sandbox authority, then EWS with the token."""
    register_source_key()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ews.tls.ca_file))  # trust the sandbox CA
    info = ews.info()

    def oauth_account(client_id: str, secret: str, address: str, access_type: str = IMPERSONATION) -> Account:
        # exchangelib puts the credentials' identity in ExchangeImpersonation whatever the access type.
        identity = Identity(primary_smtp_address=address) if access_type == IMPERSONATION else None
        credentials = SandboxOAuth2Credentials(
            ews.authority,
            client_id=client_id,
            client_secret=secret,
            tenant_id=info["tenant_id"],
            identity=identity,
        )
        # OAuth needs TLS end to end: EWS over the sandbox's HTTPS listener.
        config = configuration(
            ews, credentials, auth_type="OAuth 2.0", endpoint=f"{ews.authority}/EWS/Exchange.asmx"
        )
        return Account(address, access_type=access_type, config=config, autodiscover=False)

    acct = oauth_account(info["client_id"], info["client_secret"], JUERGEN)
    acct.bulk_create(
        folder=acct.calendar, items=[_event(acct, "oauth")], send_meeting_invitations=SEND_TO_NONE
    )
    assert [i.source_key for i in acct.calendar.filter(source_key="oauth")] == ["oauth"]
    assert {e.principal for e in ews.log.entries(lambda e: e.face == "ews")} == {info["client_id"]}

    scoped = next(a for a in ews.tenant.apps.values() if a.mailboxes != frozenset({"*"}))
    assert scoped.secret is not None
    with pytest.raises(ErrorAccessDenied):
        _ = oauth_account(scoped.client_id, scoped.secret, JUERGEN).calendar
    # App-only tokens must name the mailbox with ExchangeImpersonation, as in Exchange Online.
    with pytest.raises(ErrorInvalidExchangeImpersonationHeaderData):
        _ = oauth_account(info["client_id"], info["client_secret"], JUERGEN, DELEGATE).calendar


def test_dedicated_mailbox_keeps_a_calendar_folder_per_person(ews: Sandbox) -> None:
    service_mailbox = SERVICE[0]
    acct = account(ews, service_mailbox, DELEGATE)
    folder = Calendar(parent=acct.calendar, name="Åsa Lindqvist")
    folder.save()
    assert [f.name for f in acct.calendar.children] == ["Åsa Lindqvist"]
    acct.bulk_create(folder=folder, items=[_event(acct, "per-person")], send_meeting_invitations=SEND_TO_NONE)
    (stored,) = ews.tenant.items(service_mailbox, None)
    assert stored.folder_id == folder.id
    assert [i.source_key for i in folder.filter(source_key="per-person")] == ["per-person"]
    assert list(acct.calendar.filter(source_key="per-person")) == []  # not in the main calendar


def test_find_item_pages_through_a_long_result(ews: Sandbox) -> None:
    acct = account(ews, ASA, IMPERSONATION)
    acct.bulk_create(
        folder=acct.calendar,
        items=[_event(acct, f"p{n}", day=1 + n % 28, hour=8) for n in range(7)],
        send_meeting_invitations=SEND_TO_NONE,
    )
    query = acct.calendar.filter(categories__contains=["Planning"]).only("subject")
    query.page_size = 3
    assert len(list(query)) == 7
    assert len(ews.log.entries(lambda e: e.operation == "FindItem")) == 3


def test_ews_metadata_endpoints(ews: Sandbox) -> None:
    assert requests.get(ews.base_url + "/EWS/types.xsd", timeout=10).content.startswith(b"<?xml")
    assert b"definitions" in requests.get(ews.base_url + "/EWS/Services.wsdl", timeout=10).content
    challenge = requests.get(ews.ews_url, timeout=10)
    assert challenge.status_code == 401 and "Basic" in challenge.headers["WWW-Authenticate"]
    raw = post_raw(ews, envelope(create_item_xml("v"), impersonate=ASA), basic(*SERVICE))
    assert raw.status_code == 200
    assert f'MajorBuildNumber="{SERVER_VERSION["MajorBuildNumber"]}"'.encode() in raw.content


@pytest.mark.parametrize(
    ("version", "status"), [("V2017_07_11", 200), ("Exchange2013_SP1", 200), ("Exchange2030", 500)]
)
def test_request_server_versions(ews: Sandbox, version: str, status: int) -> None:
    raw = post_raw(ews, envelope(create_item_xml("v"), impersonate=ASA, version=version), basic(*SERVICE))
    assert raw.status_code == status
    if status == 500:
        assert b"ErrorInvalidServerVersion" in raw.content


def test_clearing_the_tag_removes_the_extended_property(ews: Sandbox) -> None:
    acct = account(ews, ASA, IMPERSONATION)
    acct.bulk_create(
        folder=acct.calendar, items=[_event(acct, "gone")], send_meeting_invitations=SEND_TO_NONE
    )
    (item,) = acct.calendar.filter(source_key="gone")
    item.source_key = None
    item.save(update_fields=["source_key"])  # DeleteItemField on the ExtendedFieldURI
    assert ews.tenant.items(ASA)[0].prop(TAG) is None
    assert list(acct.calendar.filter(source_key="gone")) == []
