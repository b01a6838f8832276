from celery import shared_task

from paywave.idempotency import idempotency_keys_purge_expired


@shared_task(name="paywave.purge_expired_idempotency_keys")
def purge_expired_idempotency_keys() -> int:
    return idempotency_keys_purge_expired()
