from celery import shared_task

from paywave.api.auth import refresh_tokens_purge_expired
from paywave.api.idempotency import idempotency_keys_purge_expired


@shared_task(name="paywave.purge_expired_idempotency_keys")
def purge_expired_idempotency_keys() -> int:
    return idempotency_keys_purge_expired()


@shared_task(name="paywave.purge_expired_refresh_tokens")
def purge_expired_refresh_tokens() -> int:
    return refresh_tokens_purge_expired()
