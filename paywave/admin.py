from django.contrib import admin

from paywave.models import ApiClient


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "created_at")
    search_fields = ("name", "id")
    readonly_fields = ("id", "user", "created_at")

    def has_add_permission(self, request) -> bool:
        # Accounts come from `manage.py create_client`, which hands out the password.
        return False
