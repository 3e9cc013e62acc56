"""Schedules and targets from a JSON web API of the host application, read page by page with httpx.

One endpoint answers JSON; the items are a list at ``items_path`` in each answer (``""``: the answer is
the list). Paging:

* ``next_link`` — each answer names the next page's URL at ``next_path`` (``@odata.nextLink``,
  ``links.next``; relative URLs are resolved against the page's), or in a ``Link: <...>; rel="next"``
  header when ``next_path`` is empty. No next URL ends the read.
* ``page`` / ``offset`` — ``page_param`` counts pages from ``page_start``, or ``offset_param`` counts the
  items read so far; ``page_size_param`` = ``page_size`` asks for a page size. The read ends on an empty
  page (``stop_on = "empty"``), on a page shorter than ``page_size`` (``"short"``: only for servers that
  never send smaller pages early), or when ``total_path`` says all items were read (``"total"``).
* ``none`` — one request.

Items become rows through a field mapping like the SQL source's (``mapping.item_values``: mapped fields
may be dotted paths into an item), then ``rows`` parses them as for every other source.

Requests carry the credentials (bearer token, basic, or a custom header) in headers only; they never appear
in a log line or an error, and redirects are not followed, so no credential is sent anywhere but the
configured host. Timeouts, connection failures, 5xx and 429 answers are retried ``retries`` times with a
doubling back-off, or after the server's ``Retry-After``; then, as for any other refusal, ``SourceError``
names the URL (without credentials or secret-looking query values), the status and the fix. That error may
surface after earlier pages were yielded; the caller treats the whole read as failed.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import re
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import httpx

from adapters.source.mapping import find, item_values, naming
from adapters.source.rows import (
    ENTRY_COLUMNS,
    ENTRY_REQUIRED_COLUMNS,
    TARGET_COLUMNS,
    TARGET_REQUIRED_COLUMNS,
    RawRow,
    canonical_column,
    checked_zone,
    entries_from_rows,
    targets_from_rows,
)
from connector.errors import SourceError
from connector.models import Rejected, ScheduleEntry, Target
from connector.window import Window

log = logging.getLogger(__name__)

Paging = Literal["none", "next_link", "page", "offset"]
_SECRET_NAME = re.compile(r"key|token|secret|pass|pwd|sig|auth|code|credential|session", re.IGNORECASE)
_USER_AGENT = "schedule-push-connector"


@dataclass(frozen=True, slots=True)
class HttpAuth:
    kind: Literal["none", "bearer", "basic", "header"] = "none"
    token: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)
    header_name: str = ""
    header_value: str = field(default="", repr=False)

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.token, self.password, self.header_value) if s)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpEndpoint:
    """Where and how to read; the settings keys of the same names document each field."""

    url: str
    items_path: str = ""
    paging: Paging = "none"
    next_path: str = ""
    page_param: str = "page"
    page_start: int = 1
    offset_param: str = "offset"
    page_size_param: str = ""
    page_size: int | None = None
    stop_on: Literal["empty", "short", "total"] = "empty"
    total_path: str = ""
    max_pages: int = 10_000
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    auth: HttpAuth = HttpAuth()
    ca_file: Path | None = None
    timeout_s: float = 30.0
    retries: int = 3
    backoff_s: float = 1.0
    max_retry_wait_s: float = 60.0


def shown_url(url: str | httpx.URL) -> str:
    """``url`` fit for a message or a log: no user info, and secret-looking query values masked."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    query = urlencode(
        [
            (name, "***" if _SECRET_NAME.search(name) else value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*:/",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class HttpPages:
    """The pages of one endpoint, fetched lazily as the caller iterates: only one page is held at a time."""

    def __init__(
        self,
        endpoint: HttpEndpoint,
        *,
        setting: str = "source",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint = endpoint
        self._setting = setting
        self._sleep = sleep

    def pages(self, params: Mapping[str, str]) -> Iterator[tuple[int, list[Any]]]:
        """``(page number, items)`` for each page, from 1."""
        e = self.endpoint
        query = {**e.params, **params}
        if e.page_size_param and e.page_size:
            query[e.page_size_param] = str(e.page_size)
        position = e.page_start if e.paging == "page" else 0
        url = e.url
        visited: set[str] = set()
        previous: list[Any] | None = None
        read = 0
        with self._client() as client:
            for number in range(1, e.max_pages + 1):
                sent = dict(query)
                if e.paging == "page":
                    sent[e.page_param] = str(position)
                elif e.paging == "offset":
                    sent[e.offset_param] = str(position)
                elif e.paging == "next_link" and number > 1:
                    sent = {}  # a next link carries its own query
                response = self._get(client, url, sent)
                visited.add(str(response.url))
                body = self._json(response)
                items = self._items(body, response)
                if e.paging in ("page", "offset") and items and items == previous:
                    raise SourceError(
                        f"{shown_url(response.url)} answered page {number} with the same items as page"
                        f" {number - 1}: the server ignores the paging parameter",
                        fix=f"check {self._setting}.paging and the parameter names against the API's"
                        " documentation",
                    )
                yield number, items
                read += len(items)
                if e.paging == "none":
                    return
                if e.paging == "next_link":
                    link = self._next_link(body, response)
                    if not link:
                        return
                    url = urljoin(str(response.url), link)
                    if str(httpx.URL(url)) in visited:
                        raise SourceError(
                            f"{shown_url(response.url)} names an already read page as the next one",
                            fix=f"check {self._setting}.next_path: it must name the next page's URL",
                        )
                    continue
                if self._last_page(items, body, read, response):
                    return
                position += 1 if e.paging == "page" else len(items)
                previous = items
        raise SourceError(
            f"{shown_url(e.url)} still had more pages after {e.max_pages}",
            fix=f"raise {self._setting}.max_pages, or check the paging settings (the read may never end)",
        )

    def _last_page(self, items: list[Any], body: Any, read: int, response: httpx.Response) -> bool:
        e = self.endpoint
        if not items:
            return True
        if e.stop_on == "short":
            return e.page_size is not None and len(items) < e.page_size
        if e.stop_on == "total":
            found, total = find(body, e.total_path)
            if not found or isinstance(total, bool) or not isinstance(total, int):
                raise SourceError(
                    f"the answer of {shown_url(response.url)} has no whole number at {e.total_path!r}",
                    fix=f"set {self._setting}.total_path to where the answer gives the number of items",
                )
            return read >= total
        return False

    def _client(self) -> httpx.Client:
        e = self.endpoint
        headers = {"Accept": "application/json", "User-Agent": _USER_AGENT, **e.headers}
        auth: httpx.Auth | None = None
        if e.auth.kind == "bearer":
            headers["Authorization"] = f"Bearer {e.auth.token}"
        elif e.auth.kind == "header":
            headers[e.auth.header_name] = e.auth.header_value
        elif e.auth.kind == "basic":
            auth = httpx.BasicAuth(e.auth.username, e.auth.password)
        verify: ssl.SSLContext | bool = True
        if e.ca_file is not None:
            verify = ssl.create_default_context()
            try:
                verify.load_verify_locations(cafile=str(e.ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise SourceError(
                    f"cannot load the CA file {e.ca_file}: {exc}",
                    fix=f"set {self._setting}.ca_file to a readable PEM bundle",
                ) from exc
        return httpx.Client(
            headers=headers,
            auth=auth,
            verify=verify,
            timeout=e.timeout_s,
            # Not followed: a redirect could carry the credentials to another host.
            follow_redirects=False,
        )

    def _get(self, client: httpx.Client, url: str, params: Mapping[str, str]) -> httpx.Response:
        e = self.endpoint
        try:
            target = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise SourceError(
                f"{shown_url(url)} is not a URL httpx can request ({exc})",
                fix=f"check {self._setting}.url (and, with next_link paging, {self._setting}.next_path)",
            ) from exc
        if params:
            # httpx would replace the URL's own query with ``params``; the configured URL may have one.
            target = target.copy_with(params=target.params.merge(params))
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                response = client.get(target)
            except httpx.TimeoutException:
                problem = f"no answer within {e.timeout_s:g} s"
                fix = f"check that the server is up; if it is only slow, raise {self._setting}.timeout_s"
                shown = shown_url(target)
            except httpx.TransportError as exc:
                reason = self._scrub(str(exc)) or type(exc).__name__
                if "CERTIFICATE_VERIFY_FAILED" in reason:
                    # Asking again will not make the certificate trusted.
                    raise SourceError(
                        f"the certificate of {shown_url(target)} is not trusted ({reason})",
                        fix=f"set {self._setting}.ca_file to the PEM bundle of the CA that issued it",
                    ) from exc
                problem = f"cannot connect ({reason})"
                fix = f"check {self._setting}.url and that the server is reachable from this machine"
                shown = shown_url(target)
            except httpx.RequestError as exc:
                raise SourceError(
                    f"reading {shown_url(target)} failed: {self._scrub(str(exc)) or type(exc).__name__}",
                    fix=f"check {self._setting}.url and the API's answers",
                ) from exc
            else:
                shown = shown_url(response.url)
                status = response.status_code
                if status < 300:
                    return response
                if status != 429 and status < 500:
                    raise self._refused(response)
                retry_after = _retry_after(response.headers.get("Retry-After"))
                problem = f"HTTP {status} {response.reason_phrase}".rstrip()
                fix = (
                    "the API throttles the connector: sync less often, or raise"
                    f" {self._setting}.retries and {self._setting}.max_retry_wait_s"
                    if status == 429
                    else "the API server failed; check its health and logs"
                )
            fix += " — nothing is deleted until a read succeeds"
            if attempt > e.retries:
                tries = f"{attempt} attempts" if attempt > 1 else "1 attempt"
                raise SourceError(f"reading {shown} failed after {tries}: {problem}", fix=fix)
            wait = retry_after if retry_after is not None else e.backoff_s * 2 ** (attempt - 1)
            if wait > e.max_retry_wait_s:
                raise SourceError(
                    f"reading {shown} failed: {problem}, and the server asks to wait {wait:g} s,"
                    f" longer than {self._setting}.max_retry_wait_s ({e.max_retry_wait_s:g} s)",
                    fix=fix,
                )
            log.warning("reading %s: %s; retrying in %.1f s", shown, problem, wait)
            self._sleep(wait)

    def _refused(self, response: httpx.Response) -> SourceError:
        shown, status, setting = shown_url(response.url), response.status_code, self._setting
        if 300 <= status < 400:
            target = shown_url(urljoin(str(response.url), response.headers.get("Location", "")))
            return SourceError(
                f"{shown} redirects (HTTP {status}) to {target}",
                fix=f"set {setting}.url to the address it redirects to",
            )
        detail = self._scrub(" ".join(response.text[:300].split()))
        problem = f"{shown} refused the request: HTTP {status} {response.reason_phrase}".rstrip()
        problem += f" ({detail})" if detail else ""
        if status == 401:
            fix = (
                f"the API needs credentials: set {setting}.auth and its token or password"
                if self.endpoint.auth.kind == "none"
                else f"check the credentials in {setting} (auth = {self.endpoint.auth.kind!r}); they are not shown"
            )
        elif status == 403:
            fix = "the credentials were accepted but may not read this: grant the API account read access"
        elif status == 404:
            fix = f"check {setting}.url"
        else:
            fix = (
                f"check {setting}.url, {setting}.params and the window, owner and paging parameter names"
                " against the API's documentation"
            )
        return SourceError(problem, fix=fix)

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            kind = response.headers.get("Content-Type", "no Content-Type")
            raise SourceError(
                f"the answer of {shown_url(response.url)} is not JSON ({kind})",
                fix=f"set {self._setting}.url to the API's JSON endpoint",
            ) from exc

    def _items(self, body: Any, response: httpx.Response) -> list[Any]:
        path = self.endpoint.items_path
        found, items = find(body, path)
        if found and isinstance(items, list):
            return items
        keys = ", ".join(list(body)[:20]) if isinstance(body, dict) else ""
        where = f"at {path!r}" if path else "at its top level"
        seen = "nothing" if not found else f"a {type(items).__name__}"
        hint = f"; the answer's keys are: {keys}" if keys else ""
        raise SourceError(
            f"the answer of {shown_url(response.url)} holds {seen} {where}, not a list of items",
            fix=f"set {self._setting}.items_path to where the list is{hint}",
        )

    def _next_link(self, body: Any, response: httpx.Response) -> str:
        path = self.endpoint.next_path
        if not path:
            return str(response.links.get("next", {}).get("url", ""))
        found, link = find(body, path)
        if not found or link is None or link == "":
            return ""
        if not isinstance(link, str):
            raise SourceError(
                f"the answer of {shown_url(response.url)} holds a {type(link).__name__} at {path!r},"
                " not the next page's URL",
                fix=f"set {self._setting}.next_path to where the answer names the next page's URL",
            )
        return link

    def _scrub(self, message: str) -> str:
        for secret in self.endpoint.auth.secrets():
            message = message.replace(secret, "***")
        return message


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    with contextlib.suppress(ValueError):  # not a number: try the HTTP-date form
        return max(0.0, float(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def api_rows(
    pages: Iterator[tuple[int, list[Any]]],
    columns: Mapping[str, str],
    known: frozenset[str],
    required: tuple[str, ...],
    *,
    setting: str,
) -> Iterator[RawRow]:
    checked = False
    for number, items in pages:
        if not checked and items:
            _check_fields(items, columns, known, required, setting)
            checked = True
        for index, item in enumerate(items, 1):
            origin = f"http page {number} item {index}"
            if not isinstance(item, Mapping):
                yield RawRow(origin, {}, f"item is {_json_type(item)}, not an object with named values")
                continue
            values, problem = item_values(item, columns, known)
            yield RawRow(origin + naming(values), values, problem)


def _check_fields(
    items: list[Any],
    columns: Mapping[str, str],
    known: frozenset[str],
    required: tuple[str, ...],
    setting: str,
) -> None:
    """A mapped or required field that no item of the first page has is a mistake in the mapping, not
    bad data: every row would be rejected, so the read fails with the fields the items do have."""
    objects = [item for item in items if isinstance(item, Mapping)]
    if not objects:
        return
    absent = [
        f"{path} (for {name})" for name, path in columns.items() if not any(find(o, path)[0] for o in objects)
    ]
    names = {canonical_column(str(key), known) for o in objects for key in o}
    absent += [name for name in required if name not in columns and name not in names]
    if absent:
        fields = ", ".join(str(key) for key in objects[0])
        raise SourceError(
            f"no item of the first page has the field {', '.join(absent)}; the first item has: {fields}",
            fix=f"map the fields in [{setting}.columns] (dotted paths reach into nested objects)",
        )


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return f"the {type(value).__name__} {value!r}"


def _window_value(moment: datetime, window: Window, form: str) -> str:
    if form == "utc":
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    local = moment.astimezone(window.zone)
    if form == "date":
        return local.date().isoformat()
    return local.replace(tzinfo=None).isoformat(timespec="seconds")


class HttpScheduleSource:
    def __init__(
        self,
        endpoint: HttpEndpoint,
        *,
        default_zone: str,
        columns: Mapping[str, str] | None = None,
        window_start_param: str = "",
        window_end_param: str = "",
        window_format: Literal["utc", "local", "date"] = "utc",
        owner_param: str = "",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._default_zone = checked_zone(default_zone)
        self._pages = HttpPages(endpoint, sleep=sleep)
        self._columns = dict(columns or {})
        self._window_params = (window_start_param, window_end_param, window_format)
        self._owner_param = owner_param

    def describe(self) -> str:
        return f"web API {shown_url(self._pages.endpoint.url)}"

    def read(self, window: Window, owner: str | None = None) -> Iterator[ScheduleEntry | Rejected]:
        start_param, end_param, form = self._window_params
        params: dict[str, str] = {}
        if start_param:
            params[start_param] = _window_value(window.start, window, form)
        if end_param:
            params[end_param] = _window_value(window.end, window, form)
        if owner is not None and self._owner_param:
            params[self._owner_param] = owner
        rows = api_rows(
            self._pages.pages(params),
            self._columns,
            ENTRY_COLUMNS,
            ENTRY_REQUIRED_COLUMNS,
            setting="source",
        )
        return entries_from_rows(rows, self._default_zone)


class HttpTargetSource:
    def __init__(
        self,
        endpoint: HttpEndpoint,
        *,
        columns: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._pages = HttpPages(endpoint, setting="targets", sleep=sleep)
        self._columns = dict(columns or {})

    def describe(self) -> str:
        return f"web API {shown_url(self._pages.endpoint.url)}"

    def read_targets(self) -> Iterator[Target | Rejected]:
        rows = api_rows(
            self._pages.pages({}),
            self._columns,
            TARGET_COLUMNS,
            TARGET_REQUIRED_COLUMNS,
            setting="targets",
        )
        return targets_from_rows(rows)
