"""GET /api/v1/payments/{id}/disputes (API.md, "Disputes")."""

from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gateways.base import DisputeKind, DisputeStatus
from paywave.api.auth import client_id_of
from paywave.api.openapi import AUTHENTICATED_ERRORS, error_responses
from paywave.api.pagination import QuerySerializer

from .disputes import dispute_document
from .models import Dispute
from .selectors import payment_get


class DisputeOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    payment_id = serializers.UUIDField()
    gateway = serializers.CharField()
    gateway_reference = serializers.CharField(help_text="The gateway's id for the dispute.")
    kind = serializers.ChoiceField(choices=[kind.value for kind in DisputeKind])
    status = serializers.ChoiceField(choices=[status.value for status in DisputeStatus])
    outcome = serializers.ChoiceField(
        choices=["won", "lost"], allow_null=True, help_text="Null while the dispute is open."
    )
    amount = serializers.IntegerField(help_text="Minor units: what the payer disputes.")
    currency = serializers.CharField()
    reason = serializers.CharField(help_text="The gateway's reason code, e.g. `fraudulent`.")
    evidence_due_at = serializers.DateTimeField(allow_null=True)
    evidence_submitted_at = serializers.DateTimeField(allow_null=True)
    opened_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)


class DisputeListOutputSerializer(serializers.Serializer):
    has_more = serializers.BooleanField(help_text="Always false: the whole list is one page.")
    results = DisputeOutputSerializer(many=True)


class PaymentDisputesApi(APIView):
    @extend_schema(
        tags=["disputes"],
        operation_id="disputes_list",
        summary="The payment's disputes (chargebacks, mediations, PIX MED), newest first.",
        responses={
            200: DisputeListOutputSerializer,
            **error_responses(400, 404, *AUTHENTICATED_ERRORS),
        },
    )
    def get(self, request: Request, payment_id: UUID) -> Response:
        QuerySerializer(data=request.query_params).is_valid(raise_exception=True)
        payment = payment_get(client_id=client_id_of(request), payment_id=payment_id)
        disputes = Dispute.objects.filter(payment=payment).order_by("-opened_at", "-id")
        # A payment has a handful at most: one page, never a next one.
        return Response(
            {"results": [dispute_document(dispute) for dispute in disputes], "has_more": False}
        )
