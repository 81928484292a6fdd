"""Where a value is written: every table of the test database, row by row as text."""

from __future__ import annotations

from django.db import connection


def tables_holding(text: str) -> list[str]:
    """The tables with a row whose text form (every column, JSON and all) contains `text`.

    Binary columns read as hex, so the template as uploaded (a publisher's literal values and
    defaults) is not searched: this finds what the platform wrote, which is what must hold no secret.
    """
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    found = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        tables = [row[0] for row in cursor.fetchall()]
        for table in tables:
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT count(*) FROM {quoted} AS r WHERE r::text LIKE %s", [pattern])  # noqa: S608
            if cursor.fetchone()[0]:
                found.append(table)
    return found
