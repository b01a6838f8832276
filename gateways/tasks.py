from typing import Any

from celery import shared_task

from .health import gateways_probe_all


@shared_task(name="gateways.probe_health", ignore_result=True)
def probe_health() -> dict[str, Any]:
    return gateways_probe_all()
