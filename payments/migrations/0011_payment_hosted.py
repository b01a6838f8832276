from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0010_disputes"),
    ]

    operations = [
        migrations.AddField(
            model_name="payment",
            name="hosted",
            field=models.BooleanField(default=False),
        ),
    ]
