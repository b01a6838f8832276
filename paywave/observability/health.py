"""Liveness and readiness: /healthz says the process answers, /readyz that its services do."""

import logging
import uuid

from celery.app import default_app as celery_app  # config/celery_app.py's, in every thread
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache() -> None:
    probe = f"readyz:{uuid.uuid4()}"
    cache.set(probe, "1", timeout=5)
    if cache.get(probe) != "1":
        raise RuntimeError("cache did not return what was written")
    cache.delete(probe)


def _check_broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


CHECKS = {"database": _check_database, "cache": _check_cache, "broker": _check_broker}


def readyz(request: HttpRequest) -> JsonResponse:
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:
            logger.warning("readiness check %s failed", name, exc_info=True)
            results[name] = f"unavailable: {exc.__class__.__name__}"
    down = [name for name, result in results.items() if result != "ok"]
    if down:
        return JsonResponse(
            {"status": "unavailable", "unavailable": down, "checks": results}, status=503
        )
    return JsonResponse({"status": "ok", "checks": results})
