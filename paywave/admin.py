from typing import Any

from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from paywave.admin_helpers import ViewOnlyPagesMixin
from paywave.api.keys import api_key_create, api_key_revoke, api_key_roll
from paywave.models import ApiClient, ApiKey
from paywave.services import api_client_set_active

# Outstanding refresh tokens are live credentials of wallet apps: not for staff's eyes.
for _model in (OutstandingToken, BlacklistedToken):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)

# Login attempts are a record, not a form: view-only pages (deleting one lifts a lockout).
for _model, _admin in (
    (AccessAttempt, AccessAttemptAdmin),
    (AccessLog, AccessLogAdmin),
    (AccessFailureLog, AccessFailureLogAdmin),
):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
        admin.site.register(_model, type(_admin.__name__, (ViewOnlyPagesMixin, _admin), {}))


_KEY_FIELDS = ("hint", "name", "created_at", "last_used_at", "expires_at", "revoked_at")


def _show_new_keys(
    modeladmin: admin.ModelAdmin, request: HttpRequest, keys: list[dict[str, str]]
) -> HttpResponse:
    """The one page that ever shows the keys themselves (never a message: those are kept
    in the session or a cookie)."""
    return TemplateResponse(
        request,
        "admin/paywave/new_api_keys.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": "New API keys",
            "keys": keys,
            "back": request.get_full_path(),
        },
    )


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    can_delete = False
    fields = _KEY_FIELDS
    readonly_fields = _KEY_FIELDS
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(ViewOnlyPagesMixin, admin.ModelAdmin):
    list_display = ("hint", "client", "name", "created_at", "last_used_at", "expires_at",
                     "revoked_at")  # fmt: skip
    list_filter = ("revoked_at", "client")
    search_fields = ("=hint", "client__name", "name")
    list_select_related = ("client",)
    readonly_fields = ("client", "digest", *_KEY_FIELDS)
    actions = ("roll", "revoke")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made from the wallet app's page (or `manage.py create_api_key`)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: its record stays

    @admin.action(
        description="Roll: a new key now, this one expires after the grace period",
        permissions=["change"],
    )
    def roll(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> HttpResponse | None:
        made = []
        for key in queryset.select_related("client").filter(revoked_at__isnull=True):
            _, raw = api_key_roll(key=key)
            self.log_change(request, key, "rolled (a successor made; this one expires)")
            made.append({"client": key.client.name, "raw": raw, "note": f"replaces {key.hint}"})
        if not made:
            self.message_user(request, "Revoked keys cannot be rolled.", messages.WARNING)
            return None
        return _show_new_keys(self, request, made)

    @admin.action(description="Revoke now", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = 0
        for key in queryset:
            if api_key_revoke(key=key):
                self.log_change(request, key, "revoked")
                revoked += 1
        self.message_user(request, f"Revoked {revoked} API key(s).", messages.SUCCESS)


@admin.register(ApiClient)
class ApiClientAdmin(ViewOnlyPagesMixin, admin.ModelAdmin):
    list_display = ("name", "id", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "id")
    readonly_fields = ("id", "user", "name", "is_active", "created_at")
    inlines = (ApiKeyInline,)
    actions = ("deactivate", "reactivate", "new_api_key")

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

    @admin.action(description="Make a new API key (shown once)", permissions=["change"])
    def new_api_key(self, request: HttpRequest, queryset: QuerySet[ApiClient]) -> HttpResponse:
        made = []
        for client in queryset:
            key, raw = api_key_create(client=client, name=f"made by {request.user}")
            self.log_change(request, client, f"API key {key.hint} made")
            made.append({"client": client.name, "raw": raw, "note": key.name})
        return _show_new_keys(self, request, made)

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
