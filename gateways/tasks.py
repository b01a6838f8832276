from typing import Any

from celery import shared_task

from .health import gateways_probe_all
from .retention import rejected_callbacks_purge


@shared_task(name="gateways.probe_health", ignore_result=True)
def probe_health() -> dict[str, Any]:
    return gateways_probe_all()


@shared_task(name="gateways.purge_rejected_callbacks", ignore_result=True)
def purge_rejected_callbacks() -> int:
    return rejected_callbacks_purge()
