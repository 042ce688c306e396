"""The figures as a table for the terminal, as JSON, and as PNG plots (matplotlib, optional)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

from resolver.hitrate.figures import Figures


class PlotError(Exception):
    """matplotlib is missing (an optional extra): the message says how to install it."""


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def mebibytes(size: int) -> str:
    if size < 1 << 20:
        return f"{size / 1024:,.1f} KiB"
    return f"{size / (1 << 20):,.1f} MiB"


def duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(
            cell.rjust(width) if i else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in [header, *rows]
    ]


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def text(figures: Figures) -> str:
    """The table on stdout."""
    lines = [
        f"trace: {figures.queries:,} client queries over {duration(figures.duration)} from "
        f"{_stamp(figures.start)}; {figures.distinct_names:,} names, "
        f"{figures.distinct_questions:,} distinct questions (name and type; a name that does "
        "not exist counts once)",
    ]
    settings = figures.settings
    lines.append(
        f"cache rules: max_ttl {settings['max_ttl']} s, min_ttl {settings['min_ttl']} s, "
        f"max_negative_ttl {settings['max_negative_ttl']} s, failure_ttl "
        f"{settings['failure_ttl']} s"
    )
    lines.append(f"model: {figures.model}")
    lines.append("")
    lines.append(
        f"infinite-cache bound: {percent(figures.bound)} "
        f"({figures.bound_hits:,} of {figures.queries:,} queries can be answered from a cache)"
    )
    if figures.default_caps_bound is not None:
        lines.append(f"  with the default TTL caps: {percent(figures.default_caps_bound)}")
    header = ["cache size (entries)", "memory", "hit rate", "below bound"]
    capped = figures.default_caps_bound is not None
    prefetch = bool(settings["prefetch"])
    stale = bool(settings["serve_stale"])
    if capped:
        header.append("default caps")
    if prefetch:
        header += ["prefetch", "refreshes"]
    if stale:
        header += ["serve-stale", "stale answers"]
    rows = []
    for size in figures.sizes:
        row = [
            f"{size.entries:,}",
            mebibytes(size.memory_bytes),
            percent(size.hit_rate),
            f"{100 * (figures.bound - size.hit_rate):.2f} pts",
        ]
        if capped:
            row.append(percent(size.default_caps_hit_rate))
        if prefetch:
            row += [percent(size.prefetch_hit_rate), f"{size.prefetches or 0:,}"]
        if stale:
            row += [percent(size.stale_hit_rate), f"{size.stale_answers or 0:,}"]
        rows.append(row)
    lines += table(header, rows)
    lines.append("")
    lines.append(
        f"NXDOMAIN: {figures.nxdomain_queries:,} queries ({percent(figures.nxdomain_share)}) "
        f"for {figures.nxdomain_names:,} names; aggressive negative caching (RFC 8020) would "
        f"answer {figures.aggressive_negative_saved:,} more from the cache: bound "
        f"{percent(figures.bound_with_aggressive_negative)}"
    )
    lines.append("")
    lines.append("busiest names:")
    lines += table(
        ["name", "queries", "share"],
        [[busy.name, f"{busy.queries:,}", percent(busy.share)] for busy in figures.busiest],
    )
    lines.append("")
    lines.append("hour by hour (hit rate):")
    sizes = [str(size.entries) for size in figures.sizes]
    hour_rows = [
        [_stamp(hour.start), f"{hour.queries:,}", percent(hour.bound)]
        + [percent(hour.sizes[size]) for size in sizes]
        for hour in figures.hourly
    ]
    lines += table(["hour", "queries", "bound", *[f"{int(s):,}" for s in sizes]], hour_rows)
    notes = figures.notes
    skipped = [
        f"{notes[key]:,} {label}"
        for key, label in (
            ("malformed", "malformed (skipped)"),
            ("not_client_dns", "not client DNS (skipped)"),
            ("unanswered", "unanswered queries (not replayed)"),
            ("responses_without_query", "responses without their query (replayed)"),
            ("tcp_segments_skipped", "TCP segments out of order (skipped)"),
            ("ip_fragments_skipped", "IP fragments (skipped)"),
            ("iterative_rd0", "RD=0 messages, the resolver's iterative queries (skipped)"),
            ("resolver_upstream_queries", "the resolver's own upstream queries (skipped)"),
            ("retransmitted_queries", "retransmitted or twice-captured queries (counted once)"),
            ("duplicate_responses", "duplicate responses (counted once)"),
            ("truncated_responses", "TC=1 responses (the TCP retry counts)"),
            ("dnstap_other_messages", "dnstap messages other than client ones (skipped)"),
        )
        if notes[key]
    ]
    if skipped:
        lines.append("")
        lines.append("input: " + ", ".join(skipped))
    messages = notes["messages"]
    assert isinstance(messages, list)
    lines += [f"note: {message}" for message in messages]
    return "\n".join(lines) + "\n"


def _points(rate: float | None) -> float:
    """Percentage points to plot; an hour without queries is a gap in the line."""
    return math.nan if rate is None else 100 * rate


def write_json(figures: Figures, path: Path) -> None:
    path.write_text(json.dumps(asdict(figures), indent=2) + "\n", encoding="utf-8")


def plot(figures: Figures, path: Path) -> list[Path]:
    """Two PNGs: hit rate against cache size with the bound at `path`, and hit rate hour by
    hour next to it (`NAME-hourly.png`). `PlotError` if matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        raise PlotError(
            "--plot needs the Python package matplotlib: pip install 'resolver[plot]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5), dpi=100)
    entries = [size.entries for size in figures.sizes]
    axes.plot(entries, [100 * s.hit_rate for s in figures.sizes], marker="o", label="hit rate")
    if figures.settings["prefetch"]:
        axes.plot(
            entries,
            [100 * (s.prefetch_hit_rate or 0) for s in figures.sizes],
            marker="^",
            label="with prefetch",
        )
    if figures.settings["serve_stale"]:
        axes.plot(
            entries,
            [100 * (s.stale_hit_rate or 0) for s in figures.sizes],
            marker="v",
            label="with serve-stale (expired entries kept)",
        )
    if figures.default_caps_bound is not None:
        axes.plot(
            entries,
            [100 * (s.default_caps_hit_rate or 0) for s in figures.sizes],
            marker="s",
            linestyle=":",
            label="default TTL caps",
        )
    axes.axhline(
        100 * figures.bound,
        color="tab:red",
        linestyle="--",
        label=f"infinite-cache bound ({percent(figures.bound)})",
    )
    axes.axvline(
        figures.distinct_questions,
        color="grey",
        linewidth=0.8,
        label=f"distinct questions ({figures.distinct_questions:,})",
    )
    axes.set_xscale("log")
    axes.set_xlabel("cache size (entries)")
    axes.set_ylabel("hit rate (%)")
    axes.set_ylim(0, 100)
    axes.set_title(f"{figures.queries:,} queries over {duration(figures.duration)}", fontsize=9)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)

    hourly_path = path.with_name(f"{path.stem}-hourly{path.suffix or '.png'}")
    figure, axes = plt.subplots(figsize=(8, 5), dpi=100)
    x = [hour.hour for hour in figures.hourly]
    axes.plot(
        x,
        [_points(hour.bound) for hour in figures.hourly],
        color="tab:red",
        linestyle="--",
        label="infinite-cache bound",
    )
    for size in figures.sizes:
        axes.plot(
            x,
            [_points(hour.sizes[str(size.entries)]) for hour in figures.hourly],
            marker=".",
            label=f"{size.entries:,} entries",
        )
    axes.set_xlabel(f"hour since {_stamp(figures.start)}")
    axes.set_ylabel("hit rate (%)")
    axes.set_ylim(0, 100)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(hourly_path)
    plt.close(figure)
    return [path, hourly_path]
