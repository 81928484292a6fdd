"""Indexes of the database store's queries on PostgreSQL (monitoring/store/database.py).

- Full text: one GIN index on (deployment_id, the message's words), so a search within one
  deployment intersects both keys in the index (btree_gin) instead of reading the lines of every
  deployment that uses the word. The store's `text_search_vector()` must stay the very
  expression indexed here, or PostgreSQL cannot use the index (a test checks the plan).
- Serious lines: a partial index on (deployment_id, level, time) of warnings, errors and critical
  lines, so "errors only" reads only those, and a level that is rare or absent costs nothing to
  look for; the many info and debug lines cost the index nothing.
- Newest sample of each node: (deployment_id, node, time) on samples, for the store's loose
  index scan in `latest` (one lookup per node instead of a pass over a fortnight of rounds).

SQLite has none of them (it searches by LIKE and scans); the operations do nothing there. The
indexes live only in the database, not in the models' state: they belong to the store, not to the models.
"""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations, models
from django.db.models import F, Func, Q, Value


def store_indexes():
    return [
        # A larger pending list lets GIN take bulk writes (COPY batches) in fewer, larger merges.
        GinIndex(
            F("deployment_id"),
            # The store's text_search_vector(): words split on anything not a letter or digit.
            SearchVector(
                Func(
                    F("message"),
                    Value("[^[:alnum:]]+"),
                    Value(" "),
                    Value("g"),
                    function="regexp_replace",
                    output_field=models.TextField(),
                ),
                config="simple",
            ),
            name="log_deployment_message_search",
            gin_pending_list_limit=16384,
        ),
        models.Index(
            fields=["deployment_id", "level", "time"],
            name="log_deployment_level_time",
            condition=Q(level__in=["warning", "error", "critical"]),
        ),
    ]


def sample_indexes():
    return [models.Index(fields=["deployment_id", "node", "time"], name="metric_deployment_node_time")]


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    for index in store_indexes():
        schema_editor.add_index(apps.get_model("monitoring", "LogLine"), index)
    for index in sample_indexes():
        schema_editor.add_index(apps.get_model("monitoring", "MetricSample"), index)


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for index in store_indexes():
        schema_editor.remove_index(apps.get_model("monitoring", "LogLine"), index)
    for index in sample_indexes():
        schema_editor.remove_index(apps.get_model("monitoring", "MetricSample"), index)


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_indexes, drop_indexes),
    ]
