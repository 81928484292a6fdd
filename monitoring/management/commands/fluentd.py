"""`manage.py fluentd`: the Fluentd forward receiver, until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import re
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from monitoring.fluentd.ingest import forward_key_issue
from monitoring.fluentd.server import Receiver, ReceiverConfig, run

SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")


class Command(BaseCommand):
    help = (
        "Receives logs over the Fluentd forward protocol (Docker's fluentd log driver, fluentd, fluent-bit) "
        "and stores them. Stops cleanly on SIGTERM or SIGINT."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", metavar="HOST:PORT", help="where to listen (default: AGORA_FLUENTD_BIND)")
        parser.add_argument(
            "--issue-key",
            metavar="ORGANIZATION",
            help="print a new shared key for the organization's clients (by slug), replacing its old one, and exit",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["issue_key"] is not None:
            self._issue_key(options["issue_key"])
            return
        try:
            config = ReceiverConfig.from_settings(bind=options["bind"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        asyncio.run(self._serve(config))
        self.stdout.write("fluentd receiver stopped")

    async def _serve(self, config: ReceiverConfig) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)

        def started(receiver: Receiver) -> None:
            self.stdout.write(f"fluentd receiver listening on {config.host}:{receiver.port}")
            self.stdout.flush()

        try:
            await run(config, stop=stop, started=started)
        except OSError as exc:
            raise CommandError(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from None

    def _issue_key(self, owner: str) -> None:
        if not SLUG.fullmatch(owner):
            raise CommandError(f"{owner!r} is not an organization slug (lower-case letters, digits and hyphens)")
        key = forward_key_issue(owner=owner)
        self.stdout.write(key)
        self.stderr.write(
            f"Clients of {owner} prove this key in the handshake (shared_key, and again as the password) "
            "and name the deployment they ship for as the username. It is shown only now."
        )
