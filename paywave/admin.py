from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from paywave.models import ApiClient
from paywave.services import api_client_set_active

# Outstanding refresh tokens are live credentials of wallet apps: not for staff's eyes.
for _model in (OutstandingToken, BlacklistedToken):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "id")
    readonly_fields = ("id", "user", "name", "is_active", "created_at")
    actions = ("deactivate", "reactivate")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Accounts come from `manage.py create_client`, which hands out the password.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # payments name their wallet app: deactivate it instead

    @admin.action(description="Deactivate (its tokens stop working)", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[ApiClient]) -> None:
        self._set_active(request, queryset, active=False)

    @admin.action(description="Reactivate", permissions=["change"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet[ApiClient]) -> None:
        self._set_active(request, queryset, active=True)

    def _set_active(
        self, request: HttpRequest, queryset: QuerySet[ApiClient], *, active: bool
    ) -> None:
        changed = 0
        for client in queryset:
            if api_client_set_active(client=client, active=active):
                changed += 1
                self.log_change(request, client, "reactivated" if active else "deactivated")
        verb = "Reactivated" if active else "Deactivated"
        self.message_user(request, f"{verb} {changed} wallet app(s).", messages.SUCCESS)
