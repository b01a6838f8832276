from django.db import migrations, models
from django.db.models import F, Value
from django.db.models.functions import Cast, Concat

import notifications.models


def keep_the_ids_already_delivered(apps, schema_editor):
    # Wallet apps dedupe on the ids they were sent: existing events keep `evt_<n>`.
    Event = apps.get_model("notifications", "Event")
    Event.objects.filter(public_id__isnull=True).update(
        public_id=Concat(Value("evt_"), Cast(F("id"), models.CharField()))
    )


class Migration(migrations.Migration):

    dependencies = [
        ("notifications", "0004_encryption_key_ids"),
    ]

    operations = [
        migrations.AddField(
            model_name="event",
            name="public_id",
            field=models.CharField(max_length=40, null=True),
        ),
        migrations.RunPython(keep_the_ids_already_delivered, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="event",
            name="public_id",
            field=models.CharField(
                default=notifications.models.new_event_id, max_length=40, unique=True
            ),
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                fields=["client", "-created_at", "-id"], name="event_client_recent_idx"
            ),
        ),
    ]
