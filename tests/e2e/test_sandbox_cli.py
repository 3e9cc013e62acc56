"""``connector sandbox`` as a separate process: it prints its endpoints once listening, serves both faces
and the admin API, takes start-time faults, keeps calendars in a data file, and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

CONNECTOR = Path(sys.executable).parent / "connector"
KEYS = {
    "ews_url",
    "graph_url",
    "authority",
    "ca_file",
    "tenant_id",
    "client_id",
    "client_secret",
    "service_account",
    "password",
    "mailboxes",
}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[dict[str, Any], subprocess.Popen[str]]]:
    process = subprocess.Popen(
        [
            str(CONNECTOR),
            "sandbox",
            "--json",
            "--state-dir",
            str(tmp_path / "state"),
            "--fault",
            "kind=503,face=graph,operation=POST events,times=1",
            "--log",
            str(tmp_path / "log.jsonl"),
            "--data",
            str(tmp_path / "calendars.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, process.stderr.read() if process.stderr else "no output"
    try:
        yield json.loads(line), process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)


def test_sandbox_prints_endpoints_and_serves_both_faces(
    served: tuple[dict[str, Any], subprocess.Popen[str]], tmp_path: Path
) -> None:
    info, process = served
    assert set(info) >= KEYS
    assert info["ews_url"].startswith("http://127.0.0.1:") and info["authority"].startswith(
        "https://127.0.0.1:"
    )
    assert len(info["mailboxes"]) == 24
    tls = ssl.create_default_context(cafile=info["ca_file"])
    token = httpx.post(
        f"{info['authority']}/{info['tenant_id']}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
            "scope": "https://graph.microsoft.com/.default",
        },
        verify=tls,
    ).json()["access_token"]
    event = {
        "subject": "via the CLI sandbox",
        "start": {"dateTime": "2027-01-04T09:00:00", "timeZone": "Europe/Paris"},
        "end": {"dateTime": "2027-01-04T10:00:00", "timeZone": "Europe/Paris"},
    }
    with httpx.Client(base_url=info["graph_url"], headers={"Authorization": f"Bearer {token}"}) as graph:
        mailbox = info["mailboxes"][1]
        assert graph.post(f"/users/{mailbox}/events", json=event).status_code == 503  # the start-time fault
        assert graph.post(f"/users/{mailbox}/events", json=event).status_code == 201
    ews = httpx.post(info["ews_url"], content=b"<x/>", auth=(info["service_account"], "wrong"))
    assert ews.status_code == 401
    admin = info["admin_url"]
    items = httpx.get(f"{admin}/items", params={"mailbox": mailbox}).json()
    assert [i["subject"] for i in items] == ["via the CLI sandbox"]
    logged = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text(encoding="utf-8").splitlines()]
    assert any(entry["fault"] == "503" for entry in logged)
    assert process.poll() is None
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    # The calendars outlive the process: a new sandbox on the same data file serves the event again.
    saved = json.loads((tmp_path / "calendars.json").read_text(encoding="utf-8"))
    assert [i["subject"] for i in saved["items"]] == ["via the CLI sandbox"]


def test_a_broken_tenant_file_is_a_clear_error(tmp_path: Path) -> None:
    tenant = tmp_path / "tenant.toml"
    tenant.write_text('[tenant]\nid = "t"\n[[mailboxes]]\naddress = "not-an-address"\n', encoding="utf-8")
    done = subprocess.run(
        [str(CONNECTOR), "sandbox", "--tenant", str(tenant), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    problems = json.loads(done.stdout)["message"]
    assert "tenant.domain is required" in problems and "not-an-address" in problems
