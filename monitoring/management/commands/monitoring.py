"""`manage.py monitoring metrics|logs DEPLOYMENT_ID`: what the collector gathered, for operators at a shell."""

from __future__ import annotations

import datetime
import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.errors import AgoraError
from monitoring import reading
from monitoring.store import Line, LogQuery
from monitoring.store.base import LEVELS
from orchestrator.models import Deployment

FOLLOW_POLL_SECONDS = 1.0


def _size(value: Any) -> str:
    if value is None:
        return "-"
    number = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(number) < 1024 or unit == "GiB":
            return f"{number:.0f} {unit}" if unit == "B" else f"{number:.1f} {unit}"
        number /= 1024
    return f"{number:.1f} GiB"


def _line_text(line: Line) -> str:
    level = (line.level or "-").upper()
    return f"{line.time:%Y-%m-%d %H:%M:%S.%f}"[:-3] + f" {line.node or '-'} {level} {line.message}"


class Command(BaseCommand):
    help = "Shows a deployment's latest metrics per node, or its logs (searched, or followed as they come)."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True)
        metrics = commands.add_parser("metrics", help="The latest reading of each node.")
        metrics.add_argument("deployment")
        metrics.add_argument("--json", action="store_true")
        logs = commands.add_parser("logs", help="Log lines, oldest first; --follow keeps printing new ones.")
        logs.add_argument("deployment")
        logs.add_argument("--search", default="", help="Words the line must contain.")
        logs.add_argument("--level", default="", choices=["", *LEVELS], help="This level and above.")
        logs.add_argument("--node", default="")
        logs.add_argument("--lines", type=int, default=100, help="How many of the newest lines to show first.")
        logs.add_argument("--follow", action="store_true", help="Keep printing new lines until interrupted.")

    def handle(self, *args: Any, **options: Any) -> None:
        deployment = Deployment.objects.filter(pk=options["deployment"]).first()
        if deployment is None:
            raise CommandError(f"No deployment {options['deployment']!r}.")
        try:
            if options["command"] == "metrics":
                self._metrics(deployment, as_json=options["json"])
            else:
                self._logs(deployment, options)
        except AgoraError as exc:
            raise CommandError(exc.message) from exc

    def _metrics(self, deployment: Deployment, *, as_json: bool) -> None:
        latest = reading.latest_metrics(deployment.pk)
        health = reading.health(deployment.pk)
        if as_json:
            self.stdout.write(
                json.dumps({"id": deployment.pk, "health": health["health"], "nodes": latest}, default=str)
            )
            return
        self.stdout.write(f"{deployment.pk} {deployment.state}, health {health['health']}")
        if not latest:
            self.stdout.write("No metrics yet: the collector (manage.py monitor) has not read this deployment.")
            return
        self.stdout.write(
            f"{'NODE':<20} {'CPU %':>7} {'MEMORY':>21} {'NET RX/TX':>21} {'BLOCK R/W':>21} {'RESTARTS':>8}"
        )
        for node, sample in latest.items():
            cpu = "-" if sample["cpu_percent"] is None else f"{sample['cpu_percent']:.1f}"
            memory = f"{_size(sample['memory_bytes'])} / {_size(sample['memory_limit'])}"
            network = f"{_size(sample['network_rx_bytes'])} / {_size(sample['network_tx_bytes'])}"
            block = f"{_size(sample['block_read_bytes'])} / {_size(sample['block_write_bytes'])}"
            restarts = "-" if sample["restarts"] is None else str(sample["restarts"])
            self.stdout.write(f"{node:<20} {cpu:>7} {memory:>21} {network:>21} {block:>21} {restarts:>8}")
        self.stdout.write(f"as of {next(iter(latest.values()))['time']}")

    def _logs(self, deployment: Deployment, options: dict[str, Any]) -> None:
        def query(**more: Any) -> LogQuery:
            return LogQuery(
                deployment_id=deployment.pk,
                text=options["search"],
                level=options["level"],
                node=options["node"],
                **more,
            )

        newest_first = reading.logs(query(limit=max(1, min(options["lines"], 1000)))).lines
        for line in reversed(newest_first):
            self.stdout.write(_line_text(line))
        if not options["follow"]:
            return
        last_time = newest_first[0].time if newest_first else datetime.datetime.now(datetime.UTC)
        # Lines sharing the newest timestamp already printed, so the next poll (since is inclusive) skips them.
        shown_at_last = {(line.node, line.message) for line in newest_first if line.time == last_time}
        try:
            while True:
                time.sleep(FOLLOW_POLL_SECONDS)
                fresh = [
                    line
                    for line in reversed(reading.logs(query(since=last_time, limit=1000)).lines)
                    if not (line.time == last_time and (line.node, line.message) in shown_at_last)
                ]
                for line in fresh:
                    self.stdout.write(_line_text(line))
                if fresh:
                    newest = fresh[-1].time
                    if newest != last_time:
                        shown_at_last = set()
                    last_time = newest
                    shown_at_last |= {(line.node, line.message) for line in fresh if line.time == last_time}
                self.stdout.flush()
        except KeyboardInterrupt:
            return
