"""The library behind ``tts-eval check``: explain one comparison, or grade a JSONL file of cases.

Input rows of :func:`check_cases` are ``{"pred": ..., "gold": ..., "pred_kind": ..., "answer_type": ...}``:
``pred_kind`` "full_response" means the final answer is extracted from ``pred`` first (any other value, or none,
means ``pred`` is the final answer); ``answer_type`` is "math" (default), "integer" or "text". Output rows are
``{"equal", "status", "answer", "reason"}`` in the same order; ``answer`` is the answer that was compared (None
when a response had none).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.grading.equivalence import Verdict
from harness.grading.extract import extract_answer
from harness.grading.nodes import (
    Assignment,
    BaseN,
    Bracketed,
    Node,
    Relation,
    Scalar,
    SetUnion,
    Text,
    Time,
    Unordered,
    Unparsable,
)
from harness.grading.normalise import normalize
from harness.grading.parse import MAX_ANSWER_CHARS, parse_answer
from harness.types import ANSWER_TYPES

if TYPE_CHECKING:
    from harness.grading.grader import Grader


def node_text(node: Node) -> str:
    """A short human-readable form of a parsed answer: ``value 1/2 (decimal)``, ``tuple (1, 2)``, ..."""
    if isinstance(node, Scalar):
        flags = [f for f, on in (("decimal", node.decimal), ("percent", node.percent), ("degrees", node.degrees)) if on]
        return f"value {node.value}" + (f" ({', '.join(flags)})" if flags else "")
    if isinstance(node, Text):
        return f"text {node.text!r}"
    if isinstance(node, Relation):
        return f"relation [{node_text(node.lhs)}] {node.op} [{node_text(node.rhs)}]"
    if isinstance(node, Bracketed):
        items = ", ".join(node_text(i) for i in node.items)
        return f"{'interval/tuple' if len(node.items) == 2 else 'tuple'} {node.open}{items}{node.close}"
    if isinstance(node, Unordered):
        return "set/list {" + "; ".join(node_text(i) for i in node.items) + "}"
    if isinstance(node, SetUnion):
        return "union of " + " | ".join(node_text(p) for p in node.parts)
    if isinstance(node, Time):
        return f"time {node.hour}:{node.minute:02d}" + ("" if node.explicit else " (am or pm)")
    if isinstance(node, BaseN):
        return f"numeral {node.digits} in base {node.base}"
    if isinstance(node, Assignment):
        return "named values " + ", ".join(f"{n} = [{node_text(v)}]" for n, v in zip(node.names, node.values))
    return repr(node)


def describe(text: str) -> str:
    """``normalised: ... | parsed: ...`` for one raw answer (runs in a worker: parsing is bounded there)."""
    if len(text) > MAX_ANSWER_CHARS:
        return f"longer than {MAX_ANSWER_CHARS} characters: not parsed"
    norm = normalize(text)
    try:
        parsed = node_text(parse_answer(norm))
    except (Unparsable, RecursionError) as err:
        parsed = f"unparsable ({str(err)[:80]})"
    return f"normalised {norm!r} -> {parsed}"


@dataclass(frozen=True)
class Explanation:
    """One comparison explained: how each side was read, and the verdict."""

    pred: str
    gold: str
    verdict: Verdict


def explain(grader: Grader, pred: str, gold: str, answer_type: str = "math") -> Explanation:
    """Both parses and the verdict of one (answer, gold) pair. Raises ValueError on an unknown answer type."""
    verdict = grader.check(pred, gold, answer_type)
    pool = grader._get_pool()
    readings = []
    for side in (pred, gold):
        try:
            readings.append(pool.run(describe, side))
        except Exception as err:  # noqa: BLE001 - a PoolError (timeout) is reported, not raised
            readings.append(f"not parsed ({err})")
    return Explanation(readings[0], readings[1], verdict)


def _read_cases(path: Path) -> list[dict[str, Any]]:
    """The rows of a cases file; raises ValueError naming the line of a malformed row."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: not JSON ({err.msg}); each line must be one JSON object") from None
        if not isinstance(row, dict) or not isinstance(row.get("pred"), str) or not isinstance(row.get("gold"), str):
            # A malformed input file is a user error (ValueError: one line, no traceback), not a type bug.
            raise ValueError(f"{path}:{number}: each row needs string fields 'pred' and 'gold'")  # noqa: TRY004
        if row.get("answer_type", "math") not in ANSWER_TYPES:
            raise ValueError(f"{path}:{number}: answer_type must be one of {ANSWER_TYPES}, got {row['answer_type']!r}")
        rows.append(row)
    return rows


def check_cases(grader: Grader, cases: Path, out: Path) -> Counter[str]:
    """Grade every row of the JSONL file ``cases`` (see the module docstring) and write one result row per input
    row, in order, to ``out``. Returns counts of "equal", "not equal" and each status. Raises ValueError on a
    malformed row (nothing is written then)."""
    rows = _read_cases(cases)
    answers: list[str | None] = []
    methods: list[str] = []
    for row in rows:
        if row.get("pred_kind") == "full_response":
            found = extract_answer(row["pred"])
            answers.append(found.answer)
            methods.append(found.method)
        else:
            answers.append(row["pred"])
            methods.append("given")
    todo = [i for i, a in enumerate(answers) if a is not None]
    verdicts = grader.check_many([(answers[i] or "", rows[i]["gold"], rows[i].get("answer_type", "math"))
                                  for i in todo])
    by_row = dict(zip(todo, verdicts))
    counts: Counter[str] = Counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for i, answer in enumerate(answers):
            v = by_row.get(i) or Verdict(False, "no_answer", f"no final answer ({methods[i]})")
            counts["equal" if v.equal else "not equal"] += 1
            counts[v.status] += 1
            record = {"equal": v.equal, "status": v.status, "answer": answer, "reason": v.reason}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return counts
