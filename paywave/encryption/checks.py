"""System checks on encrypted columns; PayWave's processes refuse to start on an error.

`manage.py check`, runserver and migrate run every registered check; gunicorn (through
config/wsgi.py) and Celery workers (paywave/observability/celery_signals.py) call
`refuse_to_start_on_errors`, because neither fails on a check by itself.

Cost of the key check, per encrypted column: one loose scan of its key-id index
(an index probe per distinct prefix, plus one), and for values without a key id (written
before key ids existed) one bounded read of at most LEGACY_SAMPLE of them, decrypted.
So it stays a few milliseconds however big the tables are.
"""

import logging
from collections.abc import Iterable
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import SystemCheckError
from django.db import DatabaseError, transaction

from paywave.encryption import crypto
from paywave.encryption.columns import (
    LEGACY,
    PLAINTEXT,
    EncryptedColumn,
    bucket_of,
    distinct_prefixes,
    encrypted_columns,
    values_with_prefix,
)

logger = logging.getLogger(__name__)

# More distinct prefixes than this in one column: it is not (only) our ciphertext.
MAX_PREFIXES = 64
LEGACY_SAMPLE = 100
_ROTATE = "Run `manage.py rotate_encryption_keys`, with every key that encrypted them configured."
TAG = "encryption"


@checks.register(checks.Tags.models)
def check_key_id_indexes(app_configs: Iterable[AppConfig] | None = None, **_: Any) -> list:
    return [
        checks.Error(
            f"{column.label} is encrypted but its model has no key_id_index for it.",
            hint=f'Add key_id_index("{column.field.name}", name=...) to the model\'s '
            "Meta.indexes (paywave.encryption.fields): the startup key check reads the column "
            "through it.",
            obj=column.model,
            id="paywave.E001",
        )
        for column in encrypted_columns(app_configs)
        if not column.has_key_id_index()
    ]


@checks.register(TAG)
def check_encryption_keys_in_use(app_configs: Iterable[AppConfig] | None = None, **_: Any) -> list:
    """Every stored encrypted value must be readable with PAYWAVE_ENCRYPTION_KEYS."""
    try:
        configured = set(crypto.configured_key_ids())
    except ImproperlyConfigured as exc:
        configured, key_problem = set(), str(exc)
    else:
        key_problem = ""
    messages: list = []
    if key_problem and settings.PAYWAVE_ENCRYPTION_KEYS:
        messages.append(checks.Error(key_problem, id="paywave.E004"))
    tables: dict[str, set[str]] = {}
    for column in encrypted_columns(app_configs):
        try:
            if column.connection.alias not in tables:
                tables[column.connection.alias] = set(column.connection.introspection.table_names())
            if column.table not in tables[column.connection.alias]:
                continue  # not migrated yet: nothing stored
            with transaction.atomic(using=column.connection.alias):  # an error stays inside
                messages += _check_column(column, configured, key_problem)
        except DatabaseError as exc:
            messages.append(
                checks.Warning(
                    f"The keys of {column.label} could not be checked: "
                    + (str(exc).strip().splitlines() or [type(exc).__name__])[0],
                    hint="The database is unreachable or not migrated yet (`manage.py migrate`).",
                    id="paywave.W003",
                )
            )
    return messages


def _check_column(column: EncryptedColumn, configured: set[str], key_problem: str) -> list:
    prefixes = distinct_prefixes(column, at_most=MAX_PREFIXES)
    messages: list = []
    if len(prefixes) > MAX_PREFIXES:
        messages.append(
            checks.Error(
                f"{column.label} holds values that are not PayWave ciphertext "
                f"(more than {MAX_PREFIXES} different beginnings).",
                id="paywave.E003",
            )
        )
        return messages
    buckets: dict[str, list[str]] = {}
    for prefix in prefixes:
        buckets.setdefault(bucket_of(prefix), []).append(prefix)
    missing = sorted(set(buckets) - configured - {LEGACY, PLAINTEXT})
    if missing:
        messages.append(
            checks.Error(
                f"{column.label} has values encrypted with key id(s) {', '.join(missing)}, "
                "not in PAYWAVE_ENCRYPTION_KEYS"
                + (f" ({key_problem})" if key_problem else "")
                + ": they cannot be read.",
                hint="Put the key(s) back after the newest one, then run "
                "`manage.py rotate_encryption_keys`; `manage.py encryption_keys_report` "
                "shows what each key still encrypts.",
                id="paywave.E002",
            )
        )
    if LEGACY in buckets:
        messages += _check_legacy(column, buckets[LEGACY])
    if PLAINTEXT in buckets:
        if column.reads_plaintext:
            messages.append(
                checks.Warning(
                    f"{column.label} holds values that are not encrypted "
                    "(written before it was an encrypted column).",
                    hint=_ROTATE,
                    id="paywave.W002",
                )
            )
        else:
            messages.append(
                checks.Error(
                    f"{column.label} holds values that are not PayWave ciphertext: "
                    "they cannot be read.",
                    id="paywave.E003",
                )
            )
    return messages


def _check_legacy(column: EncryptedColumn, prefixes: list[str]) -> list:
    """Values without a key id: decrypt a bounded sample of them with the configured keys."""
    sample = [
        value
        for prefix in prefixes
        for value in values_with_prefix(column, prefix, limit=LEGACY_SAMPLE)
    ]
    unreadable = 0
    for value in sample:
        try:
            crypto.decrypt(value)
        except ImproperlyConfigured:
            unreadable += 1
    messages: list = [
        checks.Warning(
            f"{column.label} has values without a key id (encrypted before values named "
            "their key): the key check only samples them.",
            hint=_ROTATE,
            id="paywave.W001",
        )
    ]
    if unreadable:
        messages.append(
            checks.Error(
                f"{column.label}: {unreadable} of {len(sample)} values without a key id that "
                "were tried cannot be decrypted with PAYWAVE_ENCRYPTION_KEYS.",
                hint="Put the key that encrypted them back. " + _ROTATE,
                id="paywave.E002",
            )
        )
    return messages


def refuse_to_start_on_errors() -> None:
    """Run the system checks as runserver does: log warnings, raise on any error."""
    found = checks.run_checks()
    serious = [message for message in found if message.is_serious() and not message.is_silenced()]
    for message in found:
        if message not in serious and not message.is_silenced():
            logger.warning("system check: %s", message)
    if serious:
        raise SystemCheckError(
            "System check identified problems; refusing to start:\n"
            + "\n".join(str(message) for message in serious)
        )
