from typing import Any

from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.response import Response

from paywave.errors import ApplicationError


class NewestFirstCursorPagination(CursorPagination):
    """`{"results": [...], "next": url | null, "has_more": bool}`, newest first."""

    ordering = ("-created_at", "-id")
    page_size = 20
    page_size_query_param = "limit"
    max_page_size = 100

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound as exc:
            raise ApplicationError(
                "The cursor is not valid: use the `next` link of a previous page.",
                code="invalid_cursor",
                fields={"cursor": "Invalid cursor."},
            ) from exc

    def decode_cursor(self, request) -> Cursor | None:
        cursor = super().decode_cursor(request)
        # The position is a created_at from our own `next` link; anything else was edited.
        if cursor is not None and cursor.position is not None:
            try:
                position = parse_datetime(cursor.position)
            except ValueError:
                position = None
            if position is None or position.tzinfo is None:
                raise NotFound(self.invalid_cursor_message)
        return cursor

    def get_paginated_response(self, data: list[Any]) -> Response:
        return Response(
            {"results": data, "next": self.get_next_link(), "has_more": bool(self.has_next)}
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["results", "next", "has_more"],
            "properties": {
                "results": schema,
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "has_more": {"type": "boolean"},
            },
        }
