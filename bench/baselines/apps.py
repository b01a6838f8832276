from django.apps import AppConfig


class BaselinesConfig(AppConfig):
    name = "bench.baselines"
    label = "bench_baselines"
    default_auto_field = "django.db.models.BigAutoField"
