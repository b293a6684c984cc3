"""report.py: exact curve.csv / report.json for a hand-built report, the Markdown page, and escaping."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from harness.report import (
    REQUIRED_KEYS,
    md_text,
    read_report_json,
    report_markdown,
    report_to_json_dict,
    write_report,
)
from harness.types import BudgetPoint, CurvePoint, RunManifest, RunReport, SamplingSpec

HOSTILE = "Let *x* be | y.\n\n</details><script>alert(1)</script></pre> so \\boxed{7} & done"

# Given out of order on purpose: the files list them by method, then cap, then k.
POINTS = (
    CurvePoint("pass", 2, None, 2000.0, 0.75, 0.5, 1.0),
    CurvePoint("truncated", 1, 512, 480.5, 0.125, 0.0, 0.25, 0.5, 0.5),
    CurvePoint("maj", 2, None, 2000.0, 1 / 3, 0.0, 2 / 3, 0.25, None),
    CurvePoint("maj", 1, None, 1000.0, 0.5, 0.25, 0.75, 0.25, 0.0),
    CurvePoint("pass", 1, None, 1000.0, 0.5, 0.25, 0.75),
)
ORDERED = (POINTS[3], POINTS[2], POINTS[4], POINTS[0], POINTS[1])
BUDGETS = (
    BudgetPoint(1500.0, "maj", True, 5 / 12, 0.125, 0.7083333333333334, 1, 2),
    BudgetPoint(5000.0, "maj", False, None, None, None, note="beyond the largest k=2 (2,000 tokens)"),
)

EXPECTED_CSV = """\
method,k,cap,tokens_per_problem,accuracy,ci_low,ci_high,truncation_rate,no_answer_rate
maj,1,,1000.00,0.500000,0.250000,0.750000,0.250000,0.000000
maj,2,,2000.00,0.333333,0.000000,0.666667,0.250000,
pass,1,,1000.00,0.500000,0.250000,0.750000,,
pass,2,,2000.00,0.750000,0.500000,1.000000,,
truncated,1,512,480.50,0.125000,0.000000,0.250000,0.500000,0.500000
"""


SPEC = SamplingSpec(max_tokens=2048, temperature=0.6, stop=("</s>",), seed=7)


def manifest(sampling: SamplingSpec | None = SPEC, benchmark: str = "aime24") -> RunManifest:
    return RunManifest(
        model="tiny-qwen", backend="vllm", sampling=sampling, samples_per_problem=2, benchmark=benchmark,
        benchmark_version="2024.1", benchmark_hash="b" * 24 + "0123456789abcdef" * 2 + "c" * 8,
        prompt_name="boxed", prompt_version="3", prompt_template="{question}", prompt_hash="p1" * 32,
        grader_version="grader-5", engine_settings=MappingProxyType({"tensor_parallel_size": 4}),
        package_versions={"vllm": "0.6.3"}, git_commit="deadbeefcafe0123456789", git_dirty=True,
    )


def make_report(**changes: Any) -> RunReport:
    base = RunReport(
        manifest=manifest(), n_problems=2, samples_per_problem=2, points=POINTS, budgets=BUDGETS,
        status_counts={"ok": 3, "no_answer": 1}, n_boot=200, ci_seed=11,
        interpolation_rule="Linear in tokens between the two neighbouring k.",
        samples=({"problem_id": "2024-I-1", "sample_index": 1, "extracted": "a|b<i>", "vote_key": "k|1",
                  "correct": False, "status": "ok", "output_tokens": 812, "finish_reason": "length",
                  "text": HOSTILE},),
    )
    return dataclasses.replace(base, **changes)


def test_curve_csv_exact(tmp_path: Path) -> None:
    paths = write_report(make_report(), tmp_path, baselines=())
    assert paths["csv"] == tmp_path / "curve.csv"
    assert paths["csv"].read_text(encoding="utf-8") == EXPECTED_CSV


def test_report_json_round_trips_exactly(tmp_path: Path) -> None:
    paths = write_report(make_report(), tmp_path, baselines=())
    data = read_report_json(paths["json"])
    assert set(REQUIRED_KEYS) <= set(data)
    assert data["points"] == [dataclasses.asdict(p) for p in ORDERED]
    assert data["points"][1]["accuracy"] == 1 / 3  # full precision, not the CSV's 6 decimals
    assert data["budgets"] == [dataclasses.asdict(b) for b in BUDGETS]
    assert (data["benchmark"], data["n_problems"], data["samples_per_problem"]) == ("aime24", 2, 2)
    assert data["token_note"] is None
    assert data["interpolation_rule"] == "Linear in tokens between the two neighbouring k."
    assert data["ci"] == {"method": "bootstrap over problems, 95% percentile", "n_boot": 200, "seed": 11}
    assert data["status_counts"] == {"no_answer": 1, "ok": 3}
    m = data["manifest"]
    assert m["sampling"] == {"max_tokens": 2048, "temperature": 0.6, "top_p": 0.95, "top_k": -1,
                             "stop": ["</s>"], "seed": 7}
    assert m["engine_settings"] == {"tensor_parallel_size": 4}
    assert m["package_versions"] == {"vllm": "0.6.3"}
    assert (m["git_commit"], m["git_dirty"], m["model_revision"]) == ("deadbeefcafe0123456789", True, None)
    assert data["samples"][0]["text"] == HOSTILE
    assert report_to_json_dict(make_report()) == data


def test_json_keys_sorted_and_files_deterministic(tmp_path: Path) -> None:
    first = write_report(make_report(), tmp_path / "a", baselines=())
    second = write_report(make_report(), tmp_path / "b", baselines=())
    text = first["json"].read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    for name in ("csv", "json", "markdown"):
        assert first[name].read_bytes() == second[name].read_bytes()


def test_read_report_json_errors(tmp_path: Path) -> None:
    good = report_to_json_dict(make_report())
    cases: dict[str, tuple[Any, str]] = {
        "missing_key": ({k: v for k, v in good.items() if k != "budgets"}, r"lacks key\(s\) \['budgets'\]"),
        "bad_point": ({**good, "points": [{"method": "maj"}]}, r"points\[0\] lacks key\(s\) \['k', 'cap'"),
        "not_object": ([1, 2], "expected a JSON object"),
    }
    for name, (content, pattern) in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(content), encoding="utf-8")
        with pytest.raises(ValueError, match=pattern) as info:
            read_report_json(path)
        assert "\n" not in str(info.value)
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="is not valid JSON"):
        read_report_json(tmp_path / "broken.json")
    with pytest.raises(ValueError, match="report not found"):
        read_report_json(tmp_path / "absent.json")


def test_markdown_sections() -> None:
    md = report_markdown(make_report())
    assert md.startswith("# tiny-qwen on aime24\n")
    assert "![curve](curve.png)" in md
    # Conditions: hashes cut to 12 characters, commit to 12 and marked dirty.
    assert "| Prompt | boxed v3 (hash p1p1p1p1p1p1) |" in md
    assert "| Benchmark | aime24 v2024.1 (hash bbbbbbbbbbbb) |" in md
    assert "p1" * 7 not in md
    assert "| Git commit | deadbeefcafe (dirty) |" in md
    assert "| max_tokens | 2048 |" in md and "| temperature | 0.6 |" in md and "| Seed | 7 |" in md
    # Budgets: a reached one with its CI and neighbours, a not-reached one with its note.
    assert "| 1,500 | maj | 41.7% [12.5, 70.8] | k=1–2 |  |" in md
    assert "| 5,000 | maj | not reached |  | beyond the largest k=2 (2,000 tokens) |" in md
    # Curve by k; capped points get their own table.
    assert "| 2 | 2,000 | 33.3% [0.0, 66.7] | 75.0% [50.0, 100.0] | 25.0% | – |" in md
    assert "| truncated | 512 | 1 | 480 | 12.5% [0.0, 25.0] | 50.0% | 50.0% |" in md
    assert "| ok | 3 | 75.0% |" in md and "| no\\_answer | 1 | 25.0% |" in md
    assert "**Interpolation between curve points.** Linear in tokens between the two neighbouring k.\n" in md
    assert "200 resamples, seed 11" in md
    assert "no token axis" not in md


def test_markdown_escapes_hostile_model_output() -> None:
    md = report_markdown(make_report())
    assert "<script>" not in md and "</details><script>" not in md
    assert "&lt;/details&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;/pre&gt;" in md
    # The page's own tags are balanced: the model's </details> and </pre> were not taken as ours.
    assert md.count("<details>") == md.count("</details>") == 1
    assert md.count("<pre>") == md.count("</pre>") == 1
    row = next(line for line in md.splitlines() if line.startswith("| 2024"))
    assert row == "| 2024-I-1 | 1 | a\\|b&lt;i&gt; | k\\|1 | wrong | 812 | length |"
    # Seven cells: splitting on unescaped pipes gives 7 + 2 empty ends.
    assert len([c for c in row.replace("\\|", "").split("|")]) == 9


def test_long_sample_text_shows_start_and_end() -> None:
    text = "S" * 300 + "M" * 50 + "<E>" * 100 + "\\boxed{42}"
    sample = {"problem_id": "p", "sample_index": 0, "extracted": "42", "vote_key": "42", "correct": True,
              "status": "ok", "output_tokens": None, "finish_reason": None, "text": text}
    md = report_markdown(make_report(samples=(sample,)))
    assert f"<summary>Text (first and last 300 of {len(text)} characters)</summary>" in md
    pre = md.split("<pre>\n")[1].split("\n</pre>")[0]
    tail = text[-300:].replace("<", "&lt;").replace(">", "&gt;")
    assert pre == "S" * 300 + f"\n[… {len(text) - 600} characters …]\n" + tail
    assert "| p | 0 | 42 | 42 | correct | – | – |" in md


def test_md_text() -> None:
    assert md_text("a|b") == "a\\|b"
    assert md_text("<b>*x*</b>") == "&lt;b&gt;\\*x\\*&lt;/b&gt;"
    assert md_text("\\frac{1}{2}  $x$\nnext") == "\\\\frac{1}{2} \\$x\\$ next"
    assert md_text("abcdefghij", limit=5) == "abcd…"


def test_no_token_axis_report(tmp_path: Path) -> None:
    points = tuple(dataclasses.replace(p, tokens_per_problem=None) for p in POINTS if p.cap is None)
    budgets = (BudgetPoint(1000.0, "maj", False, None, None, None, note="the run has no token counts"),)
    report = make_report(points=points, budgets=budgets, token_note="the replay file has no token counts")
    paths = write_report(report, tmp_path)  # default baselines: loaded, then left off the k-axis plot
    md = paths["markdown"].read_text(encoding="utf-8")
    assert "**This run has no token axis:** the replay file has no token counts." in md
    assert "accuracy by k" in md
    assert "Tokens/problem |" not in md.split("## Curve")[1].split("##")[0]
    assert "| 1,000 | maj | not reached |  | the run has no token counts |" in md
    assert paths["csv"].read_text(encoding="utf-8").splitlines()[1] == "maj,1,,,0.500000,0.250000,0.750000,0.250000,0.000000"
    assert read_report_json(paths["json"])["token_note"] == "the replay file has no token counts"
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unstated_sampling_and_empty_parts() -> None:
    report = make_report(manifest=manifest(sampling=None), budgets=(), samples=(), status_counts={})
    md = report_markdown(report)
    assert "| temperature | not stated by the source |" in md
    assert "No budgets were requested." in md
    assert "No samples were included in this report." in md
    assert report_to_json_dict(report)["manifest"]["sampling"] is None


def test_nan_is_refused_not_written(tmp_path: Path) -> None:
    bad = make_report(points=(CurvePoint("maj", 1, None, float("nan"), 0.5, 0.25, 0.75),))
    with pytest.raises(ValueError, match="NaN or infinite"):
        write_report(bad, tmp_path, baselines=())
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_importing_report_does_not_import_matplotlib() -> None:
    code = "import sys, harness.report, harness.plot; sys.exit('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1], check=False)
    assert result.returncode == 0
