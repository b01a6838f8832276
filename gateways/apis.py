"""Staff's view of the gateways: configuration, live health and circuit state."""

from datetime import UTC, datetime
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from paywave.api.auth import IsStaff
from paywave.api.openapi import AUTHENTICATED_ERRORS, error_responses
from paywave.api.pagination import QuerySerializer

from .circuit import circuit_status
from .health import gateway_health_get
from .models import Gateway
from .serializers import GatewayListOutputSerializer


def gateway_document(gateway: Gateway) -> dict[str, Any]:
    circuit = circuit_status(gateway.code)
    opened_at = None
    if circuit.opened_at is not None:
        opened_at = datetime.fromtimestamp(circuit.opened_at, UTC).isoformat()
    return {
        "code": gateway.code,
        "display_name": gateway.display_name,
        "adapter": gateway.adapter,
        "enabled": gateway.enabled,
        "priority": gateway.priority,
        "methods": gateway.methods,
        "currencies": gateway.currencies,
        "countries": gateway.countries,
        "timeout_ms": gateway.timeout_ms,
        "health": gateway_health_get(gateway.code),
        "circuit": {
            "state": circuit.state.value,
            "failures": circuit.failures,
            "opened_at": opened_at.replace("+00:00", "Z") if opened_at else None,
        },
    }


class GatewayListApi(APIView):
    permission_classes = (IsStaff,)

    @extend_schema(
        tags=["operations"],
        operation_id="gateways_list",
        summary="Every gateway with its routing configuration, health and circuit (staff).",
        responses={200: GatewayListOutputSerializer, **error_responses(400, *AUTHENTICATED_ERRORS)},
    )
    def get(self, request: Request) -> Response:
        QuerySerializer(data=request.query_params).is_valid(raise_exception=True)
        gateways = Gateway.objects.order_by("priority", "code")
        return Response(
            {"results": [gateway_document(gateway) for gateway in gateways], "has_more": False}
        )
