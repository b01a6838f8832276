"""JSON for Django's Redis cache, instead of its default pickle.

Django's Redis backend unpickles every value it reads, so anyone able to write to
Redis could run code in every API and worker process. With this serializer the cache
holds integers (kept raw, so `incr` stays atomic) and JSON, and loads nothing else.
Cached values must be JSON-able (tuples come back as lists).
"""

import json
from typing import Any


class JSONSerializer:
    def __init__(self, protocol: Any = None) -> None:  # Django passes pickle's protocol
        pass

    def dumps(self, obj: Any) -> int | bytes:
        if type(obj) is int:
            return obj
        return json.dumps(obj, separators=(",", ":")).encode()

    def loads(self, data: bytes | int) -> Any:
        try:
            return int(data)
        except ValueError:
            pass
        assert isinstance(data, bytes)  # int() takes every int
        try:
            return json.loads(data)
        except ValueError:  # not ours (e.g. a pickle someone wrote): a miss, never loaded
            return None
