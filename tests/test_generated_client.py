"""A client generated from the served schema works against a live server.

openapi-python-client generates a typed client from /api/schema/ into a temporary
directory; the test imports it and, as a wallet app would, submits a PIX payment with
it (the schema's own example body), reads it back, and lists it: the schema is
complete and exact enough to build a working client from, nullable objects, headers
and error shapes included.
"""

import importlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import ApiClientFactory
from tests.helpers import token_for

pytestmark = pytest.mark.slow

PACKAGE = "paywave_client"
CONFIG = f"""\
package_name_override: {PACKAGE}
project_name_override: paywave-client
# The QR image: the generator reads bytes from this media type only.
content_type_overrides:
  image/png: application/octet-stream
post_hooks: []
"""


@pytest.fixture
def generated_client(live_server: Any, tmp_path: Path) -> Iterator[Any]:
    response = httpx.get(f"{live_server.url}/api/schema/", params={"format": "json"})
    assert response.status_code == 200
    (tmp_path / "openapi.json").write_bytes(response.content)
    (tmp_path / "config.yaml").write_text(CONFIG)
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(tmp_path / "openapi.json"),
            "--config",
            str(tmp_path / "config.yaml"),
            "--output-path",
            str(tmp_path / "client"),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    sys.path.insert(0, str(tmp_path / "client"))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path / "client"))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def test_a_generated_client_creates_and_reads_a_payment(
    generated_client: Any, live_server: Any, transactional_db: Any
) -> None:
    api = importlib.import_module(f"{PACKAGE}.api.payments")
    models = importlib.import_module(f"{PACKAGE}.models")
    wallet_app = ApiClientFactory()
    client = generated_client.AuthenticatedClient(
        base_url=live_server.url, token=token_for(wallet_app.user)
    )
    schema = httpx.get(f"{live_server.url}/api/schema/", params={"format": "json"}).json()
    example = schema["paths"]["/api/v1/payments"]["post"]["requestBody"]["content"][
        "application/json"
    ]["examples"]["PIX"]["value"]

    with client as session:
        created = importlib.import_module(f"{api.__name__}.payments_create").sync_detailed(
            client=session,
            body=models.PaymentCreateInputRequest.from_dict(example),
            idempotency_key=str(uuid.uuid4()),
        )
        assert created.status_code == 202, created.content
        payment = created.parsed
        assert isinstance(payment, models.PaymentOutput)
        assert created.headers["Location"] == f"/api/v1/payments/{payment.id}"

        read = importlib.import_module(f"{api.__name__}.payments_retrieve").sync(
            client=session, payment_id=payment.id
        )
        listed = importlib.import_module(f"{api.__name__}.payments_list").sync(
            client=session, limit=10
        )
        missing = importlib.import_module(f"{api.__name__}.payments_retrieve").sync(
            client=session, payment_id=uuid.uuid4()
        )

    assert isinstance(read, models.PaymentOutput)
    assert read.id == payment.id
    assert read.status == models.PaymentStatusEnum.PENDING
    assert read.amount == example["amount"]
    assert read.payer.tax_id_last4 == "8909"
    assert isinstance(read.pix, models.PixOutput)
    assert read.card is None  # a null object, as the schema says it may be
    assert [p.id for p in listed.results] == [payment.id]
    assert isinstance(missing, models.Error)
    assert missing.error.code == "payment_not_found"
