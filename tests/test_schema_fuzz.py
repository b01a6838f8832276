"""Property-based tests of the whole API against its own OpenAPI schema (schemathesis).

The schema is the one the app serves at /api/schema/; the requests go over HTTP to a
live server (pytest-django's `live_server`) as a wallet app with some payments of its
own, with every check schemathesis has (`--checks all`): each answer must not be a
5xx and must match the schema (status code, content type, body, headers), data the
schema forbids must be refused and data it allows accepted, a missing required header
or credentials must be refused, an undeclared method answered 405 with Allow. Two
tests: every operation alone (the examples, coverage and fuzzing phases, positive and
negative), and the stateful phase, which chains operations through the links the
schema implies (a created payment is read, updated, cancelled, refunded...) and checks
that what was created can be read and what was deleted is gone.

Random requests almost never pass the business rules the schema cannot state
(CPF check digits, ids that exist), so in the fuzzing phase about half of the valid
cases get values that reach the success paths: a payment body that passes
validation, the id of a seeded payment, the seeded app's credentials or refresh
token, an edited pagination cursor. What a negative case made invalid is never
touched.
"""

import base64
import hashlib
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlencode

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.core.wsgi import get_wsgi_application
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyStrategyDefinition
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.core import NOT_SET
from schemathesis.core.failures import FailureGroup, ServerError
from schemathesis.core.parameters import ParameterLocation
from werkzeug.test import Client as WsgiClient

from notifications.addresses import webhook_url_problem
from payments.models import (
    AttemptOutcome,
    Payment,
    PaymentAttempt,
    PaymentMethod,
    PaymentStatus,
)
from payments.refunds import refundable_amount
from payments.serializers import validate_return_url
from paywave.values.cards import looks_like_card_number
from paywave.values.countries import COUNTRY_CODES
from tests.factories import ApiClientFactory, PaymentFactory
from tests.helpers import token_for

# Django's WSGI app itself: config.wsgi would also run the start-up system checks, which
# read the database, and collecting this module may not touch it.
application = get_wsgi_application()

# Cases per operation in the fuzzing phase; the coverage phase adds its own (bounded) set.
MAX_EXAMPLES = 100
# Stateful scenarios, and calls in each.
MAX_SCENARIOS = 60
MAX_STEPS = 8

USERNAME = "schema-fuzz-app"
PASSWORD = "schema-fuzz-password"

# The seeded wallet app's payments, by the state they show off.
PIX_AWAITING = uuid.UUID("5c1e0000-0000-4000-8000-000000000001")
PIX_PENDING = uuid.UUID("5c1e0000-0000-4000-8000-000000000002")
CARD_SUCCEEDED = uuid.UUID("5c1e0000-0000-4000-8000-000000000003")
CARD_REQUIRES_ACTION = uuid.UUID("5c1e0000-0000-4000-8000-000000000004")
CARD_FAILED = uuid.UUID("5c1e0000-0000-4000-8000-000000000005")
OTHER_APPS = uuid.UUID("5c1e0000-0000-4000-8000-000000000006")
SEEDED_IDS = [
    PIX_AWAITING,
    PIX_PENDING,
    CARD_SUCCEEDED,
    CARD_REQUIRES_ACTION,
    CARD_FAILED,
    OTHER_APPS,
]


def _served_schema() -> dict[str, Any]:
    """What /api/schema/ answers (read in process: the live server starts with the test)."""
    response = WsgiClient(application).get("/api/schema/", query_string={"format": "json"})
    assert response.status_code == 200, response.text[:500]
    return response.json


schema = schemathesis.openapi.from_dict(_served_schema())
schema.config.checks.update(included_check_names=["all"])
schema.config.phases.update(phases=["examples", "coverage", "fuzzing", "stateful"])
# No NUL in strings: JSON allows it, PostgreSQL cannot store it, the API refuses it (400,
# API.md); the schema's description says so, its string types cannot.
schema.config.generation.update(allow_x00=False)

# What the `seeded` fixture made for the test being run (read by the hooks at draw time).
_seeded: dict[str, Any] = {}


# --- The data the wallet app owns --------------------------------------------------


def _seed_payments(client: Any) -> None:
    now = timezone.now()
    PaymentFactory(
        id=PIX_AWAITING,
        client=client,
        status=PaymentStatus.AWAITING_PAYMENT,
        gateway="gerencianet",
        pix_txid="fuzz0000000000000000000000000001",
        pix_qr_code="00020101021226830014br.gov.bcb.pix2561qrcodes.example.com/v2/fuzz6304ABCD",
        pix_expires_at=now + timedelta(hours=1),
        description="PIX top-up",
        metadata={"order": "A-1"},
    )
    PaymentFactory(id=PIX_PENDING, client=client, wallet_id=uuid.uuid4())
    succeeded = PaymentFactory(
        id=CARD_SUCCEEDED,
        client=client,
        card=True,
        currency="USD",
        status=PaymentStatus.SUCCEEDED,
        gateway="stripe",
        card_brand="visa",
        card_last4="4242",
        amount_refunded=100,
    )
    for number, outcome, error in (
        (1, AttemptOutcome.RETRYABLE, "connection refused"),
        (2, AttemptOutcome.SUCCEEDED, ""),
    ):
        PaymentAttempt.objects.create(
            payment=succeeded,
            gateway="stripe",
            number=number,
            idempotency_key=f"{succeeded.id}:{number}",
            outcome=outcome,
            error_message=error,
            latency_ms=12,
        )
    PaymentFactory(
        id=CARD_REQUIRES_ACTION,
        client=client,
        card=True,
        status=PaymentStatus.REQUIRES_ACTION,
        gateway="mercadopago",
        next_action={"type": "redirect_to_url", "url": "https://example.com/3ds"},
    )
    PaymentFactory(
        id=CARD_FAILED,
        client=client,
        card=True,
        status=PaymentStatus.FAILED,
        failure_code="card_declined",
        failure_message="The card was declined.",
    )
    PaymentFactory(id=OTHER_APPS)  # another wallet app's: must answer 404


@pytest.fixture
def seeded(transactional_db: Any) -> dict[str, Any]:
    """A wallet app with payments in several states; its bearer token and refresh token.

    Transactional: the app runs in-process through WSGI, which commits and closes
    connections as a real server does.
    """
    client = ApiClientFactory(user__username=USERNAME, user__password=PASSWORD)
    _seed_payments(client)
    _seeded.clear()
    _seeded["access"] = token_for(client.user)
    _seeded["refresh"] = str(RefreshToken.for_user(client.user))
    _seeded["user"] = client.user
    yield _seeded
    _seeded.clear()


# --- Valid requests, beyond what the schema can say --------------------------------


def _check_digit(values: list[int], weights: list[int]) -> int:
    remainder = sum(v * w for v, w in zip(values, weights, strict=True)) % 11
    return 0 if remainder < 2 else 11 - remainder


def _cpf(digits: list[int]) -> str:
    first = _check_digit(digits, list(range(10, 1, -1)))
    second = _check_digit([*digits, first], list(range(11, 1, -1)))
    return "".join(map(str, [*digits, first, second]))


def _cnpj(chars: str) -> str:
    values = [ord(c) - 48 for c in chars]
    first = _check_digit(values, [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])
    second = _check_digit([*values, first], [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])
    return f"{chars}{first}{second}"


def _formatted_cpf(cpf: str) -> str:
    return f"{cpf[:3]}.{cpf[3:6]}.{cpf[6:9]}-{cpf[9:]}"


# Text without NUL, which the API refuses in every string (see paywave.api.parsers).
text = partial(st.text, st.characters(codec="utf-8", exclude_characters="\x00"))
tax_ids = st.one_of(
    st.lists(st.integers(0, 9), min_size=9, max_size=9)
    .filter(lambda digits: len(set(digits)) > 1)
    .map(_cpf)
    .flatmap(lambda cpf: st.sampled_from([cpf, _formatted_cpf(cpf)])),
    st.text("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=12, max_size=12)
    .filter(lambda chars: len(set(chars)) > 1)
    .map(_cnpj),
)
names = st.sampled_from(["Ana Souza", "John Doe", "José Ñúñez"]) | text(
    min_size=1, max_size=140
).filter(str.strip)
emails = st.from_regex(r"[a-z][a-z0-9._]{0,20}@[a-z]{1,10}\.(com|com\.br|io)", fullmatch=True)
metadata = st.dictionaries(text(min_size=1, max_size=40), text(max_size=500), max_size=5)


@st.composite
def payment_bodies(draw: Callable[..., Any]) -> dict[str, Any]:
    """A POST /payments body that passes validation (bar a rare card-number look-alike)."""
    method = draw(st.sampled_from(PaymentMethod.values))
    body: dict[str, Any] = {
        "amount": draw(st.integers(1, django_settings.PAYWAVE_MAX_AMOUNT)),
        "method": method,
    }
    if method == PaymentMethod.PIX:
        body["currency"] = "BRL"
        body["payer"] = {
            "name": draw(names),
            "email": draw(emails),
            "tax_id": draw(tax_ids),
            "country": draw(st.sampled_from(["BR", *sorted(COUNTRY_CODES)])),
        }
        pix = st.fixed_dictionaries({}, optional={"expires_in": st.integers(60, 7 * 86400)})
        body.update(draw(st.fixed_dictionaries({}, optional={"pix": pix})))
    else:
        body["currency"] = draw(st.sampled_from(sorted(django_settings.PAYWAVE_CURRENCIES)))
        body["payer"] = draw(
            st.fixed_dictionaries(
                {"name": names, "country": st.sampled_from(sorted(COUNTRY_CODES))},
                optional={"email": emails},
            )
        )
        body["card"] = {"token": draw(st.from_regex(r"pm_[A-Za-z0-9_\-]{1,40}", fullmatch=True))}
    optional = {
        "wallet_id": st.none() | st.uuids().map(str),
        "description": text(max_size=255),
        "metadata": metadata,
    }
    body.update(draw(st.fixed_dictionaries({}, optional=optional)))
    return body


def _usable_idempotency_key(key: Any) -> bool:
    return isinstance(key, str) and 1 <= len(key) <= 255 and key.isprintable()


# A `next` link's cursor is base64 of "o=<offset>&r=<reverse>&p=<position>" (the position
# is the last payment's created_at): clients hand it back, and may have edited it.
tampered_cursors = st.fixed_dictionaries(
    {"p": st.text(min_size=1) | st.datetimes().map(str)},
    optional={"o": st.integers(-5, 10**20).map(str), "r": st.sampled_from(["0", "1", "x"])},
).map(lambda parts: base64.b64encode(urlencode(parts).encode()).decode())


def _is_positive(case: Any) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_positive


def _is_valid_path(case: Any) -> bool:
    """Positive, or negative in some other part of the request than the path."""
    if case.meta is None:
        return False
    return _is_positive(case) or case.meta.phase.data.parameter_location not in (
        None,
        ParameterLocation.PATH,
    )


def _with(case: Any, **changes: Any) -> Any:
    for name, value in changes.items():
        setattr(case, name, value)
    return case


def _steered(case: Any) -> st.SearchStrategy | None:
    """Values that pass the business rules for this case's operation, or None."""
    route = f"{case.operation.method.upper()} {case.operation.path}"
    headers = case.headers or {}
    if "payment_id" in case.path_parameters and _is_valid_path(case):
        return st.sampled_from([*map(str, SEEDED_IDS)]).map(
            lambda payment_id: _with(
                case, path_parameters={**case.path_parameters, "payment_id": payment_id}
            )
        )
    if not _is_positive(case):
        return None
    if route == "POST /api/v1/payments":
        bodies = payment_bodies().map(lambda body: _with(case, body=body))
        key = headers.get("Idempotency-Key")
        if key is None:  # not generated: the test reports it
            return bodies
        # Keep the generated key when the API takes it; a fresh one avoids 422 reuses.
        keys = st.uuids().map(str)
        if _usable_idempotency_key(key):
            keys = st.just(key) | keys
        return st.tuples(bodies, keys).map(
            lambda drawn: _with(drawn[0], headers={**headers, "Idempotency-Key": drawn[1]})
        )
    if route == "POST /api/v1/auth/token":
        return st.just({"username": USERNAME, "password": PASSWORD}).map(
            lambda body: _with(case, body=body)
        )
    if route == "POST /api/v1/auth/token/refresh":
        # Drawn when the case is, so it is a refresh token of the app being tested; a new
        # one each time, as a refresh token is spent by its first use.
        return st.builds(lambda: {"refresh": str(RefreshToken.for_user(_seeded["user"]))}).map(
            lambda body: _with(case, body=body)
        )
    return None


@schema.hook("flatmap_case")
def reach_success_paths(context: Any, case: Any) -> st.SearchStrategy:
    """Fuzzing phase: often swap generated values for ones the business rules accept."""
    steered = _steered(case)
    if steered is None:
        return st.just(case)
    return st.one_of(steered, st.just(case))


# --- Valid requests in every phase: what JSON Schema cannot say ----------------------
#
# A request the schema allows must be accepted (the `positive_data_acceptance` check), but
# some rules cannot be written in JSON Schema. API.md states them; a valid case is made to
# follow them here, in every phase, keeping as much of what was generated as it can.


def _integral_floats_as_ints(value: Any) -> Any:
    """JSON Schema's `integer` takes 1050.0; the API (API.md: integers) refuses it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral_floats_as_ints(item) for item in value]
    return value


def _valid_cpf(seed: str) -> str:
    """A CPF with right check digits, from the digits that were generated (if any)."""
    digits = [int(c) for c in seed if c.isascii() and c.isdigit()][:9]
    digits += [1, 2, 3, 4, 5, 6, 7, 8, 9][len(digits) :]
    if len(set(digits)) == 1:  # 111.111.111-11 and the like are not CPFs
        digits[0] = (digits[0] + 1) % 10
    return _cpf(digits)


def _no_card_number(text: str) -> str:
    return re.sub(r"[0-9]", "x", text) if looks_like_card_number(text) else text


def _follow_payment_rules(body: dict[str, Any]) -> None:
    payer = body.get("payer")
    if isinstance(payer, dict):
        if isinstance(payer.get("tax_id"), str):
            payer["tax_id"] = _valid_cpf(payer["tax_id"])  # check digits
        if isinstance(payer.get("email"), str):
            try:
                validate_email(payer["email"])
            except ValidationError:  # JSON Schema's `email` format and Django's differ
                payer["email"] = "payer@example.com"
        if isinstance(payer.get("name"), str):
            payer["name"] = _no_card_number(payer["name"]).strip() or "Ana Souza"
    if body.get("wallet_id") is not None:
        body["wallet_id"] = None  # a drawn wallet id is never one of the app's wallets
    if isinstance(body.get("description"), str):
        body["description"] = _no_card_number(body["description"])
    if isinstance(body.get("metadata"), dict):
        body["metadata"] = {
            _no_card_number(key): _no_card_number(value) if isinstance(value, str) else value
            for key, value in body["metadata"].items()
        }


def _within_what_is_left(body: dict[str, Any], payment_id: Any) -> None:
    """At most what is left to refund (more is a 400 `refund_exceeds_payment`)."""
    payment = Payment.objects.filter(pk=payment_id).first() if _is_uuid(payment_id) else None
    amount = body.get("amount")
    if payment is not None and isinstance(amount, int) and refundable_amount(payment) >= 1:
        body["amount"] = min(amount, refundable_amount(payment))


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _moment(value: Any) -> datetime | None:
    try:
        return parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _valid_cursor(path: str) -> str:
    """A cursor as a `next` link has it (opaque to clients; any other is refused)."""
    position = "1" if path.endswith("/entries") else timezone.now().isoformat()
    return base64.b64encode(urlencode({"p": position}).encode()).decode()


@schemathesis.hook("before_call")
def follow_the_unstated_rules(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    # A global hook: the schemathesis tests here are the only ones in the suite.
    if not _is_positive(case):
        return
    route = f"{case.operation.method.upper()} {case.operation.path}"
    if case.body is not NOT_SET:
        case.body = _integral_floats_as_ints(case.body)
    if route == "POST /api/v1/payments" and isinstance(case.body, dict):
        _follow_payment_rules(case.body)
        if isinstance(case.body.get("return_url"), str):
            try:  # `format: uri` admits what no browser could be sent back to
                validate_return_url(case.body["return_url"])
                if looks_like_card_number(case.body["return_url"]):
                    raise ValueError("a card number")
            except (DRFValidationError, ValueError):
                case.body["return_url"] = "https://wallet.example/checkout/done"
    if route == "POST /api/v1/webhook-endpoints" and isinstance(case.body, dict):
        url = case.body.get("url")
        allow_private = django_settings.PAYWAVE_WEBHOOK_ALLOW_PRIVATE
        if isinstance(url, str) and webhook_url_problem(url, allow_private=allow_private):
            # Django's URL grammar (63-character labels...) is narrower than `format: uri`.
            case.body["url"] = "https://wallet.example.com/paywave/webhooks"
    if route.endswith("/refunds") and route.startswith("POST") and isinstance(case.body, dict):
        _within_what_is_left(case.body, case.path_parameters.get("payment_id"))
    query = case.query or {}
    if "cursor" in query:
        case.query = {**query, "cursor": _valid_cursor(case.operation.path)}
    after, before = (_moment(query.get(name)) for name in ("created_after", "created_before"))
    if after and before and after >= before:  # an empty range is refused (API.md)
        case.query = {k: v for k, v in case.query.items() if k != "created_before"}
    key = (case.headers or {}).get("Idempotency-Key")
    if key is not None:
        # One key per request: the same key with another body, or for another payment's
        # refunds, is a 422, rightly.
        request = (key, case.method, case.operation.path, case.path_parameters, case.body)
        digest = hashlib.sha256(repr(request).encode()).hexdigest()[:16]
        case.headers = {**case.headers, "Idempotency-Key": f"{key[:200]}-{digest}"}


# --- The tests ------------------------------------------------------------------

_SUPPRESSED = [
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.filter_too_much,
]


@pytest.fixture
def live_api(live_server: Any, seeded: dict[str, Any]) -> dict[str, Any]:
    """Where the live server answers, and the seeded wallet app's Authorization header."""
    return {
        "base_url": live_server.url,
        "headers": {"Authorization": f"Bearer {seeded['access']}"},
    }


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    # `seeded` is set up once per operation on purpose: the cases of one operation share
    # the wallet app and its payments (a cancel may leave a payment canceled for the next).
    suppress_health_check=_SUPPRESSED,
)
def test_api_conforms_to_its_schema(case: Any, live_api: dict[str, Any]) -> None:
    if _is_positive(case):
        # Required headers (Idempotency-Key on POST /payments) are always generated.
        for header in case.operation.headers:
            if header.is_required:
                assert header.name in (case.headers or {}), f"{header.name} not generated"
    case.call_and_validate(**live_api)


def test_api_workflows_conform_to_its_schema(live_api: dict[str, Any]) -> None:
    """The stateful phase: chains of calls along the links between operations."""

    class Workflows(schema.as_state_machine()):
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return dict(live_api)

    # As schemathesis' own runner does: no replaying and shrinking, as a replay meets a
    # server whose data moved on (a payment cancelled, a key spent); a run that Hypothesis
    # finds inconsistent for that reason is run again with another seed.
    for _ in range(3):
        try:
            Workflows.run(
                settings=settings(
                    max_examples=MAX_SCENARIOS,
                    stateful_step_count=MAX_STEPS,
                    phases=[Phase.generate],
                    database=None,
                    deadline=None,
                    suppress_health_check=list(HealthCheck),
                )
            )
            return
        except FlakyStrategyDefinition:
            continue
    pytest.fail("every stateful run met a server whose data moved on between replays")


@given(cursor=tampered_cursors)
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_an_edited_cursor_is_served_or_refused(api: Any, cursor: str) -> None:
    """Never a 500: a page, or 400 in the error shape (the schema cannot tell them apart)."""
    response = api.get("/api/v1/payments", {"cursor": cursor})

    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert response.json()["error"]["code"] in ("invalid_cursor", "invalid_request")


def test_every_check_and_phase_is_on() -> None:
    """`--checks all` and the stateful phase: nothing the fuzzer knows is left out."""
    from schemathesis.checks import CHECKS, load_all_checks

    load_all_checks()
    config = schema.config.checks_config_for(operation=None, phase=None)
    assert all(config.get_by_name(name=name).enabled for name in CHECKS.get_all_names())
    assert schema.config.phases.stateful.enabled


def test_schema_requires_an_idempotency_key_on_every_creating_post() -> None:
    """What makes the fuzzer send one: the header is a required parameter in the schema."""
    creating_posts = {
        path: operation
        for path, item in schema.raw_schema["paths"].items()
        if (operation := item.get("post")) and {"201", "202"} & set(operation["responses"])
    }
    assert "/api/v1/payments" in creating_posts
    for path, operation in creating_posts.items():
        parameters = {(p["in"], p["name"]): p for p in operation.get("parameters", [])}
        assert parameters.get(("header", "Idempotency-Key"), {}).get("required"), path


def test_fuzzing_fails_on_a_server_error(
    live_api: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks include `not_a_server_error`: a 500 makes the fuzz test fail."""

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("payments.selectors.payment_list", broken)
    case = schema["/api/v1/payments"]["GET"].Case()

    with pytest.raises(FailureGroup) as failures:
        case.call_and_validate(**live_api)

    assert any(isinstance(failure, ServerError) for failure in failures.value.exceptions)
