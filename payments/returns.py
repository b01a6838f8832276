"""PayPal sends the payer's browser back here: GET /paypal/return/<id> and /paypal/cancel/<id>.

PayPal adds `token=<order id>` (and `PayerID` on a return). Only a browser that holds
the payment's order id is taken at its word, and its word only starts a job that reads
the order back from PayPal: a forged return can make PayWave look sooner, never move a
payment anywhere PayPal does not say. Then the payer goes on to the wallet app.
"""

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_safe

from paywave.api.throttling import CallbackRateThrottle

from .approvals import waits_for_approval
from .dispatch import payer_returned_dispatch
from .models import Payment, PaymentMethod
from .redirects import wallet_app_url

APPROVED = "approved"
CANCELLED = "cancelled"


@require_safe
def paypal_return(request: HttpRequest, payment_id: str) -> HttpResponse:
    return _payer_back(request, payment_id, APPROVED)


@require_safe
def paypal_cancel(request: HttpRequest, payment_id: str) -> HttpResponse:
    return _payer_back(request, payment_id, CANCELLED)


def _payer_back(request: HttpRequest, payment_id: str, outcome: str) -> HttpResponse:
    throttle = CallbackRateThrottle()
    if not throttle.allow_request(request, None):
        return HttpResponse("Too many requests; try again later.", status=429,
                            content_type="text/plain; charset=utf-8")  # fmt: skip
    payment = Payment.objects.filter(pk=payment_id, method=PaymentMethod.PAYPAL).first()
    token = request.GET.get("token", "")
    if (
        payment is None
        or not payment.gateway_reference
        or not constant_time_compare(token, payment.gateway_reference)
    ):
        return HttpResponse(
            "This PayPal return does not belong to a payment.",
            status=404,
            content_type="text/plain; charset=utf-8",
        )
    if waits_for_approval(payment):
        payer_returned_dispatch(payment.id, outcome)
    back_to = (payment.cancel_url if outcome == CANCELLED else "") or payment.return_url
    response = HttpResponseRedirect(wallet_app_url(back_to, payment, outcome))
    response.status_code = 303
    return response
