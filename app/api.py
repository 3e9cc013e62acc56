"""The host application's HTTP API (``connector serve``): ask for a sync, follow a run, look at a
mailbox, and the two probes an orchestrator needs.

The API only queues runs and reads the state store; ``connector worker`` processes do the syncing
(DESIGN §5). That needs ``[jobs] redis_url``: on the embedded default (stub broker) no worker would
ever pick a queued run up, so ``POST /api/v1/sync`` refuses with 503 and says what to configure
(``connector serve`` checks ``JobSystem.in_process`` before it starts, too).

Security: every ``/api`` route needs a bearer token from ``[api.tokens]``; there is no open mode, and
no token configured means every request is refused. Tokens are compared in constant time against every
configured token, and the token itself never appears in a response or a log line, only its name.

The JSON shapes of runs, mailbox results and quarantine entries are those of ``connector sync --json``
and ``connector status --json`` (``app.report``): one public interface, whichever way it is read.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import report
from app.jobs import JobSystem, check_users
from connector.errors import ConnectorError, TransientError, UsageError
from connector.state import MailboxStatus, RunStatus, SyncMode
from connector.sync import SyncRequest
from jobs.broker import live_workers

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
DOCS = "/docs"
#: Sent with every 401 (RFC 6750): tells a client which scheme to use.
REALM = 'Bearer realm="connector"'
#: The largest run id the state database can hold (a BIGINT): a larger one could only be a 404.
MAX_RUN_ID = 2**63 - 1
#: Seconds a client should wait before asking again when Redis or the database is down.
RETRY_AFTER_S = 10
#: The longest mailbox address RFC 5321 allows.
MAX_ADDRESS = 320

RIGHT_SYNC = "sync"
RIGHT_READ = "read"


# -- models ------------------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    """Every error the API answers: a stable code, what went wrong, and what to do about it."""

    error: str = Field(description="Short stable code, e.g. `unauthenticated`, `run_not_found`.")
    message: str = Field(description="What went wrong, for humans.")
    fix: str | None = Field(None, description="What to do about it, where something can be done.")


class FieldProblem(BaseModel):
    loc: list[str | int] = Field(description='Where the problem is, e.g. `["body", "mode"]`.')
    msg: str
    type: str


class ValidationErrorBody(ErrorBody):
    detail: list[FieldProblem] = Field(description="One entry per invalid field.")


UserRef = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ADDRESS, strict=True)
]


class SyncBody(BaseModel):
    """What to sync. An empty body (`{}`) syncs every enabled target in fast mode."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"users": ["alice@contoso.example", "E1002"], "mode": "fast", "force": False}]
        },
    )

    users: list[UserRef] = Field(
        default_factory=list,
        max_length=1000,
        description=(
            "Mailbox addresses or owner keys (matched case-insensitively, duplicates dropped), each an"
            " enabled target: any other name is refused (422) before a run is queued. Empty or left"
            " out: every enabled target."
        ),
    )
    mode: SyncMode = Field(
        SyncMode.FAST,
        description=(
            "`fast` pushes the difference from the state; `verify` also reads the calendars to repair"
            " edits made in Outlook, adopt our events and remove duplicates (slower)."
        ),
    )
    force: StrictBool = Field(
        False,
        description="Let the delete guard pass (only after checking that the source is right).",
    )

    @field_validator("users")
    @classmethod
    def _distinct(cls, users: list[str]) -> list[str]:
        # The directory matches case-insensitively, so "E1002" and "e1002" are one target.
        seen: set[str] = set()
        distinct: list[str] = []
        for user in users:
            if user.casefold() not in seen:
                seen.add(user.casefold())
                distinct.append(user)
        return distinct


class RunLinks(BaseModel):
    run: str = Field(description="Where to follow the run (`GET`).")


class SyncAccepted(BaseModel):
    run_id: int
    status: RunStatus = Field(description="Always `queued`: a worker picks the run up.")
    links: RunLinks


#: Timestamps are the ISO 8601 strings of ``app.report`` (UTC offset included), kept byte for byte.
_TIMESTAMP: dict[str, Any] = {"format": "date-time"}


class CountsView(BaseModel):
    created: int
    updated: int
    deleted: int
    unchanged: int
    adopted: int = Field(description="Our events found in a calendar (by tag) and taken over.")
    failed: int = Field(description="Entries whose write failed; they are tried again next run.")
    quarantined: int = Field(description="Source entries skipped as unusable (see the mailbox).")


class OpErrorView(BaseModel):
    source_key: str
    error: str


class MailboxResultView(CountsView):
    address: str
    status: MailboxStatus
    error_code: str | None
    error: str | None
    op_errors: list[OpErrorView] = Field(description="Per-entry failures: the entry's key and why.")
    started_at: str | None = Field(json_schema_extra=_TIMESTAMP)
    finished_at: str | None = Field(json_schema_extra=_TIMESTAMP)


class RunView(CountsView):
    """A run and how far it got. The counts are the sum over the mailboxes done so far."""

    run_id: int
    status: RunStatus = Field(
        description="`queued`, `running`, then `succeeded`, `partial`, `failed` or `blocked`."
    )
    trigger: str = Field(description="Who asked: `api:<token name>`, `cli`, `schedule:<job>` ...")
    mode: SyncMode
    forced: bool
    started_at: str | None = Field(json_schema_extra=_TIMESTAMP)
    finished_at: str | None = Field(json_schema_extra=_TIMESTAMP)
    mailboxes_total: int = Field(description="Mailboxes the run covers; 0 until a worker read the source.")
    mailboxes_done: int
    error: str | None = Field(description="Why the run as a whole failed, if it did.")
    mailboxes: list[MailboxResultView] = Field(description="One result per mailbox done so far.")


class HealthView(BaseModel):
    status: MailboxStatus
    healthy: bool
    last_run_id: int | None
    last_run_at: str | None = Field(json_schema_extra=_TIMESTAMP)
    last_success_at: str | None = Field(json_schema_extra=_TIMESTAMP)
    error_code: str | None
    error: str | None = Field(description="Why the mailbox is unhealthy, with the fix where known.")
    last_counts: CountsView


class QuarantineView(BaseModel):
    source_key: str
    owner: str
    mailbox: str | None
    reason: str = Field(description="Why the entry is skipped; fix it in the source.")
    origin: str = Field(description="Where in the source, e.g. `schedule.csv:146`.")
    first_seen: str | None = Field(json_schema_extra=_TIMESTAMP)
    last_seen: str | None = Field(json_schema_extra=_TIMESTAMP)


class MailboxView(BaseModel):
    address: str
    health: HealthView | None = Field(description="`null` until the mailbox's first sync.")
    quarantined: int
    quarantine: list[QuarantineView] = Field(description="The mailbox's skipped source entries.")


class ProbeView(BaseModel):
    status: str = Field(description="`ok` / `ready`, or `not_ready`.")
    checks: dict[str, str] = Field(
        default_factory=dict, description="Per dependency: `ok`, `unreachable` or `not_configured`."
    )
    workers: int | None = Field(
        None,
        description=(
            "Worker processes alive (informative: the API is ready without them, but queued runs wait"
            " until one runs). Absent in the liveness probe."
        ),
    )


# -- errors ------------------------------------------------------------------------------------------


class ApiError(Exception):
    """An answer other than success, raised anywhere in a request and turned into JSON."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        fix: str | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        body: ErrorBody | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body or ErrorBody(error=code, message=message, fix=fix)
        self.headers = headers

    def response(self) -> JSONResponse:
        return JSONResponse(self.body.model_dump(), status_code=self.status_code, headers=self.headers)


def _invalid(problems: list[FieldProblem], fix: str | None = None) -> ApiError:
    """422 naming each bad field (what the request schema refuses, or a user who is no target)."""
    summary = "; ".join(f"{'.'.join(map(str, p.loc))}: {p.msg}" for p in problems[:5])
    body = ValidationErrorBody(
        error="invalid_request",
        message=f"the request is not valid: {summary}",
        fix=fix or f"see the request schema at {DOCS}",
        detail=problems,
    )
    return ApiError(status.HTTP_422_UNPROCESSABLE_CONTENT, body.error, body.message, body=body)


def _error_responses(*codes: int, not_found: str = "") -> dict[int | str, dict[str, Any]]:
    """The documented error answers of a route; 422 always, in our shape instead of FastAPI's."""
    described = {
        401: "No token, a malformed `Authorization` header, or a token that is not configured.",
        403: "The token is valid but lacks the right this route needs.",
        404: not_found,
        503: "A dependency (Redis, the state database) is down, or no worker could run the job.",
    }
    responses: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorBody, "description": described[code]} for code in codes
    }
    responses[422] = {"model": ValidationErrorBody, "description": "A parameter or the body is not valid."}
    return responses


_STATUS_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
}


# -- authentication ----------------------------------------------------------------------------------


class Tokens:
    """The configured tokens, kept as SHA-256 digests: comparing digests of equal length in constant
    time leaks neither a token's content nor its length."""

    def __init__(self, system: JobSystem) -> None:
        api = system.settings.api
        self._digests = [
            (name, hashlib.sha256(secret.get_secret_value().encode("utf-8")).digest())
            for name, secret in sorted(api.tokens.items())
        ]
        self._rights = {name: api.rights_of(name) for name in api.tokens}

    def authenticate(self, authorization: str | None) -> str:
        """The name of the token in an ``Authorization`` header; ``ApiError`` 401 otherwise."""
        if not self._digests:
            raise ApiError(
                status.HTTP_401_UNAUTHORIZED,
                "unauthenticated",
                "the API has no tokens configured, so it refuses every request",
                fix='add one under [api.tokens], e.g. planning = { env = "CONNECTOR_API_TOKEN" }',
                headers={"WWW-Authenticate": REALM},
            )
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                status.HTTP_401_UNAUTHORIZED,
                "unauthenticated",
                "this request needs a bearer token",
                fix="send the header `Authorization: Bearer <token>` with a token from [api.tokens]",
                headers={"WWW-Authenticate": REALM},
            )
        # Starlette decodes headers as latin-1: encoding back gives the bytes the client sent, which
        # are UTF-8 for a non-ASCII token, like the configured tokens' digests.
        sent = hashlib.sha256(token.encode("latin-1", errors="replace")).digest()
        found: str | None = None
        # Every token is compared, even after a match, so the time taken says nothing about which.
        for name, digest in self._digests:
            if hmac.compare_digest(sent, digest):
                found = name
        if found is None:
            log.warning("refused a bearer token that matches no configured token")
            raise ApiError(
                status.HTTP_401_UNAUTHORIZED,
                "invalid_token",
                "the bearer token is not valid",
                fix="use a token configured under [api.tokens] (tokens are case-sensitive)",
                headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
            )
        return found

    def authorize(self, name: str, right: str) -> None:
        if right not in self._rights.get(name, frozenset()):
            raise ApiError(
                status.HTTP_403_FORBIDDEN,
                "forbidden",
                f"the token '{name}' does not have the '{right}' right this request needs",
                fix=f'add "{right}" to [api.rights] {name}, or use a token that has it',
                headers={"WWW-Authenticate": f'{REALM}, error="insufficient_scope"'},
            )


BEARER = HTTPBearer(
    auto_error=False,  # our own 401 (JSON body, RFC 6750 header) instead of FastAPI's
    scheme_name="bearer",
    description="A token from [api.tokens]; [api.rights] says what it may do.",
)


def _tokens(request: Request) -> Tokens:
    tokens: Tokens = request.app.state.tokens
    return tokens


def _caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> str:
    """The calling token's name. ``credentials`` only declares the scheme in the OpenAPI document:
    the header itself is parsed by ``Tokens``, so a non-bearer scheme gets the same 401 as none."""
    name = _tokens(request).authenticate(request.headers.get("authorization"))
    request.state.token_name = name  # for the request log line
    return name


def _may_sync(request: Request, name: Annotated[str, Depends(_caller)]) -> str:
    _tokens(request).authorize(name, RIGHT_SYNC)
    return name


def _may_read(request: Request, name: Annotated[str, Depends(_caller)]) -> str:
    _tokens(request).authorize(name, RIGHT_READ)
    return name


MaySync = Annotated[str, Depends(_may_sync)]
MayRead = Annotated[str, Depends(_may_read)]


# -- the application ---------------------------------------------------------------------------------


def create_app(system: JobSystem) -> FastAPI:
    """The API over ``system``. The caller owns ``system`` and closes it after the server stopped."""
    app = FastAPI(
        docs_url=DOCS,
        title="Schedule push connector",
        version="1",
        summary="Queue calendar syncs and follow them; mailbox health and quarantined entries.",
        description=(
            "Every `/api` route needs `Authorization: Bearer <token>` with a token from `[api.tokens]`;"
            " `[api.rights]` limits a token to `sync` and/or `read` (default: both). Errors are"
            ' `{"error", "message", "fix"}`. `/healthz` and `/readyz` are for probes and need no token.'
        ),
    )
    tokens = Tokens(system)
    # The auth dependencies are module functions (FastAPI resolves their annotations from the module),
    # so they find this app's tokens through the request.
    app.state.tokens = tokens

    @app.middleware("http")
    async def log_request(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        log.info(
            "%s %s -> %d (token %s, %.0f ms)",
            request.method,
            request.url.path,
            response.status_code,
            getattr(request.state, "token_name", "-"),
            (time.perf_counter() - started) * 1000,
        )
        return response

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(ConnectorError)
    async def connector_error(request: Request, exc: ConnectorError) -> JSONResponse:
        # Store errors come translated, with the database URL's password masked. Passing ones (the
        # database or the targets file unreachable) are 503: the same request may work later.
        if exc.retryable:
            code, headers = status.HTTP_503_SERVICE_UNAVAILABLE, {"Retry-After": str(RETRY_AFTER_S)}
        elif isinstance(exc, UsageError):
            code, headers = status.HTTP_400_BAD_REQUEST, None
        else:
            code, headers = status.HTTP_500_INTERNAL_SERVER_ERROR, None
        log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return ApiError(code, exc.code, exc.message, exc.fix, headers).response()

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        # Starlette logs the traceback (and re-raises to the server); the client gets JSON that says
        # where to look, never the exception's text, which could hold anything.
        return ApiError(
            status.HTTP_500_INTERNAL_SERVER_ERROR,
            "internal",
            f"the request failed unexpectedly ({type(exc).__name__})",
            fix="see the connector's log; the request can be tried again",
        ).response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        fix = f"see {DOCS} for the routes" if exc.status_code in (404, 405) else None
        return ApiError(exc.status_code, code, str(exc.detail), fix, exc.headers).response()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        if request.url.path.startswith(API_PREFIX):
            # FastAPI reads a JSON body before the dependencies run: without this, a caller without
            # a token would learn about our validation before being told to authenticate.
            try:
                tokens.authenticate(request.headers.get("authorization"))
            except ApiError as refused:
                return refused.response()
        # Only where and what: pydantic's ``input`` (and ``ctx``) would echo what was sent.
        problems = [
            FieldProblem(loc=list(e["loc"]), msg=str(e["msg"]), type=str(e["type"])) for e in exc.errors()
        ]
        return _invalid(problems).response()

    @app.post(
        f"{API_PREFIX}/sync",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=SyncAccepted,
        responses=_error_responses(401, 403, 503),
        tags=["runs"],
        summary="Queue a sync",
        description=(
            "Queues a run and answers at once with its id (and a `Location` header); a worker carries"
            " it out. Follow it with `GET /api/v1/runs/{run_id}`. Needs the `sync` right."
        ),
    )
    def queue_sync(body: SyncBody, token: MaySync, response: Response) -> SyncAccepted:
        if system.in_process:
            # A stub broker's queue lives in this process and no worker consumes it here.
            raise ApiError(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "no_worker",
                "runs cannot be queued: no [jobs] redis_url is configured, so no worker would pick"
                " the run up",
                fix="set [jobs] redis_url and run `connector worker`; `connector sync` works without",
            )
        try:
            check_users(system.settings, body.users)
        except UsageError as exc:
            # Said now, in the shape of the other field problems, rather than by a failed run later.
            raise _invalid(
                [FieldProblem(loc=["body", "users"], msg=exc.message, type="unknown_user")], fix=exc.fix
            ) from exc
        request = SyncRequest(body.mode, tuple(body.users), body.force, trigger=f"api:{token}")
        try:
            run_id = system.runs.submit(request)
        except TransientError as exc:
            log.error("could not queue a run for token %s: %s", token, exc)
            raise ApiError(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                exc.code,
                exc.message,
                exc.fix,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            ) from exc
        link = f"{API_PREFIX}/runs/{run_id}"
        response.headers["Location"] = link
        log.info(
            "run %d queued for token %s (%s, %d users, force=%s)",
            run_id,
            token,
            body.mode.value,
            len(body.users),
            body.force,
        )
        return SyncAccepted(run_id=run_id, status=RunStatus.QUEUED, links=RunLinks(run=link))

    @app.get(
        f"{API_PREFIX}/runs/{{run_id}}",
        response_model=RunView,
        responses=_error_responses(401, 403, 404, 503, not_found="No run with this id."),
        tags=["runs"],
        summary="Follow a run",
        description=(
            "The run's status and counts so far, and one result per mailbox done. Poll until `status`"
            " is neither `queued` nor `running`. Needs the `read` right."
        ),
    )
    def get_run(
        run_id: Annotated[int, Path(ge=1, le=MAX_RUN_ID, description="As returned by POST /sync.")],
        token: MayRead,
    ) -> RunView:
        record = system.store.run(run_id)
        if record is None:
            raise ApiError(
                status.HTTP_404_NOT_FOUND,
                "run_not_found",
                f"there is no run {run_id}",
                fix="use the run_id that POST /api/v1/sync answered",
            )
        doc = report.run_json(record)
        doc["mailboxes"] = [report.result_json(r) for r in record.results]
        return RunView.model_validate(doc)

    @app.get(
        f"{API_PREFIX}/mailboxes/{{address}}",
        response_model=MailboxView,
        responses=_error_responses(
            401, 403, 404, 503, not_found="The connector has neither health nor quarantine for it."
        ),
        tags=["mailboxes"],
        summary="A mailbox's health and quarantined entries",
        description=(
            "How the mailbox's last sync went (and, if it is unhealthy, why) and the source entries for"
            " it that are skipped as unusable. The address is matched case-insensitively. Needs the"
            " `read` right."
        ),
    )
    def get_mailbox(
        address: Annotated[str, Path(min_length=1, max_length=MAX_ADDRESS)],
        token: MayRead,
    ) -> MailboxView:
        wanted = address.strip().casefold()
        health = next((h for h in system.store.health() if h.mailbox.casefold() == wanted), None)
        entries = [q for q in system.store.quarantine() if q.mailbox and q.mailbox.casefold() == wanted]
        if health is None and not entries:
            raise ApiError(
                status.HTTP_404_NOT_FOUND,
                "mailbox_not_found",
                f"the connector knows nothing of the mailbox {address.strip()}",
                fix="check the address; a mailbox is known after its first sync",
            )
        return MailboxView(
            # The store's spelling (addresses are stored lower-case), not the caller's.
            address=health.mailbox if health else entries[0].mailbox or wanted,
            health=HealthView.model_validate(report.health_json(health)) if health else None,
            quarantined=len(entries),
            quarantine=[QuarantineView.model_validate(q) for q in report.quarantine_json(entries)],
        )

    @app.get(
        "/healthz",
        response_model=ProbeView,
        tags=["probes"],
        summary="Liveness",
        description="200 while the process answers. Checks no dependency; needs no token.",
    )
    def healthz() -> ProbeView:
        return ProbeView(status="ok")

    @app.get(
        "/readyz",
        response_model=ProbeView,
        responses={503: {"model": ProbeView, "description": "A dependency is down (named in `checks`)."}},
        tags=["probes"],
        summary="Readiness",
        description=(
            "200 when Redis and the state database answer, else 503 naming which does not."
            " Without [jobs] redis_url runs cannot be queued, so that is `not_configured` (503)."
            " Needs no token."
        ),
    )
    def readyz(response: Response) -> ProbeView:
        checks = {"redis": _check_redis(system), "database": _check_database(system)}
        ready = all(state == "ok" for state in checks.values())
        if not ready:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return ProbeView(
            status="ready" if ready else "not_ready",
            checks=checks,
            workers=_count_workers(system) if checks["redis"] == "ok" else None,
        )

    return app


def _check_redis(system: JobSystem) -> str:
    if system.in_process:
        return "not_configured"
    try:
        system.coordinator.ping()
    except Exception as exc:
        # The probe is unauthenticated: the reason goes to the log only (Redis errors name host and
        # port, never the URL's password).
        log.warning("readiness: Redis is unreachable: %s: %s", type(exc).__name__, exc)
        return "unreachable"
    return "ok"


def _count_workers(system: JobSystem) -> int | None:
    try:
        return live_workers(system.broker)
    except Exception as exc:
        log.warning("readiness: could not count workers: %s", type(exc).__name__)
        return None


def _check_database(system: JobSystem) -> str:
    try:
        system.store.recent_runs(1)
    except Exception as exc:
        # Store errors are ConnectorErrors with the URL's password masked.
        log.warning("readiness: the state database is unreachable: %s: %s", type(exc).__name__, exc)
        return "unreachable"
    return "ok"
