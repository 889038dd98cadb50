"""Create the database cache table when the database cache is configured.

Without Redis, allauth's login rate limits live in the database cache; making
the table part of `migrate` means no deployment can forget it. With Redis
configured this does nothing.
"""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("users", "0001_initial")]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
