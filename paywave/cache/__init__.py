"""Redis and the cache: the shared client, JSON state, a versioned cache, the serializer."""
