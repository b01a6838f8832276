"""The hosted payment page (API.md "Hosted payment page"): plain Django views, no login.

The `t` query parameter (payments/hosted_tokens.py) is the payer's only credential. Every
answer, error pages included, is in the payer's language (English when the browser
prefers it over Portuguese, else pt-BR) and carries a strict Content-Security-Policy,
`Referrer-Policy: no-referrer` (the token never leaves in a Referer) and `no-store`.
"""

from collections.abc import Callable
from datetime import datetime
from functools import wraps
from uuid import UUID

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone, translation
from django.utils.translation.trans_real import parse_accept_lang_header
from django.views.decorators.http import require_safe

from paywave.values.money_text import money_for_payer

from .hosted import hosted_page_get, hosted_payment_get, hosted_status_get
from .hosted_labels import status_label
from .hosted_tokens import HostedLinkExpired, HostedLinkInvalid, hosted_token
from .models import Payment
from .qrcode import qr_code_png

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
ENGLISH, PORTUGUESE = "en", "pt-br"
HTML_LANG = {ENGLISH: "en", PORTUGUESE: "pt-BR"}

View = Callable[..., HttpResponse]


def payer_language(request: HttpRequest) -> str:
    """English if the browser prefers it to Portuguese, else pt-BR."""
    for code, _quality in parse_accept_lang_header(request.headers.get("Accept-Language", "")):
        if code == "en" or code.startswith("en-"):
            return ENGLISH
        if code == "pt" or code.startswith("pt-"):
            return PORTUGUESE
    return PORTUGUESE


def hosted_view(*, json_errors: bool = False) -> Callable[[View], View]:
    """GET only; the payer's language; the token's errors as pages (as JSON for a script's
    poll, `json_errors`); the pages' headers."""

    def decorate(view: View) -> View:
        @require_safe
        @wraps(view)
        def wrapper(request: HttpRequest, payment_id: UUID) -> HttpResponse:
            language = payer_language(request)
            with translation.override(language):
                try:
                    response = view(request, payment_id, request.GET.get("t", ""))
                except HostedLinkExpired:
                    response = _error(request, language, 410, expired=True, json=json_errors)
                except HostedLinkInvalid:
                    response = _error(request, language, 403, expired=False, json=json_errors)
            response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
            response["Referrer-Policy"] = "no-referrer"
            response["Cache-Control"] = "no-store"
            response["Content-Language"] = HTML_LANG[language]
            response["Vary"] = "Accept-Language"
            return response

        return wrapper

    return decorate


@hosted_view()
def hosted_page(request: HttpRequest, payment_id: UUID, token: str) -> HttpResponse:
    return _page(request, hosted_payment_get(payment_id, token), returned=False)


@hosted_view()
def hosted_return(request: HttpRequest, payment_id: UUID, token: str) -> HttpResponse:
    """Where a hosted card payment's 3-D Secure page sends the payer back.

    The gateway adds its own query (`payment_intent`, `redirect_status`); it is not read:
    the outcome is the payment's status, which its callback sets.
    """
    return _page(request, hosted_payment_get(payment_id, token), returned=True)


@hosted_view(json_errors=True)
def hosted_status(request: HttpRequest, payment_id: UUID, token: str) -> HttpResponse:
    state = hosted_status_get(payment_id, token)
    return JsonResponse({**state.as_json(), "label": status_label(state.status)})


@hosted_view()
def hosted_qrcode(request: HttpRequest, payment_id: UUID, token: str) -> HttpResponse:
    page = hosted_page_get(hosted_payment_get(payment_id, token))
    if page.pix_code is None:
        return HttpResponse(status=404)
    return HttpResponse(qr_code_png(page.pix_code), content_type="image/png")


def _page(request: HttpRequest, payment: Payment, *, returned: bool) -> HttpResponse:
    page = hosted_page_get(payment)
    language = translation.get_language() or PORTUGUESE
    return render(
        request,
        "payments/hosted/page.html",
        {
            "page": page,
            "payment": payment,
            "token": hosted_token(payment),
            "returned": returned,
            "html_lang": HTML_LANG.get(language, "pt-BR"),
            "amount": money_for_payer(payment.amount, payment.currency, language),
            "status_label": status_label(page.state.status),
            "expires_epoch": int(page.pix_expires_at.timestamp()) if page.pix_expires_at else None,
            "remaining": _time_left(page.pix_expires_at),
        },
    )


def _time_left(moment: datetime | None) -> str:
    """'59:58' until `moment`, as the countdown shows it before the script takes over."""
    if moment is None:
        return ""
    seconds = max(0, int((moment - timezone.now()).total_seconds()))
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def _error(
    request: HttpRequest, language: str, status: int, *, expired: bool, json: bool
) -> HttpResponse:
    if json:
        code = "link_expired" if expired else "link_invalid"
        return JsonResponse({"error": {"code": code}}, status=status)
    return render(
        request,
        "payments/hosted/error.html",
        {"expired": expired, "html_lang": HTML_LANG[language]},
        status=status,
    )
