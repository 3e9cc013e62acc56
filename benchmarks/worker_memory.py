"""Peak memory of a worker process: importing a backend and syncing one mailbox of 100 entries.

Each case runs in a fresh interpreter (peak RSS is per process) and reports ru_maxrss; the sandbox
tenant runs as a separate process (``connector sandbox``). The baseline is the same sync through the
in-memory backend, measured in the same run, so the figure that matters is the ratio: what
msgraph-sdk, azure-identity and their dependencies cost a worker.

    .venv/bin/python benchmarks/worker_memory.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

CASE = r"""
import json, resource, sys, time
from datetime import date, datetime, time as clock, timedelta
from zoneinfo import ZoneInfo
kind, folder, info = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
from adapters.source.inline import StaticTargets
from adapters.state import open_store
from connector.models import ScheduleEntry, Target, TimedSpan
from connector.render import RenderRules
from connector.sync import SyncEngine, SyncRequest
from connector.window import Window
paris = ZoneInfo("Europe/Paris")
address = "asa.lindqvist@contoso.example"
core = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if kind == "graph":
    from pathlib import Path
    from adapters.graph.backend import GraphBackend
    from adapters.graph.config import GraphConfig
    backend = GraphBackend(GraphConfig(info["tenant_id"], info["client_id"], info["client_secret"],
        authority=info["authority"], base_url=info["graph_url"], ca_file=Path(info["ca_file"]), all_day_zone="Europe/Paris"))
else:
    from adapters.memory import MemoryBackend, MemoryCalendar
    backend = MemoryBackend(MemoryCalendar(paris))
imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
class Source:
    def describe(self): return "benchmark"
    def read(self, window, owner=None):
        for n in range(100):
            start = datetime.combine(date(2027, 3, 1) + timedelta(days=n % 30), clock(8), paris)
            yield ScheduleEntry(f"K{n}", address, TimedSpan(start, start + timedelta(hours=8), "Europe/Paris"), f"Shift {n}")
store = open_store(f"sqlite:///{folder}/{kind}.db")
engine = SyncEngine(source=Source(), targets=StaticTargets([Target(address, address)], "bench"), store=store,
    backend=backend, rules=RenderRules("Planning"),
    window=lambda: Window.around(date(2027, 3, 1), paris, days_before=0, days_after=60))
report = engine.run(SyncRequest())
assert report.run.counts.created == 100, report.run
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"kind": kind, "start_kib": before, "core_kib": core - before,
    "import_kib": imported - core, "peak_kib": peak, "seconds": round(time.perf_counter() - started, 2)}))
"""


def measure(kind: str, folder: str, info: dict[str, object]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CASE, kind, folder, json.dumps(info)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    # The tenant runs in its own process, so each worker's figures are the worker's alone.
    connector = Path(sys.executable).parent / "connector"
    sandbox = subprocess.Popen([str(connector), "sandbox", "--json"], stdout=subprocess.PIPE, text=True)
    try:
        assert sandbox.stdout is not None
        info = json.loads(sandbox.stdout.readline())
        with tempfile.TemporaryDirectory() as folder:
            baseline = measure("memory", folder, info)
            graph = measure("graph", folder, info)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=20)
    mib = 1024.0
    for name, case in (("memory backend (baseline)", baseline), ("graph backend", graph)):
        print(
            f"{name:<26} peak RSS {case['peak_kib'] / mib:6.1f} MiB | interpreter {case['start_kib'] / mib:5.1f}"
            f" + core {case['core_kib'] / mib:5.1f} + backend imports {case['import_kib'] / mib:5.1f} MiB"
            f" | sync of 100 entries {case['seconds']} s"
        )
    print(f"ratio graph/memory peak RSS: {graph['peak_kib'] / baseline['peak_kib']:.2f}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
