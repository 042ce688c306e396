"""The shared cache's Redis/Valkey client: the carrier of the engine's `SharedLookup` and
`SharedStore` (`engine/shared.py` decides what to ask and what a value means).

The client is coredis: asyncio and trio alike through anyio, so it runs in the daemon's trio
loop without a thread, and it speaks Redis Cluster and TLS (`rediss://`) too. It is an optional
dependency (`pip install 'resolver[redis]'`): a daemon without `[shared_cache]` never imports
it, and one with it and without the package stops at start with one line naming the table.

Every call has its own deadline (`move_on_after`), coredis retries nothing (the engine's
breaker decides when to try again), and a failure of any kind is reported to the engine as
one: a slow, full or stopped Redis costs a client at most `lookup_timeout_ms`, and once the
breaker is open, nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from resolver.cache.shared import MAX_VALUE
from resolver.config import SharedCacheConfig, redact_url
from resolver.server.errors import StartupError

log = logging.getLogger(__name__)


def _redacted(message: str, config: SharedCacheConfig) -> str:
    """`message` (a library's, which may quote the URL or its parts) without the password,
    whether it came in the URL or in `password`."""
    assert config.url is not None
    secrets = [config.password] if config.password else []
    userinfo = config.url.partition("://")[2].partition("@")
    if userinfo[1]:
        secrets += [userinfo[0], userinfo[0].rpartition(":")[2]]
    message = message.replace(config.url, redact_url(config.url))
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        message = message.replace(secret, "***")
    return message


class SharedCacheClient:
    """One process's connections to the shared cache (a pool, opened as calls need them)."""

    def __init__(self, config: SharedCacheConfig) -> None:
        try:
            import coredis
            from coredis.retry import NoRetryPolicy
        except ImportError:
            raise StartupError(
                "shared_cache: the Python package coredis is missing; "
                "install it with: pip install 'resolver[redis]'"
            ) from None
        assert config.url is not None
        options: dict[str, Any] = {
            "connect_timeout": config.connect_timeout_ms / 1000,
            "stream_timeout": max(config.lookup_timeout_ms, config.store_timeout_ms) / 1000,
            "retry_policy": NoRetryPolicy(),
            "decode_responses": False,
        }
        if config.password is not None:
            options["password"] = config.password
        kind: Any = coredis.RedisCluster if config.cluster else coredis.Redis
        if not config.cluster:
            options["db"] = config.database
        try:
            self._client = kind.from_url(config.url, **options)
        except Exception as error:  # coredis's own word on a URL it cannot use
            raise StartupError(f"shared_cache.url: {_redacted(str(error), config)}") from None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the client open (its pool and background tasks) until cancelled."""
        async with self._client:
            task_status.started()
            await trio.sleep_forever()

    async def get(self, key: bytes) -> bytes | None:
        """The value under `key`, or None; never more than one byte beyond the largest value
        the resolver writes (`GETRANGE`, not `GET`): whoever can write to the Redis must not
        make every member read a 512 MB string into memory. A longer value comes back cut,
        one byte too long, and is dropped as malformed (`cache/shared.py: decode`). An empty
        string is no value the resolver writes, so it reads as absent."""
        value = await self._client.getrange(key, 0, MAX_VALUE)
        if not isinstance(value, bytes):
            raise TypeError(f"Redis returned a {type(value).__name__}, not bytes")
        return value or None

    async def set(self, key: bytes, value: bytes, expire: int) -> None:
        await self._client.set(key, value, ex=expire)
