"""Token endpoints: a wallet app trades its username and password for a JWT pair, and a
refresh token (once) for a new pair."""

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from paywave.api.auth import ClientTokenObtainSerializer, ClientTokenRefreshSerializer
from paywave.api.openapi import BODY_ERRORS, error_responses
from paywave.api.serializer_fields import StrictSerializer
from paywave.api.throttling import TokenRateThrottle

TAG = ["auth"]


class _AsSent(serializers.Serializer):
    """Credentials are compared as sent: " x" is not "x", and " " is a wrong one, not blank."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if isinstance(field, serializers.CharField):  # all of them: username, password...
                field.trim_whitespace = False


class TokenObtainInputSerializer(_AsSent, StrictSerializer, ClientTokenObtainSerializer):
    """Username and password; nothing else, like every body the API takes."""


class TokenRefreshInputSerializer(_AsSent, StrictSerializer, ClientTokenRefreshSerializer):
    """The refresh token; nothing else, like every body the API takes."""


TOKEN_PAIR = inline_serializer(
    "TokenPair",
    {
        "access": serializers.CharField(help_text="Bearer token for API calls."),
        "refresh": serializers.CharField(help_text="Trade it for a new access token."),
    },
)
REFRESHED_PAIR = inline_serializer(
    "RefreshedTokenPair",
    {
        "access": serializers.CharField(help_text="Bearer token for API calls."),
        "refresh": serializers.CharField(
            help_text="The next refresh token: the one sent is spent (refused if sent again)."
        ),
    },
)


class TokenObtainApi(TokenObtainPairView):
    serializer_class = TokenObtainInputSerializer
    throttle_classes = (TokenRateThrottle,)

    @extend_schema(
        tags=TAG,
        operation_id="auth_token",
        summary="Username and password for an access and a refresh token.",
        examples=[
            OpenApiExample(
                "Sandbox",
                summary="The sandbox's demo wallet app",
                request_only=True,
                value={"username": "demo", "password": "demo"},
            )
        ],
        responses={200: TOKEN_PAIR, **error_responses(*BODY_ERRORS, 401, 429)},
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class TokenRefreshApi(TokenRefreshView):
    serializer_class = TokenRefreshInputSerializer
    throttle_classes = (TokenRateThrottle,)

    @extend_schema(
        tags=TAG,
        operation_id="auth_token_refresh",
        summary="A refresh token for a new access and refresh token (the one sent is spent).",
        examples=[
            OpenApiExample(
                "Refresh",
                summary="The `refresh` of the last answer of /auth/token or of this endpoint",
                request_only=True,
                value={"refresh": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.signature"},
            )
        ],
        responses={200: REFRESHED_PAIR, **error_responses(*BODY_ERRORS, 401, 429)},
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)
