"""Full-text search of log lines on PostgreSQL: one GIN index on (deployment_id, the message's
words), so a search within one deployment intersects both keys in the index (btree_gin) instead of
reading the lines of every deployment that use the word. SQLite has no such index and searches
by LIKE; the operation does nothing there. The index lives only in the database, not in the
models' state: it is an implementation detail of monitoring/store/database.py, whose
`text_search_vector()` must stay the very expression indexed here (a test checks the plan)."""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations
from django.db.models import F

INDEX_NAME = "log_deployment_message_search"


def search_index():
    # A larger pending list lets GIN take bulk writes (COPY batches) in fewer, larger merges.
    return GinIndex(F("deployment_id"), SearchVector("message", config="simple"), name=INDEX_NAME, gin_pending_list_limit=16384)


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    schema_editor.add_index(apps.get_model("monitoring", "LogLine"), search_index())


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.remove_index(apps.get_model("monitoring", "LogLine"), search_index())


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index),
    ]
