"""The HTTP API as the host application calls it: FastAPI's test client over ``create_app`` on a real
job system (settings read from TOML, SQLite state, the memory calendar backend, a CSV source) and the
real Redis on 127.0.0.1:6379. Queued runs are carried out by a Dramatiq worker inside the test, so a
run goes through Redis exactly as it would to a ``connector worker`` process.

Each test gets its own Redis namespace, so tests running in parallel never see each other's jobs."""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from dramatiq import Worker
from fastapi.testclient import TestClient
from httpx import Response

from app.api import MailboxResultView, RunView, create_app
from app.jobs import JobSystem, build_jobs
from app.report import result_json, run_json
from connector.errors import TransientError
from connector.models import utc_now
from connector.settings import load_settings
from connector.state import (
    Counts,
    MailboxResult,
    MailboxStatus,
    QuarantineEntry,
    RunRecord,
    RunStatus,
    SyncMode,
)
from tests.small_site import ALICE, BOB, CAROL, FIRST_DAY, settings_text, write_targets

REDIS = "redis://127.0.0.1:6379/0"
#: Nothing listens there: connecting is refused at once.
CLOSED_REDIS = "redis://127.0.0.1:1/0"
SYNC_TOKEN = secrets.token_urlsafe(32)
READ_TOKEN = secrets.token_urlsafe(32)
ENVIRON = {"API_TOKEN_PLANNING": SYNC_TOKEN, "API_TOKEN_DASHBOARD": READ_TOKEN}


def as_planning() -> dict[str, str]:
    return {"Authorization": f"Bearer {SYNC_TOKEN}"}


def as_dashboard() -> dict[str, str]:
    return {"Authorization": f"Bearer {READ_TOKEN}"}


def write_site(folder: Path) -> None:
    """Alice: 3 entries and one with its end before its start (quarantined); Bob: 2 entries; Carol is
    disabled; one entry has an owner nobody knows (quarantined, no mailbox)."""
    day = FIRST_DAY
    rows = [
        ("A-1", "E1", f"{day}T08:00", f"{day}T12:00", "Frühschicht"),
        ("A-2", "E1", f"{day + timedelta(days=1)}T08:00", f"{day + timedelta(days=1)}T12:00", "Spät"),
        ("A-3", "alice@contoso.example", f"{day + timedelta(days=2)}", "", "Urlaub"),
        ("A-BAD", "E1", f"{day}T12:00", f"{day}T08:00", "Rückwärts"),
        ("B-1", "E2", f"{day}T09:00", f"{day}T10:00", "Interview"),
        ("B-2", "E2", f"{day + timedelta(days=3)}T09:00", f"{day + timedelta(days=3)}T17:00", "Messe"),
        ("C-1", "E3", f"{day}T09:00", f"{day}T10:00", "Carol is not enabled"),
        ("X-1", "E9", f"{day}T09:00", f"{day}T10:00", "Nobody"),
    ]
    lines = ["key,owner,start,end,all_day,title"]
    lines += [f"{k},{o},{s},{e},{'true' if 'T' not in s else ''},{t}" for k, o, s, e, t in rows]
    (folder / "schedule.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_targets(folder)


def api_settings_text(*, redis_url: str | None, namespace: str, tokens: bool = True) -> str:
    jobs = f'redis_url = "{redis_url}"\n' if redis_url else ""
    api = (
        '[api.tokens]\nplanning = { env = "API_TOKEN_PLANNING" }\n'
        'dashboard = { env = "API_TOKEN_DASHBOARD" }\n'
        '[api.rights]\ndashboard = ["read"]\n'
        if tokens
        else ""
    )
    return settings_text(
        f'{jobs}namespace = "{namespace}"\nmax_retries = 0', extra=api, memory_path="calendars.json"
    )


def make_system(folder: Path, *, redis_url: str | None, tokens: bool = True) -> JobSystem:
    write_site(folder)
    namespace = f"test-api-{uuid.uuid4().hex[:8]}"
    text = api_settings_text(redis_url=redis_url, namespace=namespace, tokens=tokens)
    return build_jobs(load_settings(text, environ=ENVIRON, base_dir=folder))


def forget_namespace(namespace: str) -> None:
    # The coordinator's keys are "<ns>:...", the broker's "<ns>-dramatiq:...".
    client = redis.Redis.from_url(REDIS)
    try:
        keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def system(tmp_path: Path) -> Iterator[JobSystem]:
    """A job system on the real Redis, in a namespace of its own."""
    built = make_system(tmp_path, redis_url=REDIS)
    try:
        yield built
    finally:
        built.close()
        forget_namespace(built.settings.jobs.namespace)


@pytest.fixture
def worker(system: JobSystem) -> Iterator[Worker]:
    """What ``connector worker`` runs, inside the test: jobs go through Redis and back."""
    running = Worker(system.broker, worker_threads=2, worker_timeout=100)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def client(system: JobSystem) -> Iterator[TestClient]:
    with TestClient(create_app(system)) as test_client:
        yield test_client


def queue(client: TestClient, body: dict[str, Any] | None = None) -> int:
    response = client.post("/api/v1/sync", json=body or {}, headers=as_planning())
    assert response.status_code == 202, response.text
    run_id: int = response.json()["run_id"]
    return run_id


def finished(client: TestClient, run_id: int, *, timeout_s: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        response = client.get(f"/api/v1/runs/{run_id}", headers=as_dashboard())
        assert response.status_code == 200, response.text
        doc: dict[str, Any] = response.json()
        if doc["status"] not in ("queued", "running"):
            return doc
        assert time.monotonic() < deadline, f"run {run_id} still {doc['status']} after {timeout_s} s"
        time.sleep(0.1)


def assert_error(response: Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    doc: dict[str, Any] = response.json()
    assert doc["error"] == error and doc["message"], doc
    assert "fix" in doc
    return doc


# -- queueing and following a run ---------------------------------------------------------------------


def test_a_queued_run_is_carried_out_by_a_worker_and_followed_to_the_end(
    client: TestClient, worker: Worker
) -> None:
    response = client.post("/api/v1/sync", json={}, headers=as_planning())
    assert response.status_code == 202
    accepted = response.json()
    run_id = accepted["run_id"]
    assert accepted == {"run_id": run_id, "status": "queued", "links": {"run": f"/api/v1/runs/{run_id}"}}
    assert response.headers["Location"] == f"/api/v1/runs/{run_id}"

    run = finished(client, run_id)
    assert run["status"] == "succeeded", run
    assert (run["trigger"], run["mode"], run["forced"], run["error"]) == ("api:planning", "fast", False, None)
    assert (run["mailboxes_total"], run["mailboxes_done"]) == (2, 2)
    assert (run["created"], run["updated"], run["deleted"], run["failed"]) == (5, 0, 0, 0)
    # Per-mailbox counts cover entries whose mailbox is known: Alice's bad row, not the unknown owner.
    assert run["quarantined"] == 1
    by_address = {m["address"]: m for m in run["mailboxes"]}
    assert set(by_address) == {ALICE, BOB}
    assert (by_address[ALICE]["created"], by_address[ALICE]["quarantined"]) == (3, 1)
    assert (by_address[BOB]["created"], by_address[BOB]["status"]) == (2, "ok")
    assert by_address[ALICE]["op_errors"] == [] and by_address[ALICE]["error"] is None
    assert run["started_at"] and run["finished_at"]

    again = finished(client, queue(client, {"mode": "verify"}))
    assert (again["status"], again["mode"]) == ("succeeded", "verify")
    assert (again["created"], again["updated"], again["deleted"], again["unchanged"]) == (0, 0, 0, 5)


def test_users_are_stripped_and_deduplicated_and_narrow_the_run(client: TestClient, worker: Worker) -> None:
    run = finished(client, queue(client, {"users": [" E2 ", "e2", BOB.upper()], "force": True}))
    assert run["status"] == "succeeded" and run["forced"] is True
    assert [m["address"] for m in run["mailboxes"]] == [BOB]
    assert run["created"] == 2


@pytest.mark.parametrize(
    ("user", "why"), [(CAROL, "is disabled"), ("ghost@contoso.example", "is not in the target directory")]
)
def test_a_user_who_is_not_an_enabled_target_is_refused_before_a_run_is_queued(
    client: TestClient, system: JobSystem, user: str, why: str
) -> None:
    response = client.post("/api/v1/sync", json={"users": [ALICE, user]}, headers=as_planning())
    doc = assert_error(response, 422, "invalid_request")
    assert doc["detail"] == [{"loc": ["body", "users"], "msg": f"{user} {why}", "type": "unknown_user"}]
    assert "enable" in doc["fix"]
    assert system.store.recent_runs(1) == []


def test_a_mailbox_shows_its_health_and_its_quarantined_entries(client: TestClient, worker: Worker) -> None:
    run_id = queue(client)
    finished(client, run_id)
    response = client.get(f"/api/v1/mailboxes/{ALICE.upper()}", headers=as_dashboard())
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["address"] == ALICE
    health = doc["health"]
    assert (health["status"], health["healthy"], health["last_run_id"]) == ("ok", True, run_id)
    assert health["error"] is None and health["last_success_at"]
    assert health["last_counts"]["created"] == 3
    assert doc["quarantined"] == 1
    [entry] = doc["quarantine"]
    assert entry["source_key"] == "A-BAD" and entry["mailbox"] == ALICE
    assert entry["reason"] and entry["origin"].startswith("schedule.csv:")

    bob = client.get(f"/api/v1/mailboxes/{BOB}", headers=as_dashboard()).json()
    assert bob["quarantine"] == [] and bob["health"]["last_counts"]["created"] == 2
    assert_error(client.get(f"/api/v1/mailboxes/{CAROL}", headers=as_dashboard()), 404, "mailbox_not_found")


def test_a_mailbox_known_only_by_its_quarantine_is_found(system: JobSystem, client: TestClient) -> None:
    # What a run that fails before syncing leaves behind: quarantined entries, no health yet.
    system.store.replace_quarantine(
        [QuarantineEntry("Z-1", "E1", "end before start", mailbox=ALICE, origin="schedule.csv:9")],
        owners=None,
    )
    doc = client.get(f"/api/v1/mailboxes/{ALICE}", headers=as_dashboard()).json()
    assert doc["health"] is None and doc["address"] == ALICE
    assert [q["source_key"] for q in doc["quarantine"]] == ["Z-1"]


# -- refusals ------------------------------------------------------------------------------------------


def test_unknown_runs_and_routes_are_404_in_json(client: TestClient) -> None:
    doc = assert_error(client.get("/api/v1/runs/999999", headers=as_dashboard()), 404, "run_not_found")
    assert "999999" in doc["message"]
    assert_error(client.get("/api/v1/nothing-here", headers=as_dashboard()), 404, "not_found")
    assert client.get("/api/v1/runs/0", headers=as_dashboard()).status_code == 422


def test_redis_down_when_queueing_is_503_with_the_fix_and_the_run_is_marked_failed(
    tmp_path: Path,
) -> None:
    down = make_system(tmp_path, redis_url=CLOSED_REDIS)
    try:
        with TestClient(create_app(down)) as client:
            response = client.post("/api/v1/sync", json={}, headers=as_planning())
        doc = assert_error(response, 503, TransientError.code)
        assert "redis" in doc["fix"].lower()
        assert response.headers["Retry-After"]
        [run] = down.store.recent_runs(1)
        assert run.status is RunStatus.FAILED and "could not queue" in (run.error or "")
    finally:
        down.close()


def test_without_redis_nothing_could_run_a_queued_sync_so_it_is_refused(tmp_path: Path) -> None:
    local = make_system(tmp_path, redis_url=None)
    try:
        assert local.in_process
        with TestClient(create_app(local)) as client:
            doc = assert_error(client.post("/api/v1/sync", json={}, headers=as_planning()), 503, "no_worker")
            assert "redis_url" in doc["fix"] and "connector worker" in doc["fix"]
            ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["redis"] == "not_configured"
        assert local.store.recent_runs(1) == []  # no orphan run left QUEUED
    finally:
        local.close()


# -- authentication ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer   ", f"Basic {SYNC_TOKEN}", SYNC_TOKEN],
    ids=["none", "empty", "no-token", "blank-token", "basic", "no-scheme"],
)
def test_a_missing_or_malformed_authorization_is_401_with_the_bearer_challenge(
    client: TestClient, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for response in (
        client.post("/api/v1/sync", json={}, headers=headers),
        client.get("/api/v1/runs/1", headers=headers),
        client.get(f"/api/v1/mailboxes/{ALICE}", headers=headers),
    ):
        assert_error(response, 401, "unauthenticated")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert SYNC_TOKEN not in response.text + str(response.headers)


def test_a_wrong_token_is_401_and_never_echoed(client: TestClient, system: JobSystem) -> None:
    wrong = secrets.token_urlsafe(32)
    for token in (wrong, SYNC_TOKEN[:-1], SYNC_TOKEN + "x", SYNC_TOKEN.upper()):
        response = client.post("/api/v1/sync", json={}, headers={"Authorization": f"Bearer {token}"})
        assert_error(response, 401, "invalid_token")
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        assert token not in response.text + str(response.headers)
    assert system.store.recent_runs(1) == []


def test_a_read_only_token_may_read_but_not_sync(client: TestClient, system: JobSystem) -> None:
    response = client.post("/api/v1/sync", json={}, headers=as_dashboard())
    doc = assert_error(response, 403, "forbidden")
    assert "dashboard" in doc["message"] and "sync" in doc["message"]
    assert READ_TOKEN not in response.text + str(response.headers)
    assert system.store.recent_runs(1) == []
    assert client.get("/api/v1/runs/1", headers=as_dashboard()).status_code == 404  # past auth


def test_no_configured_token_means_every_api_request_is_refused(tmp_path: Path) -> None:
    closed = make_system(tmp_path, redis_url=REDIS, tokens=False)
    try:
        with TestClient(create_app(closed)) as client:
            for response in (
                client.post("/api/v1/sync", json={}, headers=as_planning()),
                client.get("/api/v1/runs/1", headers=as_planning()),
            ):
                doc = assert_error(response, 401, "unauthenticated")
                assert "[api.tokens]" in doc["fix"]
            assert client.get("/healthz").status_code == 200
    finally:
        closed.close()
        forget_namespace(closed.settings.jobs.namespace)


def test_requests_are_logged_with_the_token_name_never_the_token(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="app.api"):
        client.get("/api/v1/runs/1", headers=as_dashboard())
        client.get("/api/v1/runs/1", headers={"Authorization": "Bearer " + "w" * 40})
    lines = [r.getMessage() for r in caplog.records]
    assert any("GET /api/v1/runs/1 -> 404 (token dashboard" in line for line in lines), lines
    assert any("-> 401 (token -" in line for line in lines), lines
    assert not any(READ_TOKEN in line or "w" * 40 in line for line in lines)


# -- validation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"mode": "sometimes"}, ["body", "mode"]),
        ({"users": "x"}, ["body", "users"]),
        ({"users": [""]}, ["body", "users", 0]),
        ({"users": ["a" * 321]}, ["body", "users", 0]),
        ({"users": [f"u{i}@contoso.example" for i in range(1001)]}, ["body", "users"]),
        ({"force": "yes"}, ["body", "force"]),
        ({"colour": "blue"}, ["body", "colour"]),
    ],
    ids=["mode", "users-not-a-list", "empty-user", "long-user", "too-many-users", "force", "unknown"],
)
def test_an_invalid_body_is_422_naming_the_field(
    client: TestClient, system: JobSystem, body: dict[str, Any], loc: list[str | int]
) -> None:
    response = client.post("/api/v1/sync", json=body, headers=as_planning())
    doc = assert_error(response, 422, "invalid_request")
    assert loc in [d["loc"] for d in doc["detail"]]
    assert ".".join(map(str, loc)) in doc["message"]
    # Only where and what: the value sent is not echoed back.
    assert all(set(d) == {"loc", "msg", "type"} for d in doc["detail"])
    assert "sometimes" not in response.text and "a" * 321 not in response.text
    assert system.store.recent_runs(1) == []


def test_an_invalid_body_without_a_token_is_401_not_422(client: TestClient) -> None:
    broken = client.post("/api/v1/sync", content=b"{not json", headers={"Content-Type": "application/json"})
    assert_error(broken, 401, "unauthenticated")
    invalid = client.post("/api/v1/sync", json={"mode": "sometimes"})
    assert_error(invalid, 401, "unauthenticated")
    assert client.post("/api/v1/sync", content=b"{not json", headers=as_planning()).status_code == 422


# -- probes --------------------------------------------------------------------------------------------


def test_healthz_needs_no_token_and_no_dependency(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_readyz_is_200_when_redis_and_the_database_answer(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "checks": {"redis": "ok", "database": "ok"}, "workers": 0}


def test_readyz_is_503_naming_redis_when_it_is_down(tmp_path: Path) -> None:
    down = make_system(tmp_path, redis_url="redis://:Sup3rS3cretPassw0rd@127.0.0.1:1/0")
    try:
        with TestClient(create_app(down)) as client:
            response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"] == {"redis": "unreachable", "database": "ok"}
        assert "Sup3rS3cret" not in response.text and "127.0.0.1" not in response.text
    finally:
        down.close()


class UnreachableStore:
    """The state database gone away: what the SQL store raises for a lost server."""

    def recent_runs(self, limit: int = 10) -> list[RunRecord]:
        raise TransientError("the state database postgresql+psycopg://sync:***@db/x is unavailable")


def test_readyz_is_503_naming_the_database_when_it_is_down(system: JobSystem) -> None:
    broken = dataclasses.replace(system, store=UnreachableStore())  # type: ignore[arg-type]
    with TestClient(create_app(broken)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"redis": "ok", "database": "unreachable"}
    assert "postgresql" not in response.text


class BrokenStore:
    """A store failing in a way nobody translated (a bug): the answer is still JSON, without details."""

    def run(self, run_id: int) -> RunRecord | None:
        raise RuntimeError("select * from runs where secret = 'hunter2'")


def test_an_unexpected_failure_is_a_json_500_without_the_details(system: JobSystem) -> None:
    broken = dataclasses.replace(system, store=BrokenStore())  # type: ignore[arg-type]
    with TestClient(create_app(broken), raise_server_exceptions=False) as client:
        response = client.get("/api/v1/runs/1", headers=as_dashboard())
    doc = assert_error(response, 500, "internal")
    assert "RuntimeError" in doc["message"] and "hunter2" not in response.text


# -- the document --------------------------------------------------------------------------------------


def test_the_openapi_document_lists_the_routes_and_the_bearer_scheme(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert set(doc["paths"]) >= {
        "/api/v1/sync",
        "/api/v1/runs/{run_id}",
        "/api/v1/mailboxes/{address}",
        "/healthz",
        "/readyz",
    }
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A token from [api.tokens]; [api.rights] says what it may do.",
    }
    for path in ("/api/v1/runs/{run_id}", "/api/v1/mailboxes/{address}"):
        assert doc["paths"][path]["get"]["security"] == [{"bearer": []}]
        invalid = doc["paths"][path]["get"]["responses"]["422"]["content"]["application/json"]
        assert invalid["schema"] == {"$ref": "#/components/schemas/ValidationErrorBody"}
    sync = doc["paths"]["/api/v1/sync"]["post"]
    assert sync["security"] == [{"bearer": []}]
    assert {"202", "401", "403", "422", "503"} <= set(sync["responses"])
    assert "security" not in doc["paths"]["/healthz"]["get"]
    body = doc["components"]["schemas"]["SyncBody"]
    assert body["additionalProperties"] is False
    assert body["properties"]["users"]["maxItems"] == 1000
    assert client.get("/docs").status_code == 200


def test_the_views_carry_every_key_of_the_cli_json() -> None:
    # The API and `connector sync --json` are one public interface: a key added to app.report must
    # reach the API's models too (pydantic would silently drop it).
    now = utc_now()
    result = MailboxResult(ALICE, MailboxStatus.OK, Counts(created=1), now, now, op_errors=(("K", "x"),))
    run = RunRecord(1, "cli", SyncMode.FAST, False, RunStatus.SUCCEEDED, now, now, 1, 1, Counts(), None)
    assert set(run_json(run)) | {"mailboxes"} == set(RunView.model_fields)
    assert set(result_json(result)) == set(MailboxResultView.model_fields)
