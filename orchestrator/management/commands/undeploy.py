"""`manage.py undeploy ID`: remove everything a deployment created."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from config.errors import AgoraError
from orchestrator.management.commands._common import agora_error, wait_for
from orchestrator.models import Deployment
from orchestrator.services import deployment_undeploy


class Command(BaseCommand):
    help = "Removes a deployment: its services in reverse order, then its network, volumes and secrets."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("id")
        parser.add_argument("--wait", action="store_true")
        parser.add_argument("--timeout", type=float, default=600.0)

    def handle(self, *args: Any, **options: Any) -> None:
        deployment = Deployment.objects.filter(pk=options["id"]).first()
        if deployment is None:
            raise CommandError(f"No deployment {options['id']!r}.")
        try:
            deployment = deployment_undeploy(deployment=deployment)
        except AgoraError as exc:
            raise agora_error(exc) from None
        if options["wait"]:
            deployment = wait_for(
                deployment, settled={Deployment.State.REMOVED, Deployment.State.FAILED}, timeout=options["timeout"]
            )
        self.stdout.write(f"{deployment.pk} {deployment.state}")
        if deployment.state == Deployment.State.FAILED:
            raise CommandError(deployment.error)
