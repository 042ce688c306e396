"""Pure caches (no I/O, clock injected): DNS records, negative answers, upstream server data."""

from resolver.cache.records import CachedNegative, Rank, RecordCache
from resolver.cache.servers import ServerTable

__all__ = ["CachedNegative", "Rank", "RecordCache", "ServerTable"]
