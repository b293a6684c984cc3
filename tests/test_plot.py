"""plot.py: valid PNG/SVG files, baselines filtered and labelled, the k-axis fallback, label placement."""

from __future__ import annotations

import math
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.baselines import Baseline, load_baselines
from harness.plot import _build_figure, plot_curves
from harness.types import CurvePoint, Method, RunManifest, RunReport, SamplingSpec


def run(benchmark: str = "aime24", tokens: float | None = 1500.0, model: str = "tiny-qwen") -> RunReport:
    """A realistic report: k = 1..16, Maj@k rising 0.1 -> 0.3, pass@k faster, CIs +-0.1, one capped point."""
    points = []
    for k in range(1, 17):
        curves: tuple[tuple[Method, float], ...] = (("maj", 0.1 + 0.2 * math.log2(k) / 4),
                                                    ("pass", 0.1 + 0.6 * math.log2(k) / 4))
        for method, acc in curves:
            points.append(CurvePoint(method, k, None, None if tokens is None else tokens * k, acc,
                                     max(0.0, acc - 0.1), min(1.0, acc + 0.1), 0.05, 0.02))
    points.append(CurvePoint("truncated", 1, 1024, 900.0, 0.05, 0.0, 0.15, 0.6, 0.6))
    manifest = RunManifest(
        model=model, backend="vllm", sampling=SamplingSpec(max_tokens=4096), samples_per_problem=16,
        benchmark=benchmark, benchmark_version="1", benchmark_hash="h" * 64, prompt_name="boxed",
        prompt_version="1", prompt_template="{question}", prompt_hash="p" * 64, grader_version="1",
    )
    note = None if tokens is not None else "the imported file has no token counts"
    return RunReport(manifest, 30, 16, tuple(points), (), token_note=note)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_png_is_valid_and_plausible(tmp_path: Path) -> None:
    out = plot_curves([run()], tmp_path / "sub" / "curve.png", baselines=load_baselines())
    assert out == tmp_path / "sub" / "curve.png"
    assert png_size(out) == (1200, 870)  # 8 x 5.8 inches at 150 dpi
    assert 20_000 < out.stat().st_size < 2_000_000


def svg_text(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    ET.fromstring(text.encode("utf-8"))  # well-formed XML, or this raises
    return text


def test_svg_labels_baselines_of_the_same_benchmark_only(tmp_path: Path) -> None:
    aime = svg_text(plot_curves([run()], tmp_path / "aime.svg", baselines=load_baselines()))
    assert "tiny-qwen · aime24 · Maj@k, k=1–16" in aime
    for series in ("o1-mini (O1-Journey API run)", "o1-preview (O1-Journey API run)", "O1-Journey Ours-72B",
                   "s1-32B budget forcing"):
        assert series in aime
    assert "DeepSeek-R1" not in aime  # reported without tokens: nowhere to put it on this axis
    assert "Average output tokens per problem" in aime
    math500 = svg_text(plot_curves([run("math500", 650.0)], tmp_path / "m.svg", baselines=load_baselines()))
    assert "o1-mini (O1-Journey API run)" in math500 and "s1-32B budget forcing" not in math500
    # Same input, same bytes (no creation date in the file).
    again = plot_curves([run("math500", 650.0)], tmp_path / "m2.svg", baselines=load_baselines())
    assert again.read_bytes() == (tmp_path / "m.svg").read_bytes()


def test_several_runs_and_methods(tmp_path: Path) -> None:
    svg = svg_text(plot_curves([run(), run(tokens=2500.0, model="ckpt-2000")], tmp_path / "two.svg",
                               methods=("maj", "pass", "truncated"), title="Two checkpoints"))
    for label in ("tiny-qwen · aime24 · pass@k, k=1–16", "ckpt-2000 · aime24 · Maj@k, k=1–16",
                  "ckpt-2000 · aime24 · truncated, k=1", "Two checkpoints"):
        assert label in svg
    assert "published results" not in svg  # no baselines given


def test_no_token_axis_plots_accuracy_by_k(tmp_path: Path) -> None:
    svg = svg_text(plot_curves([run(tokens=None)], tmp_path / "k.svg", baselines=load_baselines()))
    assert "Samples per problem, k" in svg
    assert "Baselines not shown" in svg
    assert "o1-mini" not in svg


def test_crowded_labels_stay_inside_and_apart() -> None:
    crowded = [Baseline(f"series number {i}", "m", "aime24", "accuracy", 0.40 + 0.005 * i, 4000.0 + 50 * i, 1,
                        "", "", "primary") for i in range(5)]
    crowded.append(Baseline("right edge series with a long name", "m", "aime24", "accuracy", 0.99, 30000.0, 1,
                            "", "", "primary"))
    fig = _build_figure([run()], crowded, ("maj",), None)
    from matplotlib.text import Text

    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    ax = fig.axes[0]
    frame = ax.get_window_extent(renderer)
    boxes = [Text.get_window_extent(t, renderer) for t in ax.texts]
    assert len(boxes) == 6
    for box in boxes:
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b)


@pytest.mark.parametrize(
    ("kwargs", "name", "pattern"),
    [
        ({}, "curve.pdf", "must end in one of"),
        ({"methods": ("best",)}, "c.png", "unknown method"),
        ({"methods": ("forced",)}, "c.png", "nothing to plot"),
    ],
)
def test_errors(tmp_path: Path, kwargs: dict[str, object], name: str, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        plot_curves([run()], tmp_path / name, **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / name).exists()


def test_one_benchmark_per_figure(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one benchmark per figure"):
        plot_curves([run(), run("math500")], tmp_path / "c.png")
