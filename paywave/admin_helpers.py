"""Building blocks the apps' admins share: view-only pages, money in its currency."""

from collections.abc import Callable
from operator import attrgetter
from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from paywave.values.money_text import money_display


class ViewOnlyPagesMixin(admin.ModelAdmin):
    """An object's page is view-only (no Save buttons; a POST is refused with 403), while
    the list keeps the model's change permission, which its actions ask for.

    Saving a page of read-only fields would still write the whole row back as it was
    read, over anything a worker wrote meanwhile.
    """

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request)


def money_field(
    amount: str, currency: str = "currency", *, description: str = ""
) -> Callable[[Any, Any], str]:
    """An admin column or read-only field showing `obj.<amount>` (minor units) as money in
    `obj.<currency>` (a dotted path, e.g. "payment.currency"): "88.00 BRL"."""
    currency_of = attrgetter(currency)

    def show(model_admin: Any, obj: Any) -> str:
        return money_display(getattr(obj, amount), currency_of(obj))

    return admin.display(description=description or amount.replace("_", " "), ordering=amount)(show)
