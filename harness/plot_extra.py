"""More pictures of a run: the frontier plot, reference lines for published results without a token count, and
which curves a report's main plot draws. matplotlib is imported inside the functions (see plot.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.baselines import Baseline
from harness.types import RunReport

if TYPE_CHECKING:
    from matplotlib.axes import Axes

_CAP_COLOURS = ("#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b", "#fd8d3c", "#e6550d")
_REF_COLOUR = "#7f7f7f"


def report_methods(report: RunReport) -> tuple[str, ...]:
    """The curves a report's main plot draws: Maj@k when it has uncapped points, then the capped curves."""
    have = {(p.method, p.cap is None) for p in report.points}
    methods = [m for m in ("maj",) if (m, True) in have]
    methods += [m for m in ("truncated", "forced") if (m, False) in have]
    methods += [m for m in ("rm",) if (m, True) in have]
    return tuple(methods) or ("maj",)


def reference_rows(baselines: Sequence[Baseline], benchmark: str, which: str = "o1") -> list[Baseline]:
    """Published results of ``benchmark`` without a token count, to draw as horizontal reference lines.

    ``which``: "o1" (OpenAI's o1 family only, so the plot stays readable), "all", or "none".
    Raises ValueError on another value.
    """
    if which not in ("o1", "all", "none"):
        raise ValueError(f"references must be o1, all or none, got {which!r}")
    rows = [b for b in baselines if b.benchmark.lower() == benchmark.lower() and not b.avg_output_tokens]
    if which == "none":
        return []
    if which == "o1":
        rows = [b for b in rows if b.model.lower().startswith("o1")]
    return rows


def draw_references(ax: Axes, rows: Sequence[Baseline]) -> None:
    """Dashed horizontal lines at each row's accuracy, named at the left edge; names are spread apart so
    that close values (70.0 and 74.4) stay legible."""
    if not rows:
        return
    ordered = sorted(rows, key=lambda b: b.accuracy)
    label_y: list[float] = []
    for b in ordered:
        y = 100 * b.accuracy
        ax.axhline(y, color=_REF_COLOUR, linestyle=(0, (4, 3)), linewidth=0.7, zorder=1)
        # At least 3.2 percentage points between label baselines (about one line of 7-point text).
        label_y.append(max(y, label_y[-1] + 3.2) if label_y else y)
    for b, y in zip(ordered, label_y):
        name = f"{b.model} {b.metric}: {100 * b.accuracy:.1f}%"
        ax.text(0.01, y + 0.6, name, transform=ax.get_yaxis_transform(), fontsize=6.5, color="#555555",
                va="bottom", ha="left", zorder=2,
                bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7})
    ax.plot([], [], color=_REF_COLOUR, linestyle=(0, (4, 3)), linewidth=0.7,
            label="published results without a token count (reference lines)")


def plot_frontier(report: RunReport, out: Path, *, baselines: Sequence[Baseline] = ()) -> Path:
    """Draw every (cap, k) point of the run, its frontier, and the baselines with token counts; write ``out``.

    Returns ``out`` (.png or .svg). Raises ValueError for another suffix or a report without a frontier.
    """
    out = Path(out)
    if out.suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"plot file must end in .png or .svg, got {out.name!r}")
    if not report.frontier:
        raise ValueError("the report has no frontier (it needs token counts); nothing to plot")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from harness.plot import _draw_baselines, _format_axes, _place_labels

    fig = Figure(figsize=(8.0, 5.8), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs: list[float] = []
    curves = sorted({(p.method, p.cap) for p in report.points if p.method in ("maj", "truncated", "forced")},
                    key=lambda mc: (mc[1] is None, mc[1] or 0, mc[0]))
    for i, (method, cap) in enumerate(curves):
        pts = sorted((p for p in report.points if (p.method, p.cap) == (method, cap) and p.tokens_per_problem),
                     key=lambda p: p.k)
        if not pts:
            continue
        colour = "#444444" if cap is None else _CAP_COLOURS[i % len(_CAP_COLOURS)]
        style = "-" if method != "truncated" else ":"
        label = f"Maj@k uncapped, k=1\u2013{pts[-1].k}" if cap is None else (
            f"{'forced' if method == 'forced' else 'truncated'} at cap {cap:,}, k=1\u2013{pts[-1].k}")
        px = [float(p.tokens_per_problem or 0) for p in pts]
        ax.plot(px, [100 * p.accuracy for p in pts], linestyle=style, marker="o", markersize=2.2, linewidth=0.9,
                color=colour, alpha=0.85, label=label, zorder=2)
        xs += px
    fx = [p.tokens_per_problem for p in report.frontier]
    ax.plot(fx, [100 * p.accuracy for p in report.frontier], color="#d62728", linewidth=2.2, marker="D",
            markersize=4.5, label="frontier (upper concave envelope)", zorder=3)
    placed = [b for b in baselines if b.benchmark.lower() == report.manifest.benchmark.lower() and b.avg_output_tokens]
    xs += fx + [float(b.avg_output_tokens or 0) for b in placed]
    _format_axes(ax, xs, True)
    labels = _draw_baselines(ax, placed)
    m = report.manifest
    ax.set_title(f"{m.model} \u00b7 {m.benchmark}: best accuracy per token budget over caps \u00d7 k", fontsize=10)
    fig.legend(loc="outside lower center", ncols=2, fontsize=7, frameon=False)
    _place_labels(fig, ax, labels)
    import matplotlib

    out.parent.mkdir(parents=True, exist_ok=True)
    svg = out.suffix.lower() == ".svg"
    # As plot_curves: SVG text stays text and carries no date, so the same report gives the same file.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "tts-eval"}):
        fig.savefig(out, format=out.suffix.lower()[1:], metadata={"Date": None} if svg else None)
    return out
