"""The test live server (what browser tests drive) serves the page and its static files."""

from typing import Any

import httpx
import pytest

from payments.hosted_tokens import hosted_token
from tests.factories import PaymentFactory

from .helpers import BACK


@pytest.mark.django_db(transaction=True)
def test_the_live_server_serves_the_page_its_css_and_its_script(live_server: Any) -> None:
    payment = PaymentFactory(hosted=True, return_url=BACK)
    with httpx.Client(base_url=live_server.url) as browser:
        page = browser.get(f"/pay/{payment.id}", params={"t": hosted_token(payment)})
        css = browser.get("/static/payments/hosted/hosted.css")
        script = browser.get("/static/payments/hosted/hosted.js")

    assert page.status_code == 200
    assert css.status_code == 200
    assert css.headers["Content-Type"].startswith("text/css")
    assert script.status_code == 200
    assert "javascript" in script.headers["Content-Type"]
