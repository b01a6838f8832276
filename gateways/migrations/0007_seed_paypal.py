from django.db import migrations

SEED = [
    {
        "code": "paypal",
        "adapter": "paypal",
        "display_name": "PayPal",
        "priority": 10,
        "methods": ["paypal"],
        "currencies": ["BRL", "USD", "EUR", "GBP", "MXN"],
        "countries": [],
    },
]


def seed(apps, schema_editor):
    gateway_model = apps.get_model("gateways", "Gateway")
    for row in SEED:
        gateway_model.objects.get_or_create(code=row["code"], defaults=row)


class Migration(migrations.Migration):
    dependencies = [("gateways", "0006_paypal_adapter")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
