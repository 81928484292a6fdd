"""Compose files in and out of Agora.

    python manage.py compose import FILE [--name NAME]
    python manage.py compose export DEPLOYMENT_ID [--target NAME]

import prints the Agora TOSCA template made from a docker-compose.yml, with the
warnings (what Agora changes) on stderr; when the compose file asks for what Agora
cannot or must not deploy, it prints every reason instead, as
"FILE: service NAME: key: sentence", and exits with 1.

export prints a deployment's services, network, volumes and secrets as a compose
file that `docker stack deploy -c` accepts (secret values excepted), read from
the target: --target, else the deployment's own, else the default target.
"""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from crane import targets
from crane.compose import export_compose
from crane.errors import CraneError
from crane.models import Target
from orchestrator.compose import COMPOSE_LIMITS, compose_to_tosca
from orchestrator.models import Deployment
from orchestrator.tosca.model import human_size


class Command(BaseCommand):
    help = "Compose files: import one as an Agora TOSCA template, or export a deployment as one."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        importing: ArgumentParser = actions.add_parser(
            "import",
            help="Print the Agora TOSCA template made from a docker-compose.yml.",
            description="Turn a docker-compose.yml into an Agora TOSCA template, or say why Agora cannot deploy it.",
        )
        importing.add_argument("file", type=Path, metavar="FILE", help="The docker-compose.yml.")
        importing.add_argument(
            "--name", default=None, help="The template's name (default: the compose file's name, or compose-import)."
        )
        exporting: ArgumentParser = actions.add_parser(
            "export",
            help="Print a deployment as a compose file for docker stack deploy.",
            description="Print a deployment's services, network, volumes and secrets as a compose file.",
        )
        exporting.add_argument("deployment", metavar="DEPLOYMENT_ID", help="The deployment's id.")
        exporting.add_argument(
            "--target",
            default=None,
            metavar="NAME",
            help="The target (default: the deployment's own, else the default target).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "import":
            self.import_file(options["file"], name=options["name"])
        else:
            self.export(options["deployment"], target_name=options["target"])

    def import_file(self, path: Path, *, name: str | None) -> None:
        try:
            with open(path, "rb") as f:
                data = f.read(COMPOSE_LIMITS.max_bytes + 1)
        except OSError as exc:
            raise CommandError(f"{path} cannot be read ({exc.strerror or exc}).", returncode=1) from None
        if len(data) > COMPOSE_LIMITS.max_bytes:
            raise CommandError(
                f"{path} is larger than the {human_size(COMPOSE_LIMITS.max_bytes)} Agora reads in a compose file.",
                returncode=1,
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise CommandError(f"{path} is not UTF-8 text; save it as UTF-8.", returncode=1) from None
        result = compose_to_tosca(text, name=name)
        for problem in result.problems:
            self.stderr.write(problem.format(str(path)))
        if result.template is None:
            count = len(result.errors)
            raise CommandError(
                f"{path}: Agora cannot deploy this compose file ({count} problem{'s' if count != 1 else ''}).",
                returncode=1,
            )
        self.stdout.write(result.template, ending="")

    def export(self, deployment: str, *, target_name: str | None) -> None:
        if target_name:
            target = Target.objects.filter(name=target_name).first()
            if target is None:
                known = ", ".join(Target.objects.values_list("name", flat=True)) or "none"
                raise CommandError(f"No target named {target_name!r}; the targets are: {known}.", returncode=1)
        else:
            # A deployment Agora made is read from its own target; anything else from the default one.
            made = Deployment.objects.filter(pk=deployment).select_related("target").first()
            target = made.target if made is not None else targets.default_target()
        try:
            text = export_compose(target, deployment)
        except CraneError as exc:
            raise CommandError(exc.message, returncode=1) from None
        self.stdout.write(text, ending="")
