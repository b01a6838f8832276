"""OpenAPI: describe our authentication as the bearer schemes they are."""

from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ClientJWTScheme(SimpleJWTScheme):
    target_class = "paywave.auth.ClientJWTAuthentication"


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "paywave.auth.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A wallet app's secret API key (pw_test_... in the sandbox, "
            "pw_live_... otherwise), as `Authorization: Bearer <key>`.",
        }
