"""Is an answer equivalent to the gold? One pure function, :func:`compare`, run inside a worker process.

By answer type:

* ``integer`` (AIME): both sides must be integers; leading zeros are fine (``025`` == ``25``). An answer that
  is a number but not an integer is wrong; one that is not a number is unparsable.
* ``text``: normalised strings, case-insensitive.
* ``math``: identical normalised strings are equal; otherwise both sides are parsed (:mod:`.parse`) and
  compared by structure (:func:`nodes_equal`): tuples/lists in order, intervals by endpoints and open/closed
  ends, sets and bare lists ignoring order (duplicates ignored), unions as sets of reals, equations up to a
  non-zero constant factor and inequalities up to a positive one, ``x = 3`` against ``3`` when the left side
  only names the value (or is itself a number: ``\\frac{20}{2} = 10`` against ``10``), named values
  ``p = 5, q = 2`` by name or in order against ``(5, 2)``, ``p%`` against both ``p`` and ``p/100``, ``d``
  degrees against both ``d`` and ``d*pi/180``, a column vector against a tuple of its entries, times of day
  (``4:30`` matches ``4:30 p.m.``; ``4:30 a.m.`` does not), base-n numerals by digits. Values compare by
  the policy of :mod:`.values` (exact unless one side is a decimal; see there for rounded answers).

Policies and known limits: identities are checked where both sides are real, negative values included, so
``\\sqrt{x^2}`` is not ``x`` and ``\\sqrt{x}\\sqrt{y}`` is not ``\\sqrt{xy}`` (they differ for negative x and y,
though a problem may mean positive ones); a comma is never a decimal mark (``1,22`` is a list).
Every verdict carries a short reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
    is_name,
    text_key,
)
from harness.grading.normalise import normalize
from harness.grading.parse import MAX_ANSWER_CHARS, parse_answer
from harness.grading.signature import Signature, signature
from harness.grading.structures import (
    assignment_equal,
    base_equal,
    kind,
    ordered_equal,
    relation_equal,
    sets_equal,
    text_equal,
    time_equal,
    unordered_equal,
    vector_equal,
)
from harness.grading.values import scalars_equal

_INTEGER = re.compile(r"^[-+]?\d+$")


@dataclass(frozen=True)
class Verdict:
    """The result of one comparison. ``equal`` is only True when ``status`` is "ok"; ``status`` is one of
    ``types.GRADE_STATUSES`` (ok, no_answer, unparsable, timeout); ``reason`` says why in a few words."""

    equal: bool
    status: str
    reason: str


def warm_up() -> None:
    """Import sympy and build the LaTeX parser now (workers call this before their first check, so the
    one-off import cost never counts against a check's deadline)."""
    compare("\\frac{1}{2}", "x^2")
    compare("\\sqrt{2}", "1.4142136")


def compare(pred: str, gold: str, answer_type: str = "math") -> Verdict:
    """Compare a bare answer ``pred`` with the gold answer ``gold`` (both raw strings, LaTeX allowed).

    ``answer_type`` is "integer", "math" or "text" (a Problem's answer_type). Returns a Verdict; never raises
    for any input strings except MemoryError/RecursionError, which the worker reports.
    """
    if not pred.strip():
        return Verdict(False, "no_answer", "empty answer")
    if len(pred) > MAX_ANSWER_CHARS:
        return Verdict(False, "unparsable", f"answer longer than {MAX_ANSWER_CHARS} characters")
    return compare_normalised(normalize(pred), normalize(gold), answer_type, gold)


def compare_normalised(p: str, g: str, answer_type: str, gold: str = "") -> Verdict:
    """:func:`compare` on already normalised sides (``gold``: the raw gold, for messages only)."""
    if not p:
        return Verdict(False, "unparsable", "nothing left after normalisation")
    if not g:
        return Verdict(False, "unparsable", f"gold {gold[:30]!r} is empty after normalisation; fix the gold")
    if answer_type == "integer":
        return _compare_integer(p, g)
    if answer_type == "text":
        same = text_key(p) == text_key(g)
        return Verdict(same, "ok", "same text" if same else "different text")
    if p == g:
        return Verdict(True, "ok", "identical after normalisation")
    try:
        gold_node = parse_answer(g)
    except (Unparsable, RecursionError):
        same = text_key(p) == text_key(g)
        return Verdict(same, "ok", "gold not parsable; compared as text")
    try:
        pred_node = parse_answer(p)
    except (Unparsable, RecursionError) as err:
        if text_key(p) == text_key(g):
            return Verdict(True, "ok", "same text")
        reason = str(err) if isinstance(err, Unparsable) else "too deeply nested"
        return Verdict(False, "unparsable", reason[:120])
    equal, reason = nodes_equal(pred_node, gold_node)
    return Verdict(equal, "ok", reason)


def compare_signed(p: str, g: str, answer_type: str) -> tuple[Verdict, Signature | None]:
    """:func:`compare_normalised` plus the :mod:`.signature` of the answer (None when it has none), which the
    grader keeps to skip comparisons between answers that surely differ. Runs in a worker."""
    verdict = compare_normalised(p, g, answer_type)
    if answer_type == "text" or verdict.status != "ok":
        return verdict, None
    try:
        return verdict, signature(parse_answer(p))
    except (Unparsable, RecursionError):
        return verdict, None


def _compare_integer(p: str, g: str) -> Verdict:
    """AIME-style: integer answers compared as integers (see the module docstring)."""
    if not _INTEGER.match(g):
        return Verdict(False, "unparsable", f"gold {g[:30]!r} is not an integer; fix the answer_type or the gold")
    gold = int(g)
    if _INTEGER.match(p):
        same = int(p) == gold
        return Verdict(same, "ok", "same integer" if same else "different integer")
    try:
        node = parse_answer(p)
    except (Unparsable, RecursionError):
        return Verdict(False, "unparsable", "not a number")
    if isinstance(node, Relation) and node.op == "=" and is_name(node.name):
        node = node.rhs
    value = node.value if isinstance(node, Scalar) and not node.percent else None
    if value is None or not getattr(value, "is_number", False):  # is_number: no free symbols
        return Verdict(False, "unparsable", "not a number")
    if value.is_Rational and value.q == 1:
        same = int(value) == gold
        return Verdict(same, "ok", "same integer" if same else "different integer")
    if value.is_integer:  # an integer sympy leaves unevaluated, e.g. (10^8)!: never an AIME answer
        return Verdict(False, "ok", "different integer")
    return Verdict(False, "ok", "not an integer")


def nodes_equal(a: Node, b: Node) -> tuple[bool, str]:
    """Whether two parsed answers are the same answer, and why (a few words)."""
    if isinstance(a, Relation) or isinstance(b, Relation):
        return relation_equal(a, b, nodes_equal)
    if isinstance(a, Text) or isinstance(b, Text):
        return text_equal(a, b)
    if isinstance(a, Time) or isinstance(b, Time):
        return time_equal(a, b)
    if isinstance(a, BaseN) or isinstance(b, BaseN):
        return base_equal(a, b)
    if isinstance(a, Assignment) or isinstance(b, Assignment):
        return assignment_equal(a, b, nodes_equal)
    if isinstance(a, SetUnion) or isinstance(b, SetUnion):
        return sets_equal(a, b, nodes_equal)
    if isinstance(a, Bracketed) and isinstance(b, Bracketed):
        return ordered_equal(a, b, nodes_equal)
    if isinstance(a, Unordered) and isinstance(b, Unordered):
        return unordered_equal(a.items, b.items, nodes_equal)
    if isinstance(a, Unordered) and len(a.items) == 1:
        return nodes_equal(a.items[0], b)
    if isinstance(b, Unordered) and len(b.items) == 1:
        return nodes_equal(a, b.items[0])
    if isinstance(a, Scalar) and isinstance(b, Scalar):
        return scalars_equal(a, b)
    if isinstance(a, Bracketed) and isinstance(b, Scalar):
        a, b = b, a
    if isinstance(a, Scalar) and isinstance(b, Bracketed):
        return vector_equal(a, b)
    return False, f"different kinds: {kind(a)} vs {kind(b)}"


__all__ = ["Verdict", "compare", "compare_normalised", "compare_signed", "nodes_equal", "warm_up"]
