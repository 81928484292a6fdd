"""A benchmark's own PostgreSQL database: created and migrated at start, dropped at the end, so a bench
never touches the data of a running Agora or of the tests. Import after django.setup()."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from django.core.management import call_command
from django.db import connections


@contextmanager
def scratch_database(url: str) -> Iterator[None]:
    """`url` must be the DATABASE_URL Django was set up with."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.startswith(("bench", "agora_bench")):
        # It is dropped at the start and at the end: never a database someone works with.
        raise SystemExit(f"The bench's database must be named bench... or agora_bench..., not {name!r}.")
    admin_dsn = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        call_command("migrate", verbosity=0)
        yield
    finally:
        connections.close_all()
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
