"""The composition root: the one place that turns settings into a source, a target directory, a state
store and a calendar backend, and wires them into the sync engine. Nothing else chooses adapters.

Heavy adapters are imported inside the branch that needs them, so a worker only loads what its
configured backend uses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pendulum

from connector.backend import CalendarBackend
from connector.errors import SettingsError
from connector.guard import DeleteGuard
from connector.models import Target, TargetKind, zone
from connector.render import RenderRules
from connector.settings import Settings, load_settings
from connector.source import ScheduleSource, TargetSource
from connector.state import StateStore
from connector.sync import SyncEngine
from connector.window import Window

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
    from adapters.source.files import file_schedule_source

    return file_schedule_source(settings.resolve(settings.source.path), settings.connector.timezone)


def build_targets(settings: Settings) -> TargetSource:
    section = settings.targets
    if section.kind == "file":
        from adapters.source.files import file_target_source

        assert section.path is not None  # the settings model requires it for kind "file"
        return file_target_source(settings.resolve(section.path))
    from adapters.source.inline import StaticTargets

    if section.kind == "inline":
        targets = [
            Target(t.address, t.owner_key, TargetKind(t.kind), t.enabled, t.display_name)
            for t in section.list
        ]
        return StaticTargets(targets, f"{len(targets)} targets listed in {settings.origin}")
    return StaticTargets((), "the source's owners (each owner is a mailbox address)")


def build_store(settings: Settings) -> StateStore:
    from adapters.state import open_store

    url = settings.state.url.get_secret_value()
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        # A relative SQLite path is relative to the settings file, like every other path.
        url = "sqlite:///" + str(settings.resolve(Path(url.removeprefix("sqlite:///"))))
    return open_store(
        url, auto_migrate=settings.state.auto_migrate, busy_timeout_ms=settings.state.busy_timeout_ms
    )


def build_backend(settings: Settings) -> CalendarBackend:
    tz = zone(settings.connector.timezone)
    from adapters.memory import MemoryBackend, MemoryCalendar

    memory = settings.backend.memory
    path = settings.resolve(memory.path) if memory.path else None
    if path is not None and path.exists():
        calendar = MemoryCalendar.load(path, tz)
    else:
        calendar = MemoryCalendar(tz, memory.mailboxes)
    return MemoryBackend(calendar, path=path)


@dataclass
class Container:
    settings: Settings
    store: StateStore
    backend: CalendarBackend
    engine: SyncEngine

    def close(self) -> None:
        self.backend.close()
        self.store.close()


def build(settings: Settings) -> Container:
    store = build_store(settings)
    try:
        backend = build_backend(settings)
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
        store.close()
        raise
    return Container(settings, store, backend, engine)
