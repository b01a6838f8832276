"""POST/GET /api/v1/payments/{id}/refunds (API.md)."""

from uuid import UUID

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
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
from paywave.api.pagination import QuerySerializer
from paywave.api.serializer_fields import AmountField, StrictSerializer

from .models import Refund
from .refunds import refund_create, refund_document
from .selectors import payment_get

TAG = ["refunds"]


class RefundCreateInputSerializer(StrictSerializer):
    amount = AmountField(required=False, help_text="Minor units; omit to refund all that is left.")


class RefundOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    payment_id = serializers.UUIDField()
    amount = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["pending", "succeeded", "failed"])
    failure_message = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


class RefundListOutputSerializer(serializers.Serializer):
    has_more = serializers.BooleanField(help_text="Always false: the whole list is one page.")
    results = RefundOutputSerializer(many=True)


class PaymentRefundsApi(APIView):
    @extend_schema(
        tags=TAG,
        operation_id="refunds_list",
        summary="The payment's refunds, newest first.",
        responses={
            200: RefundListOutputSerializer,
            **error_responses(400, 404, *AUTHENTICATED_ERRORS),
        },
    )
    def get(self, request: Request, payment_id: UUID) -> Response:
        QuerySerializer(data=request.query_params).is_valid(raise_exception=True)
        payment = payment_get(client_id=client_id_of(request), payment_id=payment_id)
        refunds = Refund.objects.filter(payment=payment).order_by("-created_at", "-id")
        # Every refund of the payment, in one page: there is never a next one.
        return Response(
            {"results": [refund_document(refund) for refund in refunds], "has_more": False}
        )

    @extend_schema(
        tags=TAG,
        operation_id="refunds_create",
        summary="Refund a succeeded payment, in full or in part; processed by a worker.",
        description="`Idempotency-Key` is required, as on every POST that creates "
        "something: a repeated request with the same key answers the same refund, so a "
        "retried call never refunds twice.",
        parameters=[IDEMPOTENCY_KEY_HEADER],
        request=RefundCreateInputSerializer,
        examples=[
            OpenApiExample(
                "Part", summary="Refund R$ 5,00 of it", request_only=True, value={"amount": 500}
            ),
            OpenApiExample("All", summary="Refund all that is left", request_only=True, value={}),
        ],
        responses={
            202: RefundOutputSerializer,
            **error_responses(*BODY_ERRORS, 404, 409, 422, *AUTHENTICATED_ERRORS),
        },
    )
    def post(self, request: Request, payment_id: UUID) -> Response:
        payload = RefundCreateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        client_id = client_id_of(request)

        def create() -> StoredResponse:
            refund = refund_create(
                client_id=client_id,
                payment_id=payment_id,
                amount=payload.validated_data.get("amount"),
                actor=f"client:{client_id}",
            )
            return StoredResponse(status=status.HTTP_202_ACCEPTED, body=refund_document(refund))

        stored = idempotent_call(
            client_id=client_id,
            key=validate_idempotency_key(request.headers.get("Idempotency-Key")),
            fingerprint=request_fingerprint(method="POST", path=request.path, data=request.data),
            operation=create,
        )
        response = Response(stored.body, status=stored.status, headers=stored.headers)
        if stored.replayed:
            response[REPLAY_HEADER] = "true"
        return response
