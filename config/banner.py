"""What `make run` prints before it starts the processes: where everything is."""

import os
from collections.abc import Mapping

import django

from config.payments_workers import process_count

WORKER_METRICS_PORT = 9808  # the Procfile's default for PAYWAVE_WORKER_METRICS_PORT


def worker_metrics_ports(environ: Mapping[str, str]) -> dict[str, int]:
    """Where the Procfile's Celery workers serve their metrics: the port, and the next."""
    first = int(environ.get("PAYWAVE_WORKER_METRICS_PORT") or WORKER_METRICS_PORT)
    return {"payments": first, "worker": first + 1}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    django.setup()
    from django.conf import settings

    from paywave.management.commands.seed_demo import DEMO_API_KEY

    api = f"http://127.0.0.1:{os.environ.get('PAYWAVE_API_PORT', '8000')}"
    flower = f"http://127.0.0.1:{os.environ.get('FLOWER_PORT', '5555')}"
    flower_auth = os.environ.get("FLOWER_BASIC_AUTH", "")
    database = settings.DATABASES["default"]
    cache = settings.CACHES["default"]
    broker = settings.CELERY_BROKER_URL.split("@")[-1]
    sandbox = settings.PAYWAVE_SANDBOX
    staff = "   staff user admin / admin" if sandbox else ""
    if settings.PAYWAVE_ADMIN_REQUIRE_2FA:
        staff += " + TOTP code (manage.py totp_enrol admin)"
    workers = worker_metrics_ports(os.environ)
    lines = [
        "PayWave is starting (Ctrl-C stops everything)",
        f"  API          {api}/api/v1/",
        f"  API docs     {api}/api/docs/   (OpenAPI: {api}/api/schema/)",
        f"  Health       {api}/healthz  {api}/readyz",
        f"  Admin        {api}/{settings.PAYWAVE_ADMIN_URL}{staff}",
        f"  Flower       {flower}" + (f"   user:password {flower_auth}" if flower_auth else ""),
        *(
            ["               (no Broker tab on filesystem://: it needs RabbitMQ or Redis)"]
            if broker.startswith("filesystem:")
            else []
        ),
        f"  Metrics      {api}/metrics   (api: requests, payments created, queues, circuits)",
        f"               http://127.0.0.1:{workers['payments']}/metrics   (payments worker:"
        f" {process_count(os.environ)} processes added up)",
        f"               http://127.0.0.1:{workers['worker']}/metrics   (worker)",
        "               Prometheus: config/prometheus/make-run.yml",
        f"  Sandbox      {'on: demo wallet app demo / demo' if sandbox else 'off'}",
        *([f"               demo API key {DEMO_API_KEY}"] if sandbox else []),
        f"  Simulators   {settings.PAYWAVE_SIMULATOR_URL}/_sim/charges   (docs/gateways.md)",
        f"  Database     {database['ENGINE'].rsplit('.', 1)[-1]} {database.get('NAME', '')}",
        f"  Broker       {broker}",
        f"  Cache        {cache['BACKEND'].rsplit('.', 1)[-1]} {cache.get('LOCATION', '')}",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
