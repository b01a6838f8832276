from django.core.management.base import BaseCommand
from django.db import transaction

from payments.models import Payment
from paywave.fields import EncryptedTextField

BATCH = 500
ENCRYPTED_MODELS = (Payment,)


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted column under the first key of PAYWAVE_ENCRYPTION_KEYS. "
        "Run it after prepending a new key; afterwards the old key can be removed."
    )

    def handle(self, *args, **options) -> None:
        for model in ENCRYPTED_MODELS:
            fields = [f.name for f in model._meta.fields if isinstance(f, EncryptedTextField)]
            pks = list(model.objects.order_by("pk").values_list("pk", flat=True))
            for start in range(0, len(pks), BATCH):
                with transaction.atomic():
                    rows = model.objects.select_for_update().filter(
                        pk__in=pks[start : start + BATCH]
                    )
                    # Values are decrypted on load with any key and encrypted on write
                    # with the newest one.
                    for row in rows.only("pk", *fields):
                        model.objects.filter(pk=row.pk).update(
                            **{name: getattr(row, name) for name in fields}
                        )
            self.stdout.write(f"{model._meta.label}: {len(pks)} rows re-encrypted")
