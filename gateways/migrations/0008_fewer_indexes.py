from django.db import migrations

from paywave.postgresql.schema import prefix_search_indexes_dropped


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY runs outside a transaction

    dependencies = [
        ("gateways", "0007_seed_paypal"),
    ]

    operations = [
        prefix_search_indexes_dropped("gateways_gateway", "gateways_gatewaycallback"),
    ]
