"""Building blocks the apps' admins share."""

from typing import Any

from django.http import HttpRequest


class ViewOnlyPagesMixin:
    """An object's page is view-only (no Save buttons; a POST is refused with 403), while
    the list keeps the model's change permission, which its actions ask for.

    Saving a page of read-only fields would still write the whole row back as it was
    read, over anything a worker wrote meanwhile.
    """

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request)  # type: ignore[misc]
