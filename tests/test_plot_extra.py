"""Plot additions: caps in the legend, a cap sweep placed at its caps as an upper bound, reference lines for
published results without tokens, the frontier plot, and `tts-eval plot` over real runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.baselines import load_baselines
from harness.plot import _build_figure
from harness.plot_extra import plot_frontier, reference_rows, report_methods
from harness.types import CurvePoint, FrontierPoint, RunManifest, RunReport


def manifest(model: str = "m") -> RunManifest:
    return RunManifest(model=model, backend="replay", sampling=None, samples_per_problem=1, benchmark="aime24",
                       benchmark_version="1", benchmark_hash="h" * 64, prompt_name="p", prompt_version="1",
                       prompt_template="", prompt_hash="", grader_version="1")


def sweep() -> RunReport:
    points = tuple(CurvePoint("truncated", 1, cap, None, acc, 0.0, min(1.0, acc + 0.1))
                   for cap, acc in ((1024, 0.0), (2048, 0.033), (4096, 0.1), (8192, 0.3)))
    return RunReport(manifest("DeepScaleR"), 30, 1, points, (), token_note="no token counts")


def test_sweep_is_drawn_at_its_caps_as_an_upper_bound() -> None:
    fig = _build_figure([sweep()], load_baselines(benchmark="aime24"), ("truncated",), None)
    ax = fig.axes[0]
    line = next(l for l in ax.get_lines() if "DeepScaleR" in str(l.get_label()))
    assert list(line.get_xdata()) == [1024, 2048, 4096, 8192] and line.get_marker() == "<"
    assert "max_tokens sweep, k=1, caps 1,024\u20138,192" in str(line.get_label())
    assert "upper bound" in ax.get_xlabel()
    # baselines are placed (the axis is tokens), with their names
    assert any("o1-mini" in t.get_text() for t in ax.texts)


def test_reference_lines_for_results_without_tokens() -> None:
    rows = reference_rows(load_baselines(), "aime24")
    assert {(b.model, b.metric) for b in rows} == {("o1", "pass@1"), ("o1", "cons@64"), ("o1-preview", "pass@1"),
                                                    ("o1-preview", "cons@64"), ("o1-mini", "pass@1")}
    assert len(reference_rows(load_baselines(), "aime24", "all")) > len(rows)
    assert reference_rows(load_baselines(), "aime24", "none") == []
    with pytest.raises(ValueError):
        reference_rows(load_baselines(), "aime24", "some")
    fig = _build_figure([sweep()], (), ("truncated",), None, references=rows)
    ax = fig.axes[0]
    flat = sorted(l.get_ydata()[0] for l in ax.get_lines() if len(set(l.get_ydata())) == 1 and len(l.get_ydata()) == 2)
    assert flat == pytest.approx([44.6, 56.7, 70.0, 74.4, 83.3])
    assert any(t.get_text() == "o1 cons@64: 83.3%" for t in ax.texts)


def test_report_methods_and_frontier_plot(tmp_path: Path) -> None:
    points = tuple(CurvePoint("maj", k, None, 1000.0 * k, 0.1 * k, 0.0, 0.2 * k) for k in (1, 2, 3)) + tuple(
        CurvePoint("forced", k, 512, 500.0 * k, 0.05 * k, 0.0, 0.1 * k) for k in (1, 2, 3))
    front = (FrontierPoint("forced", 512, 1, 500.0, 0.05, 0.0, 0.1), FrontierPoint("maj", None, 3, 3000.0, 0.3, 0.0, 0.6))
    report = RunReport(manifest(), 30, 3, points, (), frontier=front)
    assert report_methods(report) == ("maj", "forced") and report_methods(sweep()) == ("truncated",)
    out = plot_frontier(report, tmp_path / "f.png", baselines=load_baselines(benchmark="aime24"))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    with pytest.raises(ValueError, match="no frontier"):
        plot_frontier(sweep(), tmp_path / "g.png")
