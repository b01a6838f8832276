"""The payments HTTP API (API.md): validate, call a service or selector, answer."""

from collections.abc import Iterable
from uuid import UUID

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gateways.base import Payer
from paywave.api.auth import client_id_of
from paywave.api.errors import NotFound
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
from paywave.api.pagination import NewestFirstCursorPagination
from paywave.observability import log_context

from . import selectors, services
from .models import PaymentMethod
from .qrcode import qr_code_png
from .serializers import (
    PaymentCreateInputSerializer,
    PaymentListFilterSerializer,
    PaymentOutputSerializer,
    PaymentPageOutputSerializer,
    PaymentUpdateInputSerializer,
    payment_document,
)

TAG = ["payments"]

CREATE_EXAMPLES = [
    OpenApiExample(
        "PIX",
        summary="A PIX payment of R$ 10,50",
        request_only=True,
        value={
            "amount": 1050,
            "currency": "BRL",
            "method": "pix",
            "payer": {
                "name": "Ana Souza",
                "email": "ana@example.com",
                "tax_id": "123.456.789-09",
                "country": "BR",
            },
            "description": "Order 1001",
            "metadata": {"order": "1001"},
            "pix": {"expires_in": 3600},
        },
    ),
    OpenApiExample(
        "Card",
        summary="A card payment of US$ 25.00, with the gateway's card token",
        request_only=True,
        value={
            "amount": 2500,
            "currency": "USD",
            "method": "card",
            "payer": {"name": "John Doe", "email": "john@example.com", "country": "US"},
            "card": {"token": "pm_card_visa"},
        },
    ),
]
UPDATE_EXAMPLES = [
    OpenApiExample(
        "Details",
        request_only=True,
        value={"description": "Order 1001, gift wrapped", "metadata": {"order": "1001"}},
    )
]


def _stored_to_response(stored: StoredResponse) -> Response:
    response = Response(stored.body, status=stored.status, headers=stored.headers)
    if stored.replayed:
        response[REPLAY_HEADER] = "true"
    return response


class PaymentCollectionApi(APIView):
    @extend_schema(
        tags=TAG,
        operation_id="payments_list",
        parameters=[PaymentListFilterSerializer],
        responses={
            200: PaymentPageOutputSerializer,
            **error_responses(400, *AUTHENTICATED_ERRORS),
        },
    )
    def get(self, request: Request) -> Response:
        filters = PaymentListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        payments = selectors.payment_list(client_id=client_id_of(request), **filters.filters)
        paginator = NewestFirstCursorPagination()
        page = paginator.paginate_queryset(payments, request, view=self)
        return paginator.get_paginated_response([payment_document(payment) for payment in page])

    @extend_schema(
        tags=TAG,
        operation_id="payments_create",
        summary="Submit a payment: stored as pending, charged by a worker.",
        parameters=[
            IDEMPOTENCY_KEY_HEADER,
            OpenApiParameter(
                "Location",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                response=[202],
                required=True,
                description="The payment's URL.",
            ),
        ],
        request=PaymentCreateInputSerializer,
        examples=CREATE_EXAMPLES,
        responses={
            202: PaymentOutputSerializer,
            **error_responses(*BODY_ERRORS, *AUTHENTICATED_ERRORS, 409, 422),
        },
    )
    def post(self, request: Request) -> Response:
        key = validate_idempotency_key(request.headers.get("Idempotency-Key"))
        payload = PaymentCreateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        client_id = client_id_of(request)
        data = payload.validated_data

        def create() -> StoredResponse:
            payer = data["payer"]
            payment, document = services.payment_create(
                client_id=client_id,
                amount=data["amount"],
                currency=data["currency"],
                method=data["method"],
                payer=Payer(
                    name=payer["name"],
                    country=payer["country"],
                    email=payer.get("email", ""),
                    tax_id=payer.get("tax_id", ""),
                ),
                card_token=data.get("card", {}).get("token", ""),
                pix_expires_in=data.get("pix", {}).get("expires_in"),
                wallet_id=data.get("wallet_id"),
                description=data.get("description", ""),
                metadata=data.get("metadata", {}),
                return_url=data.get("return_url", ""),
                cancel_url=data.get("cancel_url", ""),
                hosted=data.get("hosted", False),
            )
            return StoredResponse(
                status=status.HTTP_202_ACCEPTED,
                body=document,
                headers={"Location": f"/api/v1/payments/{payment.id}"},
            )

        stored = idempotent_call(
            client_id=client_id,
            key=key,
            fingerprint=request_fingerprint(method="POST", path=request.path, data=request.data),
            operation=create,
        )
        if stored.status == status.HTTP_202_ACCEPTED:  # made now, or replayed
            log_context.bind(payment_id=str(stored.body["id"]))  # the request line's too
        return _stored_to_response(stored)


class PaymentDetailApi(APIView):
    @extend_schema(
        tags=TAG,
        operation_id="payments_retrieve",
        responses={200: PaymentOutputSerializer, **error_responses(404, *AUTHENTICATED_ERRORS)},
    )
    def get(self, request: Request, payment_id: UUID) -> Response:
        document = selectors.payment_document_get(
            client_id=client_id_of(request), payment_id=payment_id
        )
        return Response(document)

    @extend_schema(
        tags=TAG,
        operation_id="payments_partial_update",
        summary="Change description and/or metadata (any status).",
        request=PaymentUpdateInputSerializer(partial=True),
        examples=UPDATE_EXAMPLES,
        responses={
            200: PaymentOutputSerializer,
            **error_responses(*BODY_ERRORS, 404, *AUTHENTICATED_ERRORS),
        },
    )
    def patch(self, request: Request, payment_id: UUID) -> Response:
        return self._update(request, payment_id, partial=True)

    @extend_schema(
        tags=TAG,
        operation_id="payments_update",
        summary="Replace description and metadata (any status).",
        request=PaymentUpdateInputSerializer,
        examples=UPDATE_EXAMPLES,
        responses={
            200: PaymentOutputSerializer,
            **error_responses(*BODY_ERRORS, 404, *AUTHENTICATED_ERRORS),
        },
    )
    def put(self, request: Request, payment_id: UUID) -> Response:
        return self._update(request, payment_id, partial=False)

    def _update(self, request: Request, payment_id: UUID, *, partial: bool) -> Response:
        payload = PaymentUpdateInputSerializer(data=request.data, partial=partial)
        payload.is_valid(raise_exception=True)
        payment = services.payment_update_details(
            client_id=client_id_of(request),
            payment_id=payment_id,
            changes=payload.validated_data,
        )
        return Response(payment_document(payment))


class PaymentCancelApi(APIView):
    @extend_schema(
        tags=TAG,
        operation_id="payments_cancel",
        summary="Cancel a payment that is pending or awaiting a PIX transfer.",
        request=None,
        responses={
            200: PaymentOutputSerializer,
            **error_responses(404, 409, *AUTHENTICATED_ERRORS),
        },
    )
    def post(self, request: Request, payment_id: UUID) -> Response:
        client_id = client_id_of(request)
        payment = services.payment_cancel(
            client_id=client_id, payment_id=payment_id, actor=f"client:{client_id}"
        )
        return Response(payment_document(payment))


class FirstRendererNegotiation(BaseContentNegotiation):
    """The image endpoint answers PNG itself; errors are JSON whatever the Accept header."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))  # a view has at least one
        return renderer, renderer.media_type


class PaymentQrCodeApi(APIView):
    content_negotiation_class = FirstRendererNegotiation

    @extend_schema(
        tags=TAG,
        operation_id="payments_qrcode",
        summary="The PIX QR code image of the payment's BR Code.",
        parameters=[
            OpenApiParameter(
                "Cache-Control",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                response=[200],
                required=True,
                description="`private, max-age=3600`: the image of a payment never changes.",
            )
        ],
        responses={
            # Bytes, not a JSON string: OpenAPI 3.1 says so with the media type alone.
            (200, "image/png"): OpenApiResponse(
                {"contentMediaType": "image/png"}, description="PNG image"
            ),
            **error_responses(404, *AUTHENTICATED_ERRORS),
        },
    )
    def get(self, request: Request, payment_id: UUID) -> HttpResponse:
        payment = selectors.payment_get(client_id=client_id_of(request), payment_id=payment_id)
        if payment.method != PaymentMethod.PIX or not payment.pix_qr_code:
            raise NotFound("This payment has no PIX QR code (yet).", code="qr_code_not_available")
        response = HttpResponse(qr_code_png(payment.pix_qr_code), content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"
        return response
