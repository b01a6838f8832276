"""Idempotency-Key: one request's effect however often the client sends it.

A key is claimed by inserting a row (unique per client and key) before the
operation runs; the operation and the stored answer commit in one transaction.
Same key and same request: the stored answer again. Same key, other request:
422. Same key while the first request still runs: 409. A failed operation
releases the key, so the client may retry it. An in-flight claim older than
PAYWAVE_IDEMPOTENCY_LOCK_TIMEOUT belongs to a request that died and may be
taken over (its transaction rolled back, so nothing was done).
"""

import hashlib
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed

from paywave.api.errors import ApplicationError, ErrorType
from paywave.api.parsers import canonical_json
from paywave.models import ApiClient, IdempotencyKey
from paywave.queries import insert_row, update_rows

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
    """Run `operation` once per (client, key); replay its stored answer afterwards."""
    claim = _claim(client_id=client_id, key=key, fingerprint=fingerprint)
    if claim.state == IdempotencyKey.State.COMPLETED:
        assert claim.response_status is not None  # stored with the COMPLETED state
        return StoredResponse(
            status=claim.response_status,
            body=claim.response_body,
            headers=claim.response_headers,
            replayed=True,
        )
    try:
        with transaction.atomic():
            response = operation()
            answer = {
                "state": IdempotencyKey.State.COMPLETED,
                "response_status": response.status,
                "response_body": response.body,
                "response_headers": response.headers,
            }
            update_rows(IdempotencyKey, where={"pk": claim.pk}, values=answer)
    except BaseException:
        IdempotencyKey.objects.filter(
            pk=claim.pk, state=IdempotencyKey.State.IN_PROGRESS, locked_at=claim.locked_at
        ).delete()
        raise
    return response


def _claim(*, client_id: str, key: str, fingerprint: str) -> IdempotencyKey:
    now = timezone.now()
    for _ in range(3):
        try:
            # Outside a transaction (a request: the views' case) the INSERT alone, committed
            # at once, so a second request with the key sees it. Inside a caller's
            # transaction a savepoint, so a duplicate key does not break that transaction;
            # the claim is then seen when the caller commits.
            with (
                transaction.atomic()
                if transaction.get_connection().in_atomic_block
                else nullcontext()
            ):
                claim = IdempotencyKey(
                    client_id=client_id,
                    key=key,
                    fingerprint=fingerprint,
                    locked_at=now,
                    expires_at=now + settings.PAYWAVE_IDEMPOTENCY_TTL,
                )
                insert_row(claim)
                return claim
        except IntegrityError:
            pass
        existing = IdempotencyKey.objects.filter(client__pk=client_id, key=key).first()
        if existing is None:
            if not ApiClient.objects.filter(pk=client_id).exists():
                # A token outlives its account: the insert failed on the client, not the key.
                raise AuthenticationFailed(
                    "This wallet app account no longer exists.", code="account_deleted"
                )
            continue  # released or purged meanwhile: claim again
        if existing.expires_at <= now:
            IdempotencyKey.objects.filter(pk=existing.pk, expires_at__lte=now).delete()
            continue
        if existing.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used with a different request."
            )
        if existing.state == IdempotencyKey.State.COMPLETED:
            return existing
        if existing.locked_at > now - settings.PAYWAVE_IDEMPOTENCY_LOCK_TIMEOUT:
            raise IdempotencyKeyInUse(
                "A request with this Idempotency-Key is still being processed; retry shortly."
            )
        taken = IdempotencyKey.objects.filter(
            pk=existing.pk, state=IdempotencyKey.State.IN_PROGRESS, locked_at=existing.locked_at
        ).update(locked_at=now)
        if taken:
            existing.locked_at = now
            return existing
    raise IdempotencyKeyInUse(
        "A request with this Idempotency-Key is still being processed; retry shortly."
    )


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
