"""Normalisation, parsing and equivalence, in-process (the pure functions the workers run).

The golden table ``tests/data/grading_golden.jsonl`` is a per-category selection of the labelled corpus
``../shared/data/grading-cases.jsonl`` (each row cites its source test); the whole corpus is run by
``test_grader.py::test_whole_grading_corpus``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.grading.equivalence import REL_TOL, Verdict, compare
from harness.grading.extract import extract_answer
from harness.grading.parse import (
    Bracketed,
    Relation,
    Scalar,
    Unordered,
    Unparsable,
    exact_number,
    normalize,
    parse_answer,
    split_top_level,
)

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "grading_golden.jsonl"


def _golden_rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines() if line.strip()]


def corpus_side(text: str, kind: str, *, is_gold: bool) -> str | None:
    """How a corpus row is fed to the grader: bare answers as they are; whole responses through extraction
    (a gold solution without a box is used whole, as a benchmark's gold answer would be)."""
    if kind == "boxed_content":
        return text
    answer = extract_answer(text).answer
    return text if answer is None and is_gold else answer


@pytest.mark.parametrize("row", _golden_rows(), ids=lambda r: f"{r['case']}-{r['category']}")
def test_golden_cases(row: dict[str, Any]) -> None:
    pred = corpus_side(row["pred"], row["pred_kind"], is_gold=False)
    gold = corpus_side(row["gold"], row["gold_kind"], is_gold=True)
    assert gold is not None
    verdict = compare(pred, gold) if pred is not None else Verdict(False, "no_answer", "")
    assert verdict.equal is row["expect"], (row["source"], pred, gold, verdict)
    assert row["source"]  # every golden row cites where it comes from


def test_golden_table_covers_categories_and_both_labels() -> None:
    rows = _golden_rows()
    assert len({r["category"] for r in rows}) >= 25
    assert sum(not r["label"] for r in rows) >= 15  # false positives are judged too


@pytest.mark.parametrize(("raw", "expected"), [
    ("$1{,}000$", "1000"),
    ("1,000", "1000"),
    ("7,425,000", "7425000"),
    ("1 000", "1000"),
    ("(1,2)", "(1,2)"),
    ("32, 349", "32, 349"),
    ("11,\\! 111,\\! 111,\\! 100", "11111111100"),
    ("\\left( \\dfrac{1}{2}, \\tfrac12 \\right)", "( \\frac{1}{2}, \\frac{1}{2} )"),
    ("\\$10.", "10"),
    ("28 percent", "28\\%"),
    ("90^\\circ", "90^{\\circ}"),
    ("15\\mbox{ cm}^2", "15"),
    ("10 square units", "10"),
    ("12ab", "12ab"),
    ("3 pi", "3 pi"),
    ("x = 5+5+1 = 7 = 11", "x = 11"),
    ("1 = y = 0", "0"),
    ("x \\approx 11", "11"),
    ("\\frac{\\sqrt{3}}{3} \\approx 0.577", "\\frac{\\sqrt{3}}{3}"),
    ("x \\in [0, 1)", "[0, 1)"),
    ("6 \\text{ and } 8", "6, 8"),
    ("19, 46, and 82", "19, 46, 82"),
    ("08:34 \\text{P.M.}", "20:34"),
    ("\\mathrm{E}", "E"),
    ("\\\\frac{1}{2}", "\\frac{1}{2}"),
    ("x_1 \\ge 2", "x_{1} \\geq 2"),
    ("\\boxed{\\boxed{7}}", "7"),
])
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_split_top_level_respects_brackets() -> None:
    assert split_top_level("(1,2), [3,4), \\{5,6\\}", (",",)) == ["(1,2)", "[3,4)", "\\{5,6\\}"]
    assert split_top_level("f(a,b)", (",",)) == ["f(a,b)"]
    assert split_top_level("(1,2", (",",)) == ["(1,2"]  # unbalanced: whole


def test_parse_tree_shapes() -> None:
    assert isinstance(parse_answer("[0,1)"), Bracketed)
    assert parse_answer("[0,1)").open == "[" and parse_answer("[0,1)").close == ")"  # type: ignore[union-attr]
    assert isinstance(parse_answer("\\{1,2\\}"), Unordered)
    assert isinstance(parse_answer("1 \\pm \\sqrt{2}"), Unordered)
    rel = parse_answer("x \\geq 5")
    assert isinstance(rel, Relation) and rel.op == "<="  # flipped: 5 <= x
    scalar = parse_answer("0.5")
    assert isinstance(scalar, Scalar) and scalar.decimal and str(scalar.value) == "1/2"


def test_exact_number_is_exact_and_strict() -> None:
    assert str(exact_number("0.125")) == "1/8"
    assert str(exact_number("1.5E3")) == "1500"
    for bad in ("1e100000", "__import__('os')", "1.2.3", ""):
        with pytest.raises(Unparsable):
            exact_number(bad)


@pytest.mark.parametrize(("pred", "gold", "answer_type", "equal", "status"), [
    # AIME integers
    ("025", "25", "integer", True, "ok"),
    ("25", "025", "integer", True, "ok"),
    ("26", "25", "integer", False, "ok"),
    ("2.5", "25", "integer", False, "ok"),
    ("\\frac{50}{2}", "25", "integer", True, "ok"),
    ("x = 25", "25", "integer", True, "ok"),
    ("\\text{25}", "25", "integer", True, "ok"),
    ("\\text{twenty five}", "25", "integer", False, "unparsable"),
    ("25", "2.5", "integer", False, "unparsable"),  # a bad gold says so
    # text answers
    ("\\text{Evelyn}", "Evelyn", "text", True, "ok"),
    ("evelyn", "\\text{Evelyn}", "math", True, "ok"),
    ("\\text{(C)}", "C", "math", True, "ok"),
    ("\\text{Bob}", "\\text{Evelyn}", "math", False, "ok"),
    # numbers and tolerance
    ("0.3333333", "\\frac{1}{3}", "math", True, "ok"),
    ("0.333", "\\frac{1}{3}", "math", False, "ok"),
    ("3.1415927", "\\pi", "math", True, "ok"),
    ("3.14", "\\pi", "math", False, "ok"),
    ("2", "\\sqrt{4}", "math", True, "ok"),
    ("\\sqrt{2}+\\sqrt{3}", "\\sqrt{5+2\\sqrt{6}}", "math", True, "ok"),
    ("1.0000001", "1", "math", True, "ok"),
    ("1", "1.00001", "math", False, "ok"),
    # structure
    ("(1, 2)", "(1,2)", "math", True, "ok"),
    ("(2, 1)", "(1,2)", "math", False, "ok"),
    ("[0, 1)", "[0,1]", "math", False, "ok"),
    ("(0.5, \\infty)", "(\\frac{1}{2}, \\infty)", "math", True, "ok"),
    ("\\{2, 1\\}", "\\{1, 2\\}", "math", True, "ok"),
    ("2, 1", "1, 2", "math", True, "ok"),
    ("1, 2, 3", "1, 2", "math", False, "ok"),
    ("3 - \\sqrt{2}, 3 + \\sqrt{2}", "3 \\pm \\sqrt{2}", "math", True, "ok"),
    ("(-\\infty, 1) \\cup (1, \\infty)", "(1, \\infty) \\cup (-\\infty, 1)", "math", True, "ok"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2.0 \\end{pmatrix}", "math", True, "ok"),
    ("(1, 2)", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "math", True, "ok"),
    ("(1, 3)", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "math", False, "ok"),
    ("(1, 2, 3)", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "math", False, "ok"),
    # equations, relations, names
    ("x = 3", "3", "math", True, "ok"),
    ("3", "k = 3", "math", True, "ok"),
    ("x^2 = 9", "9", "math", False, "ok"),
    ("y = 2x + 1", "2x - y + 1 = 0", "math", True, "ok"),
    ("x > 2", "2 < x", "math", True, "ok"),
    ("x \\geq 2", "x > 2", "math", False, "ok"),
    ("[2, \\infty)", "x \\geq 2", "math", True, "ok"),
    # units, percent, degrees
    ("10\\%", "0.1", "math", True, "ok"),
    ("10\\%", "10", "math", True, "ok"),
    ("45^\\circ", "45", "math", True, "ok"),
    ("30^\\circ", "\\frac{\\pi}{6}", "math", True, "ok"),
    ("30^\\circ", "30\\pi", "math", False, "ok"),
    ("\\sin(90^\\circ - x)", "\\cos x", "math", True, "ok"),
    ("5 \\text{ cm}", "5", "math", True, "ok"),
    # symbolic
    ("(x+1)^2", "x^2+2x+1", "math", True, "ok"),
    ("\\frac{x^2-1}{x-1}", "x+1", "math", True, "ok"),
    ("|x|", "x", "math", False, "ok"),
    ("2i + 1", "i(2 - i)", "math", True, "ok"),
    ("A", "a", "math", False, "ok"),
    # not parsable / empty
    ("", "5", "math", False, "no_answer"),
    ("@@@", "5", "math", False, "unparsable"),
    ("\\boxed{", "\\boxed{", "math", False, "unparsable"),  # nothing left: never "identical"
    (";", "=", "math", False, "unparsable"),
    ("x" * 5000, "5", "math", False, "unparsable"),
    ("(" * 60 + "1" + ")" * 60, "1", "math", False, "unparsable"),
])
def test_compare(pred: str, gold: str, answer_type: str, equal: bool, status: str) -> None:
    verdict = compare(pred, gold, answer_type)
    assert (verdict.equal, verdict.status) == (equal, status), verdict
    assert verdict.reason  # every verdict says why


def test_rel_tol_boundary() -> None:
    assert REL_TOL == 1e-6
    assert compare("1.0000009", "1").equal
    assert not compare("1.0000011", "1").equal
