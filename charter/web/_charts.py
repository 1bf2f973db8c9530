"""Server-rendered SVG charts: no JavaScript, no external assets, readable by screen readers.

Each chart is an `<svg role="img">` with a title and a description that states the figures,
so the numbers are available without seeing the lines. Styling comes from classes in the
local stylesheet (the content security policy forbids inline styles).
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from charter.web._sources import ScoreSeries

WIDTH, HEIGHT = 480, 200
LEFT, RIGHT, TOP, BOTTOM = 40, 12, 12, 28


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if value % 1 else str(int(value))


def line_chart(series: ScoreSeries, chart_id: str) -> Markup:
    """A line of score (0..1) against iteration for one run."""
    points = sorted(series.points, key=lambda p: p.iteration)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    first = points[0].iteration if points else 0
    last = points[-1].iteration if points else 1
    span = max(1, last - first)

    def x(iteration: int) -> float:
        return LEFT + plot_w * (iteration - first) / span

    def y(score: float) -> float:
        return TOP + plot_h * (1.0 - score)

    title = escape(f"{series.label}: score by iteration")
    desc = escape(
        "; ".join(f"iteration {p.iteration}: {p.score:.3f}" for p in points) or "no points"
    )
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-t">{title}</title>',
        f'<desc id="{chart_id}-d">{desc}</desc>',
    ]
    for tick in (0.0, 0.5, 1.0):
        ty = y(tick)
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{ty:.1f}" x2="{WIDTH - RIGHT}" y2="{ty:.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end">'
            f"{_fmt(tick)}</text>"
        )
    for p in points:
        parts.append(
            f'<text class="tick" x="{x(p.iteration):.1f}" y="{HEIGHT - 8}" '
            f'text-anchor="middle">{p.iteration}</text>'
        )
    if points:
        coords = " ".join(f"{x(p.iteration):.1f},{y(p.score):.1f}" for p in points)
        parts.append(f'<polyline class="series" points="{coords}"/>')
        for p in points:
            parts.append(
                f'<circle class="dot" cx="{x(p.iteration):.1f}" cy="{y(p.score):.1f}" r="3">'
                f"<title>iteration {p.iteration}: {p.score:.3f}</title></circle>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


BAR_H, LABEL_W = 22, 170


def gap_chart(
    title: str, bars: Sequence[tuple[str, float, float, float, bool]], chart_id: str
) -> Markup:
    """Horizontal bars of gaps (0..1) with their 95% CIs as whiskers; `bars` are (label,
    gap, low, high, flagged). Flagged bars carry the class `flagged` and say so."""
    plot_w = WIDTH - LABEL_W - RIGHT
    height = TOP + BAR_H * max(1, len(bars)) + BOTTOM

    def x(value: float) -> float:
        return LABEL_W + plot_w * min(1.0, max(0.0, value))

    desc = escape(
        "; ".join(
            f"{label}: gap {gap:.3f} [{low:.3f}, {high:.3f}]" + (" (flagged)" if flagged else "")
            for label, gap, low, high, flagged in bars
        )
        or "no gaps"
    )
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">{desc}</desc>',
    ]
    bottom = TOP + BAR_H * max(1, len(bars))
    for tick in (0.0, 0.5, 1.0):
        tx = x(tick)
        parts.append(
            f'<line class="grid" x1="{tx:.1f}" y1="{TOP}" x2="{tx:.1f}" y2="{bottom}"/>'
            f'<text class="tick" x="{tx:.1f}" y="{bottom + 16}" text-anchor="middle">'
            f"{_fmt(tick)}</text>"
        )
    for n, (label, gap, low, high, flagged) in enumerate(bars):
        top = TOP + BAR_H * n
        mid = top + BAR_H / 2
        kind = "bar flagged" if flagged else "bar"
        parts.append(
            f'<text class="tick" x="{LABEL_W - 6}" y="{mid + 4:.1f}" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect class="{kind}" x="{LABEL_W}" y="{top + 4}" width="{x(gap) - LABEL_W:.1f}" '
            f'height="{BAR_H - 8}"><title>{escape(label)}: {gap:.3f}</title></rect>'
            f'<line class="whisker" x1="{x(low):.1f}" y1="{mid:.1f}" x2="{x(high):.1f}" '
            f'y2="{mid:.1f}"/>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
