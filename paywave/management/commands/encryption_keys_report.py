import json
from typing import Any

from django.core.management.base import BaseCommand

from paywave.encryption import crypto
from paywave.encryption.columns import LEGACY, PLAINTEXT, encrypted_columns, key_usage


class Command(BaseCommand):
    # It is how to find out what a failing key check is about: it must run when that fails.
    requires_system_checks: list[str] = []
    help = (
        "How many stored values each encryption key still encrypts, per encrypted column. "
        "Reads every encrypted column in full (one GROUP BY per column)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true", dest="as_json", help="one JSON document")

    def handle(self, *args: Any, as_json: bool = False, **options: Any) -> None:
        configured = crypto.configured_key_ids()
        report = {column.label: dict(key_usage(column)) for column in encrypted_columns()}
        if as_json:
            self.stdout.write(_json({"configured": list(configured), "columns": report}))
            return
        self.stdout.write(f"{'column':<48} {'key':<14} {'values':>10}  state")
        totals: dict[str, int] = {}
        for label, usage in report.items():
            for key, count in sorted(usage.items(), key=lambda item: -item[1]):
                self.stdout.write(f"{label:<48} {key:<14} {count:>10}  {_state(key, configured)}")
                totals[key] = totals.get(key, 0) + count
        self.stdout.write("")
        for kid in configured:
            position = "newest, encrypts" if kid == configured[0] else "decrypts only"
            self.stdout.write(f"key {kid} ({position}): {totals.get(kid, 0)} values")
        unused = [kid for kid in configured[1:] if not totals.get(kid)]
        if unused:
            self.stdout.write(f"no value uses {', '.join(unused)}: it can be removed")


def _state(key: str, configured: tuple[str, ...]) -> str:
    if key == LEGACY:
        return "written before key ids: run rotate_encryption_keys"
    if key == PLAINTEXT:
        return "not encrypted: run rotate_encryption_keys"
    if key == configured[0]:
        return "newest key"
    if key in configured:
        return "older key: run rotate_encryption_keys"
    return "KEY NOT CONFIGURED: cannot be read"


def _json(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True)
