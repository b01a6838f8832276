"""Lists: cursor pagination, and the query parameters a list endpoint takes (no others)."""

import re
from typing import Any

from django.http import QueryDict
from django.utils.dateparse import parse_datetime
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.response import Response

from paywave.api.errors import ApplicationError

PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# A cursor is base64 of "o=<offset>&r=<reverse>&p=<position>": a few dozen characters.
CURSOR_PATTERN = r"^[A-Za-z0-9+/]+={0,2}$"
MAX_CURSOR_LENGTH = 512


class QueryIntegerField(serializers.IntegerField):
    """Digits, with an optional minus sign: not "1.0", " 1" or "1e2" as DRF would take."""

    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, str) or not re.fullmatch(r"-?[0-9]{1,18}", data):
            self.fail("invalid")
        return super().to_internal_value(data)


class QueryDateTimeField(serializers.DateTimeField):
    """An RFC 3339 date-time with its offset (2026-01-31T12:00:00Z), as the schema's
    `format: date-time` says: no local times, no other ISO 8601 spellings."""

    default_error_messages = {
        "invalid": "An RFC 3339 date-time with its offset is required, e.g. 2026-01-31T12:00:00Z."
    }

    def to_internal_value(self, value: Any) -> Any:
        if not isinstance(value, str) or not _RFC3339.fullmatch(value):
            self.fail("invalid")
        try:
            moment = parse_datetime(value)
            return self.enforce_timezone(moment) if moment is not None else self.fail("invalid")
        except (ValueError, OverflowError):
            self.fail("invalid")


_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})"
)


class QuerySerializer(serializers.Serializer):
    """An endpoint's query parameters: only those it declares, each once and with a value.

    Anything else is a 400 naming the parameter: a misspelt filter must not silently
    answer an unfiltered list.
    """

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, QueryDict):
            errors: dict[str, str] = {}
            for name, values in data.lists():
                if name not in self.fields:
                    errors[name] = "Unknown query parameter."
                elif len(values) > 1:
                    errors[name] = "Give this parameter once."
                elif values[0] == "":
                    errors[name] = "Give a value, or leave the parameter out."
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class PageQuerySerializer(QuerySerializer):
    """A paginated list's query: its filters (in subclasses), `cursor` and `limit`."""

    cursor = serializers.RegexField(
        CURSOR_PATTERN,
        max_length=MAX_CURSOR_LENGTH,
        required=False,
        help_text="Opaque: the `cursor` of the `next` link of the page before, unchanged, with "
        "the same filters. An edited cursor, or one from another list, is refused with 400 "
        "`invalid_cursor`.",
    )
    limit = QueryIntegerField(
        min_value=1,
        max_value=MAX_PAGE_SIZE,
        required=False,
        help_text=f"Page size, 1 to {MAX_PAGE_SIZE}; {PAGE_SIZE} when left out.",
    )

    @property
    def filters(self) -> dict[str, Any]:
        """The validated filters, without the page's own parameters."""
        return {
            name: value
            for name, value in self.validated_data.items()
            if name not in PageQuerySerializer._declared_fields
        }


class NewestFirstCursorPagination(CursorPagination):
    """`{"results": [...], "next": url | null, "has_more": bool}`, newest first.

    Views validate `limit` and `cursor` with a PageQuerySerializer first; out-of-range
    values are refused there, never clamped here.
    """

    ordering: tuple[str, ...] = ("-created_at", "-id")
    page_size = PAGE_SIZE
    page_size_query_param = "limit"
    max_page_size = MAX_PAGE_SIZE

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
                # DRF's stubs say int; decode_cursor reads the position as a str.
                position = parse_datetime(cursor.position)  # type: ignore[arg-type]
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
