from typing import Any

from django.core.management.base import BaseCommand

from paywave.encryption.columns import column_rotate, encrypted_columns


class Command(BaseCommand):
    help = (
        "Re-encrypt every value of every encrypted column (all models) under the first key "
        "of PAYWAVE_ENCRYPTION_KEYS. Run it after prepending a new key; when "
        "`encryption_keys_report` shows an old key unused, remove it."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, batch_size: int, **options: Any) -> None:
        for column in encrypted_columns():
            rotated = column_rotate(column, batch_size=batch_size)
            line = f"{column.label}: {rotated.rewritten} values re-encrypted"
            if rotated.changed_meanwhile:
                line += f", {rotated.changed_meanwhile} rewritten meanwhile by PayWave itself"
            self.stdout.write(line)
