"""Idempotency-Key: one request's effect however often the client sends it.

The operation runs in a transaction that ends by inserting the key (unique per client
and key) with the operation's answer: the effect and its answer commit together, or
neither does. Same key and same request: the stored answer again. Same key, other
request: 422. Same key while the first request still runs: PostgreSQL holds the second
insert until the first transaction ends, and the second request, rolled back, answers
with the first one's replay (or runs again, if the first failed). A failed operation
stores nothing, so the client may retry it.

A key row in progress (state `in_progress`, committed before its answer) is left by
versions that claimed a key in its own transaction: 409 while it is younger than
PAYWAVE_IDEMPOTENCY_LOCK_TIMEOUT, then it belongs to a request that died and is removed.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed

from paywave.api.errors import ApplicationError, ErrorType
from paywave.api.parsers import canonical_json
from paywave.models import ApiClient, IdempotencyKey
from paywave.queries import insert_row

MAX_KEY_LENGTH = 255
REPLAY_HEADER = "Idempotent-Replayed"


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    replayed: bool = False


class IdempotencyKeyReused(ApplicationError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    error_type = ErrorType.IDEMPOTENCY
    code = "idempotency_key_reused"


class IdempotencyKeyInUse(ApplicationError):
    status_code = status.HTTP_409_CONFLICT
    error_type = ErrorType.IDEMPOTENCY
    code = "idempotency_key_in_use"


def validate_idempotency_key(raw: str | None) -> str:
    if raw is None or raw == "":
        raise ApplicationError(
            "The Idempotency-Key header is required on requests that create something.",
            code="idempotency_key_required",
            fields={"Idempotency-Key": "This header is required."},
        )
    if len(raw) > MAX_KEY_LENGTH or not raw.isprintable():
        raise ApplicationError(
            "The Idempotency-Key header must be printable and at most "
            f"{MAX_KEY_LENGTH} characters.",
            code="idempotency_key_invalid",
            fields={"Idempotency-Key": "Invalid key."},
        )
    return raw


def request_fingerprint(*, method: str, path: str, data: Any) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), b"\n", path.encode(), b"\n", canonical_json(data)):
        digest.update(part)
    return digest.hexdigest()


def idempotent_call(
    *,
    client_id: str,
    key: str,
    fingerprint: str,
    operation: Callable[[], StoredResponse],
) -> StoredResponse:
    """Run `operation` once per (client, key); replay its stored answer afterwards.

    `operation` only writes to the database (anything else on commit): a request that
    loses the race for its key is rolled back whole.
    """
    for _ in range(3):
        try:
            return _run_and_store(
                client_id=client_id, key=key, fingerprint=fingerprint, operation=operation
            )
        except _AnswerMayBeStored as lost:
            try:
                stored = _stored_answer(client_id=client_id, key=key, fingerprint=fingerprint)
            except DatabaseError:
                if lost.failure is None:
                    raise
                raise lost.failure from None  # the database failed the operation first
            if stored is not None:
                return stored
            if lost.failure is not None:
                raise lost.failure from None
    raise IdempotencyKeyInUse(
        "A request with this Idempotency-Key is still being processed; retry shortly."
    )


class _AnswerMayBeStored(Exception):
    """The key was taken by another request, or the operation failed: refused (perhaps
    because that request's effect committed first), or the database or the code failed
    it (a retry of a request already answered runs it again, in a transaction rolled
    back). If the key has a stored answer, that is the answer."""

    def __init__(self, failure: Exception | None = None) -> None:
        super().__init__()
        self.failure = failure


def _run_and_store(
    *, client_id: str, key: str, fingerprint: str, operation: Callable[[], StoredResponse]
) -> StoredResponse:
    try:
        with transaction.atomic():
            try:
                response = operation()
            except Exception as failure:
                raise _AnswerMayBeStored(failure) from failure
            now = timezone.now()
            answer = IdempotencyKey(
                client_id=client_id,
                key=key,
                fingerprint=fingerprint,
                state=IdempotencyKey.State.COMPLETED,
                locked_at=now,
                expires_at=now + settings.PAYWAVE_IDEMPOTENCY_TTL,
                response_status=response.status,
                response_body=response.body,
                response_headers=response.headers,
            )
            try:
                insert_row(answer)  # waits while another transaction holds the key
            except IntegrityError as taken:
                raise _AnswerMayBeStored() from taken
    except IntegrityError:
        # The wallet app's row is checked as the transaction commits: a token outlives its
        # account.
        if not ApiClient.objects.filter(pk=client_id).exists():
            raise AuthenticationFailed(
                "This wallet app account no longer exists.", code="account_deleted"
            ) from None
        raise
    return response


def _stored_answer(*, client_id: str, key: str, fingerprint: str) -> StoredResponse | None:
    """The key's stored answer; None if the key is free (again)."""
    existing = IdempotencyKey.objects.filter(client__pk=client_id, key=key).first()
    if existing is None:
        return None  # its request failed, or it expired and was purged
    now = timezone.now()
    if existing.expires_at <= now:
        IdempotencyKey.objects.filter(pk=existing.pk, expires_at__lte=now).delete()
        return None
    if existing.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request."
        )
    if existing.state == IdempotencyKey.State.COMPLETED:
        assert existing.response_status is not None  # stored with the COMPLETED state
        return StoredResponse(
            status=existing.response_status,
            body=existing.response_body,
            headers=existing.response_headers,
            replayed=True,
        )
    if existing.locked_at > now - settings.PAYWAVE_IDEMPOTENCY_LOCK_TIMEOUT:
        raise IdempotencyKeyInUse(
            "A request with this Idempotency-Key is still being processed; retry shortly."
        )
    IdempotencyKey.objects.filter(
        pk=existing.pk, state=IdempotencyKey.State.IN_PROGRESS, locked_at=existing.locked_at
    ).delete()  # abandoned; if another request took it meanwhile, the next insert says so
    return None


def idempotency_keys_purge_expired(*, batch_size: int = 5000) -> int:
    """Delete expired keys in batches; returns how many went."""
    deleted_total = 0
    while True:
        ids = list(
            IdempotencyKey.objects.filter(expires_at__lte=timezone.now()).values_list(
                "pk", flat=True
            )[:batch_size]
        )
        if not ids:
            return deleted_total
        deleted, _ = IdempotencyKey.objects.filter(pk__in=ids).delete()
        deleted_total += deleted
