"""pytest plugin of the mutation runs (bench/mutation.py): one test database, made once.

Each mutant is tested by a fresh pytest session in a forked process. Creating and
migrating the test database there would cost seconds per mutant, so
`prepare_database()` creates it once per run, named after the suite's own with
`_mutation` appended (a `pytest` running beside it keeps `test_<name>`), and each
session only points Django at it.
"""

import gc
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

SUFFIX = "_mutation"
# In the directory mutmut runs the tests in (its `mutants`): one JSON line per mutant.
DURATIONS_FILE = "mutant-seconds.jsonl"


def mutation_database_name(settings_dict: dict[str, Any]) -> str:
    # bench/mutation.py --jobs: each concurrent run has its own (`_1`, `_2`, ...).
    slot = os.environ.get("PAYWAVE_MUTATION_DB_SUFFIX", "")
    return f"test_{settings_dict['NAME']}{SUFFIX}{slot}"


def pytest_configure(config: pytest.Config) -> None:
    # Registered now, after pytest-django: its django_db_setup is the one used.
    config.pluginmanager.import_plugin("bench.mutation_fixtures")
    # What the fork inherited is never garbage: keep the collector off it.
    gc.freeze()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The mutant's tests fastest first, as mutmut's first run timed them: the session
    stops at the first failure (-x), and a mutant that any test kills is most often
    killed by a quick one (a statement count, a unit test) as well as by a slow one."""
    durations = _recorded_durations()
    if durations:
        items.sort(key=lambda item: durations.get(item.nodeid, 0.0))


_STARTED: list[float] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    # This session's start only: a fork inherits what its fork server's own session set.
    _STARTED[:] = [time.monotonic()]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """What this mutant's session took, kept beside mutmut's results (mutmut keeps none
    for forked runs): the next run balances its shards by it (bench/mutation.py)."""
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if not _STARTED or "__mutmut_" not in mutant:
        return
    line = json.dumps({"mutant": mutant, "seconds": round(time.monotonic() - _STARTED[0], 2)})
    with Path(DURATIONS_FILE).open("a") as durations:
        durations.write(line + "\n")


def _recorded_durations() -> dict[str, float]:
    # mutmut runs a mutant's tests in its `mutants` directory, and keeps its stats there.
    for path in (Path("mutmut-stats.json"), Path("mutants") / "mutmut-stats.json"):
        if path.exists():
            return dict(json.loads(path.read_text()).get("duration_by_test", {}))
    return {}


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
