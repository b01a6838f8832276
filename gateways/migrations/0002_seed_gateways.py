from django.db import migrations

SEED = [
    {
        "code": "stripe",
        "adapter": "stripe",
        "display_name": "Stripe",
        "priority": 10,
        "methods": ["card"],
        "currencies": ["BRL", "USD", "EUR", "GBP", "ARS", "CLP", "MXN", "COP"],
        "countries": [],
    },
    {
        "code": "mercadopago",
        "adapter": "mercadopago",
        "display_name": "Mercado Pago",
        "priority": 10,
        "methods": ["pix"],
        "currencies": ["BRL"],
        "countries": ["BR"],
    },
    {
        "code": "gerencianet",
        "adapter": "gerencianet",
        "display_name": "Gerencianet / Efí",
        "priority": 20,
        "methods": ["pix"],
        "currencies": ["BRL"],
        "countries": ["BR"],
    },
]


def seed(apps, schema_editor):
    gateway_model = apps.get_model("gateways", "Gateway")
    for row in SEED:
        gateway_model.objects.get_or_create(code=row["code"], defaults=row)


class Migration(migrations.Migration):
    dependencies = [("gateways", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
