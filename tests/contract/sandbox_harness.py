"""Contract harnesses for the backends that talk to the emulated tenant (Graph, and EWS with impersonation
or delegate access): the server's view comes straight from the sandbox's store, so tests check what
Exchange would hold."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo

from adapters.ews.backend import EwsBackend
from adapters.ews.config import EwsConfig
from adapters.graph.backend import GraphBackend
from adapters.graph.config import GraphConfig
from connector.backend import CalendarBackend
from connector.models import AllDaySpan, Sensitivity, ShowAs, Span, Target, TimedSpan
from connector.ownership import PROPERTY_SET, SOURCE_KEY
from sandbox.server import Sandbox
from sandbox.tenant import Item, Mailbox, prop_key

from .harness import HARNESS_ZONE, HarnessEvent

TAG = prop_key(PROPERTY_SET, SOURCE_KEY)


def harness_event(item: Item) -> HarnessEvent:
    zone = ZoneInfo(item.timezone) if item.timezone != "UTC" else UTC
    span: Span
    if item.is_all_day:
        span = AllDaySpan(item.start.astimezone(zone).date(), item.end.astimezone(zone).date())
    else:
        span = TimedSpan(item.start.astimezone(zone), item.end.astimezone(zone), item.timezone)
    return HarnessEvent(
        id=item.id,
        subject=item.subject,
        body=item.body.replace("\r\n", "\n"),
        location=item.location,
        span=span,
        categories=item.categories,
        show_as=ShowAs(item.show_as),
        sensitivity=Sensitivity(item.sensitivity),
        reminder_minutes=item.reminder_minutes if item.reminder_on else None,
        tag=item.prop(TAG),
        has_attendees=bool(item.attendees),
    )


class SandboxHarness:
    """The server side of every sandbox-backed harness; subclasses bring the backend."""

    def __init__(self, sandbox: Sandbox, backend: CalendarBackend, zone: tzinfo = HARNESS_ZONE) -> None:
        self.sandbox = sandbox
        self._backend = backend
        self._zone = zone

    @property
    def backend(self) -> CalendarBackend:
        return self._backend

    @property
    def zone(self) -> tzinfo:
        return self._zone

    def target(self, address: str) -> Target:
        if not self.sandbox.tenant.has_mailbox(address):
            self.sandbox.tenant.add_mailbox(Mailbox(address))
        return Target(address.lower(), address.lower())

    def unknown_target(self) -> Target:
        return Target("nobody-here@contoso.example", "nobody")

    def add_foreign_event(self, target: Target, subject: str, span: Span) -> str:
        start, end = span.utc_bounds(self._zone)
        zone_name = span.timezone if isinstance(span, TimedSpan) else str(self._zone)
        item = self.sandbox.tenant.create_item(
            target.address,
            subject=subject,
            start=start,
            end=end,
            timezone=zone_name,
            is_all_day=span.is_all_day,
        )
        return item.id

    def all_events(self, target: Target) -> list[HarnessEvent]:
        return [harness_event(i) for i in self.sandbox.tenant.items(target.address, None)]

    def outlook_edit(self, target: Target, event_id: str, subject: str) -> None:
        self.sandbox.tenant.update_item(event_id, subject=subject)

    def outlook_delete(self, target: Target, event_id: str) -> None:
        self.sandbox.tenant.delete_item(event_id)


def graph_config(sandbox: Sandbox, zone: tzinfo = HARNESS_ZONE, **overrides: object) -> GraphConfig:
    info = sandbox.info()
    values: dict[str, object] = {
        "tenant_id": info["tenant_id"],
        "client_id": info["client_id"],
        "client_secret": info["client_secret"],
        "authority": info["authority"],
        "base_url": info["graph_url"],
        "ca_file": sandbox.tls.ca_file,
        "all_day_zone": str(zone),
        "max_retry_wait_s": 5.0,
    }
    values.update(overrides)
    return GraphConfig(**values)  # type: ignore[arg-type]


def graph_harness(sandbox: Sandbox) -> SandboxHarness:
    return SandboxHarness(sandbox, GraphBackend(graph_config(sandbox)))


# -- EWS ------------------------------------------------------------------------------------------------

#: The demo tenant's service accounts (sandbox/demo.toml).
EWS_SERVICE = ("svc-planning@contoso.example", "Sandbox-Pa55!")
EWS_DELEGATE = ("svc-delegate@contoso.example", "Delegate-Pa55!")


def ews_config(sandbox: Sandbox, zone: tzinfo = HARNESS_ZONE, **overrides: object) -> EwsConfig:
    values: dict[str, object] = {
        "url": sandbox.ews_url,
        "method": "impersonation",
        "auth": "basic",
        "version": "2019",
        "username": EWS_SERVICE[0],
        "password": EWS_SERVICE[1],
        "all_day_zone": str(zone),
        "max_retry_wait_s": 5.0,
    }
    values.update(overrides)
    return EwsConfig(**values)  # type: ignore[arg-type]


class EwsDelegateHarness(SandboxHarness):
    """Delegate access: the service account holds editor rights on every mailbox the test provisions."""

    def target(self, address: str) -> Target:
        target = super().target(address)
        accounts = self.sandbox.tenant.service_accounts
        account = accounts[EWS_DELEGATE[0]]
        accounts[EWS_DELEGATE[0]] = replace(account, delegate=account.delegate | {target.address})
        return target


def ews_harness(sandbox: Sandbox, method: str) -> SandboxHarness:
    if method == "delegate":
        config = ews_config(sandbox, method="delegate", username=EWS_DELEGATE[0], password=EWS_DELEGATE[1])
        return EwsDelegateHarness(sandbox, EwsBackend(config))
    return SandboxHarness(sandbox, EwsBackend(ews_config(sandbox, method=method)))
