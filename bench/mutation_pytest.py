"""pytest plugin of the mutation runs (bench/mutation.py): one test database, made once.

Each mutant is tested by a fresh pytest session in a forked process. Creating and
migrating the test database there would cost seconds per mutant, so
`prepare_database()` creates it once per run, named after the suite's own with
`_mutation` appended (a `pytest` running beside it keeps `test_<name>`), and each
session only points Django at it.
"""

import gc
import os
from typing import Any

import pytest

SUFFIX = "_mutation"


def mutation_database_name(settings_dict: dict[str, Any]) -> str:
    # bench/mutation.py --jobs: each concurrent run has its own (`_1`, `_2`, ...).
    slot = os.environ.get("PAYWAVE_MUTATION_DB_SUFFIX", "")
    return f"test_{settings_dict['NAME']}{SUFFIX}{slot}"


def pytest_configure(config: pytest.Config) -> None:
    # Registered now, after pytest-django: its django_db_setup is the one used.
    config.pluginmanager.import_plugin("bench.mutation_fixtures")
    # What the fork inherited is never garbage: keep the collector off it.
    gc.freeze()


def prepare_database() -> None:
    """Create (or re-create) and migrate the mutation runs' test database."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django
    from django.conf import settings

    django.setup()
    from django.db import connections

    for alias, settings_dict in settings.DATABASES.items():
        settings_dict.setdefault("TEST", {})["NAME"] = mutation_database_name(settings_dict)
        connections[alias].creation.create_test_db(
            verbosity=0, autoclobber=True, serialize=False, keepdb=False
        )
