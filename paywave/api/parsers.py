import json
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class StrictJSONParser(JSONParser):
    """JSON that PostgreSQL can store: no NUL characters, no lone surrogates, bounded depth.

    Both characters are valid JSON escapes but cannot be stored in a text or
    jsonb column, so they are a 400 here instead of a 500 at the database.
    """

    max_depth = 32

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nesting too deep.") from exc
        _check(data, depth=0, max_depth=self.max_depth)
        return data


def _check(value: Any, *, depth: int, max_depth: int) -> None:
    if depth > max_depth:
        raise ParseError(f"JSON parse error - nesting deeper than {max_depth} levels.")
    if isinstance(value, str):
        _check_string(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_string(key)
            _check(item, depth=depth + 1, max_depth=max_depth)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth=depth + 1, max_depth=max_depth)


def _check_string(text: str) -> None:
    if "\x00" in text:
        raise ParseError("JSON parse error - strings may not contain NUL characters.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ParseError("JSON parse error - strings must be valid Unicode.") from exc


def canonical_json(data: Any) -> bytes:
    """A stable byte form of parsed JSON: equal documents give equal bytes."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
