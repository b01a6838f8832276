"""OpenAPI: describe our JWT authentication as the bearer scheme it is."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class ClientJWTScheme(SimpleJWTScheme):
    target_class = "paywave.auth.ClientJWTAuthentication"
