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
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
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


#: The bound parameters a source query may use (see ``adapters/source/sql.py`` for their types).
SQL_PARAMETERS = ("window_start", "window_end", "window_start_local", "window_end_local", "owner")
# The way SQLAlchemy's text() finds bound parameters: ":name", but not "::type" casts or "\:" escapes.
_BIND_PARAMETER = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")

_COLUMN_FIX = _fix("the name of the source column (or, for an API, the field or dotted path) holding it")


class _Columns(_Section):
    def mapping(self) -> dict[str, str]:
        """Connector field → source column, for the fields that are mapped."""
        return {name: value for name, value in self.model_dump().items() if value is not None}

    @field_validator("*")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("the column name is empty")
        return value


class EntryColumns(_Columns):
    """Which source column holds each entry field; unmapped fields are taken from a column of their own
    name, and every other column passes through for the templates."""

    key: str | None = Field(None, json_schema_extra=_COLUMN_FIX)
    owner: str | None = Field(None, json_schema_extra=_COLUMN_FIX)
    start: str | None = Field(None, json_schema_extra=_COLUMN_FIX)
    end: str | None = Field(None, json_schema_extra=_COLUMN_FIX)
    all_day: str | None = Field(None, json_schema_extra=_COLUMN_FIX)
    timezone: str | None = Field(None, json_schema_extra=_COLUMN_FIX)
    title: str | None = Field(None, json_schema_extra=_COLUMN_FIX)
    body: str | None = Field(None, json_schema_extra=_COLUMN_FIX)
    location: str | None = Field(None, json_schema_extra=_COLUMN_FIX)
    category: str | None = Field(None, json_schema_extra=_COLUMN_FIX)
    show_as: str | None = Field(None, json_schema_extra=_COLUMN_FIX)
    sensitivity: str | None = Field(None, json_schema_extra=_COLUMN_FIX)
    reminder_minutes: str | None = Field(None, json_schema_extra=_COLUMN_FIX)
    status: str | None = Field(None, json_schema_extra=_COLUMN_FIX)


class TargetColumns(_Columns):
    address: str | None = Field(None, json_schema_extra=_COLUMN_FIX)
    owner_key: str | None = Field(None, json_schema_extra=_COLUMN_FIX)
    kind: str | None = Field(None, json_schema_extra=_COLUMN_FIX)
    enabled: str | None = Field(None, json_schema_extra=_COLUMN_FIX)
    display_name: str | None = Field(None, json_schema_extra=_COLUMN_FIX)


def _database_url(value: SecretStr) -> SecretStr:
    url = value.get_secret_value()
    scheme = url.partition("://")[0]
    if not url.partition("://")[2] or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*(\+[A-Za-z0-9_]+)?", scheme):
        raise ValueError("not a database URL")
    if scheme.lower() in ("http", "https"):
        raise ValueError('a web address, not a database URL (for a web API use kind = "http")')
    return value


def _check_query(query: str, allowed: tuple[str, ...], where: str) -> str:
    if not query.strip():
        raise ValueError("the query is empty")
    unknown = sorted({name for name in _BIND_PARAMETER.findall(query) if name not in allowed})
    if unknown:
        offered = ", ".join(f":{name}" for name in allowed) if allowed else "none"
        raise ValueError(
            f"the query uses {', '.join(':' + n for n in unknown)}, which the connector does not bind"
            f" ({where} binds {offered}); write a literal colon as \\:"
        )
    return query


_URL_FIX = (
    "a SQLAlchemy URL such as postgresql+psycopg://reader@db/planning, mysql+pymysql://reader@db/planning,"
    " mssql+pyodbc://reader@dsn or sqlite:///planning.db; keep a password out of the file:"
    ' url = { env = "CONNECTOR_SOURCE_URL" }'
)


class SqlSourceSection(_Section):
    kind: Literal["sql"] = "sql"
    url: SecretStr = Field(json_schema_extra=_fix(_URL_FIX))
    query: str = Field(
        json_schema_extra=_fix(
            "a SELECT with one row per entry; it may use :window_start, :window_end (UTC),"
            " :window_start_local, :window_end_local (the connector's zone) and :owner"
        )
    )
    columns: EntryColumns = EntryColumns()
    chunk_size: int = Field(
        1000, ge=10, le=100_000, json_schema_extra=_fix("rows fetched per round trip, 10 to 100000")
    )
    connect_timeout_s: float = Field(10.0, gt=0, le=300, json_schema_extra=_fix("seconds, up to 300"))

    _url = field_validator("url")(_database_url)

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        return _check_query(value, SQL_PARAMETERS, "a source query")


def _local_host(url: str) -> bool:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    return host in ("localhost", "127.0.0.1", "::1")


class _HttpEndpointSection(_Section):
    """A JSON web API read page by page; shared by the schedule and the target sources."""

    kind: Literal["http"] = "http"
    url: str = Field(json_schema_extra=_fix("the endpoint, e.g. https://planning.example.com/api/shifts"))
    items_path: str = Field(
        "",
        json_schema_extra=_fix(
            'where the list of items is in each answer: "" (the answer is the list), "value", "data.items"'
            ' or a JSON pointer such as "/data/items"'
        ),
    )
    paging: Literal["none", "next_link", "page", "offset"] = Field(
        "none",
        json_schema_extra=_fix(
            "none (one request), next_link (each answer names the next URL), page (page=1, 2, ...)"
            " or offset (offset=0, 100, ...)"
        ),
    )
    next_path: str = Field(
        "",
        json_schema_extra=_fix(
            'where the next URL is in the answer, e.g. "@odata.nextLink" or "links.next";'
            ' "" reads the Link: <...>; rel="next" header'
        ),
    )
    page_param: str = Field("page", min_length=1, json_schema_extra=_fix("the page number's query parameter"))
    page_start: int = Field(1, ge=0, json_schema_extra=_fix("the first page's number, usually 1 or 0"))
    offset_param: str = Field("offset", min_length=1, json_schema_extra=_fix("the offset's query parameter"))
    page_size_param: str = Field(
        "", json_schema_extra=_fix('the page size\'s query parameter, e.g. "per_page" or "limit"')
    )
    page_size: int | None = Field(
        None, ge=1, le=100_000, json_schema_extra=_fix("items per page, 1 to 100000")
    )
    stop_on: Literal["empty", "short", "total"] = Field(
        "empty",
        json_schema_extra=_fix(
            "empty (a page without items ends the read), short (a page with fewer than page_size items"
            " does; only if the server never sends smaller pages) or total (total_path says how many items)"
        ),
    )
    total_path: str = Field(
        "", json_schema_extra=_fix('where the total number of items is in the answer, e.g. "meta.total"')
    )
    max_pages: int = Field(10_000, ge=1, json_schema_extra=_fix("a whole number of pages, at least 1"))
    params: dict[str, str] = Field(
        default_factory=dict, json_schema_extra=_fix('fixed query parameters, e.g. { status = "active" }')
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        json_schema_extra=_fix('fixed request headers (not secrets: use auth = "header" for those)'),
    )
    auth: Literal["none", "bearer", "basic", "header"] = Field(
        "none",
        json_schema_extra=_fix(
            "none, bearer (token), basic (username, password) or header (header_name, header_value)"
        ),
    )
    token: SecretStr | None = None
    username: str = ""
    password: SecretStr | None = None
    header_name: str = ""
    header_value: SecretStr | None = None
    ca_file: Path | None = Field(None, json_schema_extra=_fix("a PEM bundle of extra CAs to trust"))
    timeout_s: float = Field(30.0, gt=0, le=600, json_schema_extra=_fix("seconds per request, up to 600"))
    retries: int = Field(
        3, ge=0, le=10, json_schema_extra=_fix("retries after a timeout, 429 or 5xx answer, 0 to 10")
    )
    backoff_s: float = Field(
        1.0, ge=0, le=60, json_schema_extra=_fix("seconds before the first retry (doubling), 0 to 60")
    )
    max_retry_wait_s: float = Field(
        60.0,
        ge=0,
        le=600,
        json_schema_extra=_fix("the longest Retry-After the connector waits out, 0 to 600 seconds"),
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")) or not value.partition("://")[2].strip("/"):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> _HttpEndpointSection:
        needs = {
            "bearer": ("token",),
            "basic": ("username", "password"),
            "header": ("header_name", "header_value"),
        }
        missing = [key for key in needs.get(self.auth, ()) if not getattr(self, key)]
        if missing:
            raise ValueError(
                f"auth is {self.auth!r} but {' and '.join(missing)} is not set"
                f' — e.g. {missing[-1]} = {{ env = "CONNECTOR_API_{missing[-1].upper()}" }}'
            )
        unused = [key for key in ("token", "password", "header_value") if getattr(self, key) is not None]
        unused = [key for key in unused if key not in needs.get(self.auth, ())]
        if unused:
            raise ValueError(
                f"{' and '.join(unused)} is set but auth is {self.auth!r}, so it would not be sent"
                " — set auth to bearer, basic or header, or remove it"
            )
        if self.auth != "none" and self.url.startswith("http://") and not _local_host(self.url):
            raise ValueError("credentials would travel unencrypted over plain http — use an https:// URL")
        if self.stop_on == "short" and (self.page_size is None or not self.page_size_param):
            raise ValueError(
                'stop_on = "short" needs page_size and page_size_param, so the server sends full pages'
            )
        if self.stop_on == "total" and not self.total_path:
            raise ValueError('stop_on = "total" needs total_path — where the answer says how many items')
        if self.paging == "none" and (self.stop_on != "empty" or self.page_size_param):
            raise ValueError(
                "paging is 'none' but paging keys are set — set paging to next_link, page or offset"
            )
        return self


class HttpSourceSection(_HttpEndpointSection):
    columns: EntryColumns = EntryColumns()
    window_start_param: str = Field(
        "", json_schema_extra=_fix('the query parameter for the window\'s start, e.g. "from" ("" sends none)')
    )
    window_end_param: str = Field(
        "", json_schema_extra=_fix('the query parameter for the window\'s (exclusive) end, e.g. "to"')
    )
    window_format: Literal["utc", "local", "date"] = Field(
        "utc",
        json_schema_extra=_fix(
            "utc (2026-11-16T23:00:00Z), local (2026-11-17T00:00:00, the connector's zone) or date (2026-11-17)"
        ),
    )
    owner_param: str = Field(
        "",
        json_schema_extra=_fix(
            'the query parameter that narrows a one-mailbox read to its owner, e.g. "employee" ("" sends none)'
        ),
    )


class IcsSourceSection(_Section):
    kind: Literal["ics"] = "ics"
    path: Path = Field(
        json_schema_extra=_fix("an .ics file or a folder of .ics files, relative to settings.toml")
    )
    owner: str | None = Field(
        None,
        min_length=1,
        json_schema_extra=_fix("the owner key or mailbox address every event of the file(s) belongs to"),
    )
    owner_property: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9-]+$",
        json_schema_extra=_fix(
            'the event property naming each event\'s owner: letters, digits and "-", e.g. "X-OWNER" or "ORGANIZER"'
        ),
    )

    @model_validator(mode="after")
    def _owner(self) -> IcsSourceSection:
        if self.owner is None and self.owner_property is None:
            raise ValueError(
                "kind is 'ics' but neither owner nor owner_property is set — set owner = \"anna@contoso.example\""
                ' (the calendar of one person or room) or owner_property = "X-OWNER" (one per event)'
            )
        return self


def _kind(default: str) -> Callable[[Any], Any]:
    """The discriminator of a ``kind`` union; a table without ``kind`` is of the ``default`` kind."""

    def kind_of(value: Any) -> Any:
        if isinstance(value, dict):
            return value.get("kind", default)
        return getattr(value, "kind", None)

    return kind_of


SourceSection = Annotated[
    Annotated[FileSourceSection, Tag("file")]
    | Annotated[SqlSourceSection, Tag("sql")]
    | Annotated[HttpSourceSection, Tag("http")]
    | Annotated[IcsSourceSection, Tag("ics")],
    Discriminator(_kind("file")),
]


class TargetEntry(_Section):
    address: str
    owner_key: str = ""
    kind: Literal["user", "room", "equipment"] = "user"
    enabled: bool = True
    display_name: str = ""


class FileTargetsSection(_Section):
    kind: Literal["file"] = "file"
    path: Path | None = Field(
        None, json_schema_extra=_fix("the path of a .csv or .json file, relative to settings.toml")
    )

    @model_validator(mode="after")
    def _needs(self) -> FileTargetsSection:
        if self.path is None:
            raise ValueError(
                "targets.kind is 'file' but targets.path is not set — set path = \"targets.csv\""
            )
        return self


class InlineTargetsSection(_Section):
    kind: Literal["inline"] = "inline"
    list: tuple[TargetEntry, ...] = ()

    @model_validator(mode="after")
    def _needs(self) -> InlineTargetsSection:
        if not self.list:
            raise ValueError(
                "targets.kind is 'inline' but there is no [[targets.list]] entry — add at least one"
            )
        return self


class SourceTargetsSection(_Section):
    """No directory: each entry's owner is the mailbox address itself."""

    kind: Literal["source"] = "source"


class SqlTargetsSection(_Section):
    kind: Literal["sql"] = "sql"
    #: Unset: the source's database (``[source] kind = "sql"``).
    url: SecretStr | None = Field(None, json_schema_extra=_fix(_URL_FIX))
    query: str = Field(
        json_schema_extra=_fix(
            "a SELECT with one row per user or resource: address, owner_key, kind, enabled"
        )
    )
    columns: TargetColumns = TargetColumns()
    chunk_size: int = Field(
        1000, ge=10, le=100_000, json_schema_extra=_fix("rows fetched per round trip, 10 to 100000")
    )
    connect_timeout_s: float = Field(10.0, gt=0, le=300, json_schema_extra=_fix("seconds, up to 300"))

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None else _database_url(value)

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        return _check_query(value, (), "a targets query")


class HttpTargetsSection(_HttpEndpointSection):
    columns: TargetColumns = TargetColumns()


TargetsSection = Annotated[
    Annotated[FileTargetsSection, Tag("file")]
    | Annotated[InlineTargetsSection, Tag("inline")]
    | Annotated[SourceTargetsSection, Tag("source")]
    | Annotated[SqlTargetsSection, Tag("sql")]
    | Annotated[HttpTargetsSection, Tag("http")],
    Discriminator(_kind("file")),
]


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
    source: SourceSection
    targets: TargetsSection = SourceTargetsSection()
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

    @model_validator(mode="after")
    def _targets_database(self) -> Settings:
        if (
            isinstance(self.targets, SqlTargetsSection)
            and self.targets.url is None
            and not isinstance(self.source, SqlSourceSection)
        ):
            raise ValueError(
                "targets.kind is 'sql' but targets.url is not set, and the source is no database to share"
                ' — set targets.url, e.g. url = { env = "CONNECTOR_TARGETS_URL" }'
            )
        return self

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


def _section_types(annotation: Any) -> list[type[BaseModel]]:
    """The settings models behind a field's annotation: one for ``Section`` or ``Section | None``, one
    per kind for a ``kind`` union."""
    if typing.get_origin(annotation) is Annotated:
        return _section_types(typing.get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for candidate in typing.get_args(annotation):
        found += _section_types(candidate)
    return found


def _kind_tag(model: type[BaseModel]) -> Any:
    return typing.get_args(model.model_fields["kind"].annotation)[0]


def _secret_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    paths: set[tuple[str, ...]] = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if annotation is SecretStr or annotation == (SecretStr | None) or annotation == dict[str, SecretStr]:
            paths.add((*prefix, name))
        else:
            # Every kind of a union counts: a key is a secret if it is one in any kind.
            for section in _section_types(annotation):
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
        loc, parent = _walk(error["loc"])
        path = tuple(str(part) for part in loc if not isinstance(part, int))
        dotted = _dotted(loc)
        kind = error["type"]
        if kind == "extra_forbidden":
            problems.append(_unknown_key(parent, path, dotted))
            continue
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            problems.append(_bad_kind(parent, path, dotted, error.get("input")))
            continue
        fix = _fix_for(parent, path)
        if kind == "missing":
            problems.append(f"{dotted}: required but not set" + (f" — {fix}" if fix else ""))
            continue
        message = str(error["msg"]).removeprefix("Value error, ")
        # Secret values are never echoed, not even when they are wrong.
        shown = ""
        given = error.get("input")
        secret = any(path[: len(p)] == p for p in secret_paths)
        # Long values (a whole SQL query) would bury the message; the message names what is wrong.
        if not secret and not isinstance(given, dict | list) and len(repr(given)) <= 80:
            shown = f" (got {given!r})"
        problems.append(f"{dotted or 'settings'}: {message}{shown}" + (f" — {fix}" if fix else ""))
    return problems


def _dotted(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _walk(loc: tuple[int | str, ...]) -> tuple[tuple[int | str, ...], type[BaseModel] | None]:
    """``loc`` without the tag pydantic puts after the key of a ``kind`` union (``source.sql.url`` is
    ``source.url`` to the admin), and the model holding its last key (``None`` if there is none)."""
    clean: list[int | str] = []
    model: type[BaseModel] | None = Settings
    parent: type[BaseModel] | None = None
    rest = list(loc)
    while rest:
        part = rest.pop(0)
        clean.append(part)
        if isinstance(part, int):
            continue
        parent = model
        info = model.model_fields.get(part) if model is not None else None
        members = _section_types(info.annotation) if info is not None else []
        if len(members) > 1:
            tag = rest.pop(0) if rest else None
            model = next((m for m in members if _kind_tag(m) == tag), None)
        else:
            model = members[0] if members else None
    return tuple(clean), parent


def _fix_for(parent: type[BaseModel] | None, path: tuple[str, ...]) -> str:
    if parent is None or not path or path[-1] not in parent.model_fields:
        return ""
    extra = parent.model_fields[path[-1]].json_schema_extra
    return str(extra.get("fix", "")) if isinstance(extra, dict) else ""


def _bad_kind(parent: type[BaseModel] | None, path: tuple[str, ...], dotted: str, given: Any) -> str:
    info = parent.model_fields.get(path[-1]) if parent is not None and path else None
    kinds = [str(_kind_tag(m)) for m in _section_types(info.annotation)] if info is not None else []
    choices = f"{', '.join(kinds[:-1])} or {kinds[-1]}" if len(kinds) > 1 else "".join(kinds)
    if not isinstance(given, dict):
        return f"{dotted}: must be a table [{dotted}] — give it kind = {choices} and that kind's keys"
    return f"{dotted}.kind: {given.get('kind')!r} is not a kind of {dotted} — use {choices}"


def _unknown_key(parent: type[BaseModel] | None, path: tuple[str, ...], dotted: str) -> str:
    known = sorted(n for n in (parent.model_fields if parent else {}) if n not in {"base_dir", "origin"})
    close = difflib.get_close_matches(path[-1], known, n=1)
    if close:
        return f"{dotted}: unknown key — did you mean '{close[0]}'?"
    where = ".".join(path[:-1]) or "the top level"
    if parent is not None and "kind" in parent.model_fields and len(path) > 1:
        where += f" of kind {_kind_tag(parent)!r}"
    return f"{dotted}: unknown key — {where} accepts: {', '.join(known)}"
