from functools import partial
from typing import Any

from django.apps import AppConfig


class PaywaveConfig(AppConfig):
    name = "paywave"
    verbose_name = "PayWave platform"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save

        from paywave.api import schema  # noqa: F401  (registers the OpenAPI auth extension)
        from paywave.encryption import checks  # noqa: F401  (registers the encryption checks)
        from paywave.observability.heartbeats import heartbeat_collector
        from paywave.observability.metrics import scrape_time_register

        scrape_time_register(heartbeat_collector)

        # Staff edit users in Django's own admin (is_active, is_staff): the only way to
        # hear of it. Tokens then lose what the user lost at the next request.
        post_save.connect(
            _forget_account_state, sender=get_user_model(), dispatch_uid="paywave-account"
        )


def _forget_account_state(sender: Any, instance: Any, **kwargs: Any) -> None:
    from django.db import transaction

    from paywave.api.accounts import account_state_forget

    transaction.on_commit(partial(account_state_forget, instance.pk))
