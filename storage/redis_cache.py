"""The result cache on Redis (SPEC 5): JSON entries with a TTL and a size cap, behind timeouts."""

from __future__ import annotations

import json
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

PREFIX = "mugpos:"


def connect(
    url: str | None, host: str | None, port: int, password: str | None, timeout_s: float
) -> redis.Redis:
    """A pooled client; every command waits at most ``timeout_s``."""
    options: dict[str, Any] = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "health_check_interval": 30,
        # redis-py retries 10 times with backoff by default, inside each connection handshake
        # too: one dead Redis would hold a job for minutes. One try, then the cache is skipped.
        "retry": Retry(NoBackoff(), 0),
    }
    if url is not None:
        return redis.Redis.from_url(url, **options)
    return redis.Redis(host=host or "localhost", port=port, password=password, **options)


class RedisResultCache:
    backend = "redis"

    def __init__(self, client: redis.Redis, ttl_s: int, max_entry_bytes: int) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self.max_entry_bytes = max_entry_bytes

    def get(self, key: str) -> dict[str, Any] | None:
        raw = self.client.get(PREFIX + key)
        return None if raw is None else json.loads(raw)

    def set(self, key: str, value: dict[str, Any]) -> bool:
        """Store with the TTL; an entry over the size cap is not cached (it would crowd others out)."""
        encoded = json.dumps(value, allow_nan=False, separators=(",", ":"))
        if len(encoded) > self.max_entry_bytes:
            return False
        self.client.set(PREFIX + key, encoded, ex=self.ttl_s)
        return True

    def ping(self) -> bool:
        return bool(self.client.ping())
