"""The staff admin's site: password, then a TOTP code (django-otp).

With PAYWAVE_ADMIN_REQUIRE_2FA (production) only staff verified by a TOTP device get
in; without it (the sandbox) staff who enrolled a device are asked for its code and
the others sign in with their password alone. Repeated failures lock the login out
(django-axes, settings `AXES_*`).
"""

from typing import Any

from django.conf import settings
from django.contrib.admin import AdminSite
from django.http import HttpRequest
from django_otp import devices_for_user
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite


class StaffLoginForm(OTPAdminAuthenticationForm):
    def clean(self) -> dict[str, Any]:
        self.cleaned_data = super(OTPAdminAuthenticationForm, self).clean()
        user = self.get_user()
        if settings.PAYWAVE_ADMIN_REQUIRE_2FA or (
            user is not None and any(devices_for_user(user, confirmed=True))
        ):
            self.clean_otp(user)
        return self.cleaned_data


class PayWaveAdminSite(OTPAdminSite):
    site_header = "PayWave administration"
    site_title = "PayWave admin"
    login_form = StaffLoginForm

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    def has_permission(self, request: HttpRequest) -> bool:
        if settings.PAYWAVE_ADMIN_REQUIRE_2FA:
            return super().has_permission(request)
        return AdminSite.has_permission(self, request)
