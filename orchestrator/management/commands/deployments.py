"""`manage.py deployments [ID]`: list deployments, or show one with its steps."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from orchestrator.models import Deployment
from orchestrator.presenters import deployment_dict


class Command(BaseCommand):
    help = "Lists deployments, or shows one with its steps (the same JSON as deploy --json)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("id", nargs="?")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["id"]:
            deployment = Deployment.objects.select_related("target").filter(pk=options["id"]).first()
            if deployment is None:
                raise CommandError(f"No deployment {options['id']!r}.")
            data = deployment_dict(deployment)
            if options["json"]:
                self.stdout.write(json.dumps(data))
                return
            self.stdout.write(f"{data['id']} {data['state']} on {data['target']}: {data['name']}")
            for step in data["steps"]:
                line = f"  {step['state']:<9} {step['key']:<28} {step['summary']}"
                self.stdout.write(line + (f" — {step['error']}" if step["error"] else ""))
            for name, value in data["outputs"].items():
                self.stdout.write(f"  output {name}: {value}")
            return
        rows = Deployment.objects.select_related("target").order_by("-created_at")[:200]
        if options["json"]:
            self.stdout.write(
                json.dumps([{"id": d.pk, "name": d.name, "state": d.state, "target": d.target.name} for d in rows])
            )
            return
        for d in rows:
            self.stdout.write(f"{d.pk}  {d.state:<11} {d.target.name:<12} {d.name}")
