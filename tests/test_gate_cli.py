"""`tts-eval gate` and `tts-eval gate-input` through the CLI: exit codes, gate.json, JUnit, step summary,
the committed reference runs (no model needed), run folders, and (slow) a real tiny-model run against the
committed baseline, as the CI example does."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from harness.cli import cli
from harness.gate_input import GateInput, read_gate_input, write_gate_input
from harness.grading import GRADER_VERSION
from harness.run import RunRequest, run_sampling
from harness.scaling import ProblemCounts
from harness.types import SamplingSpec
from tests.fakes import fake_factory

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "results" / "reference"
DS_2048 = REFERENCE / "deepscaler-1.5b-aime24" / "max_tokens_2048.gate-input.json"
DS_8192 = REFERENCE / "deepscaler-1.5b-aime24" / "max_tokens_8192.gate-input.json"
TINY = REFERENCE / "tiny-aime24-subset6" / "gate-input.json"


def _gate(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[Result, dict[str, Any] | None]:
    out = tmp_path / "gate.json"
    if out.exists():
        out.unlink()
    result = CliRunner().invoke(cli, ["gate", *args, "--out", str(out), "--n-boot", "2000"],
                                env={"GITHUB_STEP_SUMMARY": "", **(env or {})})
    return result, json.loads(out.read_text()) if out.exists() else None


def _edited(tmp_path: Path, source: Path, name: str, **fields: Any) -> Path:
    data = json.loads(source.read_text())
    data.update(fields)
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_deepscaler_2048_cap_regresses_against_8192_at_one_sample(tmp_path: Path) -> None:
    result, data = _gate(tmp_path, "--baseline", str(DS_8192), "--candidate", str(DS_2048), "--k", "1")
    assert result.exit_code == 1, result.output
    assert data is not None and data["passed"] is False and data["status"] == "fail"
    (row,) = data["budgets"]
    # graded with the committed grader: 9 of 30 right at 8192 tokens, 1 of 30 at 2048, and no problem right only at 2048
    assert (row["k"], row["baseline"], row["candidate"]) == (1, pytest.approx(9 / 30), pytest.approx(1 / 30))
    assert row["delta"] == pytest.approx(-8 / 30) and row["ci_high"] < 0 and row["verdict"] == "fail"
    assert "FAIL (exit 1)" in result.output and "-26.7 [" in result.output
    reverse, data = _gate(tmp_path, "--baseline", str(DS_2048), "--candidate", str(DS_8192), "--k", "1")
    assert reverse.exit_code == 0 and data is not None and data["passed"] is True
    at_budget, data = _gate(tmp_path, "--baseline", str(DS_8192), "--candidate", str(DS_2048), "--budgets", "2k")
    assert at_budget.exit_code == 2 and "no token axis" in at_budget.output and "--k" in at_budget.output
    assert data is not None and data["budgets"][0]["verdict"] == "not reached"


def test_few_aime_problems_cannot_see_a_small_drop(tmp_path: Path) -> None:
    # Take right answers away from the 8192 run: losing 3 of its 9 (-10 pp) is inside the noise of 30
    # problems (a resample misses all three 4% of the time), losing 6 (-20 pp) is not.
    data = json.loads(DS_8192.read_text())
    right = [p for p in data["problems"] if p["correct_cluster"] is not None]
    verdicts = {}
    for lost in (3, 6):
        rows = [dict(p, correct_cluster=None, n_correct=0) if p in right[:lost] else p for p in data["problems"]]
        worse = _edited(tmp_path, DS_8192, f"lost{lost}.json", problems=rows)
        result, gate = _gate(tmp_path, "--baseline", str(DS_8192), "--candidate", str(worse), "--k", "1")
        assert gate is not None and gate["budgets"][0]["delta"] == pytest.approx(-lost / 30)
        verdicts[lost] = (result.exit_code, gate["budgets"][0]["mde"])
    assert verdicts[3][0] == 0 and verdicts[6][0] == 1
    assert verdicts[3][1] > 0.10  # the MDE says so: a 10 pp drop is below what 30 problems can detect


@pytest.mark.parametrize("field, value, text, name", [
    ("benchmark_version", "aime24-v2", "benchmark differs: baseline aime24 aime24-v1", "benchmark"),
    ("grader_version", "9.9.9", f"grader version differs: baseline {GRADER_VERSION}, candidate 9.9.9", "grader"),
])
def test_mismatched_versions_exit_2_with_one_line(tmp_path: Path, field: str, value: str, text: str,
                                                  name: str) -> None:
    other = _edited(tmp_path, DS_8192, "other.json", **{field: value})
    result, data = _gate(tmp_path, "--baseline", str(DS_8192), "--candidate", str(other), "--k", "1")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if text in line]
    assert len(lines) == 1 and f"--allow-mismatch {name}" in lines[0], result.output
    assert data is not None and data["status"] == "not comparable" and data["budgets"] == []
    allowed, data = _gate(tmp_path, "--baseline", str(DS_8192), "--candidate", str(other), "--k", "1",
                          "--allow-mismatch", name)
    assert allowed.exit_code == 0 and data is not None and data["mismatches"][0]["allowed"] is True


def _synthetic(tmp_path: Path, name: str, counts: list[ProblemCounts]) -> Path:
    gi = GateInput(source=name, model=name, benchmark="aime24", benchmark_version="aime24-v1",
                   benchmark_hash="ab" * 32, prompt_name="default", prompt_hash="cd" * 32,
                   grader_version=GRADER_VERSION, counts=tuple(counts))
    return write_gate_input(gi, tmp_path / f"{name}.json")


def test_files_junit_and_step_summary(tmp_path: Path) -> None:
    # Candidate: the same first answers, but its wrong answers agree, so its vote ties at k = 8 on 10 problems.
    base = [ProblemCounts(f"p{i}", 8, (4, 1, 1, 1, 1), 0, 0, 4, 100.0, 0) for i in range(30)]
    cand = [ProblemCounts(f"p{i}", 8, (4, 4), 0, 0, 4, 100.0, 0) if i < 10 else base[i] for i in range(30)]
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    junit = tmp_path / "out" / "gate.xml"
    result, data = _gate(tmp_path, "--baseline", str(_synthetic(tmp_path, "base", base)), "--candidate",
                         str(_synthetic(tmp_path, "cand", cand)), "--budgets", "100,800", "--junit", str(junit),
                         env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.exit_code == 1
    assert data is not None and [r["verdict"] for r in data["budgets"]] == ["pass", "fail"]
    assert [r["budget"] for r in data["budgets"]] == [100.0, 800.0]
    assert data["budgets"][1]["delta"] == pytest.approx(-10 * 0.5 / 30)
    assert data["settings"]["n_boot"] == 2000 and data["mde"] == data["budgets"][1]["mde"] > 0
    text = summary.read_text()
    assert text.startswith("earlier step\n## tts-eval gate: FAIL (exit 1)") and "| 800 tokens |" in text
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("2", "1")
    assert [c.get("name") for c in suite.iter("testcase")] == ["maj at 100 tokens", "maj at 800 tokens"]


@pytest.mark.parametrize("args, message", [
    (("--baseline", "nowhere", "--candidate", "nowhere", "--k", "1"), "nowhere: no such run folder"),
    (("--baseline", "report.json", "--candidate", "report.json", "--k", "1"), "is a report.json"),
    (("--baseline", "REF", "--candidate", "REF", "--budgets", "2q"), "--budgets: budget must look like"),
    (("--baseline", "REF", "--candidate", "REF"), "give --budgets"),
    (("--baseline", "REF", "--candidate", "REF", "--k", "x"), "--k: expected whole numbers"),
    (("--baseline", "REF", "--candidate", "REF", "--k", "1", "--allow-mismatch", "model"), "--allow-mismatch takes"),
    (("--baseline", "empty", "--candidate", "REF", "--k", "1"), "no run here"),
])
def test_user_errors_exit_2_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...],
                                        message: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "report.json").write_text(json.dumps({"points": [], "manifest": {}}))
    (tmp_path / "empty").mkdir()
    args = tuple(str(DS_2048) if a == "REF" else a for a in args)
    result = CliRunner().invoke(cli, ["gate", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("Error")]) == 1


def _fake_run(out: Path, seed: int, subset_seed: int = 0, answers: tuple[str, ...] = ("1", "2", "3")) -> Path:
    req = RunRequest(bench="aime24", backend="fake", model=f"fake-{seed}", samples=4,
                     spec=SamplingSpec(max_tokens=64, seed=seed), out=out, subset=6, subset_seed=subset_seed)
    run_sampling(req, fake_factory(answers=answers), progress=False)
    return out


def test_run_folders_export_and_the_committed_baseline(tmp_path: Path) -> None:
    # Candidate checkpoints here are fake engines that answer 480 (problem 2024-I-9's answer) or 1/2/3, run on
    # the same --subset 6 --subset-seed 0 as the committed tiny-model baseline: the CI example without a model.
    good = _fake_run(tmp_path / "good", seed=1, answers=("480",))
    wrong = _fake_run(tmp_path / "wrong", seed=2)
    export = CliRunner().invoke(cli, ["gate-input", str(good), "--out", str(tmp_path / "good.json"), "--no-progress"])
    assert export.exit_code == 0 and "6 problems, 4 samples each" in export.output
    assert [pc.problem_id for pc in read_gate_input(tmp_path / "good.json").counts] == \
        [pc.problem_id for pc in read_gate_input(TINY).counts]
    same, data = _gate(tmp_path, "--baseline", str(tmp_path / "good.json"), "--candidate", str(good), "--k", "1,4")
    assert same.exit_code == 0 and data is not None and data["problems"] == 6
    worse, data = _gate(tmp_path, "--baseline", str(good), "--candidate", str(wrong), "--k", "1", "--tolerance", "5")
    assert worse.exit_code == 0 and data is not None  # one problem of six: real, but not detectable
    assert data["budgets"][0]["delta"] == pytest.approx(-1 / 6)
    vs_reference, data = _gate(tmp_path, "--baseline", str(TINY), "--candidate", str(wrong), "--k", "1,4",
                               "--allow-mismatch", "grader")
    assert vs_reference.exit_code == 0, vs_reference.output
    other_subset = _fake_run(tmp_path / "other", seed=1, subset_seed=1)
    refused, _ = _gate(tmp_path, "--baseline", str(good), "--candidate", str(other_subset), "--k", "1")
    assert refused.exit_code == 2
    assert "problem set differs" in refused.output and "subset 6 of 30 problems, seed 1, by contest" in refused.output


@pytest.mark.slow
def test_tiny_model_checkpoint_gates_against_the_committed_baseline(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The CI example end to end: sample the fixed subset with the real transformers backend, then gate."""
    run = tmp_path / "candidate"
    result = CliRunner().invoke(cli, [
        "run", "--bench", "aime24", "--backend", "transformers", "--model", str(tiny_model_dir), "--samples", "4",
        "--max-tokens", "48", "--temperature", "0.8", "--top-p", "0.95", "--seed", "0", "--subset", "6",
        "--subset-seed", "0", "--out", str(run), "--no-progress", "--no-report"])
    assert result.exit_code == 0, result.output
    reference = read_gate_input(TINY)
    gate, data = _gate(tmp_path, "--baseline", str(TINY), "--candidate", str(run), "--budgets", "48,96",
                       "--k", "4", "--no-progress")
    if reference.grader_version != GRADER_VERSION:  # a newer grader: the gate must say so, not compare
        assert gate.exit_code == 2 and "grader version differs" in gate.output
        gate, data = _gate(tmp_path, "--baseline", str(TINY), "--candidate", str(run), "--budgets", "48,96",
                           "--k", "4", "--allow-mismatch", "grader")
    assert gate.exit_code == 0, gate.output
    assert data is not None and data["problems"] == 6 and [r["verdict"] for r in data["budgets"]] == ["pass"] * 3
