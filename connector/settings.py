"""Typed, frozen settings from ``settings.toml`` plus ``CONNECTOR__SECTION__KEY`` overrides (DESIGN §7).

Loading is a pure function of the file's text, the environment and a way to read secret files, so it
is easy to test and reports *every* problem at once, each naming the key and the fix. Secret values
(``{ env = "NAME" }``, ``{ file = "/run/secrets/x" }``, a ``<key>_file`` sibling, or the value itself)
are held as ``SecretStr`` and never printed.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from connector.errors import SettingsError
from connector.models import Sensitivity, ShowAs, zone
from connector.render import BUILTIN_FIELDS, DEFAULT_NOTICE, template_fields

ENV_PREFIX = "CONNECTOR__"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _fix(text: str) -> dict[str, Any]:
    return {"fix": text}


class ConnectorSection(_Section):
    timezone: str = Field(
        "UTC", json_schema_extra=_fix("use an IANA zone name such as Europe/Paris or America/New_York")
    )
    host_app: str = Field(
        "Planning",
        min_length=1,
        max_length=255,
        json_schema_extra=_fix(
            'name the host application, e.g. "Planning"; it becomes the events\' category'
        ),
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zone(value)
        except KeyError:
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class WindowSection(_Section):
    days_before: int = Field(
        0, ge=0, le=3650, json_schema_extra=_fix("a whole number of days from 0 to 3650")
    )
    days_after: int = Field(
        90, ge=1, le=3650, json_schema_extra=_fix("a whole number of days from 1 to 3650")
    )


class FileSourceSection(_Section):
    kind: Literal["file"] = "file"
    path: Path = Field(json_schema_extra=_fix("the path of a .csv or .json file, relative to settings.toml"))


class TargetEntry(_Section):
    address: str
    owner_key: str = ""
    kind: Literal["user", "room", "equipment"] = "user"
    enabled: bool = True
    display_name: str = ""


class TargetsSection(_Section):
    kind: Literal["file", "inline", "source"] = Field(
        "file",
        json_schema_extra=_fix(
            "file: a CSV/JSON list; inline: [[targets.list]] tables here; source: owners are mailbox addresses"
        ),
    )
    path: Path | None = None
    list: tuple[TargetEntry, ...] = ()

    @model_validator(mode="after")
    def _needs(self) -> TargetsSection:
        if self.kind == "file" and self.path is None:
            raise ValueError(
                "targets.kind is 'file' but targets.path is not set — set path = \"targets.csv\""
            )
        if self.kind == "inline" and not self.list:
            raise ValueError(
                "targets.kind is 'inline' but there is no [[targets.list]] entry — add at least one"
            )
        return self


class MemoryBackendSection(_Section):
    path: Path | None = Field(
        Path("var/calendars.json"),
        json_schema_extra=_fix("a JSON file that keeps the emulated calendars between runs"),
    )
    mailboxes: tuple[str, ...] | None = None


class GraphBackendSection(_Section):
    tenant_id: str = Field("", json_schema_extra=_fix("the directory (tenant) id of the app registration"))
    client_id: str = Field("", json_schema_extra=_fix("the application (client) id of the app registration"))
    client_secret: SecretStr | None = None
    certificate_path: Path | None = Field(
        None, json_schema_extra=_fix("a PEM file holding the private key and the certificate")
    )
    certificate_password: SecretStr | None = None
    authority: str = Field(
        "https://login.microsoftonline.com",
        json_schema_extra=_fix("an https URL, e.g. https://login.microsoftonline.us for US Government"),
    )
    base_url: str = Field(
        "https://graph.microsoft.com/v1.0",
        json_schema_extra=_fix("the Graph root, e.g. https://graph.microsoft.us/v1.0"),
    )
    ca_file: Path | None = Field(None, json_schema_extra=_fix("a PEM bundle of extra CAs to trust"))
    batch_size: int = Field(20, ge=1, le=20, json_schema_extra=_fix("Graph's $batch holds 1 to 20 requests"))
    requests_per_mailbox: int = Field(4, ge=1, le=4, json_schema_extra=_fix("Graph allows 1 to 4"))
    max_requests: int = Field(16, ge=1, le=256, json_schema_extra=_fix("a whole number from 1 to 256"))
    max_retry_wait_s: float = Field(10.0, ge=0, le=300, json_schema_extra=_fix("seconds, 0 to 300"))
    timeout_s: float = Field(60.0, gt=0, le=600, json_schema_extra=_fix("seconds, up to 600"))
    #: Run the emulated tenant in-process from this tenant file and connect to it (demos, make run).
    sandbox: Path | None = Field(None, json_schema_extra=_fix("a tenant file such as sandbox/demo.toml"))
    #: Where the embedded sandbox keeps its calendars between runs.
    sandbox_data: Path | None = Path("var/sandbox.json")

    @field_validator("authority", "base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"{value!r} is not a URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _credentials(self) -> GraphBackendSection:
        if self.sandbox is not None:
            return self
        missing = [k for k in ("tenant_id", "client_id") if not getattr(self, k)]
        if missing:
            raise ValueError(
                f"backend.graph needs {' and '.join(missing)} — copy them from the app registration"
            )
        if (self.client_secret is None) == (self.certificate_path is None):
            raise ValueError(
                "backend.graph needs exactly one of client_secret and certificate_path"
                ' — e.g. client_secret = { env = "CONNECTOR_GRAPH_CLIENT_SECRET" }'
            )
        if not self.authority.startswith("https://"):
            raise ValueError(
                "backend.graph.authority must be an https URL (azure-identity refuses plain http)"
            )
        return self


EWS_VERSIONS = ("2007", "2010", "2010_sp1", "2010_sp2", "2013", "2013_sp1", "2016", "2019", "se", "online")


class EwsBackendSection(_Section):
    url: str = Field(
        "", json_schema_extra=_fix("the EWS endpoint, e.g. https://mail.example.com/EWS/Exchange.asmx")
    )
    version: Literal[
        "2007", "2010", "2010_sp1", "2010_sp2", "2013", "2013_sp1", "2016", "2019", "se", "online"
    ] = Field("2019", json_schema_extra=_fix(f"one of {', '.join(EWS_VERSIONS)}"))
    method: Literal["personal", "dedicated", "delegate", "impersonation"] = Field(
        "impersonation", json_schema_extra=_fix("personal, dedicated, delegate or impersonation")
    )
    auth: Literal["ntlm", "basic", "oauth2"] = Field(
        "ntlm", json_schema_extra=_fix("ntlm or basic on premises, oauth2 for Exchange Online")
    )
    username: str = Field("", json_schema_extra=_fix("the service account, e.g. svc-planning@example.com"))
    password: SecretStr | None = None
    #: "personal": a TOML or JSON file of address = password pairs (a secret: keep it out of the repository).
    passwords_file: Path | None = Field(
        None,
        json_schema_extra=_fix('a file of "address" = "password" lines, e.g. /run/secrets/ews-users.toml'),
    )
    service_mailbox: str = Field("", json_schema_extra=_fix("the dedicated mailbox's address"))
    tenant_id: str = ""
    client_id: str = ""
    client_secret: SecretStr | None = None
    authority: str = Field(
        "https://login.microsoftonline.com", json_schema_extra=_fix("an https URL, the token endpoint's base")
    )
    ca_file: Path | None = Field(None, json_schema_extra=_fix("a PEM bundle of extra CAs to trust"))
    autodiscover: bool = False
    batch_size: int = Field(25, ge=1, le=25, json_schema_extra=_fix("EWS batches hold 1 to 25 items"))
    max_connections: int = Field(
        10, ge=1, le=10, json_schema_extra=_fix("1 to 10 connections per service account")
    )
    max_retry_wait_s: float = Field(10.0, ge=0, le=300, json_schema_extra=_fix("seconds, 0 to 300"))
    timeout_s: float = Field(60.0, gt=0, le=600, json_schema_extra=_fix("seconds, up to 600"))

    @field_validator("url", "authority")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError(f"{value!r} is not a URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _credentials(self) -> EwsBackendSection:
        if not self.url:
            raise ValueError(
                "backend.ews needs url — the EWS endpoint, e.g. https://mail.example.com/EWS/Exchange.asmx"
            )
        if self.auth == "oauth2":
            if self.method == "personal":
                raise ValueError(
                    "backend.ews: the personal method logs in with each user's password — use auth ntlm or basic"
                )
            missing = [k for k in ("tenant_id", "client_id", "client_secret") if not getattr(self, k)]
            if missing:
                raise ValueError(
                    f"backend.ews with auth oauth2 needs {' and '.join(missing)} — copy them from the app"
                    " registration (EWS permission full_access_as_app)"
                )
            if self.method != "impersonation":
                raise ValueError(
                    "backend.ews: an app-only OAuth token reaches mailboxes only by impersonation"
                    ' — set method = "impersonation"'
                )
            return self
        if self.method == "personal":
            if self.passwords_file is None:
                raise ValueError(
                    "backend.ews with method personal needs passwords_file — a file of address = password pairs"
                )
            return self
        if not self.username or self.password is None:
            raise ValueError(
                "backend.ews needs username and password for the service account"
                ' — e.g. password = { env = "CONNECTOR_EWS_PASSWORD" }'
            )
        return self


class BackendSection(_Section):
    kind: Literal["memory", "graph", "ews"] = Field(
        "memory",
        json_schema_extra=_fix(
            "graph (Microsoft 365), ews (Exchange Server) or memory (a local emulated calendar store)"
        ),
    )
    max_threads: int = Field(8, ge=1, le=64, json_schema_extra=_fix("a whole number from 1 to 64"))
    test_user: str | None = None
    memory: MemoryBackendSection = MemoryBackendSection()
    graph: GraphBackendSection | None = None
    ews: EwsBackendSection | None = None

    @model_validator(mode="after")
    def _configured(self) -> BackendSection:
        if self.kind == "graph" and self.graph is None:
            raise ValueError("backend.kind is 'graph' but there is no [backend.graph] section — add one")
        if self.kind == "ews" and self.ews is None:
            raise ValueError("backend.kind is 'ews' but there is no [backend.ews] section — add one")
        return self


class StateSection(_Section):
    url: SecretStr = Field(
        SecretStr("sqlite:///var/connector.db"),
        json_schema_extra=_fix("sqlite:///path/to/file.db or postgresql+psycopg://user@host/db"),
    )
    auto_migrate: bool = True
    busy_timeout_ms: int = Field(30_000, ge=0, le=600_000)

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if not url.startswith(("sqlite:", "postgresql", "postgres:")):
            raise ValueError("the state URL must start with sqlite:/// or postgresql+psycopg://")
        return value


def _check_template(value: str) -> str:
    try:
        template_fields(value)
    except ValueError as exc:
        raise ValueError(f"bad template: {exc}") from None
    return value


class EventSection(_Section):
    title: str = "{title}"
    body: str = "{body}"
    location: str = "{location}"
    notice: str = DEFAULT_NOTICE
    categories: tuple[str, ...] = ()
    show_as: ShowAs = ShowAs.BUSY
    sensitivity: Sensitivity = Sensitivity.NORMAL
    reminder_minutes: int | None = Field(
        None,
        ge=0,
        le=40_320,
        json_schema_extra=_fix("minutes before the start, or leave unset for no reminder"),
    )

    _templates = field_validator("title", "body", "location", "notice")(_check_template)

    @field_validator("title")
    @classmethod
    def _title_has_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError('the title template is empty — use e.g. "{title}"')
        return value


class SyncSection(_Section):
    delete_guard_share: float = Field(
        0.5, gt=0, le=1, json_schema_extra=_fix("a share between 0 and 1, e.g. 0.5 for half")
    )
    delete_guard_min: int = Field(5, ge=1, json_schema_extra=_fix("a whole number of events, at least 1"))


_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-?]+$")


def _check_cron(value: str) -> str:
    """Shape only (five fields of cron characters); the scheduler checks values when it starts, since
    the core does not import a scheduling library. An empty string turns the schedule off."""
    fields = value.split()
    if not value.strip():
        return ""
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ValueError(f"{value!r} is not a cron expression of five fields (minute hour day month weekday)")
    return " ".join(fields)


class JobsSection(_Section):
    """Background work (DESIGN §5). Without ``redis_url`` everything runs inside the command that asked
    for it, on Dramatiq's in-process stub broker: the embedded default."""

    redis_url: SecretStr | None = Field(
        None,
        json_schema_extra=_fix("redis://host:6379/0 (or rediss:// for TLS); leave unset to run in-process"),
    )
    namespace: str = Field(
        "connector",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        json_schema_extra=_fix("letters, digits, _ . - (up to 64); one per installation sharing a Redis"),
    )
    processes: int = Field(1, ge=1, le=64, json_schema_extra=_fix("worker processes, 1 to 64"))
    mailbox_time_limit_s: int = Field(
        1800, ge=10, le=86_400, json_schema_extra=_fix("seconds one mailbox's sync may take, 10 to 86400")
    )
    run_time_limit_s: int = Field(
        900, ge=10, le=86_400, json_schema_extra=_fix("seconds reading the source may take, 10 to 86400")
    )
    max_retries: int = Field(5, ge=0, le=100, json_schema_extra=_fix("a whole number from 0 to 100"))
    min_backoff_s: float = Field(15.0, gt=0, le=3600, json_schema_extra=_fix("seconds, up to 3600"))
    max_backoff_s: float = Field(900.0, gt=0, le=86_400, json_schema_extra=_fix("seconds, up to 86400"))
    lock_ttl_s: int = Field(
        30, ge=5, le=600, json_schema_extra=_fix("seconds a dead worker's mailbox lock lasts, 5 to 600")
    )
    heartbeat_timeout_s: int = Field(
        20,
        ge=5,
        le=600,
        json_schema_extra=_fix("seconds of silence after which a worker counts as dead, 5 to 600"),
    )
    maintenance_chance: float = Field(
        0.1,
        gt=0,
        le=1,
        json_schema_extra=_fix("the share of broker calls that also look for dead workers, e.g. 0.1"),
    )
    shutdown_timeout_s: int = Field(
        600, ge=1, le=86_400, json_schema_extra=_fix("seconds a stopping worker waits for running syncs")
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError("the Redis URL must start with redis://, rediss:// or unix://")
        return value

    @model_validator(mode="after")
    def _backoff_order(self) -> JobsSection:
        if self.min_backoff_s > self.max_backoff_s:
            raise ValueError("jobs.min_backoff_s is larger than jobs.max_backoff_s — swap them")
        return self


class ScheduleSection(_Section):
    """``connector scheduler``: cron expressions in ``timezone`` (default: the connector's zone)."""

    timezone: str | None = Field(None, json_schema_extra=_fix("an IANA zone name such as Europe/Paris"))
    fast: str = Field(
        "*/15 * * * *", json_schema_extra=_fix('a cron expression such as "*/15 * * * *", or "" for none')
    )
    verify: str = Field(
        "0 2 * * *", json_schema_extra=_fix('a cron expression such as "0 2 * * *", or "" for none')
    )

    _cron = field_validator("fast", "verify")(_check_cron)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zone(value)
            except KeyError:
                raise ValueError(f"unknown time zone {value!r}") from None
        return value


ApiRight = Literal["sync", "read"]


class ApiSection(_Section):
    """``connector serve``: the host application's HTTP API."""

    host: str = Field("127.0.0.1", json_schema_extra=_fix("an address to listen on, e.g. 0.0.0.0"))
    port: int = Field(8080, ge=1, le=65_535, json_schema_extra=_fix("a TCP port, 1 to 65535"))
    #: Token name → bearer token. The name (never the token) is what logs show.
    tokens: dict[str, SecretStr] = Field(
        default_factory=dict,
        json_schema_extra=_fix('e.g. [api.tokens] planning = { env = "CONNECTOR_API_TOKEN" }'),
    )
    #: Token name → rights; a token without an entry has both.
    rights: dict[str, tuple[ApiRight, ...]] = Field(
        default_factory=dict, json_schema_extra=_fix('e.g. [api.rights] dashboard = ["read"]')
    )

    @model_validator(mode="after")
    def _tokens(self) -> ApiSection:
        short = sorted(n for n, t in self.tokens.items() if len(t.get_secret_value()) < 24)
        if short:
            raise ValueError(
                f"api.tokens: {', '.join(short)} shorter than 24 characters"
                " — generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        stray = sorted(set(self.rights) - set(self.tokens))
        if stray:
            raise ValueError(
                f"api.rights names unknown tokens: {', '.join(stray)} — add them to [api.tokens]"
            )
        return self

    def rights_of(self, name: str) -> frozenset[str]:
        return frozenset(self.rights.get(name, ("sync", "read")))


class Settings(_Section):
    connector: ConnectorSection = ConnectorSection()
    window: WindowSection = WindowSection()
    source: FileSourceSection
    targets: TargetsSection = TargetsSection(kind="source")
    backend: BackendSection = BackendSection()
    state: StateSection = StateSection()
    event: EventSection = EventSection()
    sync: SyncSection = SyncSection()
    jobs: JobsSection = JobsSection()
    schedule: ScheduleSection = ScheduleSection()
    api: ApiSection = ApiSection()
    #: Folder relative paths are resolved against (the settings file's folder).
    base_dir: Path = Path()
    #: Where the settings came from, for messages.
    origin: str = "settings.toml"

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.base_dir / path)

    def template_field_names(self) -> set[str]:
        names: set[str] = set()
        for template in (self.event.title, self.event.body, self.event.location, self.event.notice):
            names.update(template_fields(template))
        return names - BUILTIN_FIELDS


# -- loading ---------------------------------------------------------------------------------------------


def load_settings(
    text: str,
    *,
    environ: Mapping[str, str],
    base_dir: Path,
    origin: str = "settings.toml",
    read_file: Callable[[Path], str] = lambda p: p.read_text(encoding="utf-8"),
) -> Settings:
    problems: list[str] = []
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError([f"{origin}: not valid TOML ({exc}) — fix the syntax at that line"]) from None

    _apply_env(data, environ, problems)
    secret_paths = _secret_paths(Settings)
    _resolve_secrets(data, (), environ, read_file, base_dir, secret_paths, problems)
    data["base_dir"] = base_dir
    data["origin"] = origin
    unresolved = {p.split(":", 1)[0] for p in problems}
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        # A secret that could not be read is already reported; its "missing value" echo is noise.
        problems.extend(p for p in _explain(exc, secret_paths) if p.split(":", 1)[0] not in unresolved)
        settings = None
    if problems:
        raise SettingsError(problems)
    assert settings is not None
    return settings


def _apply_env(data: dict[str, Any], environ: Mapping[str, str], problems: list[str]) -> None:
    """``CONNECTOR__WINDOW__DAYS_AFTER=30`` sets ``window.days_after``. The value is taken as it is
    (pydantic converts "30" and "true"); a value starting with ``[`` or ``{`` is JSON (lists, tables)."""
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX:
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if not all(path):
            problems.append(
                f"{name}: empty section or key in the variable name — use CONNECTOR__SECTION__KEY"
            )
            continue
        raw = environ[name]
        value: Any = raw
        if raw.lstrip().startswith(("[", "{")):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                problems.append(f"{name}: not valid JSON ({exc.msg}) — lists and tables are given as JSON")
                continue
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                problems.append(f"{name}: {part} is a value, not a section")
                break
            node = child
        else:
            node[path[-1]] = value


def _section_type(annotation: Any) -> type[BaseModel] | None:
    """The settings model behind a field's annotation (``Section`` or ``Section | None``)."""
    for candidate in typing.get_args(annotation) or (annotation,):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _secret_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    paths: set[tuple[str, ...]] = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if annotation is SecretStr or annotation == (SecretStr | None) or annotation == dict[str, SecretStr]:
            paths.add((*prefix, name))
        elif (section := _section_type(annotation)) is not None:
            paths |= _secret_paths(section, (*prefix, name))
    return paths


def _resolve_secrets(
    node: dict[str, Any],
    prefix: tuple[str, ...],
    environ: Mapping[str, str],
    read_file: Callable[[Path], str],
    base_dir: Path,
    secret_paths: set[tuple[str, ...]],
    problems: list[str],
) -> None:
    """Replace ``{ env = ... }`` / ``{ file = ... }`` and ``<key>_file`` siblings by the secret itself."""
    for key in list(node):
        value = node[key]
        path = (*prefix, key)
        dotted = ".".join(path)
        if key.endswith("_file") and (*prefix, key[: -len("_file")]) in secret_paths:
            target = key[: -len("_file")]
            if target in node:
                problems.append(f"{dotted}: both {target} and {key} are set — keep one")
                continue
            node[target] = {"file": value}
            del node[key]
            key, value, path, dotted = target, node[target], (*prefix, target), ".".join((*prefix, target))
        if isinstance(value, dict) and set(value) in ({"env"}, {"file"}):
            if "env" in value:
                name = str(value["env"])
                if name not in environ:
                    problems.append(
                        f"{dotted}: environment variable {name} is not set — export it,"
                        f' or use {{ file = "/run/secrets/..." }}'
                    )
                    node[key] = None
                else:
                    node[key] = environ[name]
            else:
                file = Path(str(value["file"]))
                file = file if file.is_absolute() else base_dir / file
                try:
                    node[key] = read_file(file).strip()
                except OSError as exc:
                    problems.append(
                        f"{dotted}: cannot read secret file {file} ({exc.strerror}) — check the path and permissions"
                    )
                    node[key] = None
        elif isinstance(value, dict):
            _resolve_secrets(value, path, environ, read_file, base_dir, secret_paths, problems)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict) and set(item) in ({"env"}, {"file"}):
                    holder = {str(index): item}
                    _resolve_secrets(holder, path, environ, read_file, base_dir, secret_paths, problems)
                    value[index] = holder[str(index)]


def _explain(exc: ValidationError, secret_paths: set[tuple[str, ...]]) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        path = tuple(str(part) for part in error["loc"] if not isinstance(part, int))
        dotted = _dotted(error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            problems.append(_unknown_key(path, dotted))
            continue
        fix = _fix_for(path)
        if kind == "missing":
            problems.append(f"{dotted}: required but not set" + (f" — {fix}" if fix else ""))
            continue
        message = str(error["msg"]).removeprefix("Value error, ")
        # Secret values are never echoed, not even when they are wrong.
        shown = ""
        if not any(path[: len(p)] == p for p in secret_paths) and not isinstance(
            error.get("input"), dict | list
        ):
            shown = f" (got {error.get('input')!r})"
        problems.append(f"{dotted or 'settings'}: {message}{shown}" + (f" — {fix}" if fix else ""))
    return problems


def _dotted(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _model_at(path: tuple[str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = Settings
    for part in path:
        if model is None or part not in model.model_fields:
            return None
        model = _section_type(model.model_fields[part].annotation)
    return model


def _fix_for(path: tuple[str, ...]) -> str:
    parent = _model_at(path[:-1])
    if parent is None or not path or path[-1] not in parent.model_fields:
        return ""
    extra = parent.model_fields[path[-1]].json_schema_extra
    return str(extra.get("fix", "")) if isinstance(extra, dict) else ""


def _unknown_key(path: tuple[str, ...], dotted: str) -> str:
    parent = _model_at(path[:-1])
    known = sorted(n for n in (parent.model_fields if parent else {}) if n not in {"base_dir", "origin"})
    close = difflib.get_close_matches(path[-1], known, n=1)
    if close:
        return f"{dotted}: unknown key — did you mean '{close[0]}'?"
    where = ".".join(path[:-1]) or "the top level"
    return f"{dotted}: unknown key — {where} accepts: {', '.join(known)}"
