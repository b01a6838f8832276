"""The staff admin's door: lockout after failed logins, strong passwords, TOTP two-factor
(required with production's settings, optional in the sandbox), a configurable prefix."""

import importlib
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import clear_url_caches
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = pytest.mark.django_db

PASSWORD = "Ledger-Quartz-Meadow-42"
LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture
def staff() -> Any:
    return get_user_model().objects.create_user(
        username="ops-bruno", password=PASSWORD, is_staff=True, is_superuser=True
    )


def log_in(client: Client, password: str = PASSWORD, **extra: str) -> Any:
    return client.post(LOGIN, {"username": "ops-bruno", "password": password, **extra})


def code_of(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def test_admin_logins_are_locked_out_after_the_failure_limit(staff: Any, settings: Any) -> None:
    assert settings.AXES_FAILURE_LIMIT == 5
    client = Client(REMOTE_ADDR="203.0.113.9")

    failures = [log_in(client, "wrong").status_code for _ in range(settings.AXES_FAILURE_LIMIT)]
    locked = log_in(client)

    assert failures[:-1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)  # the form again
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    # Another address is not locked out for this username.
    assert log_in(Client(REMOTE_ADDR="203.0.113.10")).status_code == 302


def test_below_the_limit_the_right_password_still_gets_in(staff: Any, settings: Any) -> None:
    client = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "wrong")

    assert log_in(client).status_code == 302
    assert client.get("/admin/").status_code == 200


def test_the_api_token_endpoint_is_not_locked_out_by_admin_failures(staff: Any) -> None:
    client = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(6):
        log_in(client, "wrong")

    token = client.post(
        "/api/v1/auth/token",
        {"username": "ops-bruno", "password": PASSWORD},
        content_type="application/json",
    )

    assert token.status_code == 200


@pytest.mark.parametrize(
    "password", ["admin", "12345678901234", "password1234", "ops-bruno-2024", "Short-1"]
)
def test_weak_staff_passwords_are_refused(staff: Any, password: str) -> None:
    with pytest.raises(ValidationError):
        validate_password(password, user=staff)


def test_every_django_password_validator_is_on(settings: Any) -> None:
    names = {v["NAME"].rsplit(".", 1)[-1] for v in settings.AUTH_PASSWORD_VALIDATORS}
    assert names == {
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    }
    validate_password(PASSWORD)


def test_with_production_settings_a_password_alone_does_not_open_the_admin(
    staff: Any, settings: Any
) -> None:
    settings.PAYWAVE_ADMIN_REQUIRE_2FA = True  # what config.settings.production sets
    client = Client()

    answer = log_in(client)
    forced = Client()
    forced.force_login(staff)  # a session without a verified device

    assert answer.status_code == 200  # the login form again, asking for the code
    assert "OTP token" in str(answer.context["form"].non_field_errors())
    assert client.get("/admin/").status_code == 302
    assert forced.get("/admin/").status_code == 302


def test_with_production_settings_password_and_totp_code_open_the_admin(
    staff: Any, settings: Any
) -> None:
    settings.PAYWAVE_ADMIN_REQUIRE_2FA = True
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    client = Client()
    code = code_of(device)

    right = log_in(client, otp_device=device.persistent_id, otp_token=code)
    replayed = log_in(Client(), otp_device=device.persistent_id, otp_token=code)

    assert right.status_code == 302
    assert client.get("/admin/").status_code == 200
    assert replayed.status_code == 200  # a code opens one session only


def test_with_production_settings_a_wrong_totp_code_is_refused(staff: Any, settings: Any) -> None:
    settings.PAYWAVE_ADMIN_REQUIRE_2FA = True
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    client = Client()

    wrong = log_in(client, otp_device=device.persistent_id, otp_token="000000")

    assert wrong.status_code == 200
    assert client.get("/admin/").status_code == 302


def test_in_the_sandbox_staff_without_a_device_sign_in_with_a_password(staff: Any) -> None:
    client = Client()

    assert log_in(client).status_code == 302
    assert client.get("/admin/").status_code == 200


def test_make_runs_admin_admin_signs_in_without_a_code(settings: Any) -> None:
    settings.PAYWAVE_SANDBOX = True
    call_command("seed_demo")  # what make run seeds
    client = Client()

    login = client.post(LOGIN, {"username": "admin", "password": "admin"})

    assert settings.PAYWAVE_ADMIN_REQUIRE_2FA is False  # the default outside production
    assert login.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_in_the_sandbox_staff_with_a_device_are_asked_for_its_code(staff: Any) -> None:
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)

    without_code = log_in(Client())
    client = Client()
    with_code = log_in(client, otp_device=device.persistent_id, otp_token=code_of(device))

    assert without_code.status_code == 200
    assert with_code.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_totp_enrol_prints_the_otpauth_uri_and_a_qr_code_once(staff: Any, capsys: Any) -> None:
    call_command("totp_enrol", "ops-bruno")
    printed = capsys.readouterr().out

    device = TOTPDevice.objects.get(user=staff)
    assert device.confirmed
    assert device.config_url in printed
    assert printed.count("otpauth://totp/") == 1
    assert "█" in printed or "▀" in printed  # the QR code
    with pytest.raises(CommandError, match="already"):
        call_command("totp_enrol", "ops-bruno")
    call_command("totp_enrol", "ops-bruno", "--replace", "--no-qr")
    assert TOTPDevice.objects.filter(user=staff).count() == 1


def test_totp_enrol_is_for_staff_only(db: Any) -> None:
    get_user_model().objects.create_user(username="acme", password=PASSWORD)

    with pytest.raises(CommandError, match="not staff"):
        call_command("totp_enrol", "acme")


@pytest.fixture
def admin_at(settings: Any) -> Iterator[Any]:
    """The URL conf rebuilt with another PAYWAVE_ADMIN_URL."""
    import config.urls

    def move(prefix: str) -> None:
        settings.PAYWAVE_ADMIN_URL = prefix
        importlib.reload(config.urls)
        clear_url_caches()

    yield move
    settings.PAYWAVE_ADMIN_URL = "admin/"
    importlib.reload(config.urls)
    clear_url_caches()


def test_the_admin_lives_at_the_configured_prefix(staff: Any, admin_at: Any) -> None:
    admin_at("staff-7f3c/")
    client = Client()

    login = client.post(
        "/staff-7f3c/login/?next=/staff-7f3c/", {"username": "ops-bruno", "password": PASSWORD}
    )

    assert login.status_code == 302
    assert client.get("/staff-7f3c/").status_code == 200
    old = client.get("/admin/")
    assert old.status_code == 404
    assert old["Content-Type"] == "application/json"  # the API's 404 shape, not the admin's


def test_a_malformed_admin_prefix_stops_the_start() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    started = subprocess.run(
        [sys.executable, "-c", "import config.settings.base"],
        cwd=Path(__file__).resolve().parents[3],
        env={**os.environ, "PAYWAVE_ADMIN_URL": "/admin"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert started.returncode != 0
    assert "PAYWAVE_ADMIN_URL" in started.stderr
