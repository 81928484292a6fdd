"""`manage.py deploy PATH`: deploy a template or CSAR from disk, as an operator would test one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from config.errors import AgoraError
from crane.models import Target
from orchestrator.management.commands._common import agora_error, parse_inputs, wait_for
from orchestrator.models import Deployment
from orchestrator.presenters import deployment_dict
from orchestrator.services import deployment_create


class Command(BaseCommand):
    help = "Deploys a TOSCA template or CSAR; a worker (manage.py worker) runs its steps."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--input", action="append", default=[], metavar="NAME=VALUE")
        parser.add_argument("--target", help="Target name (default: the local engine).")
        parser.add_argument("--name", default="")
        parser.add_argument("--wait", action="store_true", help="Return when the deployment runs or fails.")
        parser.add_argument("--timeout", type=float, default=900.0)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"{path} cannot be read: {exc.strerror}.") from None
        target = None
        if options["target"]:
            target = Target.objects.filter(name=options["target"]).first()
            if target is None:
                raise CommandError(f"No target named {options['target']!r}; see manage.py crane targets.")
        try:
            deployment = deployment_create(
                template=data,
                filename=path.name,
                inputs=parse_inputs(options["input"]),
                target=target,
                name=options["name"] or path.stem,
            )
        except AgoraError as exc:
            raise agora_error(exc) from None
        if options["wait"]:
            deployment = wait_for(
                deployment,
                settled={Deployment.State.RUNNING, Deployment.State.FAILED},
                timeout=options["timeout"],
            )
        if options["json"]:
            self.stdout.write(json.dumps(deployment_dict(deployment)))
        else:
            self.stdout.write(f"{deployment.pk} {deployment.state}")
            for name, value in deployment.outputs.items():
                self.stdout.write(f"  {name}: {value}")
            if deployment.error:
                self.stderr.write(deployment.error)
        if deployment.state == Deployment.State.FAILED:
            raise CommandError(f"Deployment {deployment.pk} failed.")
