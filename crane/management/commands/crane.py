"""`manage.py crane targets` lists the targets; `manage.py crane check [NAME]` asks them how they are."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from crane import targets
from crane.models import PublishedPort, Target


class Command(BaseCommand):
    help = "Docker targets: list them, or check their reachability, version, swarm and free ports."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="action", required=True)
        commands.add_parser("targets", help="list the targets with their last known state")
        check = commands.add_parser("check", help="check one target, or all of them")
        check.add_argument("name", nargs="?", help="the target's name (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        if not Target.objects.exists():
            targets.default_target()  # the embedded default: the local engine, registered on first use
        if options["action"] == "targets":
            self._list()
        else:
            self._check(options.get("name"))

    def _list(self) -> None:
        rows = [("NAME", "MODE", "STATE", "CHECKED", "ENDPOINT", "PUBLIC HOST", "PORTS", "PROVIDER/REGION")]
        for target in Target.objects.all():
            used = PublishedPort.objects.filter(target=target).count()
            rows.append(
                (
                    target.name,
                    target.mode,
                    target.state,
                    target.checked_at.strftime("%Y-%m-%d %H:%M") if target.checked_at else "never",
                    target.endpoint,
                    target.public_host,
                    f"{target.port_range_start}-{target.port_range_end} ({used} used)",
                    "/".join(filter(None, [target.provider, target.region])) or "-",
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())

    def _check(self, name: str | None) -> None:
        chosen = Target.objects.filter(name=name) if name else Target.objects.all()
        if name and not chosen.exists():
            known = ", ".join(Target.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"No target named {name!r}; the targets are: {known}.")
        failed = 0
        for target in chosen:
            result = targets.target_check(target)
            head = f"{target.name}: {result.state} ({result.seconds:.2f} s)"
            if result.state == Target.State.UNREACHABLE:
                failed += 1
                self.stderr.write(f"{head}\n  {result.error}")
                continue
            self.stdout.write(head)
            swarm = (
                f"swarm {result.swarm_role}, {result.managers} manager(s) and {result.workers} worker(s): "
                f"{result.nodes_ready} ready, {result.nodes_down} down"
                if result.swarm_role == "manager"
                else f"swarm {result.swarm_role}"
            )
            self.stdout.write(
                f"  Docker {result.docker_version} (API {result.api_version}), {target.mode} mode, {swarm}"
            )
            self.stdout.write(
                f"  published ports {target.port_range_start}-{target.port_range_end}: {result.free_ports} free"
            )
            if result.error:
                self.stdout.write(f"  problem: {result.error}")
            for warning in result.warnings:
                self.stdout.write(f"  warning: {warning}")
        if failed:
            raise CommandError(f"{failed} target(s) unreachable.")
