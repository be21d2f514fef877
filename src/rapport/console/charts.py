"""Charts drawn on the server as SVG: no script, no library, readable without colour."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

from markupsafe import Markup

WIDTH, HEIGHT, PAD = 640, 200, 36


def _scale(value: float, low: float, high: float, out_low: float, out_high: float) -> float:
    if high == low:
        return (out_low + out_high) / 2
    return out_low + (value - low) * (out_high - out_low) / (high - low)


def _number(value: float) -> str:
    return f"{value:.4g}"


def line_chart(buckets: Sequence[dict[str, Any]], *, label: str, unit: str | None = None) -> Markup:
    """One reading over time: the average as a line, the range (min to max) as a band around it."""
    points = [b for b in buckets if b.get("avg") is not None]
    title = escape(f"{label}{f' ({unit})' if unit else ''}")
    if not points:
        return Markup(f'<p class="empty">No readings of {title} in this period.</p>')
    times = [b["at"].timestamp() if isinstance(b["at"], datetime) else float(b["at"]) for b in points]
    lows = [float(b.get("min", b["avg"])) for b in points]
    highs = [float(b.get("max", b["avg"])) for b in points]
    low, high = min(lows), max(highs)
    t0, t1 = min(times), max(times)

    def x(t: float) -> float:
        return _scale(t, t0, t1, PAD, WIDTH - 8)

    def y(v: float) -> float:
        return _scale(v, low, high, HEIGHT - 24, 10)

    line = " ".join(f"{x(t):.1f},{y(float(b['avg'])):.1f}" for t, b in zip(times, points, strict=True))
    band = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(times, highs, strict=True))
    band += " " + " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in reversed(list(zip(times, lows, strict=True))))
    first = points[0]["at"].strftime("%d %b %H:%M")
    last = points[-1]["at"].strftime("%d %b %H:%M")
    summary = (
        f"{title}: from {_number(low)} to {_number(high)}, {len(points)} periods between {first} and {last}"
    )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{summary}" '
        f'preserveAspectRatio="none"><title>{summary}</title>'
        f'<polygon class="band" points="{band}"/>'
        f'<polyline class="line" points="{line}"/>'
        f'<text x="2" y="14" class="axis">{_number(high)}</text>'
        f'<text x="2" y="{HEIGHT - 26}" class="axis">{_number(low)}</text>'
        f'<text x="{PAD}" y="{HEIGHT - 6}" class="axis">{escape(first)}</text>'
        f'<text x="{WIDTH - 8}" y="{HEIGHT - 6}" class="axis" text-anchor="end">{escape(last)}</text>'
        "</svg>"
    )


def heat_colour(share: float) -> str:
    """A colour from pale (little) to deep (much) for a share between 0 and 1."""
    share = max(0.0, min(1.0, share))
    light = 94 - share * 60
    return f"hsl(18, 85%, {light:.0f}%)"


def heat_map(cells: Sequence[tuple[str, float, str]], *, columns: int = 3, label: str) -> Markup:
    """The zones of a store as tiles coloured by ``value``; each tile says its name and its figure.

    ``cells`` are (zone name, value, text shown)."""
    if not cells:
        return Markup('<p class="empty">No zone visits in this period.</p>')
    top = max(value for _, value, _ in cells) or 1.0
    size, gap = 150, 8
    rows = (len(cells) + columns - 1) // columns
    width, height = columns * (size + gap), rows * (size // 2 + gap)
    tiles = []
    for index, (name, value, text) in enumerate(cells):
        col, row = index % columns, index // columns
        tx, ty = col * (size + gap), row * (size // 2 + gap)
        shade = "zone dark" if value / top > 0.6 else "zone"
        tiles.append(
            f"<g><title>{escape(name)}: {escape(text)}</title>"
            f'<rect x="{tx}" y="{ty}" width="{size}" height="{size // 2}" rx="6" '
            f'fill="{heat_colour(value / top)}" stroke="#888"/>'
            f'<text x="{tx + 8}" y="{ty + 24}" class="{shade}">{escape(name)}</text>'
            f'<text x="{tx + 8}" y="{ty + 48}" class="{shade}">{escape(text)}</text></g>'
        )
    return Markup(
        f'<svg class="heat" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>{''.join(tiles)}</svg>"
    )


def bar_chart(values: Sequence[tuple[str, float]], *, label: str) -> Markup:
    """Values over days as bars, the highest named; for visits per day."""
    if not values:
        return Markup('<p class="empty">No visits in this period.</p>')
    top = max(v for _, v in values) or 1.0
    step = (WIDTH - PAD) / len(values)
    bars = []
    for index, (name, value) in enumerate(values):
        height = (HEIGHT - 30) * value / top
        x = PAD + index * step
        bars.append(
            f'<rect class="bar" x="{x:.1f}" y="{HEIGHT - 20 - height:.1f}" width="{max(step - 1, 1):.1f}" '
            f'height="{height:.1f}"><title>{escape(name)}: {_number(value)}</title></rect>'
        )
    summary = f"{label}: {len(values)} days, at most {_number(top)} a day"
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(summary)}" '
        f'preserveAspectRatio="none"><title>{escape(summary)}</title>{"".join(bars)}'
        f'<text x="2" y="14" class="axis">{_number(top)}</text>'
        f'<text x="{PAD}" y="{HEIGHT - 4}" class="axis">{escape(values[0][0])}</text>'
        f'<text x="{WIDTH - 4}" y="{HEIGHT - 4}" class="axis" text-anchor="end">'
        f"{escape(values[-1][0])}</text>"
        "</svg>"
    )
