"""The mutation runs' django_db_setup (bench/mutation_pytest.py registers it last)."""

from typing import Any

import pytest

from bench.mutation_pytest import mutation_database_name


@pytest.fixture(scope="session")
def django_db_setup(django_db_blocker: Any) -> None:
    """Point Django at the test database made once per run; create and migrate nothing."""
    from django.conf import settings
    from django.db import connections

    for alias, settings_dict in settings.DATABASES.items():
        name = mutation_database_name(settings_dict)
        settings_dict["NAME"] = name
        connections[alias].settings_dict["NAME"] = name
