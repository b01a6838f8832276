"""The hosted payment page (/pay/<id>?t=<token>) in a real browser, as a payer sees it,
on a desktop and on a phone.

A wallet app creates a hosted payment through the API and sends its payer to
`next_action.url`, on the live server. The payments are real: charged at the gateway
simulators through the engine (`drive` runs the worker's steps in process), paid there
(a PIX paid in the "bank app", a 3-D Secure challenge completed or failed on the
simulated bank's page), their callbacks posted to PayWave and processed in process. The
jobs PayWave would publish are recorded instead of sent to RabbitMQ.

The page's own timers (hosted.js: a status poll every 1.5 s, the way back to the wallet
app 4 s after the outcome) run on Playwright's clock, paused: a test moves it on by one
poll (`Payer.poll`) or by the redirect's delay (`Payer.wait_for_redirect`), so each state
stays on screen for as long as the test looks at it, and nothing is waited for by sleeping.

Every state is checked (Screen.check): its CSS loaded, no script error nor CSP refusal,
no serious or critical axe-core violation (the hosted page has no known findings); with
PAYWAVE_SCREENSHOTS=1 the main ones are photographed into docs/screenshots/.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
from django.conf import LazySettings
from django.utils import timezone
from playwright.sync_api import Locator, Page, Response, expect

from payments.hosted_tokens import hosted_token, hosted_url
from payments.models import Payment
from payments.models import PaymentStatus as S
from tests.factories import ApiClientFactory
from tests.gateway_fixtures import drive
from tests.helpers import pix_body, token_for
from tests.payments.callbacks.helpers import pay_pix, receive_and_process

from .conftest import HOSTED_CSS, Screen
from .urls import WALLET_APP_PATH

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.django_db(transaction=True)]

MERCHANT = "Café Aurora"
OTHER_MERCHANT = "Livraria Boa Vista"
# hosted.js: POLL_MS and REDIRECT_MS.
POLL_MS = 1500
REDIRECT_MS = 4000


@dataclass(frozen=True)
class Words:
    """What the page says in one language (payments/locale)."""

    lang: str
    amount: str  # of 10.50 BRL
    waiting: str
    paid: str
    received: str
    copy: str
    code_label: str
    qr_alt: str


PORTUGUESE = Words(
    lang="pt-BR",
    amount="R$ 10,50",
    waiting="Aguardando pagamento",
    paid="Pago",
    received="Pagamento recebido. Obrigado!",
    copy="Copiar código",
    code_label="Código PIX copia e cola",
    qr_alt="QR code PIX deste pagamento",
)
ENGLISH = Words(
    lang="en",
    amount="R$10.50",
    waiting="Waiting for payment",
    paid="Paid",
    received="Payment received. Thank you!",
    copy="Copy code",
    code_label="PIX copy-and-paste code",
    qr_alt="PIX QR code for this payment",
)


# --- the live server as the payer reaches it, and the wallet app ---------------------


@pytest.fixture
def site(settings: LazySettings, live_server: Any, gateways: Any) -> str:
    """The live server: the hosted page's links (PAYWAVE_PUBLIC_URL, the 3-D Secure
    return page given to the gateway among them) point at it, and it also serves the
    wallet app's return page (tests/browser/urls.py)."""
    settings.PAYWAVE_PUBLIC_URL = live_server.url
    settings.ROOT_URLCONF = "tests.browser.urls"
    return str(live_server.url)


@pytest.fixture
def back(site: str) -> str:
    """The wallet app's return_url."""
    return f"{site}/{WALLET_APP_PATH}?order=1001"


def back_with(back: str, payment: Payment, status: str) -> str:
    return f"{back}&payment_id={payment.id}&status={status}"


@pytest.fixture
def merchant(db: Any) -> Any:
    return ApiClientFactory(name=MERCHANT)


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """The jobs PayWave publishes (a new payment's, a received callback's), kept here
    instead of sent to the broker: the test runs the worker's part in process."""
    jobs: list[tuple[str, str]] = []
    monkeypatch.setattr(
        "payments.services.payment_dispatch",
        lambda payment_id, token, countdown=0: jobs.append(("payment", str(payment_id))) or True,
    )
    monkeypatch.setattr(
        "gateways.callbacks._publishers",
        [lambda callback_id, countdown=0: jobs.append(("callback", str(callback_id)))],
    )
    return jobs


@pytest.fixture
def hosted_pix(
    pix_payment: Callable[..., Payment], merchant: Any, back: str, published: Any
) -> Callable[..., Payment]:
    """A hosted PIX payment of 10.50 BRL to MERCHANT, its code ready to be paid."""

    def make(**fields: Any) -> Payment:
        payment = pix_payment(**{"client": merchant, "hosted": True, "return_url": back, **fields})
        return drive(payment).payment

    return make


def create_hosted_pix_through_the_api(site: str, wallet_app: Any, back: str) -> dict[str, Any]:
    """POST /api/v1/payments on the live server, as the wallet app does."""
    headers = {
        "Authorization": f"Bearer {token_for(wallet_app.user)}",
        "Idempotency-Key": uuid4().hex,
    }
    with httpx.Client(base_url=site, headers=headers, timeout=10) as http:
        answer = http.post("/api/v1/payments", json=pix_body(hosted=True, return_url=back))
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


# --- the payer's browser ---------------------------------------------------------------


@pytest.fixture(params=["desktop", "phone"])
def device(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Payer:
    """The payer's page on one screen, its clock paused (the module's docstring)."""

    def __init__(self, screen: Screen) -> None:
        self.screen = screen
        self.page: Page = screen.page

    def open(self, url: str) -> Response:
        response = self.page.goto(url)
        assert response is not None
        return response

    def poll(self) -> None:
        """Time for one status poll (and what its answer makes the page do)."""
        self.page.clock.run_for(POLL_MS)

    def wait_for_redirect(self) -> None:
        """Time for the page to send the payer back to the wallet app."""
        self.page.clock.run_for(REDIRECT_MS)

    def check(self, name: str, *, photo: bool = False) -> None:
        """Screen.check (CSS, axe, the screenshot), plus: no script error nor CSP refusal
        in the console, no sideways scrolling, and buttons a finger can hit (44 px)."""
        self.screen.check(name, photo=photo, full_page=True)  # a short page: all of it
        assert self.screen.console_errors == [], self.screen.console_errors
        overflow = self.page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name}: {overflow} px wider than the {self.screen.name} screen"
        for button in self.page.locator(".button:visible").all():
            box = button.bounding_box()
            assert box is not None, (name, button.text_content())
            assert box["height"] >= 44, (name, button.text_content(), box)

    def status(self) -> Locator:
        return self.page.locator("#status-text")


@pytest.fixture
def payer_on(open_screen: Callable[..., Screen], device: str) -> Callable[..., Payer]:
    """A payer's browser on `device`, in pt-BR unless another `locale` is given."""

    def open_(locale: str = "pt-BR", **options: Any) -> Payer:
        screen = open_screen(device, stylesheet=HOSTED_CSS, locale=locale, **options)
        screen.page.clock.install()
        screen.page.clock.pause_at(datetime.now(UTC) + timedelta(seconds=1))
        return Payer(screen)

    return open_


def expect_image_loaded(page: Page, selector: str) -> None:
    page.wait_for_function(
        """(selector) => {
            const image = document.querySelector(selector);
            return image && image.complete && image.naturalWidth > 0;
        }""",
        arg=selector,
        polling=100,
    )


# --- PIX -------------------------------------------------------------------------------


def test_a_payer_pays_a_hosted_pix_and_goes_back_to_the_wallet_app(
    payer_on: Callable[..., Payer],
    site: str,
    back: str,
    merchant: Any,
    capture: Any,
    published: list[tuple[str, str]],
) -> None:
    document = create_hosted_pix_through_the_api(site, merchant, back)
    url = document["next_action"]["url"]
    assert url.startswith(f"{site}/pay/{document['id']}?t=")
    payer = payer_on()
    page = payer.page

    # The wallet app sends the payer at once: the worker has not asked for the code yet.
    payer.open(url)
    expect(page.locator("#waiting")).to_be_visible()
    expect(payer.status()).to_have_text("Preparando seu pagamento")
    payer.check("hosted-pix-preparing")

    assert published == [("payment", document["id"])]
    payment = drive(Payment.objects.get(pk=document["id"])).payment  # the worker's part
    assert payment.status == S.AWAITING_PAYMENT
    payer.poll()  # the page sees the new status and reloads: the server draws the code

    expect(page.locator("#pix")).to_be_visible()
    expect(page.get_by_role("img", name=PORTUGUESE.qr_alt)).to_be_visible()
    expect_image_loaded(page, "#pix-qr")
    expect(page.get_by_label(PORTUGUESE.code_label)).to_have_value(payment.pix_qr_code)
    expect(page.locator("#amount")).to_have_text(PORTUGUESE.amount)
    expect(page.locator("#merchant")).to_have_text(MERCHANT)
    expect(payer.status()).to_have_text(PORTUGUESE.waiting)
    expect(page.locator("#pix-countdown")).to_have_text(re.compile(r"^[0-5]\d:[0-5]\d$"))
    payer.check("hosted-pix-waiting", photo=True)

    # The payer pays in the bank's app; its callback reaches PayWave and is processed.
    callback = receive_and_process(payment.gateway, pay_pix(capture, payment))
    assert ("callback", str(callback.pk)) in published
    payer.poll()

    expect(payer.status()).to_have_text(PORTUGUESE.paid)
    expect(page.locator("#outcome-heading")).to_have_text(PORTUGUESE.received)
    expect(page.locator("#pix")).to_be_hidden()
    done = back_with(back, payment, S.SUCCEEDED)
    expect(page.locator("#return-link")).to_have_attribute("href", done)
    payer.check("hosted-pix-paid", photo=True)

    payer.wait_for_redirect()
    expect(page).to_have_url(done)
    expect(page.get_by_role("heading", name="Back at the wallet app")).to_be_visible()
    expect(page.locator("#referer")).to_have_text("")  # the token never leaves in a Referer


def test_an_expired_pix_shows_expired_and_goes_back_to_the_wallet_app(
    payer_on: Callable[..., Payer], hosted_pix: Callable[..., Payment], back: str
) -> None:
    payment = hosted_pix()
    # Its code ran out a second ago; the expiry sweep has not marked the payment yet.
    Payment.objects.filter(pk=payment.pk).update(
        pix_expires_at=timezone.now() - timedelta(seconds=1)
    )
    payer = payer_on()
    page = payer.page

    payer.open(hosted_url(payment))

    expect(payer.status()).to_have_text("Expirado")
    expect(page.locator("#outcome-heading")).to_have_text("Este código PIX expirou.")
    expect(page.locator("#pix-qr")).to_have_count(0)
    expect(page.locator("#copy-button")).to_have_count(0)
    assert payment.pix_qr_code not in page.content()
    gone = back_with(back, payment, S.EXPIRED)
    expect(page.get_by_role("link", name="Voltar à loja")).to_have_attribute("href", gone)
    payer.check("hosted-pix-expired", photo=True)

    payer.wait_for_redirect()
    expect(page).to_have_url(gone)


def test_the_copy_button_is_reached_with_tab_and_copies_the_code_with_enter(
    payer_on: Callable[..., Payer], hosted_pix: Callable[..., Payment], site: str
) -> None:
    payment = hosted_pix()
    payer = payer_on()
    page = payer.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site)
    payer.open(hosted_url(payment))
    expect(page.locator("#pix")).to_be_visible()

    reached = []
    for _ in range(5):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("() => document.activeElement.id"))
        if reached[-1] == "copy-button":
            break
    assert reached == ["pix-code", "copy-button"]  # the code, then its button
    button = page.get_by_role("button", name=PORTUGUESE.copy)
    expect(button).to_be_focused()
    expect(button).to_have_css("outline-style", "solid")  # focus is visible

    page.keyboard.press("Enter")

    expect(page.locator("#copy-feedback")).to_have_text("Código copiado")
    assert page.evaluate("() => navigator.clipboard.readText()") == payment.pix_qr_code
    payer.check("hosted-pix-copied")


def test_the_page_speaks_portuguese_unless_the_browser_prefers_english(
    payer_on: Callable[..., Payer], hosted_pix: Callable[..., Payment]
) -> None:
    url = hosted_url(hosted_pix())

    # A browser asking for neither language (German) gets pt-BR; an English one English.
    for locale, words in (("en-US", ENGLISH), ("de-DE", PORTUGUESE)):
        payer = payer_on(locale=locale)
        page = payer.page
        response = payer.open(url)
        assert response.headers["content-language"] == words.lang
        expect(page.locator("html")).to_have_attribute("lang", words.lang)
        expect(page.locator("#amount")).to_have_text(words.amount)
        expect(payer.status()).to_have_text(words.waiting)
        expect(page.get_by_role("img", name=words.qr_alt)).to_be_visible()
        expect(page.get_by_label(words.code_label)).to_be_visible()
        expect(page.get_by_role("button", name=words.copy)).to_be_visible()
        payer.check(f"hosted-pix-{locale}")

    # The longer (Portuguese) page on the narrowest screen WCAG asks to reflow to (320 CSS
    # px): one column, nothing wider than the screen, the copy button across it.
    page.set_viewport_size({"width": 320, "height": 640})
    payer.check("hosted-pix-320px")
    button = page.get_by_role("button", name=PORTUGUESE.copy).bounding_box()
    assert button is not None
    # The whole width but the body's padding (8 px), the sheet's border and padding (1, 16).
    assert button["width"] >= 320 - 2 * (8 + 1 + 16) - 1


# --- card with 3-D Secure --------------------------------------------------------------


@pytest.mark.parametrize(
    ("button", "status", "label", "outcome"),
    [
        ("Complete", S.SUCCEEDED, "Pago", "Pagamento recebido. Obrigado!"),
        ("Fail", S.FAILED, "Não aprovado", "Este pagamento não foi concluído."),
    ],
    ids=["completed", "failed"],
)
def test_a_card_payer_confirms_with_the_bank_and_comes_back_to_the_outcome(
    payer_on: Callable[..., Payer],
    card_payment: Callable[..., Payment],
    merchant: Any,
    back: str,
    capture: Any,
    published: list[tuple[str, str]],
    button: str,
    status: str,
    label: str,
    outcome: str,
) -> None:
    payment = drive(
        card_payment(
            "pm_card_authenticationRequired",
            client=merchant,
            amount=8800,
            hosted=True,
            return_url=back,
        )
    ).payment
    assert payment.status == S.REQUIRES_ACTION
    challenge = payment.next_action["redirect_to_url"]["url"]
    payer = payer_on()
    page = payer.page

    payer.open(hosted_url(payment))
    expect(page.locator("#amount")).to_have_text("R$ 88,00")
    expect(page.locator("#merchant")).to_have_text(MERCHANT)
    expect(payer.status()).to_have_text("Aguardando sua confirmação")
    expect(page.locator("#action-heading")).to_have_text(
        "Seu banco pede que você confirme este pagamento"
    )
    to_the_bank = page.get_by_role("link", name="Confirmar com seu banco")
    expect(to_the_bank).to_have_attribute("href", challenge)
    payer.check("hosted-card-challenge", photo=status == S.SUCCEEDED)

    with page.expect_request(challenge) as request:
        to_the_bank.click()
    assert "referer" not in request.value.headers  # rel=noreferrer: no token at the bank
    expect(page.get_by_role("heading", name=re.compile("3-D Secure"))).to_be_visible()
    page.get_by_role("button", name=button, exact=True).click()  # the bank's page

    # The bank sends the payer back to PayWave's return page, before PayWave hears of it.
    expect(page).to_have_url(re.compile(rf"/pay/{payment.id}/return\?t="))
    expect(page.locator("#action-heading")).to_have_text("Confirmando seu pagamento…")
    # The challenge was answered: it is not offered again while the answer is on its way.
    expect(page.locator("#action-link")).to_have_count(0)
    payer.check(f"hosted-card-returned-{status}")

    delivery = capture.http.get("/callbacks/deliveries", params={"gateway": "stripe"}).json()[-1]
    receive_and_process("stripe", delivery)
    payer.poll()

    expect(payer.status()).to_have_text(label)
    expect(page.locator("#outcome-heading")).to_have_text(outcome)
    expect(page.locator("#action")).to_be_hidden()
    payer.check(f"hosted-card-{status}")
    payment.refresh_from_db()
    assert payment.status == status

    payer.wait_for_redirect()
    expect(page).to_have_url(back_with(back, payment, status))


# --- links that open nothing -------------------------------------------------------------


def test_a_wrong_or_expired_link_shows_an_error_page_and_no_payments_data(
    payer_on: Callable[..., Payer], hosted_pix: Callable[..., Payment], back: str
) -> None:
    mine = hosted_pix()
    other = hosted_pix(client=ApiClientFactory(name=OTHER_MERCHANT), amount=7777)
    old = hosted_pix(amount=4321)
    Payment.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    old.refresh_from_db()
    value, signature = hosted_token(mine).rsplit(":", 1)
    tampered = f"{value}:{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
    never_shown = [
        *(MERCHANT, OTHER_MERCHANT, "10,50", "77,77", "43,21", "10.50", "77.77", "43.21"),
        *(p.pix_qr_code for p in (mine, other, old)),
        *(str(p.id) for p in (mine, other, old)),
    ]
    payer = payer_on()
    page = payer.page

    links = [
        # what, path, query, the answer's status, the page's title
        ("tampered", f"/pay/{mine.id}", {"t": tampered}, 403, "Link de pagamento inválido"),
        ("another's", f"/pay/{mine.id}", {"t": hosted_token(other)}, 403, "inválido"),
        ("no token", f"/pay/{mine.id}", {}, 403, "Link de pagamento inválido"),
        ("expired", f"/pay/{old.id}", {"t": hosted_token(old)}, 410, "Link de pagamento expirado"),
    ]
    for what, path, query, answer, title in links:
        response = payer.open(f"{path}?{httpx.QueryParams(query)}" if query else path)
        assert response.status == answer, what
        expect(page.locator("#error-title")).to_contain_text(title)
        expect(page.get_by_role("alert")).to_be_visible()
        html = page.content()
        assert [text for text in never_shown if text in html] == [], what
        expect(page.locator("#amount, #merchant, #pix, #action")).to_have_count(0)
        payer.check(
            "hosted-error" if what == "tampered" else f"hosted-error-{what}",
            photo=what == "tampered",
        )
        # Its poll and its QR image answer nothing either.
        for suffix in ("/status", "/qrcode.png"):
            other_answer = page.request.get(f"{path}{suffix}", params=query or None)
            assert other_answer.status == answer, (what, suffix)
            body = other_answer.text()
            assert [text for text in never_shown if text in body] == [], (what, suffix)
