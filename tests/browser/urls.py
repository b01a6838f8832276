"""The live server's URLs in the hosted page's browser tests: PayWave's own, plus a page
standing for the wallet app's return_url, which the payer lands on at the end.

Used as ROOT_URLCONF (tests/browser/test_hosted_page.py); it shows what it received (its
query, and the Referer, which the hosted page's no-referrer policy must keep empty).
"""

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils.html import escape

from config import urls as paywave_urls

WALLET_APP_PATH = "wallet/done"


def wallet_app_return(request: HttpRequest) -> HttpResponse:
    return HttpResponse(
        '<!doctype html><html lang="en"><title>Wallet app</title>'
        "<h1>Back at the wallet app</h1>"
        f'<p id="query">{escape(request.META.get("QUERY_STRING", ""))}</p>'
        f'<p id="referer">{escape(request.headers.get("Referer", ""))}</p></html>'
    )


urlpatterns = [
    path(WALLET_APP_PATH, wallet_app_return, name="test-wallet-app-return"),
    *paywave_urls.urlpatterns,
]

handler400 = paywave_urls.handler400
handler403 = paywave_urls.handler403
handler404 = paywave_urls.handler404
handler500 = paywave_urls.handler500
