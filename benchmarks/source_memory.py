"""Peak memory of reading a schedule through the SQL source from the real PostgreSQL: it must not grow with
the number of rows, since the rows are streamed (a server-side cursor, fetched in chunks).

A table of 100,000 entries for 1,000 owners is created in a schema of its own (dropped at the end). Each
case runs in a fresh interpreter (peak RSS is per process) that reads N rows through the source, counting
the entries and keeping none. The baseline is the same process running the same query for 0 rows;
"buffered" fetches the same 100,000 rows without streaming, for contrast.

The peak is the process's own high-water mark (``VmHWM`` in /proc/self/status). ``ru_maxrss`` is printed
too, but Linux carries it over from the parent across fork and exec: a child of a bigger process (pytest,
say) reports the parent's peak, which would hide the child's growth.

    .venv/bin/python benchmarks/source_memory.py [--url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
OWNERS = 1_000
COLUMNS = {"key": "shift_id", "owner": "employee", "start": "starts_at", "end": "ends_at", "body": "notes"}

CASE = r"""
import json, resource, sys, time
from datetime import date
from zoneinfo import ZoneInfo
url, rows, chunk, mode, columns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], json.loads(sys.argv[5])
from adapters.source.sql import SqlScheduleSource
from connector.models import ScheduleEntry
from connector.window import Window
query = ("SELECT shift_id, employee, starts_at, ends_at, zone AS timezone, title, notes, room AS location"
         f" FROM shifts WHERE n <= {rows} ORDER BY n")
window = Window.around(date(2026, 11, 16), ZoneInfo("Europe/Paris"), days_before=0, days_after=365)
started = time.perf_counter()
entries = rejected = 0
if mode == "buffered":
    from sqlalchemy import create_engine, text
    engine = create_engine(url)
    with engine.connect() as connection:
        entries = len(connection.execute(text(query)).all())
else:
    source = SqlScheduleSource(url, query, default_zone="Europe/Paris", columns=columns, chunk_size=chunk)
    for item in source.read(window):
        if isinstance(item, ScheduleEntry):
            entries += 1
        else:
            rejected += 1
hwm = 0
with open("/proc/self/status") as status:
    for line in status:
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": rows, "mode": mode, "entries": entries, "rejected": rejected,
                  "maxrss_kib": maxrss, "peak_kib": hwm or maxrss,
                  "seconds": round(time.perf_counter() - started, 2)}))
"""


def create_table(url: str, rows: int) -> None:
    """``shifts`` with ``rows`` entries for ``OWNERS`` owners, in the schema ``url`` selects."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "CREATE TABLE shifts (n integer PRIMARY KEY, shift_id text, employee text,"
                    " starts_at timestamp, ends_at timestamp, zone text, title text, notes text, room text)"
                )
            )
            # Generated in the server: 100,000 rows arrive in a second, and the notes give each row a
            # few hundred bytes, so buffering the result would show plainly.
            connection.execute(
                text(
                    "INSERT INTO shifts SELECT g, 'SHIFT-' || lpad(g::text, 7, '0'),"
                    f" 'E' || (1000 + g % {OWNERS}),"
                    " timestamp '2026-11-16 08:00' + (g % 300) * interval '1 day',"
                    " timestamp '2026-11-16 16:00' + (g % 300) * interval '1 day',"
                    " 'Europe/Paris', 'Schicht ' || g || ' — Früh', repeat('Notiz ', 40), 'Raum ' || (g % 50)"
                    " FROM generate_series(1, :rows) AS g"
                ),
                {"rows": rows},
            )
    finally:
        engine.dispose()


def measure(url: str, rows: int, *, mode: str = "streamed", chunk: int = 1000) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CASE, url, str(rows), str(chunk), mode, json.dumps(COLUMNS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the measurement of {rows} rows failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def mib(kib: float) -> float:
    return kib / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=os.environ.get("CONNECTOR_TEST_POSTGRES_URL", DEFAULT_URL))
    args = parser.parse_args()
    schema = f"src_bench_{secrets.token_hex(6)}"
    admin = create_engine(args.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = admin.url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )
    try:
        create_table(url, 100_000)
        baseline = measure(url, 0)
        small = measure(url, 10_000)
        large = measure(url, 100_000)
        buffered = measure(url, 100_000, mode="buffered")
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    for name, case in (
        ("baseline (query, 0 rows)", baseline),
        ("10,000 rows streamed", small),
        ("100,000 rows streamed", large),
        ("100,000 rows buffered", buffered),
    ):
        print(
            f"{name:<26} peak RSS {mib(case['peak_kib']):6.1f} MiB (ru_maxrss {mib(case['maxrss_kib']):6.1f})"
            f" | {case['entries']:>7,.0f} entries ({case['rejected']:.0f} rejected) from {OWNERS:,} owners"
            f" in {case['seconds']} s"
        )
    print(
        f"ratio peak 100k/10k streamed: {large['peak_kib'] / small['peak_kib']:.3f}"
        f" ({mib(large['peak_kib'] - small['peak_kib']):+.1f} MiB for 90,000 more rows;"
        f" {mib(large['peak_kib'] - baseline['peak_kib']):.1f} MiB above the baseline)"
    )


if __name__ == "__main__":
    main()
