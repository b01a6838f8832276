"""The HTTP API around the apps' views: errors, auth, input, lists, limits, versions, OpenAPI."""
