from django.apps import AppConfig


class PaywaveConfig(AppConfig):
    name = "paywave"
    verbose_name = "PayWave platform"

    def ready(self) -> None:
        from paywave import schema  # noqa: F401  (registers the OpenAPI auth extension)
