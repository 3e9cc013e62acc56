"""The ``connector`` command as an admin runs it: the installed script, the shipped settings and example
data (copied to a temporary folder), real SQLite state and the emulated calendar file."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONNECTOR = Path(sys.executable).parent / "connector"
EXPECTED_QUARANTINE = {"BAD-000497", "BAD-000498", "BAD-000499", "BAD-000500", "BAD-000501", "BAD-000502"}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "settings.toml", tmp_path / "settings.toml")
    shutil.copytree(
        ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("*.py", "__pycache__")
    )
    (tmp_path / "sandbox").mkdir()
    shutil.copy(ROOT / "sandbox" / "demo.toml", tmp_path / "sandbox" / "demo.toml")
    return tmp_path


def run(
    site: Path, *args: str, env: dict[str, str] | None = None, expect: int = 0
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR")}
    environ.update(env or {})
    done = subprocess.run(
        [str(CONNECTOR), *args],
        cwd=site,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == expect, (
        f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    )
    return done


def run_json(site: Path, *args: str, expect: int = 0, env: dict[str, str] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(run(site, *args, "--json", expect=expect, env=env).stdout)
    return doc


def edit_title(site: Path, key: str, title: str) -> None:
    path = site / "examples" / "schedule.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
        fields = list(rows[0])
    for row in rows:
        if row["key"] == key:
            row["title"] = title
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def test_sync_twice_then_one_edit_is_exactly_one_update(site: Path) -> None:
    first = run_json(site, "sync")
    assert first["status"] == "succeeded"
    assert first["created"] > 400 and first["updated"] == first["deleted"] == first["failed"] == 0
    assert len(first["mailboxes"]) == 21  # 23 targets, 2 of them not enabled
    for key in ("created", "updated", "deleted", "unchanged", "failed", "quarantined", "mailboxes"):
        assert key in first

    second = run_json(site, "sync")
    assert (second["created"], second["updated"], second["deleted"]) == (0, 0, 0)
    assert second["unchanged"] == first["created"]

    edit_title(site, "SHIFT-000034", "Frühschicht (getauscht) ✓")
    plan = run_json(site, "plan")
    ops = [(op["op"], op["source_key"]) for m in plan["mailboxes"] for op in m["ops"]]
    assert ops == [("update", "SHIFT-000034")]
    assert (plan["created"], plan["updated"], plan["deleted"]) == (0, 1, 0)
    # plan wrote nothing: the same plan again, then the sync carries it out
    assert run_json(site, "plan")["updated"] == 1
    assert run_json(site, "sync")["updated"] == 1
    assert run_json(site, "sync", "--verify")["updated"] == 0


def test_invalid_rows_are_quarantined_with_a_reason_each_and_shown_in_status(site: Path) -> None:
    synced = run_json(site, "sync")
    status = run_json(site, "status")
    reasons = {q["source_key"]: q["reason"] for q in status["quarantine"]}
    assert set(reasons) >= EXPECTED_QUARANTINE
    assert "SHIFT-000032" in reasons and "more than once" in reasons["SHIFT-000032"]
    assert status["quarantined"] == synced["quarantined"] == 7
    assert all(reasons.values())
    assert "Europe/Pariss" in reasons["BAD-000498"]
    assert "255" in reasons["BAD-000500"]
    assert all(m["healthy"] for m in status["mailboxes"])
    assert status["last_run"]["run_id"] == synced["run_id"]
    human = run(site, "status").stdout
    assert "Quarantined entries (7)" in human and "BAD-000501" in human


def test_human_output_is_a_summary(site: Path) -> None:
    out = run(site, "sync").stdout
    assert "Run 1 (fast) succeeded: 21 mailboxes" in out and "7 quarantined" in out
    out = run(site, "sync").stdout
    assert "0 created, 0 updated, 0 deleted" in out


def test_user_filter_and_unknown_user(site: Path) -> None:
    doc = run_json(site, "sync", "--user", "hanako.yamada@contoso.example")
    assert [m["address"] for m in doc["mailboxes"]] == ["hanako.yamada@contoso.example"]
    failed = run_json(site, "sync", "--user", "ghost@contoso.example", expect=2)
    assert "ghost@contoso.example" in failed["message"] and failed["fix"]


def test_an_emptied_source_is_held_back_until_forced(site: Path) -> None:
    run_json(site, "sync")
    path = site / "examples" / "schedule.csv"
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    blocked = run_json(site, "sync", expect=3)
    assert blocked["status"] == "blocked" and blocked["deleted"] == 0
    assert "--force" in run(site, "sync", expect=3).stdout
    forced = run_json(site, "sync", "--force")
    assert forced["deleted"] > 400


def test_bad_settings_exit_2_listing_every_problem(site: Path) -> None:
    settings = site / "settings.toml"
    settings.write_text(
        settings.read_text(encoding="utf-8")
        .replace("days_after = 180", "days_after = -1")
        .replace('timezone = "Europe/Paris"', 'timezone = "Paris"'),
        encoding="utf-8",
    )
    doc = run_json(site, "sync", expect=2)
    assert doc["error"] == "settings" and len(doc["problems"]) == 2
    text = run(site, "sync", expect=2).stderr
    assert "window.days_after" in text and "connector.timezone" in text


def test_settings_path_from_option_or_environment(site: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    moved = site / "settings.toml"
    # Relative paths follow the settings file, not the working directory.
    run_json(other, "config", "--settings", str(moved))
    run_json(other, "config", env={"CONNECTOR_SETTINGS": str(moved)})
    missing = run_json(other, "config", expect=2)
    assert "settings.toml not found" in missing["problems"][0]


def test_secrets_never_appear_in_output(site: Path) -> None:
    url = "postgresql+psycopg://sync:Sup3rS3cret@127.0.0.1:1/nowhere"
    env = {"CONNECTOR__STATE__URL": url}
    shown = run(site, "config", "--json", env=env).stdout
    assert "Sup3rS3cret" not in shown and "sync:***@" in shown
    failed = run(site, "sync", env=env, expect=1)
    assert "Sup3rS3cret" not in failed.stdout + failed.stderr
    assert "127.0.0.1" in failed.stderr  # the error still says where it tried


def test_a_missing_sandbox_tenant_file_is_a_settings_error_not_a_traceback(site: Path) -> None:
    (site / "sandbox" / "demo.toml").unlink()
    doc = run_json(site, "sync", expect=2)
    assert doc["problems"][0].startswith("backend.graph.sandbox: tenant file")
    assert "Traceback" not in run(site, "sync", expect=2).stderr


def test_a_sync_on_a_terminal_shows_progress(site: Path) -> None:
    import pty
    import select

    primary, secondary = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR")}
    environ.update(TERM="xterm", COLUMNS="120")
    process = subprocess.Popen(
        [str(CONNECTOR), "sync"], cwd=site, env=environ, stdin=secondary, stdout=secondary, stderr=secondary
    )
    os.close(secondary)
    seen = b""
    while True:
        ready, _, _ = select.select([primary], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closes when the process ends
            break
        if not chunk:
            break
        seen += chunk
    assert process.wait(timeout=60) == 0
    os.close(primary)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode("utf-8", "replace"))  # colours, cursor moves
    assert "Syncing mailboxes" in text or "Synced " in text  # the live bar, redrawn as mailboxes finish
    assert "/21" in text.replace(" ", "")  # done/total
    assert "464 created" in text


@pytest.mark.postgres
def test_the_state_can_live_in_postgresql(site: Path) -> None:
    """Production keeps the state in PostgreSQL: the same two syncs through the CLI, state on the real
    server (a fresh database, dropped afterwards)."""
    import uuid

    import psycopg

    admin = os.environ.get("CONNECTOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    name = f"connector_e2e_{uuid.uuid4().hex[:10]}"
    plain = admin.replace("postgresql+psycopg://", "postgresql://")
    try:
        connection = psycopg.connect(plain, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is needed for this test and is not reachable: {exc}")
    with connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {"CONNECTOR__STATE__URL": admin.rsplit("/", 1)[0] + f"/{name}"}
        first = run_json(site, "sync", env=env)
        assert first["created"] == 464 and first["status"] == "succeeded"
        again = run_json(site, "sync", env=env)
        assert (again["created"], again["updated"], again["deleted"], again["unchanged"]) == (0, 0, 0, 464)
        status = run_json(site, "status", env=env)
        assert status["quarantined"] == 7 and status["last_run"]["run_id"] == again["run_id"]
    finally:
        with psycopg.connect(plain, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
