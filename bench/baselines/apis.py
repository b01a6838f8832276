"""The bare insert: DRF's defaults (JWT auth, wallet-app permission, throttle, strict JSON),
a serializer shaped like the payment body, one INSERT, 202. No idempotency key, no
encryption, no outbox, no publish: what is left is the framework and the database."""

from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from paywave.api.auth import client_id_of

from .models import BareRow


class _PayerSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=140)
    email = serializers.EmailField(required=False)
    tax_id = serializers.CharField(required=False, max_length=18)
    country = serializers.CharField(min_length=2, max_length=2)


class _CardSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=255)


class BareInsertApi(APIView):
    class InputSerializer(serializers.Serializer):
        amount = serializers.IntegerField(min_value=1, max_value=100_000_000)
        currency = serializers.RegexField(r"^[A-Z]{3}$")
        method = serializers.ChoiceField(choices=["pix", "card"])
        description = serializers.CharField(required=False, allow_blank=True, max_length=255)
        payer = _PayerSerializer()
        card = _CardSerializer(required=False)
        metadata = serializers.DictField(required=False)
        wallet_id = serializers.UUIDField(required=False, allow_null=True)

    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        row = BareRow.objects.create(
            client_id=client_id_of(request),
            amount=data["amount"],
            currency=data["currency"],
            method=data["method"],
            body=request.data,
        )
        return Response({"id": str(row.id), "status": "pending"}, status=status.HTTP_202_ACCEPTED)
