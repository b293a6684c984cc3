"""The scaling plot: accuracy (%) against average output tokens per problem, with published baselines.

matplotlib is imported inside ``plot_curves`` so that ``import harness.report`` stays light. The figure is
drawn on its own Agg canvas (no pyplot), so plotting never changes the backend of a caller's session.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from harness.baselines import Baseline
from harness.types import CurvePoint, RunReport

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Annotation

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = (".png", ".svg")
_METHOD_LABEL = {"maj": "Maj@k", "pass": "pass@k", "mean": "mean accuracy", "truncated": "truncated",
                 "forced": "budget-forced", "rm": "RM@k"}
_METHOD_LINE: dict[str, Any] = {"maj": "-", "pass": "--", "mean": ":", "truncated": "-.", "forced": (0, (5, 1, 1, 1)),
                                "rm": (0, (3, 1))}
_RUN_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#17becf", "#8c564b")
# Baselines get dark or warm colours and filled markers other than the runs' circles.
_BASELINE_STYLES = (("s", "#222222"), ("D", "#ff7f0e"), ("^", "#e377c2"), ("v", "#7f7f7f"),
                    ("P", "#bcbd22"), ("X", "#8c564b"), ("*", "#6a3d9a"), ("h", "#b15928"))


def plot_curves(
    reports: Sequence[RunReport],
    out: Path,
    *,
    baselines: Sequence[Baseline] = (),
    methods: Sequence[str] = ("maj",),
    title: str | None = None,
    references: Sequence[Baseline] = (),
    y_range: tuple[float, float] | None = None,
) -> Path:
    """Draw the scaling curves of one or more runs of one benchmark and write them to ``out``.

    Takes run reports (all of one benchmark), the output path (``.png`` or ``.svg``), baselines (only rows of
    the runs' benchmark with ``avg_output_tokens`` are drawn, as labelled markers; a series with several
    points is joined by a thin dotted line), the methods to draw per run (a line with markers and a shaded
    95% CI band each) and an optional title. Uncapped methods are drawn over k; capped methods (truncated,
    forced) over their caps at the smallest k.

    When any run has no token counts the x axis is k (samples per problem) instead, and baselines are left
    out with a note on the figure: they are placed by tokens, and putting them at their k would compare runs
    at unequal cost. Exception: a run whose plotted points are all capped (a cap sweep without counts) is
    placed at its caps, drawn with left-pointing markers and labelled as an upper bound of its tokens.
    ``references``: results without a token count, drawn as labelled horizontal lines (see plot_extra).
    ``y_range``: accuracy axis limits in percent (default 0-100, so figures compare at a glance).

    Returns ``out``. Raises ValueError for an unknown suffix, runs of different benchmarks, or nothing to plot.
    """
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise ValueError(f"plot file must end in one of {FORMATS}, got {out.name!r}")
    fig = _build_figure(reports, baselines, methods, title, references)
    if y_range is not None:
        low, high = y_range
        if not 0 <= low < high <= 100:
            raise ValueError(f"y range must satisfy 0 <= low < high <= 100 (percent), got {y_range}")
        ax = fig.axes[0]
        ax.set_ylim(low, high)
        ax.set_yticks([t for t in range(0, 101, 2 if high - low <= 20 else 10) if low <= t <= high])
    import matplotlib

    out.parent.mkdir(parents=True, exist_ok=True)
    # SVG: text stays text (searchable, editable, smaller) and no creation date, so the same report gives
    # the same file.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "tts-eval"}):
        fig.savefig(out, format=out.suffix.lower()[1:],
                    metadata={"Date": None} if out.suffix.lower() == ".svg" else None)
    return out


def _build_figure(reports: Sequence[RunReport], baselines: Sequence[Baseline], methods: Sequence[str],
                  title: str | None, references: Sequence[Baseline] = ()) -> Figure:
    """The figure of ``plot_curves`` (same arguments, same errors), drawn but not saved."""
    if not reports:
        raise ValueError("nothing to plot: pass at least one run report")
    unknown = [m for m in methods if m not in _METHOD_LABEL]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(_METHOD_LABEL)}")
    benchmarks = sorted({r.manifest.benchmark for r in reports})
    if len(benchmarks) > 1:
        raise ValueError(f"one benchmark per figure, got {benchmarks}; plot each benchmark separately")
    benchmark = benchmarks[0]
    bounded = any(_cap_bounded(r, methods) for r in reports)
    by_tokens = all(_has_tokens(r, methods) or _cap_bounded(r, methods) for r in reports)

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 5.8), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs: list[float] = []
    for i, report in enumerate(reports):
        for j, method in enumerate(methods):
            # One run: a colour per method (line styles alone are hard to tell apart); several: one per run.
            colour = _RUN_COLOURS[(j if len(reports) == 1 else i) % len(_RUN_COLOURS)]
            xs += _draw_run(ax, report, method, colour, by_tokens)
    if not xs:
        raise ValueError(f"nothing to plot: the runs have no points for methods {list(methods)}")
    placed = [b for b in baselines if b.benchmark.lower() == benchmark.lower() and b.avg_output_tokens]
    labels: list[Annotation] = []
    if by_tokens:
        xs += [float(b.avg_output_tokens or 0) for b in placed]
    _format_axes(ax, xs, by_tokens)
    if bounded and by_tokens:
        ax.set_xlabel("Average output tokens per problem (log\u2082 scale)\n\u25c0 = a max_tokens cap: an upper "
                      "bound of the tokens of a run without token counts")
    if references:
        from harness.plot_extra import draw_references

        draw_references(ax, [b for b in references if b.benchmark.lower() == benchmark.lower()])
    if by_tokens:
        labels = _draw_baselines(ax, placed)
        if labels:
            # One legend entry says what the labelled markers are, rather than one entry per series.
            ax.plot([], [], linestyle="none", marker="s", color="#888888", markersize=5,
                    label="published results at their reported average output tokens (labelled)")
    elif placed:
        ax.text(0.99, 0.01, "Baselines not shown: they are placed by average output tokens,\n"
                "and this run has no token counts.", transform=ax.transAxes, ha="right", va="bottom",
                fontsize=7, color="#555555")
    noun = "average output tokens per problem" if by_tokens else "samples per problem (k)"
    ax.set_title(title or f"{benchmark}: accuracy vs. {noun}", fontsize=11)
    names = ax.get_legend_handles_labels()[1]
    wide = max((len(n) for n in names), default=0) > 50  # two columns of long names overflow the figure
    fig.legend(loc="outside lower center", ncols=1 if len(names) < 3 or wide else 2, fontsize=8, frameon=False)
    _place_labels(fig, ax, labels)
    return fig


def _has_tokens(report: RunReport, methods: Sequence[str]) -> bool:
    """True when every point of the plotted methods has a token count."""
    points = [p for p in report.points if p.method in methods]
    return report.token_note is None and all(p.tokens_per_problem is not None for p in points)


def _cap_bounded(report: RunReport, methods: Sequence[str]) -> bool:
    """True when the plotted points have no token counts but all have a cap (their tokens are at most it)."""
    points = [p for p in report.points if p.method in methods]
    return bool(points) and all(p.tokens_per_problem is None and p.cap is not None for p in points)


def _x(p: CurvePoint, by_tokens: bool) -> float:
    """Where a point goes: its tokens, else its cap (an upper bound), on a token axis; else its k."""
    if not by_tokens:
        return float(p.k)
    return float(p.tokens_per_problem if p.tokens_per_problem is not None else (p.cap or 0))


def _curve(report: RunReport, method: str) -> list[CurvePoint]:
    """The points of one line: uncapped points over k, or for a capped method its caps at the smallest k."""
    points = [p for p in report.points if p.method == method]
    uncapped = sorted((p for p in points if p.cap is None), key=lambda p: p.k)
    if uncapped:
        return uncapped
    if not points:
        return []
    k_min = min(p.k for p in points)
    return sorted((p for p in points if p.k == k_min), key=lambda p: p.cap or 0)


def _draw_run(ax: Axes, report: RunReport, method: str, colour: str, by_tokens: bool) -> list[float]:
    """Draw one run's line and CI band for ``method``; return the x values drawn (empty when none)."""
    points = _curve(report, method)
    if by_tokens and any(_x(p, True) <= 0 for p in points):
        # A log axis has no place for zero tokens (a run of empty outputs); say so rather than crash.
        log.warning("%s %s: points with 0 output tokens are left off the log-scale plot", report.manifest.model,
                    method)
        points = [p for p in points if _x(p, True) > 0]
    if not points:
        return []
    bound = by_tokens and any(p.tokens_per_problem is None for p in points)
    xs = [_x(p, by_tokens) for p in points]
    ks = sorted({p.k for p in points})
    k_text = f"k={ks[0]}" if len(ks) == 1 else f"k={ks[0]}\u2013{ks[-1]}"
    caps = sorted({p.cap for p in points if p.cap is not None})
    if caps:
        k_text += f", cap {caps[0]:,}" if len(caps) == 1 else f", caps {caps[0]:,}\u2013{caps[-1]:,}"
    name = _METHOD_LABEL[method]
    if bound:  # samples generated at each cap, without token counts: a max_tokens sweep
        name, k_text = "max_tokens sweep", k_text + " (x = cap: tokens unknown, at most the cap)"
    label = f"{report.manifest.model} \u00b7 {report.manifest.benchmark} \u00b7 {name}, {k_text}"
    ax.fill_between(xs, [100 * p.ci_low for p in points], [100 * p.ci_high for p in points], color=colour,
                    alpha=0.15, linewidth=0)
    ax.plot(xs, [100 * p.accuracy for p in points], linestyle=_METHOD_LINE[method], marker="<" if bound else "o",
            markersize=5 if bound else 3.5,
            color=colour, linewidth=1.6, label=label, zorder=3)
    return xs


def _format_axes(ax: Axes, xs: list[float], by_tokens: bool) -> None:
    """Log2 x axis with plain-number ticks at powers of two (and 1.5x when the range is short); y 0-100 %."""
    lo, hi = min(xs), max(xs)
    # A quarter of an octave of room on each side keeps end markers and labels off the frame.
    left, right = lo / 2**0.3, hi * 2**0.45
    if not by_tokens:
        left = min(left, 0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlim(left, right)
    ticks = [2.0**e for e in range(math.floor(math.log2(left)), math.ceil(math.log2(right)) + 1)]
    if len([t for t in ticks if left <= t <= right]) < 3:
        ticks = sorted(ticks + [1.5 * t for t in ticks])
    ticks = [t for t in ticks if left <= t <= right]
    ax.set_xticks(ticks, [f"{t:,.0f}" for t in ticks])
    ax.xaxis.set_minor_locator(_null_locator())
    ax.set_ylim(0, 100)
    ax.set_yticks(range(0, 101, 10))
    ax.set_ylabel("Accuracy (%)")
    ax.set_xlabel("Average output tokens per problem (log\u2082 scale)" if by_tokens
                  else "Samples per problem, k (log\u2082 scale; the run has no token counts)")
    ax.grid(True, which="major", color="#dddddd", linewidth=0.7)
    ax.set_axisbelow(True)


def _null_locator() -> Any:
    from matplotlib.ticker import NullLocator

    return NullLocator()


def _draw_baselines(ax: Axes, baselines: Sequence[Baseline]) -> list[Annotation]:
    """Draw each baseline series as markers (joined by a dotted line when it has several points) and name it
    next to its highest-token point; return the name labels, to be placed by ``_place_labels``."""
    series: dict[str, list[Baseline]] = defaultdict(list)
    for b in baselines:
        series[b.series].append(b)
    labels = []
    for i, (name, rows) in enumerate(series.items()):
        marker, colour = _BASELINE_STYLES[i % len(_BASELINE_STYLES)]
        rows = sorted(rows, key=lambda b: float(b.avg_output_tokens or 0))
        xs = [float(b.avg_output_tokens or 0) for b in rows]
        ys = [100 * b.accuracy for b in rows]
        ax.plot(xs, ys, linestyle=":" if len(rows) > 1 else "none", linewidth=0.8, marker=marker, markersize=6,
                color=colour, markeredgecolor="white", markeredgewidth=0.6, zorder=4)
        # A translucent white box keeps the name legible where it has to cross a curve or a CI band.
        # A leader line (shown only when the label ends up away from the marker's side) ties name to point.
        label = ax.annotate(name, (xs[-1], ys[-1]), xytext=(8, 0), textcoords="offset points", ha="left",
                            va="center", fontsize=7.5, color=colour, zorder=5,
                            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
                            arrowprops={"arrowstyle": "-", "color": colour, "linewidth": 0.6, "shrinkA": 0,
                                        "shrinkB": 4})
        # Labels are placed inside the axes later; the layout must not make room for where they start.
        label.set_in_layout(False)
        labels.append(label)
    return labels


# Label positions tried in order, as (dx, dy) in points from the marker: beside, then above/below, then
# diagonally further out (with a leader line). The alignment follows the direction, so the text never
# covers its own marker.
_CANDIDATES = [(8, 0), (-8, 0), (0, 9), (0, -9), (10, 12), (10, -12), (-10, 12), (-10, -12),
               (10, 22), (10, -22), (-10, 22), (-10, -22), (0, 24), (0, -24)]


def _place_labels(fig: Figure, ax: Axes, labels: list[Annotation]) -> None:
    """Put each label at the first candidate position that stays inside the axes and overlaps neither an
    earlier label nor a drawn line or marker; where none is free, at the least-overlapping one."""
    if not labels:
        return
    import numpy as np
    from matplotlib.text import Text

    fig.draw_without_rendering()  # runs the layout, so display coordinates are final
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = ax.get_window_extent(renderer)
    obstacles = _line_obstacles(fig, ax)
    placed: list[tuple[float, float, float, float]] = []

    def move(label: Annotation, dx: float, dy: float) -> tuple[float, float, float, float]:
        label.xyann = (dx, dy)
        label.set_horizontalalignment("left" if dx > 0 else "right" if dx < 0 else "center")
        label.set_verticalalignment("center" if dy == 0 else "bottom" if dy > 0 else "top")
        e = Text.get_window_extent(label, renderer)  # the text alone, without the leader line
        pad = 2.0  # pixels, for the white box around the text
        return (e.x0 - pad, e.y0 - pad, e.x1 + pad, e.y1 + pad)

    for label in labels:
        best: tuple[float, int, int] | None = None
        for dx, dy in _CANDIDATES:
            x0, y0, x1, y1 = move(label, dx, dy)
            outside = (max(0.0, frame.x0 - x0) + max(0.0, x1 - frame.x1) + max(0.0, frame.y0 - y0)
                       + max(0.0, y1 - frame.y1))
            crossings = int(np.sum((obstacles[:, 0] < x1) & (x0 < obstacles[:, 2])
                                   & (obstacles[:, 1] < y1) & (y0 < obstacles[:, 3])))
            clashes = sum(b[0] < x1 and x0 < b[2] and b[1] < y1 and y0 < b[3] for b in placed)
            # Leaving the axes is worst, then covering another label, then crossing a curve or marker.
            penalty = 1000.0 * outside + 100.0 * clashes + crossings
            if best is None or penalty < best[0]:
                best = (penalty, dx, dy)
            if penalty == 0:
                break
        assert best is not None
        placed.append(move(label, best[1], best[2]))
        if label.arrow_patch is not None:
            label.arrow_patch.set_visible(best[2] != 0)
    # The layout was computed with the labels in place; freeze it so saving does not move the axes again.
    fig.set_layout_engine("none")


def _line_obstacles(fig: Figure, ax: Axes) -> Any:
    """Display-space boxes (an N x 4 array of x0, y0, x1, y1) covering every marker and every drawn line."""
    import numpy as np

    boxes = [np.zeros((0, 4))]
    for line in ax.get_lines():
        xy = ax.transData.transform(np.column_stack(line.get_data()).astype(float))
        pts = [xy]
        if line.get_linestyle() not in ("None", "none", ""):
            for (x0, y0), (x1, y1) in itertools.pairwise(xy):
                n = max(2, int(np.hypot(x1 - x0, y1 - y0) / 3))  # a point every 3 pixels
                pts.append(np.column_stack([np.linspace(x0, x1, n), np.linspace(y0, y1, n)]))
        allp = np.vstack(pts)
        r = max(2.0, float(line.get_markersize()) / 2 * fig.dpi / 72.0)  # marker radius in pixels
        boxes.append(np.column_stack([allp[:, 0] - r, allp[:, 1] - r, allp[:, 0] + r, allp[:, 1] + r]))
    return np.vstack(boxes)
