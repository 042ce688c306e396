"""Flood the resolver with unique random names and watch its resident memory stay bounded.

Every name is new, so every query misses the cache, costs an upstream query (the test internet
answers NXDOMAIN from example.test's servers) and adds one negative entry. With the cache bound
at --cache-size entries, resident memory must level off once the cache is full instead of
growing with the number of names: that is what this prints.

    python benchmarks/flood_memory.py [--quick] [--names N] [--cache-size N]

Traffic stays on loopback: the resolver listens on 127.0.0.1:PORT and resolves only inside the
test internet (127.53.0.0/16).
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import dns.message
import trio

from resolver.testing import TestInternet

PORT = 5391


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def flood(count: int, concurrency: int) -> tuple[int, int]:
    """Send `count` unique questions, `concurrency` at a time; (answered, unanswered)."""
    answered = unanswered = 0
    names = iter(range(count))

    async def worker() -> None:
        nonlocal answered, unanswered
        with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as sock:
            await sock.connect(("127.0.0.1", PORT))
            for _ in names:
                label = secrets.token_hex(8)
                await sock.send(dns.message.make_query(f"{label}.example.test.", "A").to_wire())
                with trio.move_on_after(2.0):
                    await sock.recv(4096)
                    answered += 1
                    continue
                unanswered += 1

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    return answered, unanswered


@click.command()
@click.option("--quick", is_flag=True, help="A small run for CI (well under a minute).")
@click.option("--names", type=int, default=None, help="Unique names to send in total.")
@click.option("--cache-size", type=int, default=None, help="The resolver's --cache-size.")
@click.option("--concurrency", type=int, default=32, show_default=True)
def main(quick: bool, names: int | None, cache_size: int | None, concurrency: int) -> None:
    names = names or (6_000 if quick else 60_000)
    cache_size = cache_size or (1_000 if quick else 10_000)
    steps = 6
    internet = TestInternet.default()
    with tempfile.TemporaryDirectory() as tmp, internet.in_thread():
        hints = internet.write_hints(Path(tmp) / "test.hints")
        command = [sys.executable, "-m", "resolver", "serve", "--listen", f"127.0.0.1:{PORT}"]
        command += ["--root-hints", str(hints), "--query-loopback", "--cache-size"]
        command += [str(cache_size)]
        daemon = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        try:
            assert daemon.stdout is not None
            if "listening on" not in daemon.stdout.readline():
                raise SystemExit("the resolver did not start")
            print(f"cache size {cache_size} entries; {names} unique names, {concurrency} at once")
            print(f"{'names sent':>12} {'RSS MiB':>9} {'answered':>9} {'lost':>6} {'qps':>7}")
            print(f"{0:>12} {resident_kib(daemon.pid) / 1024:>9.1f}")
            sent = 0
            for _ in range(steps):
                batch = names // steps
                started = time.monotonic()
                answered, lost = trio.run(flood, batch, concurrency)
                elapsed = time.monotonic() - started
                sent += batch
                rss = resident_kib(daemon.pid) / 1024
                print(f"{sent:>12} {rss:>9.1f} {answered:>9} {lost:>6} {batch / elapsed:>7.0f}")
            print(f"upstream queries counted by the test internet: {internet.total_queries()}")
        finally:
            daemon.terminate()
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()


if __name__ == "__main__":
    main()
