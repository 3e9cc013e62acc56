"""Against the real PostgreSQL, a schedule of 100,000 entries for 1,000 owners streams through the SQL
source in bounded memory: reading five times the rows costs (almost) no more peak memory. The figures are
measured as in ``benchmarks/source_memory.py``, each read in a fresh interpreter."""

from __future__ import annotations

import pytest

from benchmarks.source_memory import OWNERS, create_table, measure, mib

#: Generous against noise; buffering 80,000 more rows of this table would take well over 100 MiB.
ALLOWED_GROWTH_MIB = 15


@pytest.mark.postgres
def test_peak_memory_does_not_grow_with_the_number_of_rows(postgres_url: str) -> None:
    create_table(postgres_url, 100_000)
    baseline = measure(postgres_url, 0)
    small = measure(postgres_url, 20_000)
    large = measure(postgres_url, 100_000)
    for case in (baseline, small, large):
        print(
            f"{case['rows']:>7,.0f} rows: peak RSS {mib(case['peak_kib']):6.1f} MiB"
            f" (ru_maxrss, which includes pytest's own: {mib(case['maxrss_kib']):6.1f} MiB),"
            f" {case['entries']:,.0f} entries from {OWNERS:,} owners in {case['seconds']} s"
        )
    growth = mib(large["peak_kib"] - small["peak_kib"])
    print(
        f"growth from 20,000 to 100,000 rows: {growth:+.1f} MiB (ratio {large['peak_kib'] / small['peak_kib']:.3f})"
    )
    assert (small["entries"], large["entries"]) == (20_000, 100_000)
    assert small["rejected"] == large["rejected"] == 0
    assert growth < ALLOWED_GROWTH_MIB, f"peak memory grew by {growth:.1f} MiB for 80,000 more rows"
