"""The payment's status as the hosted page tells its payer (translated: payments/locale)."""

from django.utils.functional import Promise
from django.utils.translation import pgettext_lazy

from .models import PaymentStatus as S

_LABELS: dict[str, Promise] = {
    S.PENDING: pgettext_lazy("payment status", "Preparing your payment"),
    S.PROCESSING: pgettext_lazy("payment status", "Processing"),
    S.REQUIRES_ACTION: pgettext_lazy("payment status", "Waiting for your confirmation"),
    S.AWAITING_PAYMENT: pgettext_lazy("payment status", "Waiting for payment"),
    S.SUCCEEDED: pgettext_lazy("payment status", "Paid"),
    S.PARTIALLY_REFUNDED: pgettext_lazy("payment status", "Paid"),
    S.REFUNDED: pgettext_lazy("payment status", "Paid and refunded"),
    S.FAILED: pgettext_lazy("payment status", "Failed"),
    S.CANCELED: pgettext_lazy("payment status", "Canceled"),
    S.EXPIRED: pgettext_lazy("payment status", "Expired"),
}


def status_label(status: str) -> str:
    return str(_LABELS.get(status, status))
