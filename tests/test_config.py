import re
from pathlib import Path

import pytest

from config.settings import payments as payment_settings
from config.settings.environment import env_bool_or

ROOT = Path(__file__).resolve().parent.parent


def test_env_example_lists_every_variable_the_settings_read() -> None:
    read = set(payment_settings._GATEWAY_KEYS)
    for settings_file in (ROOT / "config" / "settings").glob("*.py"):
        # env.str("X"), env.bool("X"), ... and the helpers beside them (env_bool_or("X")).
        read |= set(re.findall(r'env(?:\.|_)\w+\(\s*"([A-Z0-9_]+)"', settings_file.read_text()))
    listed = set(re.findall(r"^([A-Z0-9_]+)=", (ROOT / "config/env.example").read_text(), re.M))

    assert {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "STRIPE_API_KEY"} <= read
    assert "PAYWAVE_WEBHOOK_POLLER" in read  # read through env_bool_or
    assert read - listed == set()


@pytest.mark.parametrize(
    ("value", "default", "expected"),
    [
        (None, True, True),
        ("", True, True),  # listed empty in config/env.example: the default
        ("", False, False),
        ("false", True, False),
        ("true", False, True),
        ("yes", False, True),
    ],
)
def test_an_optional_yes_no_setting_unset_or_empty_is_its_default(
    monkeypatch: pytest.MonkeyPatch, value: str | None, default: bool, expected: bool
) -> None:
    if value is None:
        monkeypatch.delenv("PAYWAVE_TEST_FLAG", raising=False)
    else:
        monkeypatch.setenv("PAYWAVE_TEST_FLAG", value)

    assert env_bool_or("PAYWAVE_TEST_FLAG", default) is expected


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
