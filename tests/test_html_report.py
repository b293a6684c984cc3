"""report.html: self-contained, escaped, and rendered by headless Chromium with its plots and no console errors.

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it). The screenshot is kept in the test's tmp
folder (pytest prints where with -s), so a person can look at the page as rendered.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from harness.baselines import load_baselines
from harness.report import report_to_json_dict, write_report
from harness.types import (
    CurvePoint,
    FrontierBudget,
    FrontierPoint,
    MatchedBudget,
    RunManifest,
    RunReport,
    SamplingSpec,
)

HOSTILE = "Let *x* be | y.</pre></details><script>alert(1)</script><img src=x onerror=alert(2)> \\boxed{7} & done"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def make_report() -> RunReport:
    """A report with every part the page shows: Maj@k, truncated and forced curves, frontier, matched rows."""
    points = []
    for k in range(1, 9):
        acc = 0.2 + 0.15 * np.log2(k) / 3
        points.append(CurvePoint("maj", k, None, 1500.0 * k, acc, acc - 0.1, acc + 0.1, 0.05, 0.02))
        for cap, scale in ((512, 0.3), (1024, 0.6)):
            points.append(CurvePoint("truncated", k, cap, cap * 0.9 * k, acc * scale, 0.0, acc * scale + 0.1, 0.7, 0.7))
            points.append(CurvePoint("forced", k, cap, cap * k, acc * (scale + 0.2), 0.0, acc * scale + 0.15, 0.7, 0.3))
    frontier = (FrontierPoint("forced", 512, 1, 512.0, 0.1, 0.0, 0.2), FrontierPoint("maj", None, 1, 1500.0, 0.2, 0.1, 0.3),
                FrontierPoint("maj", None, 8, 12000.0, 0.35, 0.25, 0.45))
    mix = FrontierBudget(3000.0, True, 0.23, 0.13, 0.33, frontier[1], frontier[2], 0.142857, "")
    matched = (MatchedBudget("o1-mini (O1-Journey API run)", 9903.0, 0.7, 0.33, 0.23, 0.43, True, "frontier", "mix"),
               MatchedBudget("s1-32B <b>budget</b> forcing", 100000.0, 0.5, None, None, None, False, "frontier",
                             "not reached"))
    samples = tuple({"problem_id": f"2024-I-{i}", "sample_index": j, "extracted": "7" if j else HOSTILE,
                     "vote_key": "7", "correct": j == 1, "status": "ok", "reason": "", "output_tokens": 1234,
                     "finish_reason": "stop", "text": HOSTILE * 3} for i in range(1, 4) for j in range(2))
    manifest = RunManifest(
        model="tiny <qwen>", backend="transformers", sampling=SamplingSpec(max_tokens=4096), samples_per_problem=8,
        benchmark="aime24", benchmark_version="aime24-v1", benchmark_hash="h" * 64, prompt_name="default",
        prompt_version="1", prompt_template="{}", prompt_hash="p" * 64, grader_version="0.1.0")
    return RunReport(manifest, 30, 8, tuple(points), (), status_counts={"ok": 230, "no_answer": 10},
                     interpolation_rule="linear in tokens", samples=samples, frontier=frontier,
                     frontier_budgets=(mix,), matched=matched, extras={"frontier_rule": "upper envelope"})


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html")
    paths = write_report(make_report(), out, load_baselines(benchmark="aime24"))
    assert paths["html"] == out / "report.html" and paths["frontier"] == out / "frontier.png"
    return paths["html"]


def test_page_is_self_contained_and_escaped(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert "Content-Security-Policy" in text and "script-src" not in text and "default-src 'none'" in text
    assert "<script" not in text and "onerror=" not in text.replace("onerror=alert", "")  # only escaped copies
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "&lt;b&gt;budget&lt;/b&gt;" in text
    srcs = re.findall(r'src="([^"]*)"', text)
    assert len(srcs) == 2 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(href|src)="(https?:)?//', text)  # nothing fetched from the network
    for needle in ("Matched budgets (headline)", "o1-mini (O1-Journey API run)", "33.0% [23.0, 43.0]", "not reached",
                   "Frontier over token caps", "Winning mix", "Capped curves", "Sample browser", "Conditions",
                   "0.1.0", "Truncated"):
        assert needle in text, needle


def test_report_json_gains_frontier_and_matched(page: Path) -> None:
    data = report_to_json_dict(make_report())
    assert [set(p) >= {"cap", "k", "tokens_per_problem", "accuracy"} for p in data["frontier"]] == [True] * 3
    assert data["frontier"][0] == {"method": "forced", "cap": 512, "k": 1, "tokens_per_problem": 512.0, "accuracy": 0.1,
                                   "ci_low": 0.0, "ci_high": 0.2}
    assert data["matched"][0] == {"baseline": "o1-mini (O1-Journey API run)", "baseline_tokens": 9903.0,
                                  "baseline_accuracy": 0.7, "accuracy": 0.33, "ci_low": 0.23, "ci_high": 0.43,
                                  "reached": True, "curve": "frontier", "note": "mix"}
    assert data["frontier_budgets"][0]["mix"].startswith("86% k=1 uncapped + 14% k=8 uncapped")
    json.dumps(data, allow_nan=False)


def _chromium(args: list[str], user_dir: Path) -> subprocess.CompletedProcess[str]:
    base = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
            f"--user-data-dir={user_dir}", "--enable-logging=stderr", "--v=0"]
    return subprocess.run(base + args, check=False, capture_output=True, text=True, timeout=120)


def console_messages(stderr: str) -> list[str]:
    """Chromium logs every console message of the page (errors, CSP violations, failed loads) as CONSOLE lines;
    the page has no script, so any such line is a problem."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def _pixels_near(image: np.ndarray, rgb: tuple[int, int, int], tol: int = 40) -> int:
    colours = (image[..., :3] * 255 if image.dtype != np.uint8 else image[..., :3]).astype(int)
    return int((np.abs(colours - np.array(rgb)).sum(axis=-1) < tol).sum())


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium; .ci/run does)")
def test_chromium_renders_page_with_plots_and_no_console_errors(page: Path, tmp_path: Path) -> None:
    import matplotlib.image

    shot = tmp_path / "report.png"
    result = _chromium([f"--screenshot={shot}", "--window-size=1200,2400", page.as_uri()], tmp_path / "profile")
    assert shot.is_file(), result.stderr[-2000:]
    assert console_messages(result.stderr) == []
    image = matplotlib.image.imread(str(shot))
    assert image.shape[:2] == (2400, 1200)
    # The run's curve (#1f77b4) and the frontier (#d62728) must be on screen: the plots rendered.
    assert _pixels_near(image, (31, 119, 180)) > 500 and _pixels_near(image, (214, 39, 40)) > 300
    print(f"screenshot: {shot}")

    # The same page with a probe script (and without the CSP that forbids it) reports each image's size.
    probe = tmp_path / "probe.html"
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text(encoding="utf-8"))
    script = ("<script>addEventListener('load',function(){var r=[];document.querySelectorAll('img').forEach("
              "function(i){r.push(i.complete?i.naturalWidth:0)});document.title='PROBE'+JSON.stringify(r)})</script>")
    probe.write_text(text.replace("</body>", script + "</body>"), encoding="utf-8")
    dom = _chromium(["--virtual-time-budget=5000", "--dump-dom", probe.as_uri()], tmp_path / "profile2")
    found = re.search(r"<title>PROBE(\[[^<]*\])</title>", dom.stdout)
    assert found, dom.stdout[:500]
    assert json.loads(found.group(1)) == [1200, 1200]  # both plots decoded at their full width


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium; .ci/run does)")
def test_console_check_catches_a_broken_page(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="img-src data:">'
                   '</head><body><img src="missing.png"><p>x</p></body></html>', encoding="utf-8")
    result = _chromium([f"--screenshot={tmp_path / 'bad.png'}", "--window-size=400,300", bad.as_uri()],
                       tmp_path / "profile")
    assert console_messages(result.stderr), "a blocked image must show up as a console message"
