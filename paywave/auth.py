"""JWT authentication for wallet apps.

Tokens carry the wallet app's id (`client_id`) and the staff flag, so an
authenticated request needs no database query: the hot path of a cached
`GET /payments/{id}` touches only Redis.
"""

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.tokens import Token

from paywave.log_context import bind


class ClientTokenObtainSerializer(TokenObtainPairSerializer):
    @classmethod
    def get_token(cls, user: Any) -> Token:
        token = super().get_token(user)
        client = getattr(user, "api_client", None)
        token["client_id"] = str(client.id) if client else None
        token["staff"] = bool(user.is_staff)
        return token


class ClientTokenRefreshSerializer(TokenRefreshSerializer):
    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        try:
            return super().validate(attrs)
        except get_user_model().DoesNotExist as exc:
            raise exceptions.AuthenticationFailed(
                "No active account found for the given token.", code="no_active_account"
            ) from exc


class ClientJWTAuthentication(JWTStatelessUserAuthentication):
    www_authenticate_realm = "paywave"

    def authenticate(self, request: Request) -> tuple[Any, Token] | None:
        result = super().authenticate(request)
        if result is not None and result[1].get("client_id"):
            bind(client=str(result[1]["client_id"]))  # log lines name the wallet app
        return result


def client_id_of(request: Request) -> str:
    """The authenticated wallet app's id (IsWalletApp guarantees there is one)."""
    return str(request.auth["client_id"])


class IsWalletApp(BasePermission):
    message = "This endpoint is for wallet app accounts."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.auth is None:
            raise exceptions.NotAuthenticated()
        return bool(request.auth.get("client_id"))


class IsStaff(BasePermission):
    message = "This endpoint is for PayWave staff."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.auth is None:
            raise exceptions.NotAuthenticated()
        return bool(request.auth.get("staff"))
