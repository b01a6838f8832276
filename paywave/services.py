import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from paywave.api.accounts import account_state_forget
from paywave.api.errors import ApplicationError
from paywave.models import ApiClient


def api_client_create(*, name: str, password: str | None = None) -> tuple[ApiClient, str]:
    """Create a wallet app account; returns it with its password (generated if not given)."""
    user_model = get_user_model()
    password = password or secrets.token_urlsafe(24)
    with transaction.atomic():
        if user_model.objects.filter(username=name).exists():
            raise ApplicationError(f"An account named {name!r} already exists.", code="name_taken")
        user = user_model.objects.create_user(username=name, password=password)
        client = ApiClient.objects.create(user=user, name=name)
    return client, password


def api_client_ensure(*, name: str, password: str) -> ApiClient:
    """Create the account if missing, else reset its password: used to seed sandbox demos."""
    user_model = get_user_model()
    with transaction.atomic():
        user, _ = user_model.objects.get_or_create(username=name)
        user.set_password(password)
        user.is_active = True
        user.save()
        client, _ = ApiClient.objects.get_or_create(user=user, defaults={"name": name})
    return client


def staff_user_ensure(*, username: str, password: str) -> None:
    user_model = get_user_model()
    with transaction.atomic():
        user, _ = user_model.objects.get_or_create(username=username)
        user.set_password(password)
        user.is_staff = True
        user.is_superuser = True
        user.is_active = True
        user.save()


def api_client_set_active(*, client: ApiClient, active: bool) -> bool:
    """Deactivate a wallet app (no new tokens; its tokens stop working at once) or
    reactivate it. Returns whether anything changed."""
    with transaction.atomic():
        changed = ApiClient.objects.filter(pk=client.pk, is_active=not active).update(
            is_active=active
        )
        transaction.on_commit(lambda: account_state_forget(client.user_id))
    client.is_active = active
    return bool(changed)


def staff_totp_enrol(*, user: Any, name: str, replace: bool = False) -> TOTPDevice:
    """Give a staff user a TOTP device (confirmed): its otpauth URI is `device.config_url`.

    A user who has one already keeps it unless `replace` (a lost phone): then every
    TOTP device of the user is removed first, in the same transaction.
    """
    if not user.is_staff:
        raise ApplicationError(f"{user.get_username()!r} is not staff.", code="not_staff")
    with transaction.atomic():
        existing = TOTPDevice.objects.filter(user=user)
        if existing.exists() and not replace:
            raise ApplicationError(
                f"{user.get_username()!r} has a TOTP device already (replace it on purpose).",
                code="device_exists",
            )
        existing.delete()
        return TOTPDevice.objects.create(user=user, name=name, confirmed=True)
