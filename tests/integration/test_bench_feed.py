"""``benchmarks/bench_stores.py --feed-only`` runs, on SQLite and PostgreSQL, and prints what the
change feed adds to a Stop on each (a few Stops only: that it runs and says so, not its speed)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_stores.py"


@pytest.mark.postgres
def test_the_feed_benchmark_prints_its_cost_to_a_stop_on_sqlite_and_postgres(
    postgres_dsn: str,
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--feed-only",
            "--feed-stops",
            "90",
            "--postgres",
            postgres_dsn,
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if "the feed adds" in line]
    assert [(line.split()[0], line.split()[2]) for line in lines] == [
        ("sqlite", "(FULL),"),
        ("sqlite", "(NORMAL),"),
        ("postgres", "with"),
    ], done.stdout
    assert all(re.search(r"adds +[-+][0-9.]+%", line) for line in lines), done.stdout
