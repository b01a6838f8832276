"""Every 4xx the API gives, DRF's and Django's alike, in the one error shape.

`{"error": {"type", "code", "message", "fields"}}` (API.md "Conventions"),
never a 500 for bad input, nothing stored by a refused request.
"""

import json
import time
import uuid
from datetime import timedelta
from typing import Any

import jwt
import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from payments.models import Payment, PaymentEvent, PaymentStatus
from paywave.api.auth import ClientTokenObtainSerializer
from paywave.api.idempotency import request_fingerprint
from paywave.models import ApiClient, IdempotencyKey
from tests.factories import ApiClientFactory, PaymentFactory, UserFactory
from tests.helpers import authenticated, card_body, pix_body, post_payment

pytestmark = pytest.mark.django_db

PAYMENTS = "/api/v1/payments"
TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/token/refresh"
PASSWORD = "secret-password"  # UserFactory's default
WWW_AUTHENTICATE = 'Bearer realm="paywave"'
UNKNOWN_ID = "3f0c9a6e-2b1d-4e8f-9a7c-5d6e7f8a9b0c"

INVALID = "invalid_request_error"
AUTHENTICATION = "authentication_error"
PERMISSION = "permission_error"
NOT_FOUND = "not_found_error"
CONFLICT = "conflict_error"
IDEMPOTENCY = "idempotency_error"
RATE_LIMIT = "rate_limit_error"


def assert_error(
    response: Any, status: int, error_type: str, code: str | None = None
) -> dict[str, Any]:
    """`status` with the documented error shape (and JSON content type); returns "error"."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"type", "code", "message", "fields"}
    assert error["type"] == error_type
    assert isinstance(error["code"], str)
    assert error["code"]
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["fields"], dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in error["fields"].items())
    if code is not None:
        assert error["code"] == code
    return error


def assert_nothing_stored() -> None:
    assert Payment.objects.count() == 0
    assert PaymentEvent.objects.count() == 0
    assert IdempotencyKey.objects.count() == 0


def raw_post(api: Any, url: str, data: bytes, content_type: str, **extra: Any) -> Any:
    return api.generic("POST", url, data=data, content_type=content_type, **extra)


def wait_for_fresh_window(period: int = 60, margin: float = 3.0) -> None:
    """Step off the end of a fixed throttle window so a short test stays in one window."""
    remaining = period - time.time() % period
    if remaining < margin:
        time.sleep(remaining + 0.1)


def access_token(user: Any) -> str:
    return str(ClientTokenObtainSerializer.get_token(user).access_token)


def refresh_token(user: Any) -> str:
    return str(ClientTokenObtainSerializer.get_token(user))


# --- 401 -------------------------------------------------------------------------

ENDPOINTS = [
    pytest.param("get", PAYMENTS, id="list"),
    pytest.param("post", PAYMENTS, id="create"),
    pytest.param("get", f"{PAYMENTS}/{UNKNOWN_ID}", id="retrieve"),
    pytest.param("patch", f"{PAYMENTS}/{UNKNOWN_ID}", id="update"),
    pytest.param("post", f"{PAYMENTS}/{UNKNOWN_ID}/cancel", id="cancel"),
    pytest.param("get", f"{PAYMENTS}/{UNKNOWN_ID}/qrcode.png", id="qrcode"),
]


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_401_without_a_token(method: str, url: str) -> None:
    response = getattr(APIClient(), method)(
        url, pix_body(), format="json", HTTP_IDEMPOTENCY_KEY="k"
    )

    assert_error(response, 401, AUTHENTICATION, "not_authenticated")
    assert response["WWW-Authenticate"] == WWW_AUTHENTICATE
    assert_nothing_stored()


def _foreign_token(user: Any) -> str:
    claims = ClientTokenObtainSerializer.get_token(user).access_token.payload
    return jwt.encode(dict(claims), "another-signing-key-of-at-least-32-bytes!", algorithm="HS256")


def _expired_token(user: Any) -> str:
    token = ClientTokenObtainSerializer.get_token(user).access_token
    token.set_exp(from_time=timezone.now() - timedelta(hours=1))
    return str(token)


BAD_TOKENS = [
    pytest.param(lambda user: "Bearer garbage", "token_not_valid", id="garbage"),
    pytest.param(lambda user: "Bearer a.b.c", "token_not_valid", id="three-garbage-parts"),
    pytest.param(lambda user: f"Bearer {_foreign_token(user)}", "token_not_valid", id="bad-sig"),
    pytest.param(lambda user: f"Bearer {_expired_token(user)}", "token_not_valid", id="expired"),
    pytest.param(
        lambda user: f"Bearer {refresh_token(user)}", "token_not_valid", id="refresh-as-access"
    ),
    pytest.param(lambda user: "Bearer", "bad_authorization_header", id="bearer-no-token"),
    pytest.param(lambda user: "Bearer a b", "bad_authorization_header", id="bearer-2-parts"),
    pytest.param(lambda user: "Basic dXNlcjpwYXNz", "not_authenticated", id="basic-scheme"),
]


@pytest.mark.parametrize(("header", "code"), BAD_TOKENS)
@pytest.mark.parametrize(("method", "url"), ENDPOINTS[:2])
def test_401_with_a_bad_token(
    wallet_app: Any, header: Any, code: str, method: str, url: str
) -> None:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header(wallet_app.user))

    response = getattr(api, method)(url, pix_body(), format="json", HTTP_IDEMPOTENCY_KEY="k")

    assert_error(response, 401, AUTHENTICATION, code)
    assert response["WWW-Authenticate"] == WWW_AUTHENTICATE
    assert_nothing_stored()


def test_the_good_token_of_the_bad_token_tests_is_accepted(wallet_app: Any) -> None:
    """The control: the same user's real access token passes."""
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(wallet_app.user)}")

    assert api.get(PAYMENTS).status_code == 200


# --- 403 -------------------------------------------------------------------------


@pytest.fixture
def staff_api(db: Any) -> APIClient:
    user = get_user_model().objects.create_user(
        username="ops", password="ops-password", is_staff=True
    )
    return authenticated(user)


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_403_for_a_staff_token_without_a_wallet_app(
    staff_api: APIClient, method: str, url: str
) -> None:
    response = getattr(staff_api, method)(url, pix_body(), format="json", HTTP_IDEMPOTENCY_KEY="k")

    error = assert_error(response, 403, PERMISSION, "permission_denied")
    assert "wallet app" in error["message"]
    assert "WWW-Authenticate" not in response
    assert_nothing_stored()


# --- 404 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("/nope", id="root-level"),
        pytest.param("/api/v1/nope", id="api-level"),
        pytest.param("/api/v2/payments", id="other-version"),
        pytest.param(f"{PAYMENTS}/", id="trailing-slash"),
        pytest.param(f"{PAYMENTS}/not-a-uuid", id="non-uuid-id"),
        pytest.param(f"{PAYMENTS}/12345", id="number-id"),
        pytest.param(f"{PAYMENTS}/{UNKNOWN_ID}/nope", id="unknown-sub-resource"),
    ],
)
@pytest.mark.parametrize("authenticated_client", [False, True], ids=["anonymous", "wallet-app"])
def test_404_for_an_unknown_url(api: APIClient, url: str, authenticated_client: bool) -> None:
    client = api if authenticated_client else Client()

    response = client.get(url)

    assert_error(response, 404, NOT_FOUND, "not_found")


def test_404_for_an_unknown_url_on_post_stores_nothing(api: APIClient) -> None:
    response = api.post(f"{PAYMENTS}/", pix_body(), format="json", HTTP_IDEMPOTENCY_KEY="k")

    assert_error(response, 404, NOT_FOUND, "not_found")
    assert_nothing_stored()


@pytest.fixture
def foreign_payment(db: Any) -> Payment:
    return PaymentFactory(client=ApiClientFactory())


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        pytest.param("get", "", id="retrieve"),
        pytest.param("patch", "", id="update"),
        pytest.param("put", "", id="replace"),
        pytest.param("post", "/cancel", id="cancel"),
        pytest.param("get", "/qrcode.png", id="qrcode"),
    ],
)
@pytest.mark.parametrize("whose", ["unknown", "another-apps"])
def test_404_for_an_unknown_or_foreign_payment(
    api: APIClient, foreign_payment: Payment, method: str, suffix: str, whose: str
) -> None:
    payment_id = uuid.uuid4() if whose == "unknown" else foreign_payment.id
    before = Payment.objects.values().get(pk=foreign_payment.pk)

    response = getattr(api, method)(
        f"{PAYMENTS}/{payment_id}{suffix}",
        {"description": "mine now", "metadata": {}},
        format="json",
    )

    assert_error(response, 404, NOT_FOUND, "payment_not_found")
    assert Payment.objects.values().get(pk=foreign_payment.pk) == before


def test_404_for_the_qr_code_of_a_card_payment(api: APIClient, wallet_app: Any) -> None:
    payment = PaymentFactory(client=wallet_app, card=True)

    response = api.get(f"{PAYMENTS}/{payment.id}/qrcode.png", HTTP_ACCEPT="image/png")

    assert_error(response, 404, NOT_FOUND, "qr_code_not_available")


# --- 405 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        pytest.param("delete", PAYMENTS, {"GET", "POST"}, id="delete-collection"),
        pytest.param("put", PAYMENTS, {"GET", "POST"}, id="put-collection"),
        pytest.param("delete", "{payment}", {"GET", "PATCH", "PUT"}, id="delete-payment"),
        pytest.param("post", "{payment}", {"GET", "PATCH", "PUT"}, id="post-payment"),
        pytest.param("get", "{payment}/cancel", {"POST"}, id="get-cancel"),
        pytest.param("post", "{payment}/qrcode.png", {"GET"}, id="post-qrcode"),
    ],
)
def test_405_for_a_method_the_resource_does_not_have(
    api: APIClient, wallet_app: Any, method: str, url: str, allowed: set[str]
) -> None:
    payment = PaymentFactory(client=wallet_app)
    before = Payment.objects.values().get(pk=payment.pk)

    response = getattr(api, method)(
        url.format(payment=f"{PAYMENTS}/{payment.id}"), pix_body(), format="json"
    )

    assert_error(response, 405, INVALID, "method_not_allowed")
    announced = {m.strip() for m in response["Allow"].split(",")}
    assert allowed <= announced
    assert method.upper() not in announced
    assert Payment.objects.count() == 1
    assert Payment.objects.values().get(pk=payment.pk) == before


def test_405_on_the_token_endpoint() -> None:
    response = APIClient().get(TOKEN)

    assert_error(response, 405, INVALID, "method_not_allowed")
    assert "POST" in response["Allow"]


# --- 406 -------------------------------------------------------------------------


def test_406_when_only_html_is_acceptable(api: APIClient) -> None:
    response = api.get(PAYMENTS, HTTP_ACCEPT="text/html")

    assert_error(response, 406, INVALID, "not_acceptable")


# --- 413 -------------------------------------------------------------------------


def _padded(body: dict[str, Any], size: int) -> bytes:
    raw = json.dumps(body).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


@pytest.mark.parametrize(
    ("url", "body"),
    [
        pytest.param(PAYMENTS, pix_body(), id="payments"),
        pytest.param(TOKEN, {"username": "u", "password": "p"}, id="token"),
        pytest.param("/nope", {}, id="unknown-url"),
    ],
)
def test_413_for_a_body_over_the_limit(api: APIClient, url: str, body: dict[str, Any]) -> None:
    data = _padded(body, django_settings.PAYWAVE_MAX_BODY_BYTES + 1)

    response = raw_post(api, url, data, "application/json", HTTP_IDEMPOTENCY_KEY="k")

    assert_error(response, 413, INVALID, "request_too_large")
    assert_nothing_stored()


def test_413_for_a_patch_over_the_limit(api: APIClient, wallet_app: Any) -> None:
    payment = PaymentFactory(client=wallet_app, description="kept")
    data = _padded({"description": "changed"}, django_settings.PAYWAVE_MAX_BODY_BYTES + 1)

    response = api.generic(
        "PATCH", f"{PAYMENTS}/{payment.id}", data=data, content_type="application/json"
    )

    assert_error(response, 413, INVALID, "request_too_large")
    payment.refresh_from_db()
    assert payment.description == "kept"


def test_a_body_of_exactly_the_limit_is_accepted(api: APIClient) -> None:
    data = _padded(pix_body(), django_settings.PAYWAVE_MAX_BODY_BYTES)

    response = raw_post(api, PAYMENTS, data, "application/json", HTTP_IDEMPOTENCY_KEY="k")

    assert response.status_code == 202, response.content
    assert Payment.objects.count() == 1


def test_400_for_a_content_length_that_is_not_a_number(api: APIClient) -> None:
    response = raw_post(
        api,
        PAYMENTS,
        json.dumps(pix_body()).encode(),
        "application/json",
        HTTP_IDEMPOTENCY_KEY="k",
        CONTENT_LENGTH="12abc",
    )

    assert_error(response, 400, INVALID, "bad_request")
    assert_nothing_stored()


# --- 415 -------------------------------------------------------------------------

NOT_JSON = [
    pytest.param(
        b"amount=1050&currency=BRL&method=pix", "application/x-www-form-urlencoded", id="form"
    ),
    pytest.param(b'{"amount": 1050}', "text/plain", id="text-plain-json-looking"),
    pytest.param(b"amount 1050", "text/plain; charset=utf-8", id="text-plain"),
    pytest.param(
        b'--B\r\nContent-Disposition: form-data; name="amount"\r\n\r\n1050\r\n--B--\r\n',
        "multipart/form-data; boundary=B",
        id="multipart",
    ),
    pytest.param(b"<payment><amount>1050</amount></payment>", "application/xml", id="xml"),
]


@pytest.mark.parametrize(("data", "content_type"), NOT_JSON)
def test_415_for_a_body_that_is_not_json(api: APIClient, data: bytes, content_type: str) -> None:
    response = raw_post(api, PAYMENTS, data, content_type, HTTP_IDEMPOTENCY_KEY="k")

    assert_error(response, 415, INVALID, "unsupported_media_type")
    assert_nothing_stored()


def test_415_for_a_body_without_a_content_type(wallet_app: Any) -> None:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {access_token(wallet_app.user)}")

    response = client.generic(
        "POST",
        PAYMENTS,
        data=json.dumps(pix_body()).encode(),
        CONTENT_TYPE="",
        HTTP_IDEMPOTENCY_KEY="k",
    )

    assert_error(response, 415, INVALID, "unsupported_media_type")
    assert_nothing_stored()


@pytest.mark.parametrize(("data", "content_type"), NOT_JSON[:2])
def test_415_on_patch_and_on_the_token_endpoint(
    api: APIClient, wallet_app: Any, data: bytes, content_type: str
) -> None:
    payment = PaymentFactory(client=wallet_app, description="kept")

    patched = api.generic("PATCH", f"{PAYMENTS}/{payment.id}", data=data, content_type=content_type)
    token = raw_post(APIClient(), TOKEN, data, content_type)

    assert_error(patched, 415, INVALID, "unsupported_media_type")
    assert_error(token, 415, INVALID, "unsupported_media_type")
    payment.refresh_from_db()
    assert payment.description == "kept"


# --- 400: JSON that cannot be parsed or stored -------------------------------------

VALID = json.dumps(pix_body())


def _nested(depth: int) -> bytes:
    inner = "[" * depth + "]" * depth
    return VALID.replace('"order": "A-1"', f'"order": {inner}').encode()


PARSE_ERRORS = [
    pytest.param(b'{"amount": 1050, "currency": ', id="truncated"),
    pytest.param(b"{'amount': 1050}", id="single-quotes"),
    pytest.param(VALID.encode() + b",", id="trailing-comma"),
    pytest.param(VALID.encode() + b"{}", id="two-documents"),
    pytest.param(VALID.replace("Top-up", "Top\\u0000up").encode(), id="nul-in-string"),
    pytest.param(VALID.replace('"order"', '"or\\u0000der"').encode(), id="nul-in-key"),
    pytest.param(VALID.replace("Top-up", "Top\\ud800up").encode(), id="lone-surrogate"),
    pytest.param(VALID.replace("Top-up", "Top\\udc00up").encode(), id="lone-low-surrogate"),
    pytest.param(VALID.replace("Ana Souza", "Ana \\ud800").encode(), id="lone-surrogate-name"),
    pytest.param(VALID.replace("Top-up", "Top\xed\xa0\x80up").encode("latin-1"), id="cesu-bytes"),
    pytest.param(VALID.replace("Top-up", "Top\xffup").encode("latin-1"), id="invalid-utf8"),
    pytest.param(b"[" * 1000 + b"]" * 1000, id="nested-1000-top-level"),
    pytest.param(_nested(1000), id="nested-1000-in-metadata"),
    pytest.param(_nested(30_000), id="nested-30000-recursion-error"),
    pytest.param(VALID.replace("1050", "1" + "0" * 5000).encode(), id="number-of-5001-digits"),
    pytest.param(b'{"amount": NaN, "currency": "BRL"}', id="nan"),
    pytest.param(VALID.replace("1050", "Infinity").encode(), id="infinity"),
    pytest.param(VALID.replace("1050", "-Infinity").encode(), id="minus-infinity"),
]


@pytest.mark.parametrize("data", PARSE_ERRORS)
def test_400_parse_error(api: APIClient, data: bytes) -> None:
    response = raw_post(api, PAYMENTS, data, "application/json", HTTP_IDEMPOTENCY_KEY="k")

    assert_error(response, 400, INVALID, "parse_error")
    assert_nothing_stored()


def test_the_parse_error_control_document_is_accepted(api: APIClient) -> None:
    response = raw_post(api, PAYMENTS, VALID.encode(), "application/json", HTTP_IDEMPOTENCY_KEY="k")

    assert response.status_code == 202, response.content


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"metadata": {"a": "b\\u0000"}}', id="nul-in-metadata"),
        pytest.param(b'{"description": "\\ud800"}', id="lone-surrogate"),
        pytest.param(b'{"description": ', id="truncated"),
        pytest.param(b'{"metadata": {"a": NaN}}', id="nan"),
    ],
)
def test_400_parse_error_on_patch_leaves_the_payment(
    api: APIClient, wallet_app: Any, data: bytes
) -> None:
    payment = PaymentFactory(client=wallet_app, description="kept", metadata={"k": "v"})

    response = api.generic(
        "PATCH", f"{PAYMENTS}/{payment.id}", data=data, content_type="application/json"
    )

    assert_error(response, 400, INVALID, "parse_error")
    payment.refresh_from_db()
    assert (payment.description, payment.metadata, payment.version) == ("kept", {"k": "v"}, 1)


def test_400_parse_error_on_the_token_endpoint() -> None:
    response = raw_post(APIClient(), TOKEN, b'{"username": "a\\u0000"}', "application/json")

    assert_error(response, 400, INVALID, "parse_error")


def test_400_for_a_bad_list_filter(api: APIClient) -> None:
    response = api.get(f"{PAYMENTS}?status=paid&created_after=yesterday")

    error = assert_error(response, 400, INVALID, "invalid_request")
    assert set(error["fields"]) == {"status", "created_after"}


def test_400_for_a_disallowed_host() -> None:
    """A Django-level 400 (handler400) in the same shape."""
    response = Client(HTTP_HOST="evil.example").get(PAYMENTS)

    assert_error(response, 400, INVALID, "bad_request")


# --- 409 and 422 ---------------------------------------------------------------------


def test_409_cancel_of_a_final_payment(api: APIClient, wallet_app: Any) -> None:
    payment = PaymentFactory(client=wallet_app, status=PaymentStatus.SUCCEEDED)

    response = api.post(f"{PAYMENTS}/{payment.id}/cancel")

    assert_error(response, 409, CONFLICT, "payment_state_conflict")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED


def test_422_idempotency_key_reused_with_another_body(api: APIClient) -> None:
    assert post_payment(api, pix_body(), key="k").status_code == 202

    response = post_payment(api, pix_body(amount=2000), key="k")

    assert_error(response, 422, IDEMPOTENCY, "idempotency_key_reused")
    assert Payment.objects.count() == 1


def test_409_idempotency_key_in_use(api: APIClient, wallet_app: Any) -> None:
    body = card_body()
    now = timezone.now()
    IdempotencyKey.objects.create(
        client=wallet_app,
        key="k",
        fingerprint=request_fingerprint(method="POST", path=PAYMENTS, data=body),
        locked_at=now,
        expires_at=now + timedelta(hours=1),
    )

    response = post_payment(api, body, key="k")

    assert_error(response, 409, IDEMPOTENCY, "idempotency_key_in_use")
    assert Payment.objects.count() == 0


# --- 429 -------------------------------------------------------------------------


def _assert_retry_after(response: Any, period: int = 60) -> None:
    assert 1 <= int(response["Retry-After"]) <= period


def test_429_when_the_client_rate_is_exceeded(
    api: APIClient, other_api: APIClient, settings: Any
) -> None:
    settings.PAYWAVE_THROTTLE_RATE = "3/min"
    wait_for_fresh_window()

    statuses = [api.get(PAYMENTS).status_code for _ in range(3)]
    throttled = post_payment(api, pix_body(), key="k")

    assert statuses == [200, 200, 200]
    assert_error(throttled, 429, RATE_LIMIT, "rate_limited")
    _assert_retry_after(throttled)
    assert_nothing_stored()
    assert_error(api.get(PAYMENTS), 429, RATE_LIMIT, "rate_limited")
    # Per client: another wallet app is not held back by this one.
    assert other_api.get(PAYMENTS).status_code == 200


def _token_request(username: str, password: str, **extra: Any) -> Any:
    return APIClient().post(
        TOKEN, {"username": username, "password": password}, format="json", **extra
    )


def test_429_on_the_token_endpoint(wallet_app: Any, settings: Any) -> None:
    settings.PAYWAVE_TOKEN_THROTTLE_RATE = "3/min"
    wait_for_fresh_window()
    username = wallet_app.user.username

    guesses = [_token_request(username, f"guess-{n}") for n in range(3)]
    throttled = _token_request(username, PASSWORD)
    refresh = APIClient().post(REFRESH, {"refresh": refresh_token(wallet_app.user)}, format="json")

    for guess in guesses:
        assert_error(guess, 401, AUTHENTICATION, "no_active_account")
    assert_error(throttled, 429, RATE_LIMIT, "rate_limited")
    _assert_retry_after(throttled)
    assert "access" not in throttled.json()
    assert_error(refresh, 429, RATE_LIMIT, "rate_limited")
    # Per source address: another address still gets its tokens.
    assert _token_request(username, PASSWORD, REMOTE_ADDR="10.1.2.3").status_code == 200


def test_token_throttle_is_not_bypassed_by_a_forged_forwarded_for(
    wallet_app: Any, settings: Any
) -> None:
    settings.PAYWAVE_TOKEN_THROTTLE_RATE = "3/min"
    wait_for_fresh_window()
    username = wallet_app.user.username

    for n in range(3):
        _token_request(username, f"guess-{n}", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
    forged = _token_request(username, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.7")

    assert_error(forged, 429, RATE_LIMIT, "rate_limited")


# --- The token endpoints -------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param(None, "wrong-password", id="wrong-password"),
        pytest.param("nobody", PASSWORD, id="unknown-user"),
        pytest.param(None, "", id="empty-password"),
    ],
)
def test_401_for_wrong_credentials(wallet_app: Any, username: str | None, password: str) -> None:
    response = _token_request(username or wallet_app.user.username, password)

    if password:
        assert_error(response, 401, AUTHENTICATION, "no_active_account")
        assert response["WWW-Authenticate"].startswith("Bearer ")
    else:  # a blank field is a 400 naming it, not a login attempt
        error = assert_error(response, 400, INVALID, "invalid_request")
        assert set(error["fields"]) == {"password"}
    assert "access" not in response.json()


def test_401_for_an_inactive_user(wallet_app: Any) -> None:
    get_user_model().objects.filter(pk=wallet_app.user.pk).update(is_active=False)

    response = _token_request(wallet_app.user.username, PASSWORD)

    assert_error(response, 401, AUTHENTICATION, "no_active_account")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        pytest.param({}, {"username", "password"}, id="empty"),
        pytest.param({"username": "u"}, {"password"}, id="no-password"),
        pytest.param([], set(), id="array"),
    ],
)
def test_400_for_a_malformed_token_request(body: Any, fields: set[str]) -> None:
    response = APIClient().post(TOKEN, body, format="json")

    error = assert_error(response, 400, INVALID)
    assert set(error["fields"]) == fields


def test_token_then_refresh_then_use(wallet_app: Any) -> None:
    pair = _token_request(wallet_app.user.username, PASSWORD)
    assert pair.status_code == 200, pair.content
    assert set(pair.json()) == {"access", "refresh"}

    refreshed = APIClient().post(REFRESH, {"refresh": pair.json()["refresh"]}, format="json")

    assert refreshed.status_code == 200, refreshed.content
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {refreshed.json()['access']}")
    assert api.get(PAYMENTS).status_code == 200


def _delete_wallet_app(wallet_app: Any) -> None:
    user = wallet_app.user
    ApiClient.objects.filter(pk=wallet_app.pk).delete()
    user.delete()


@pytest.mark.parametrize(
    ("token", "change", "code"),
    [
        pytest.param("refresh", _delete_wallet_app, "no_active_account", id="deleted-user"),
        pytest.param(
            "refresh",
            lambda app: get_user_model().objects.filter(pk=app.user.pk).update(is_active=False),
            "no_active_account",
            id="inactive-user",
        ),
        pytest.param("garbage", None, "token_not_valid", id="garbage"),
        pytest.param("access", None, "token_not_valid", id="access-as-refresh"),
    ],
)
def test_401_for_a_refresh_token_that_cannot_be_used(
    wallet_app: Any, token: str, change: Any, code: str
) -> None:
    value = {
        "refresh": refresh_token(wallet_app.user),
        "access": access_token(wallet_app.user),
        "garbage": "not.a.jwt",
    }[token]
    if change is not None:
        change(wallet_app)
    client = APIClient()
    client.raise_request_exception = False  # a 500 must show as a 500, not as an exception

    response = client.post(REFRESH, {"refresh": value}, format="json")

    assert_error(response, 401, AUTHENTICATION, code)
    assert "access" not in response.json()


@pytest.mark.django_db(transaction=True)
def test_access_token_of_a_deleted_wallet_app_cannot_create_payments() -> None:
    """An access token outlives its wallet app: it must not reach the database as a 500."""
    app = ApiClientFactory(user=UserFactory(username="gone"))
    api = authenticated(app.user)
    _delete_wallet_app(app)
    api.raise_request_exception = False

    response = post_payment(api, card_body(), key="k")

    assert_error(response, 401, AUTHENTICATION)
    assert Payment.objects.count() == 0
