"""The wallets and transfers HTTP API (API.md): validate, call a service or selector, answer."""

import re
from collections.abc import Callable
from typing import Any
from uuid import UUID

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound as DRFNotFound
from rest_framework.pagination import Cursor
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from paywave.api.auth import client_id_of
from paywave.api.idempotency import (
    REPLAY_HEADER,
    StoredResponse,
    idempotent_call,
    request_fingerprint,
    validate_idempotency_key,
)
from paywave.api.openapi import (
    AUTHENTICATED_ERRORS,
    BODY_ERRORS,
    IDEMPOTENCY_KEY_HEADER,
    error_responses,
)
from paywave.api.pagination import NewestFirstCursorPagination, PageQuerySerializer

from . import selectors, services
from .serializers import (
    EntryPageOutputSerializer,
    TransferCreateInputSerializer,
    TransferOutputSerializer,
    WalletCreateInputSerializer,
    WalletListFilterSerializer,
    WalletOutputSerializer,
    WalletPageOutputSerializer,
    entry_document,
    transfer_document,
    wallet_document,
)

WALLETS = ["wallets"]
TRANSFERS = ["transfers"]

_SEQUENCE = re.compile(r"[0-9]{1,18}")


def _location_header(status_code: int) -> OpenApiParameter:
    return OpenApiParameter(
        "Location",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=[status_code],
        required=True,
        description="The created object's URL.",
    )


class LedgerCursorPagination(NewestFirstCursorPagination):
    """A wallet's entries, newest first in the order its balance moved."""

    ordering = ("-sequence",)

    def decode_cursor(self, request: Request) -> Cursor | None:
        # Skip the parent's created_at check: our positions are entry sequence numbers.
        cursor = super(NewestFirstCursorPagination, self).decode_cursor(request)
        position = cursor.position if cursor is not None else None
        # DRF's stubs say int; decode_cursor reads the position as a str.
        if position is not None and not _SEQUENCE.fullmatch(position):  # type: ignore[call-overload]
            raise DRFNotFound(self.invalid_cursor_message)
        return cursor


def _idempotent_create(
    request: Request, create: Callable[[str], StoredResponse], *, validated: Any
) -> Response:
    """Run `create(client_id)` once per Idempotency-Key (paywave.api.idempotency)."""
    key = validate_idempotency_key(request.headers.get("Idempotency-Key"))
    validated.is_valid(raise_exception=True)
    client_id = client_id_of(request)
    stored = idempotent_call(
        client_id=client_id,
        key=key,
        fingerprint=request_fingerprint(method="POST", path=request.path, data=request.data),
        operation=lambda: create(client_id),
    )
    response = Response(stored.body, status=stored.status, headers=stored.headers)
    if stored.replayed:
        response[REPLAY_HEADER] = "true"
    return response


class WalletCollectionApi(APIView):
    @extend_schema(
        tags=WALLETS,
        operation_id="wallets_list",
        parameters=[WalletListFilterSerializer],
        responses={
            200: WalletPageOutputSerializer,
            **error_responses(400, *AUTHENTICATED_ERRORS),
        },
    )
    def get(self, request: Request) -> Response:
        filters = WalletListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        wallets = selectors.wallet_list(client_id=client_id_of(request), **filters.filters)
        paginator = NewestFirstCursorPagination()
        page = paginator.paginate_queryset(wallets, request, view=self)
        return paginator.get_paginated_response([wallet_document(wallet) for wallet in page])

    @extend_schema(
        tags=WALLETS,
        operation_id="wallets_create",
        summary="Open a wallet in one currency, with a zero balance.",
        parameters=[IDEMPOTENCY_KEY_HEADER, _location_header(201)],
        request=WalletCreateInputSerializer,
        examples=[OpenApiExample("BRL", request_only=True, value={"currency": "BRL"})],
        responses={
            201: WalletOutputSerializer,
            **error_responses(*BODY_ERRORS, *AUTHENTICATED_ERRORS, 409, 422),
        },
    )
    def post(self, request: Request) -> Response:
        payload = WalletCreateInputSerializer(data=request.data)

        def create(client_id: str) -> StoredResponse:
            wallet = services.wallet_create(
                client_id=client_id, currency=payload.validated_data["currency"]
            )
            return StoredResponse(
                status=status.HTTP_201_CREATED,
                body=wallet_document(wallet),
                headers={"Location": f"/api/v1/wallets/{wallet.pk}"},
            )

        return _idempotent_create(request, create, validated=payload)


class WalletDetailApi(APIView):
    @extend_schema(
        tags=WALLETS,
        operation_id="wallets_retrieve",
        responses={200: WalletOutputSerializer, **error_responses(404, *AUTHENTICATED_ERRORS)},
    )
    def get(self, request: Request, wallet_id: UUID) -> Response:
        wallet = selectors.wallet_get(client_id=client_id_of(request), wallet_id=wallet_id)
        return Response(wallet_document(wallet))


class WalletEntryListApi(APIView):
    @extend_schema(
        tags=WALLETS,
        operation_id="wallets_entries_list",
        summary="The wallet's ledger lines, newest first.",
        parameters=[PageQuerySerializer],
        responses={
            200: EntryPageOutputSerializer,
            **error_responses(400, 404, *AUTHENTICATED_ERRORS),
        },
    )
    def get(self, request: Request, wallet_id: UUID) -> Response:
        PageQuerySerializer(data=request.query_params).is_valid(raise_exception=True)
        entries = selectors.wallet_entries(client_id=client_id_of(request), wallet_id=wallet_id)
        paginator = LedgerCursorPagination()
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response([entry_document(entry) for entry in page])


class TransferCollectionApi(APIView):
    @extend_schema(
        tags=TRANSFERS,
        operation_id="transfers_create",
        summary="Move money between two wallets of the same wallet app, atomically.",
        parameters=[IDEMPOTENCY_KEY_HEADER, _location_header(201)],
        request=TransferCreateInputSerializer,
        examples=[
            OpenApiExample(
                "Transfer",
                summary="R$ 5,00 between two of your BRL wallets (put their ids)",
                request_only=True,
                value={
                    "from_wallet": "3f8e2b1c-6a4d-4e8f-9b2a-1c5d7e9f0a12",
                    "to_wallet": "8c1d4f6a-2b3e-4d5f-8a9b-0c1d2e3f4a56",
                    "amount": 500,
                    "currency": "BRL",
                    "description": "Allowance",
                },
            )
        ],
        responses={
            201: TransferOutputSerializer,
            **error_responses(*BODY_ERRORS, *AUTHENTICATED_ERRORS, 404, 409, 422),
        },
    )
    def post(self, request: Request) -> Response:
        payload = TransferCreateInputSerializer(data=request.data)

        def create(client_id: str) -> StoredResponse:
            data = payload.validated_data
            transfer = services.transfer_create(
                client_id=client_id,
                from_wallet_id=data["from_wallet"],
                to_wallet_id=data["to_wallet"],
                amount=data["amount"],
                currency=data["currency"],
                description=data.get("description", ""),
            )
            return StoredResponse(
                status=status.HTTP_201_CREATED,
                body=transfer_document(transfer),
                headers={"Location": f"/api/v1/transfers/{transfer.pk}"},
            )

        return _idempotent_create(request, create, validated=payload)


class TransferDetailApi(APIView):
    @extend_schema(
        tags=TRANSFERS,
        operation_id="transfers_retrieve",
        responses={200: TransferOutputSerializer, **error_responses(404, *AUTHENTICATED_ERRORS)},
    )
    def get(self, request: Request, transfer_id: UUID) -> Response:
        transfer = selectors.transfer_get(client_id=client_id_of(request), transfer_id=transfer_id)
        return Response(transfer_document(transfer))
