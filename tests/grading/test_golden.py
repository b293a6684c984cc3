"""The golden table ``tests/data/grading_golden.jsonl``: one parametrised test over every case.

Each row cites where it comes from (``source``) and carries both labels: ``label`` (the labelled corpus's
"mathematically the same answer", or ours for hand-written cases) and ``source_label`` (the source test's own
verdict; null for hand-written cases). ``expect`` is the verdict the grader must give; it differs from ``label``
only on the rows with a ``note`` that states the policy. Rows ``corpus-N`` are case N of
``../shared/data/grading-cases.jsonl``; the whole corpus is run by ``test_grader.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.grading.equivalence import Verdict, compare
from harness.grading.extract import extract_answer

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "grading_golden.jsonl"
# The categories, each of which must have cases.
CATEGORIES = {
    "fraction", "thousands_sep", "mixed_number", "units", "degrees", "percent", "currency", "scientific_notation",
    "base_n", "pi", "radical", "complex", "infinity", "set", "interval", "tuple_or_list", "matrix", "equation",
    "inequality_or_membership", "plus_minus", "text_answer", "python_style", "aime_integer", "time", "extraction",
    "multiple_boxed", "decimal", "symbolic_expression",
}


def _rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines() if line.strip()]


def corpus_side(text: str, kind: str, *, is_gold: bool) -> str | None:
    """How a corpus row is fed to the grader: bare answers as they are; whole responses through extraction
    (a gold solution without any answer is used whole, as a benchmark's gold answer would be)."""
    if kind == "boxed_content":
        return text
    answer = extract_answer(text).answer
    return text if answer is None and is_gold else answer


@pytest.mark.parametrize("row", _rows(), ids=lambda r: f"{r['case']}-{r['category']}")
def test_golden_case(row: dict[str, Any]) -> None:
    pred = corpus_side(row["pred"], row["pred_kind"], is_gold=False)
    gold = corpus_side(row["gold"], row["gold_kind"], is_gold=True)
    assert gold is not None
    if "method" in row:
        assert extract_answer(row["pred"]).method == row["method"]
    verdict = compare(pred, gold, row["answer_type"]) if pred is not None else Verdict(False, "no_answer", "")
    assert verdict.equal is row["expect"], (row["source"], pred, gold, verdict)


def test_golden_table_is_complete() -> None:
    rows = _rows()
    assert len({r["case"] for r in rows}) == len(rows)
    assert all(r["source"] and isinstance(r["label"], bool) and "source_label" in r for r in rows)
    assert CATEGORIES <= {r["category"] for r in rows}, CATEGORIES - {r["category"] for r in rows}
    assert sum(not r["label"] for r in rows) >= 40  # false positives are judged too
    # Every disagreement with the label is a stated policy.
    assert all("note" in r for r in rows if r["expect"] != r["label"])
