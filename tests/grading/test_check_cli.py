"""``tts-eval check``: one pair with both parses, and ``--cases IN.jsonl --out OUT.jsonl`` in input order."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from harness.cli import cli


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_single_check_prints_both_parses_and_the_verdict() -> None:
    code, out = _run("check", "4:30 \\text{ p.m.}", "\\text{4:30 p.m.}")
    assert code == 0
    assert out.splitlines() == [
        "answer: normalised '16:30' -> time 16:30",
        "gold:   normalised '16:30' -> time 16:30",
        "EQUAL (ok): identical after normalisation",
    ]
    code, out = _run("check", "(2, 1)", "(1,2)")
    assert code == 1
    assert "interval/tuple (value 2, value 1)" in out and "NOT EQUAL (ok): element 1 differs" in out
    code, out = _run("check", "26", "025", "--answer-type", "integer")
    assert code == 1 and "NOT EQUAL (ok): different integer" in out
    code, out = _run("check", "9!!!!", "5", "--deadline", "0.5")
    assert code == 1 and "NOT EQUAL (timeout)" in out


def test_cases_file_is_graded_in_order(tmp_path: Path) -> None:
    rows = [
        {"pred": "So the answer is \\boxed{\\frac12}.", "gold": "0.5", "pred_kind": "full_response"},
        {"pred": "0.5", "gold": "\\frac{1}{2}"},
        {"pred": "I could not finish this one", "gold": "3", "pred_kind": "full_response"},
        {"pred": "025", "gold": "25", "answer_type": "integer"},
        {"pred": "@@", "gold": "3"},
        {"pred": "\\boxed{1}, \\boxed{2}", "gold": "\\{1, 2\\}", "pred_kind": "full_response"},
        {"pred": "\\boxed{1}, \\boxed{2}", "gold": "\\{1, 2\\}"},  # a bare answer: not extracted
    ]
    cases, out = tmp_path / "in.jsonl", tmp_path / "sub" / "out.jsonl"
    cases.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    code, output = _run("check", "--cases", str(cases), "--out", str(out), "--workers", "1")
    assert code == 0, output
    assert "5 equal, 2 not equal (ok 5, no_answer 1, unparsable 1)" in output
    results = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["equal"], r["status"], r["answer"]) for r in results] == [
        (True, "ok", "\\frac12"), (True, "ok", "0.5"), (False, "no_answer", None), (True, "ok", "025"),
        (False, "unparsable", "@@"), (True, "ok", "1, 2"), (True, "ok", "\\boxed{1}, \\boxed{2}")]
    assert all(set(r) == {"equal", "status", "answer", "reason"} and r["reason"] for r in results)


def test_check_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"pred": "1", "gold": "1"}\n{"pred": 3}\n', encoding="utf-8")
    code, out = _run("check", "--cases", str(bad), "--out", str(tmp_path / "o.jsonl"))
    assert code == 1 and f"{bad}:2: each row needs string fields 'pred' and 'gold'" in out
    assert not (tmp_path / "o.jsonl").exists()
    bad.write_text("not json\n", encoding="utf-8")
    code, out = _run("check", "--cases", str(bad), "--out", str(tmp_path / "o.jsonl"))
    assert code == 1 and ":1: not JSON" in out
    code, out = _run("check", "--cases", str(bad))
    assert code == 2 and "--out" in out
    code, out = _run("check", "1")
    assert code == 2 and "give PRED and GOLD" in out
