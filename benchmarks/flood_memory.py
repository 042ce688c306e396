"""Flood the resolver with distinct names and watch its resident memory level off.

    python benchmarks/flood_memory.py [--quick] [--names N] [--cache-size N] [--concurrency N]

Kept as a shortcut: this is the live part of `memory.py` (our resolver only), which supersedes
it. Every name is new, so every query misses the cache and adds entries; with the cache bounded
at --cache-size entries, resident memory must level off once the cache is full instead of
growing with the number of names. It used to bind a fixed port (5391) and the test suite's
127.53.0.0/16; now the resolver gets a free port and the test internet memory.py's own block
(127.155.0.0/16, `--block`), so it can run next to the test suite and next to a copy of itself.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import memory


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run (well under a minute)")
    parser.add_argument("--names", type=int, help="distinct names to send in all")
    parser.add_argument("--cache-size", type=int, help="the resolver's cache size in entries")
    parser.add_argument("--concurrency", type=int, default=32, help="queries in flight (32)")
    parser.add_argument("--block", default=memory.DEFAULT_BLOCK, help="127.X of the test internet")
    args = parser.parse_args(argv)
    forwarded = ["--no-in-process", "--no-unbound", "--in-flight", str(args.concurrency)]
    forwarded += ["--block", args.block]
    if args.quick:
        forwarded.append("--quick")
    if args.names:
        forwarded += ["--names", str(args.names)]
    if args.cache_size:
        forwarded += ["--cache-size", str(args.cache_size)]
    return memory.main(forwarded)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("flood_memory: interrupted", file=sys.stderr)
        sys.exit(130)
