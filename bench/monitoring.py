"""How fast the monitoring store takes log lines and metric samples, and how fast it searches them.

    .venv/bin/python bench/monitoring.py [--lines 300000] [--batch 2000] [--samples 100000] [--runs 20]

1. Log lines per second stored by the database backend on PostgreSQL, in batches the size a
   collector or the Fluentd receiver writes (target: at least 20,000 lines/s on this machine).
   Lines are built before each batch is timed: only `write_lines` is measured, with the
   full-text index of migration 0002 in place.
2. Metric samples per second, in batches of one collector round.
3. Search latency over those lines: the newest page of the largest deployment, words common,
   rare and absent, a level filter, and the tenth page through cursors (median and 95th
   percentile of several runs).
4. Metric read latency over those samples: `latest` and `series` of one deployment.
5. The collector's CPU share while it watches 100 containers at the default 15 s interval
   (target: under 10% of one core); see bench/monitoring_collector.py. `--no-collector` skips it.

The bench uses a scratch PostgreSQL database of its own (bench_monitoring, or the database named by
BENCH_DATABASE_URL), created and migrated at start and dropped at the end.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_monitoring")
# The database backend is what is measured here, whatever the environment says.
os.environ.update(DATABASE_URL=DATABASE_URL, ELASTICSEARCH_URL="")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from bench.scratch import scratch_database  # noqa: E402
from monitoring.store.base import Line, LogQuery, Sample  # noqa: E402
from monitoring.store.database import DatabaseStore  # noqa: E402

LINES_TARGET = 20_000
START = datetime.datetime(2026, 3, 2, tzinfo=datetime.UTC)
BIG = "bench-big"  # half of all lines: the deployment searched
OTHERS = [f"bench-{index:02d}" for index in range(19)]
LEVELS = ["info"] * 6 + ["debug"] * 2 + ["warning", "error"]
WORDS = [
    "GET",
    "POST",
    "PUT",
    "/api/v1/services",
    "/health",
    "/login",
    "200",
    "201",
    "204",
    "302",
    "404",
    "500",
    "user",
    "session",
    "token",
    "refreshed",
    "request",
    "served",
    "in",
    "ms",
    "cache",
    "hit",
    "miss",
    "worker",
    "started",
    "stopped",
    "queue",
    "job",
    "done",
    "retry",
    "connection",
    "pool",
    "database",
    "query",
    "slow",
    "timeout",
    "upstream",
    "backend",
    "frontend",
    "static",
    "asset",
]
RARE = "quasar"  # one line in 100,000 of the big deployment


# --- data like a collector's ------------------------------------------------------------------------


def line_batch(rng: random.Random, first: int, size: int) -> list[Line]:
    """Lines `first` .. `first + size - 1`, 1 ms apart: access logs and application messages."""
    lines = []
    for number in range(first, first + size):
        deployment = BIG if number % 2 == 0 else OTHERS[number % len(OTHERS)]
        words = " ".join(rng.choices(WORDS, k=rng.randint(6, 14)))
        if deployment == BIG and number % 100_000 == 0:
            words += f" {RARE}"
        lines.append(
            Line(
                time=START + datetime.timedelta(milliseconds=number),
                message=f"10.0.{number % 250}.{number % 7} req={rng.getrandbits(40):010x} {words}",
                deployment_id=deployment,
                node=rng.choice(("web", "app", "db")),
                container=f"{deployment}_web.1.{number % 3}",
                stream=rng.choice(("stdout", "stderr")),
                level=rng.choice(LEVELS),
            )
        )
    return lines


def sample_round(rng: random.Random, at: datetime.datetime, containers: int) -> list[Sample]:
    return [
        Sample(
            time=at,
            deployment_id=OTHERS[index % len(OTHERS)],
            node=("web", "app", "db")[index % 3],
            container=f"c{index}",
            cpu_percent=rng.uniform(0, 200),
            memory_bytes=rng.randint(10, 500) * 2**20,
            memory_limit=512 * 2**20,
            network_rx_bytes=rng.randint(0, 10**9),
            network_tx_bytes=rng.randint(0, 10**9),
            block_read_bytes=rng.randint(0, 10**9),
            block_write_bytes=rng.randint(0, 10**9),
            restarts=0,
        )
        for index in range(containers)
    ]


# --- the figures ------------------------------------------------------------------------------------


def log_lines_per_second(store: DatabaseStore, *, total: int, batch: int) -> float:
    rng = random.Random(1)
    spent = 0.0
    for first in range(0, total, batch):
        lines = line_batch(rng, first, min(batch, total - first))
        started = time.perf_counter()
        store.write_lines(lines)
        spent += time.perf_counter() - started
    return total / spent


def samples_per_second(store: DatabaseStore, *, total: int, round_size: int) -> float:
    rng = random.Random(2)
    spent = 0.0
    for number, _ in enumerate(range(0, total, round_size)):
        samples = sample_round(rng, START + datetime.timedelta(seconds=15 * number), round_size)
        started = time.perf_counter()
        store.write_samples(samples)
        spent += time.perf_counter() - started
    return total / spent


def _found(query: LogQuery, store: DatabaseStore) -> Callable[[], int]:
    return lambda: len(store.search_lines(query).lines)


def _ten_pages(store: DatabaseStore) -> Callable[[], int]:
    def walk() -> int:
        seen, before = 0, None
        for _ in range(10):
            page = store.search_lines(LogQuery(deployment_id=BIG, limit=100, before=before))
            seen, before = seen + len(page.lines), page.next_before
        return seen

    return walk


def search_latency(store: DatabaseStore, *, runs: int) -> dict[str, tuple[float, float, int]]:
    """Per query: (median ms, 95th percentile ms, lines found)."""
    with connection.cursor() as cursor:
        # Autovacuum would do it within a minute; the bench does not wait.
        cursor.execute("ANALYZE monitoring_logline")
    queries: dict[str, Callable[[], int]] = {
        "newest 100 lines": _found(LogQuery(deployment_id=BIG), store),
        "common word": _found(LogQuery(deployment_id=BIG, text="timeout"), store),
        "two words, level error+": _found(LogQuery(deployment_id=BIG, text="database slow", level="error"), store),
        "rare word": _found(LogQuery(deployment_id=BIG, text=RARE), store),
        "absent word": _found(LogQuery(deployment_id=BIG, text="zeppelin"), store),
        "level critical (none)": _found(LogQuery(deployment_id=BIG, level="critical"), store),
        "10 pages of 100 by cursor": _ten_pages(store),
    }
    results = {}
    for label, query in queries.items():
        count = query()
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            query()
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        results[label] = (statistics.median(timings), timings[int(0.95 * (len(timings) - 1))], count)
    return results


def _timed(runs: int, work: Callable[[], object]) -> tuple[float, float]:
    work()  # warm: the first call pays for plans and cold pages
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return statistics.median(timings), timings[int(0.95 * (len(timings) - 1))]


def metric_read_latency(
    store: DatabaseStore, *, samples: int, round_size: int, runs: int
) -> dict[str, tuple[float, float]]:
    """Per read of one deployment's samples: (median ms, 95th percentile ms)."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE monitoring_metricsample")
    deployment = OTHERS[0]
    end = START + datetime.timedelta(seconds=15 * (samples // round_size))
    return {
        "latest": _timed(runs, lambda: store.latest(deployment)),
        "series, whole time, 60 buckets": _timed(
            runs,
            lambda: store.series(deployment, node=None, since=START, until=end, bucket=(end - START) / 60),
        ),
        "series of a node, 1 minute buckets": _timed(
            runs,
            lambda: store.series(deployment, node="web", since=START, until=end, bucket=datetime.timedelta(minutes=1)),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=300_000, help="log lines written in all")
    parser.add_argument("--batch", type=int, default=2000, help="lines per write_lines call")
    parser.add_argument("--samples", type=int, default=100_000, help="metric samples written in all")
    parser.add_argument("--round", type=int, default=200, help="samples per write_samples call (one round)")
    parser.add_argument("--runs", type=int, default=20, help="runs of each search")
    parser.add_argument("--containers", type=int, default=100, help="containers the collector watches")
    parser.add_argument("--no-collector", action="store_true", help="skip the collector's CPU share")
    args = parser.parse_args()
    if args.lines < 1 or args.batch < 1 or args.samples < 1 or args.round < 1 or args.runs < 1:
        parser.error("every count must be at least 1")

    with scratch_database(DATABASE_URL):
        store = DatabaseStore()
        lines_rate = log_lines_per_second(store, total=args.lines, batch=args.batch)
        print(
            f"log lines stored: {lines_rate:,.0f} lines/s ({args.lines:,} lines in batches of {args.batch:,}; "
            f"target {LINES_TARGET:,}: {'met' if lines_rate >= LINES_TARGET else 'NOT met'})",
            flush=True,
        )
        samples_rate = samples_per_second(store, total=args.samples, round_size=args.round)
        print(
            f"metric samples stored: {samples_rate:,.0f} samples/s ({args.samples:,} in rounds of {args.round})",
            flush=True,
        )
        print(f"search over {args.lines:,} lines ({args.lines // 2:,} in the deployment searched), ms:")
        for label, (median, p95, count) in search_latency(store, runs=args.runs).items():
            print(f"  {label:<36} median {median:7.1f}   p95 {p95:7.1f}   ({count} lines)")
        rounds = args.samples // args.round
        print(f"metric reads of one deployment ({rounds:,} rounds 15 s apart), ms:")
        for label, (median, p95) in metric_read_latency(
            store, samples=args.samples, round_size=args.round, runs=args.runs
        ).items():
            print(f"  {label:<36} median {median:7.1f}   p95 {p95:7.1f}")

        if not args.no_collector:
            from bench.monitoring_collector import collector_cpu_share

            print("measuring the collector (about two minutes)...", flush=True)
            print(collector_cpu_share(containers=args.containers).report())


if __name__ == "__main__":
    main()
