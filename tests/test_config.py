import re
from pathlib import Path

from config.settings import payments as payment_settings

ROOT = Path(__file__).resolve().parent.parent


def test_env_example_lists_every_variable_the_settings_read() -> None:
    read = set(payment_settings._GATEWAY_KEYS)
    for settings_file in (ROOT / "config" / "settings").glob("*.py"):
        read |= set(re.findall(r'env\.\w+\(\s*"([A-Z0-9_]+)"', settings_file.read_text()))
    listed = set(re.findall(r"^([A-Z0-9_]+)=", (ROOT / "config/env.example").read_text(), re.M))

    assert {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "STRIPE_API_KEY"} <= read
    assert read - listed == set()


def test_a_malformed_metrics_allow_list_stops_the_start_instead_of_every_scrape() -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "PAYWAVE_METRICS_ALLOW": "127.0.0.0/8,10.0.0.0/33"}
    started = subprocess.run(
        [sys.executable, "-c", "import config.settings.base"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert started.returncode != 0
    assert "PAYWAVE_METRICS_ALLOW: '10.0.0.0/33' is not a CIDR" in started.stderr
