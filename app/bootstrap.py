"""The composition root: the one place that turns settings into a source, a target directory, a state
store and a calendar backend, and wires them into the sync engine. Nothing else chooses adapters.

Heavy adapters are imported inside the branch that needs them, so a worker only loads what its
configured backend uses.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pendulum
from pydantic import SecretStr

from connector.backend import CalendarBackend
from connector.errors import SettingsError
from connector.guard import DeleteGuard
from connector.models import Target, TargetKind, zone
from connector.render import RenderRules
from connector.settings import (
    FileTargetsSection,
    HttpSourceSection,
    HttpTargetsSection,
    IcsSourceSection,
    InlineTargetsSection,
    Settings,
    SqlSourceSection,
    SqlTargetsSection,
    load_settings,
)
from connector.source import ScheduleSource, TargetSource
from connector.state import StateStore
from connector.sync import SyncEngine
from connector.window import Window

if TYPE_CHECKING:
    from adapters.source.http import HttpEndpoint

SETTINGS_ENV = "CONNECTOR_SETTINGS"
DEFAULT_SETTINGS = Path("settings.toml")


def settings_path(explicit: Path | None, environ: Mapping[str, str] = os.environ) -> Path:
    if explicit is not None:
        return explicit
    if environ.get(SETTINGS_ENV):
        return Path(environ[SETTINGS_ENV])
    return DEFAULT_SETTINGS


def read_settings(path: Path, environ: Mapping[str, str] = os.environ) -> Settings:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(
            [
                f"settings file {path} not found — run from the repository folder, pass --settings PATH"
                f" or set {SETTINGS_ENV}"
            ]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError([f"settings file {path} cannot be read ({exc}) — check the file"]) from None
    return load_settings(text, environ=environ, base_dir=path.resolve().parent, origin=str(path))


def current_window(settings: Settings) -> Window:
    tz = zone(settings.connector.timezone)
    today = pendulum.now(settings.connector.timezone).date()
    return Window.around(
        today, tz, days_before=settings.window.days_before, days_after=settings.window.days_after
    )


def render_rules(settings: Settings) -> RenderRules:
    event = settings.event
    return RenderRules(
        host_app=settings.connector.host_app,
        title_template=event.title,
        body_template=event.body,
        location_template=event.location,
        notice_template=event.notice,
        categories=event.categories,
        default_show_as=event.show_as,
        default_sensitivity=event.sensitivity,
        default_reminder_minutes=event.reminder_minutes,
    )


def build_source(settings: Settings) -> ScheduleSource:
    """The configured schedule source; each kind's adapter (and its driver) is imported only when used."""
    section = settings.source
    zone_name = settings.connector.timezone
    if isinstance(section, SqlSourceSection):
        from adapters.source.sql import SqlScheduleSource

        return SqlScheduleSource(
            _database_url(settings, section.url),
            section.query,
            default_zone=zone_name,
            columns=section.columns.mapping(),
            chunk_size=section.chunk_size,
            connect_timeout_s=section.connect_timeout_s,
        )
    if isinstance(section, HttpSourceSection):
        from adapters.source.http import HttpScheduleSource

        return HttpScheduleSource(
            _http_endpoint(settings, section),
            default_zone=zone_name,
            columns=section.columns.mapping(),
            window_start_param=section.window_start_param,
            window_end_param=section.window_end_param,
            window_format=section.window_format,
            owner_param=section.owner_param,
        )
    if isinstance(section, IcsSourceSection):
        from adapters.source.ics import IcsScheduleSource

        return IcsScheduleSource(
            settings.resolve(section.path),
            default_zone=zone_name,
            owner=section.owner,
            owner_property=section.owner_property,
        )
    from adapters.source.files import file_schedule_source

    return file_schedule_source(settings.resolve(section.path), zone_name)


def build_targets(settings: Settings) -> TargetSource:
    section = settings.targets
    if isinstance(section, FileTargetsSection):
        from adapters.source.files import file_target_source

        assert section.path is not None  # the settings model requires it for kind "file"
        return file_target_source(settings.resolve(section.path))
    if isinstance(section, SqlTargetsSection):
        from adapters.source.sql import SqlTargetSource

        url = section.url
        if url is None and isinstance(settings.source, SqlSourceSection):
            url = settings.source.url
        assert url is not None  # the settings model requires one of the two
        return SqlTargetSource(
            _database_url(settings, url),
            section.query,
            columns=section.columns.mapping(),
            chunk_size=section.chunk_size,
            connect_timeout_s=section.connect_timeout_s,
        )
    if isinstance(section, HttpTargetsSection):
        from adapters.source.http import HttpTargetSource

        return HttpTargetSource(_http_endpoint(settings, section), columns=section.columns.mapping())
    from adapters.source.inline import StaticTargets

    if isinstance(section, InlineTargetsSection):
        targets = [
            Target(t.address, t.owner_key, TargetKind(t.kind), t.enabled, t.display_name)
            for t in section.list
        ]
        return StaticTargets(targets, f"{len(targets)} targets listed in {settings.origin}")
    return StaticTargets((), "the source's owners (each owner is a mailbox address)")


def _database_url(settings: Settings, url: SecretStr) -> str:
    value = url.get_secret_value()
    if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
        # A relative SQLite path is relative to the settings file, like every other path.
        value = "sqlite:///" + str(settings.resolve(Path(value.removeprefix("sqlite:///"))))
    return value


def _http_endpoint(settings: Settings, section: HttpSourceSection | HttpTargetsSection) -> HttpEndpoint:
    from adapters.source.http import HttpAuth, HttpEndpoint

    def secret(value: SecretStr | None) -> str:
        return value.get_secret_value() if value is not None else ""

    return HttpEndpoint(
        url=section.url,
        items_path=section.items_path,
        paging=section.paging,
        next_path=section.next_path,
        page_param=section.page_param,
        page_start=section.page_start,
        offset_param=section.offset_param,
        page_size_param=section.page_size_param,
        page_size=section.page_size,
        stop_on=section.stop_on,
        total_path=section.total_path,
        max_pages=section.max_pages,
        params=dict(section.params),
        headers=dict(section.headers),
        auth=HttpAuth(
            kind=section.auth,
            token=secret(section.token),
            username=section.username,
            password=secret(section.password),
            header_name=section.header_name,
            header_value=secret(section.header_value),
        ),
        ca_file=settings.resolve(section.ca_file) if section.ca_file else None,
        timeout_s=section.timeout_s,
        retries=section.retries,
        backoff_s=section.backoff_s,
        max_retry_wait_s=section.max_retry_wait_s,
    )


def build_store(settings: Settings) -> StateStore:
    from adapters.state import open_store

    url = settings.state.url.get_secret_value()
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        # A relative SQLite path is relative to the settings file, like every other path.
        url = "sqlite:///" + str(settings.resolve(Path(url.removeprefix("sqlite:///"))))
    return open_store(
        url, auto_migrate=settings.state.auto_migrate, busy_timeout_ms=settings.state.busy_timeout_ms
    )


def build_backend(settings: Settings, closers: list[Callable[[], None]]) -> CalendarBackend:
    """The configured backend; anything it started that must be stopped goes into ``closers``."""
    if settings.backend.kind == "graph":
        return _graph_backend(settings, closers)
    if settings.backend.kind == "ews":
        return _ews_backend(settings)
    tz = zone(settings.connector.timezone)
    from adapters.memory import MemoryBackend, MemoryCalendar

    memory = settings.backend.memory
    path = settings.resolve(memory.path) if memory.path else None
    if path is not None and path.exists():
        calendar = MemoryCalendar.load(path, tz)
    else:
        calendar = MemoryCalendar(tz, memory.mailboxes)
    return MemoryBackend(calendar, path=path)


def _graph_backend(settings: Settings, closers: list[Callable[[], None]]) -> CalendarBackend:
    # Imported here: msgraph-sdk is large, and only a worker configured for Graph should load it.
    from adapters.graph.backend import GraphBackend
    from adapters.graph.config import GraphConfig

    section = settings.backend.graph
    assert section is not None  # the settings model requires it for kind "graph"
    secret = section.client_secret.get_secret_value() if section.client_secret else None
    password = section.certificate_password.get_secret_value() if section.certificate_password else None
    connection: dict[str, Any] = {
        "tenant_id": section.tenant_id,
        "client_id": section.client_id,
        "client_secret": secret,
        "authority": section.authority,
        "base_url": section.base_url,
        "ca_file": settings.resolve(section.ca_file) if section.ca_file else None,
    }
    if section.sandbox is not None:
        from app.embedded import EmbeddedSandbox
        from sandbox.config import TenantFileError

        data = settings.resolve(section.sandbox_data) if section.sandbox_data else None
        try:
            embedded = EmbeddedSandbox.start(settings.resolve(section.sandbox), data)
        except (TenantFileError, ValueError, OSError) as exc:
            raise SettingsError([f"backend.graph.sandbox: {exc} — fix the tenant file or the path"]) from None
        closers.append(embedded.stop)
        info = embedded.server.info()
        connection.update(
            tenant_id=info["tenant_id"],
            client_id=info["client_id"],
            client_secret=info["client_secret"],
            authority=info["authority"],
            base_url=info["graph_url"],
            ca_file=Path(info["ca_file"]),
        )
    config = GraphConfig(
        **connection,
        certificate_path=settings.resolve(section.certificate_path) if section.certificate_path else None,
        certificate_password=password,
        all_day_zone=settings.connector.timezone,
        batch_size=section.batch_size,
        requests_per_mailbox=section.requests_per_mailbox,
        max_requests=section.max_requests,
        max_retry_wait_s=section.max_retry_wait_s,
        timeout_s=section.timeout_s,
    )
    return GraphBackend(config)


def read_passwords(path: Path) -> dict[str, str]:
    """The personal method's passwords: a TOML (``"address" = "password"``) or JSON object file."""
    try:
        text = path.read_text(encoding="utf-8")
        data: Any = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        # ValueError covers both decoders; the message names the line, never a password.
        raise SettingsError(
            [f"backend.ews.passwords_file: {path} cannot be read ({type(exc).__name__}) — check the file"]
        ) from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise SettingsError(
            [f"backend.ews.passwords_file: {path} must map each address to its password as text"]
        )
    return {str(k).lower(): v for k, v in data.items()}


def _ews_backend(settings: Settings) -> CalendarBackend:
    # Imported here: only a worker configured for EWS should load exchangelib.
    from adapters.ews.backend import EwsBackend
    from adapters.ews.config import EwsConfig

    section = settings.backend.ews
    assert section is not None  # the settings model requires it for kind "ews"
    passwords = (
        read_passwords(settings.resolve(section.passwords_file)) if section.passwords_file is not None else {}
    )
    config = EwsConfig(
        url=section.url,
        method=section.method,
        auth=section.auth,
        version=section.version,
        username=section.username,
        password=section.password.get_secret_value() if section.password else "",
        user_passwords=passwords,
        tenant_id=section.tenant_id,
        client_id=section.client_id,
        client_secret=section.client_secret.get_secret_value() if section.client_secret else "",
        authority=section.authority,
        ca_file=settings.resolve(section.ca_file) if section.ca_file else None,
        service_mailbox=section.service_mailbox,
        all_day_zone=settings.connector.timezone,
        batch_size=section.batch_size,
        max_connections=section.max_connections,
        max_retry_wait_s=section.max_retry_wait_s,
        timeout_s=section.timeout_s,
        autodiscover=section.autodiscover,
    )
    return EwsBackend(config)


@dataclass
class Container:
    settings: Settings
    store: StateStore
    backend: CalendarBackend
    engine: SyncEngine
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        self.backend.close()
        for close in reversed(self.closers):
            close()
        self.store.close()


def build(settings: Settings) -> Container:
    store = build_store(settings)
    closers: list[Callable[[], None]] = []
    try:
        backend = build_backend(settings, closers)
        engine = SyncEngine(
            source=build_source(settings),
            targets=build_targets(settings),
            store=store,
            backend=backend,
            rules=render_rules(settings),
            window=lambda: current_window(settings),
            guard=DeleteGuard(settings.sync.delete_guard_share, settings.sync.delete_guard_min),
            owners_are_addresses=settings.targets.kind == "source",
        )
    except BaseException:
        for close in reversed(closers):
            close()
        store.close()
        raise
    return Container(settings, store, backend, engine, closers)
