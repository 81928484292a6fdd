"""`manage.py fluentd`: the Fluentd forward receiver, until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from monitoring.fluentd.server import Receiver, ReceiverConfig, run


class Command(BaseCommand):
    help = (
        "Receives logs over the Fluentd forward protocol (Docker's fluentd log driver, fluentd, fluent-bit) "
        "and stores them. Stops cleanly on SIGTERM or SIGINT."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", metavar="HOST:PORT", help="where to listen (default: AGORA_FLUENTD_BIND)")

    def handle(self, *args: Any, **options: Any) -> None:
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
