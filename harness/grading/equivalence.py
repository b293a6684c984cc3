"""Is an answer equivalent to the gold? One pure function, :func:`compare`, run inside a worker process.

By answer type:

* ``integer`` (AIME): both sides must be integers; leading zeros are fine (``025`` == ``25``). An answer that
  is a number but not an integer is wrong; one that is not a number is unparsable.
* ``text``: normalised strings, case-insensitive.
* ``math``: identical normalised strings are equal; otherwise both sides are parsed (:mod:`.parse`) and
  compared by structure: tuples/lists in order, intervals by endpoints and open/closed ends, sets and bare
  lists ignoring order, unions as sets of reals, equations up to a constant factor, ``x = 3`` against ``3``
  when the left side only names the value, ``p%`` against both ``p`` and ``p/100``, ``d`` degrees against
  both ``d`` and ``d*pi/180``, a column vector against a tuple of its entries. Numbers compare exactly (at
  :data:`EVAL_DIGITS` digits) unless one side is a decimal literal, when :data:`REL_TOL` applies;
  expressions with symbols by expansion, then at :data:`N_POINTS` fixed random points, then ``simplify``.

Known limits: an identity that holds only for positive values (``\\sqrt{x^2}`` vs ``x``) passes, because
points are positive unless ``|.|`` appears; numbers that differ by less than :data:`EXACT_REL_TOL` relative
(``2^{2^{-1000}}`` vs 1) count as equal.

Every verdict carries a short reason. Expensive steps are bounded by the caller's deadline (the worker is
killed on overrun), not here.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from harness.grading.parse import (
    MAX_ANSWER_CHARS,
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
    exact_number,
    is_name,
    is_simple_name,
    normalize,
    parse_answer,
    text_key,
)

# A decimal answer matches when |a - b| <= REL_TOL * max(|a|, |b|): 1e-6 accepts every printed digit of a
# 7-significant-figure answer (0.8660254 for sqrt(3)/2) and rejects a rounding to 3-4 figures (0.333 for 1/3).
REL_TOL = 1e-6
# Below this magnitude a decimal counts as zero (so "0.0000001" matches "0" but "0.001" does not).
ABS_TOL = 1e-9
# Exact sides: values evaluated at EVAL_DIGITS digits must agree to EXACT_REL_TOL relative; far beyond
# double precision, so only true identities (or sympy-provable ones) pass.
EVAL_DIGITS = 50
EXACT_REL_TOL = 1e-30
# Expressions with free symbols are also evaluated at this many pseudo-random points (fixed seed; see
# _expressions_equal for the signs). They are equal when every point that evaluates agrees, at least MIN_GOOD_POINTS do,
# and sympy finds no counter-example.
N_POINTS = 5
MIN_GOOD_POINTS = 3
_POINT_SEED = 20240601

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


def compare(pred: str, gold: str, answer_type: str = "math") -> Verdict:
    """Compare a bare answer ``pred`` with the gold answer ``gold`` (both raw strings, LaTeX allowed).

    ``answer_type`` is "integer", "math" or "text" (a Problem's answer_type). Returns a Verdict; never raises
    for any input strings except MemoryError/RecursionError, which the worker reports.
    """
    if not pred.strip():
        return Verdict(False, "no_answer", "empty answer")
    if len(pred) > MAX_ANSWER_CHARS:
        return Verdict(False, "unparsable", f"answer longer than {MAX_ANSWER_CHARS} characters")
    p, g = normalize(pred), normalize(gold)
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


# ---------------------------------------------------------------------------------------------------------
# Structure
# ---------------------------------------------------------------------------------------------------------


def nodes_equal(a: Node, b: Node) -> tuple[bool, str]:
    """Whether two parsed answers are the same answer, and why (a few words)."""
    if isinstance(a, Relation) or isinstance(b, Relation):
        return _relation_equal(a, b)
    if isinstance(a, Text) or isinstance(b, Text):
        return _text_equal(a, b)
    if isinstance(a, Time) and isinstance(b, Time):
        same = a.minute == b.minute and (a.hour == b.hour or (a.hour % 12 == b.hour % 12 and min(a.hour, b.hour) <= 12))
        return same, "same time" if same else "different time"
    if isinstance(a, BaseN) or isinstance(b, BaseN):
        return _base_equal(a, b)
    if isinstance(a, SetUnion) or isinstance(b, SetUnion):
        return _sets_equal(a, b)
    if isinstance(a, Bracketed) and isinstance(b, Bracketed):
        return _ordered_equal(a, b)
    if isinstance(a, Unordered) and isinstance(b, Unordered):
        return _unordered_equal(a.items, b.items)
    if isinstance(a, Unordered) and len(a.items) == 1:
        return nodes_equal(a.items[0], b)
    if isinstance(b, Unordered) and len(b.items) == 1:
        return nodes_equal(a, b.items[0])
    if isinstance(a, Scalar) and isinstance(b, Scalar):
        return scalars_equal(a, b)
    if isinstance(a, Bracketed) and isinstance(b, Scalar):
        a, b = b, a
    if isinstance(a, Scalar) and isinstance(b, Bracketed) and _is_vector(a.value):
        return _vector_equal(a, b)
    return False, f"different kinds: {_kind(a)} vs {_kind(b)}"


def _is_vector(value: Any) -> bool:
    """A sympy matrix with one row or one column."""
    return hasattr(value, "shape") and len(value.shape) == 2 and 1 in value.shape


def _vector_equal(vector: Scalar, items: Bracketed) -> tuple[bool, str]:
    """A column/row vector written as a matrix against the same entries written as a tuple ``(1, 2)``."""
    entries = list(vector.value)
    if items.open not in "([" or len(entries) != len(items.items):
        return False, "vector and tuple differ in length"
    for entry, item in zip(entries, items.items):
        if not isinstance(item, Scalar):
            return False, "vector and tuple differ"
        same, _ = scalars_equal(Scalar(entry, vector.decimal, False, ""), item)
        if not same:
            return False, "vector entries differ"
    return True, "same vector entries"


def _kind(node: Node) -> str:
    """A word for the kind of a node, for reasons."""
    if isinstance(node, Bracketed):
        return "interval/tuple" if node.open != "{" else "group"
    return {Unordered: "set/list", Scalar: "value", Text: "text", Time: "time", SetUnion: "union",
            BaseN: "base-n numeral", Relation: "relation"}.get(type(node), type(node).__name__)


def _text_equal(a: Node, b: Node) -> tuple[bool, str]:
    """Text against anything: compare normalised strings."""
    def key(node: Node) -> str:
        if isinstance(node, Text):
            return node.text
        if isinstance(node, Scalar):
            return text_key(node.source)
        return ""

    same = bool(key(a)) and key(a) == key(b)
    return same, "same text" if same else "different text"


def _base_equal(a: Node, b: Node) -> tuple[bool, str]:
    """Base-n numerals: same digits and base; the answer may leave the base out (``204`` for ``204_5``)."""
    def digits(node: Node) -> tuple[str, str | None] | None:
        if isinstance(node, BaseN):
            return node.digits, node.base
        if isinstance(node, Scalar) and getattr(node.value, "is_Integer", False) and not node.decimal:
            return str(node.value), None
        return None

    da, db = digits(a), digits(b)
    same = da is not None and db is not None and da[0] == db[0] and (da[1] is None or db[1] is None or da[1] == db[1])
    return same, "same numeral" if same else "different numeral"


def _ordered_equal(a: Bracketed, b: Bracketed) -> tuple[bool, str]:
    """Tuples, intervals and lists: same brackets, same length, equal item by item."""
    if (a.open, a.close) != (b.open, b.close):
        return False, f"brackets differ: {a.open}{a.close} vs {b.open}{b.close}"
    if len(a.items) != len(b.items):
        return False, f"{len(a.items)} vs {len(b.items)} elements"
    for i, (x, y) in enumerate(zip(a.items, b.items)):
        same, why = nodes_equal(x, y)
        if not same:
            return False, f"element {i + 1} differs ({why})"
    return True, f"all {len(a.items)} elements equal in order"


def _unordered_equal(a: tuple[Node, ...], b: tuple[Node, ...]) -> tuple[bool, str]:
    """Sets and bare lists: every element of each side equals some element of the other (duplicates ignored)."""
    matched_b: set[int] = set()
    for x in a:
        hits = [j for j, y in enumerate(b) if nodes_equal(x, y)[0]]
        if not hits:
            return False, "an element has no match"
        matched_b.update(hits)
    if len(matched_b) != len(b):
        return False, "an element of the gold is missing"
    return True, "same elements"


def _relation_equal(a: Node, b: Node) -> tuple[bool, str]:
    """Equations and inequalities, and ``name = value`` against a bare value."""
    if not isinstance(a, Relation):
        a, b = b, a
    assert isinstance(a, Relation)
    if not isinstance(b, Relation):
        if a.op == "=" and is_name(a.name):
            same, why = nodes_equal(a.rhs, b)
            return same, f"value of {a.name[:20]}: {why}"
        interval = _inequality_as_interval(a)
        if interval is not None and isinstance(b, Bracketed):
            return _ordered_equal(interval, b)
        return False, "relation vs value"
    if a.op != b.op:
        return False, f"different relations {a.op} vs {b.op}"
    if a.op == "=" and (a.name.replace(" ", "") == b.name.replace(" ", "") or
                        (is_simple_name(a.name) and is_simple_name(b.name))):
        same, why = nodes_equal(a.rhs, b.rhs)
        return same, f"right sides: {why}"
    if all(isinstance(n, Scalar) for n in (a.lhs, a.rhs, b.lhs, b.rhs)):
        return _proportional(a, b)
    same_l, _ = nodes_equal(a.lhs, b.lhs)
    same_r, _ = nodes_equal(a.rhs, b.rhs) if same_l else (False, "")
    return same_l and same_r, "same sides" if same_l and same_r else "different sides"


def _inequality_as_interval(rel: Relation) -> Bracketed | None:
    """``x < 3`` -> ``(-oo, 3)``, ``3 <= x`` -> ``[3, oo)`` when one side is a plain name; else None."""
    import sympy

    if rel.op not in ("<", "<=") or not isinstance(rel.lhs, Scalar) or not isinstance(rel.rhs, Scalar):
        return None
    lhs, rhs = rel.lhs.value, rel.rhs.value
    inf = Scalar(sympy.oo, False, False, "\\infty")
    minus_inf = Scalar(-sympy.oo, False, False, "-\\infty")
    closed = "]" if rel.op == "<=" else ")"
    if isinstance(lhs, sympy.Symbol) and getattr(rhs, "is_number", False):
        return Bracketed("(", closed, (minus_inf, rel.rhs))
    if isinstance(rhs, sympy.Symbol) and getattr(lhs, "is_number", False):
        return Bracketed("[" if rel.op == "<=" else "(", ")", (rel.lhs, inf))
    return None


def _proportional(a: Relation, b: Relation) -> tuple[bool, str]:
    """Two relations of one kind are the same when (lhs - rhs) differ by a constant factor: positive for
    ``<``/``<=``, non-zero for ``=``/``!=`` (``2x + 4y = 3`` is ``y = -x/2 + 3/4``)."""
    import sympy

    assert isinstance(a.lhs, Scalar) and isinstance(a.rhs, Scalar)
    assert isinstance(b.lhs, Scalar) and isinstance(b.rhs, Scalar)
    try:
        da = _prepare(a.lhs.value) - _prepare(a.rhs.value)
        db = _prepare(b.lhs.value) - _prepare(b.rhs.value)
        if da == 0 or db == 0:
            return bool(da == db), "degenerate relation"
        ratio = sympy.cancel(sympy.together(da / db))
        if ratio.free_symbols:
            ratio = sympy.simplify(ratio)
    except (TypeError, ValueError, AttributeError, NotImplementedError):
        return False, "relations not comparable"
    if ratio.free_symbols or not ratio.is_number or ratio == 0:
        return False, "relations differ"
    if a.op in ("<", "<=") and not bool(ratio > 0):
        return False, "inequalities point opposite ways"
    return True, "same relation up to a constant factor"


def _sets_equal(a: Node, b: Node) -> tuple[bool, str]:
    """Unions, intervals and finite sets compared as sets of reals (via sympy sets)."""
    import sympy

    sa, sb = _as_set(a), _as_set(b)
    if sa is None or sb is None:
        if isinstance(a, SetUnion) and isinstance(b, SetUnion) and len(a.parts) == len(b.parts):
            return _unordered_equal(a.parts, b.parts)
        return False, "not comparable as sets"
    try:
        same = sympy.Complement(sa, sb) == sympy.EmptySet and sympy.Complement(sb, sa) == sympy.EmptySet
    except (TypeError, ValueError, NotImplementedError):
        return False, "sets not comparable"
    return bool(same), "same set" if same else "different sets"


def _as_set(node: Node) -> Any:
    """A sympy set for an interval / finite set / union of them with numeric bounds, else None."""
    import sympy

    if isinstance(node, SetUnion):
        parts = [_as_set(p) for p in node.parts]
        return None if any(p is None for p in parts) else sympy.Union(*parts)
    if isinstance(node, Bracketed) and len(node.items) == 2 and all(isinstance(i, Scalar) for i in node.items):
        lo, hi = (_prepare(i.value) for i in node.items)  # type: ignore[union-attr]
        if not (getattr(lo, "is_extended_real", False) and getattr(hi, "is_extended_real", False)):
            return None
        return sympy.Interval(lo, hi, node.open == "(", node.close == ")")
    if isinstance(node, Unordered) and all(isinstance(i, Scalar) for i in node.items):
        values = [_prepare(i.value) for i in node.items]  # type: ignore[union-attr]
        return sympy.FiniteSet(*values) if all(getattr(v, "is_number", False) for v in values) else None
    if isinstance(node, Scalar) and getattr(node.value, "is_number", False):
        return sympy.FiniteSet(_prepare(node.value))
    return None


# ---------------------------------------------------------------------------------------------------------
# Scalars
# ---------------------------------------------------------------------------------------------------------


def _prepare(value: Any) -> Any:
    """The value as compared: the symbol ``i`` is the imaginary unit, unevaluated wrappers are evaluated."""
    import sympy

    if isinstance(value, sympy.MatrixBase):
        return value.applyfunc(_prepare)
    if not isinstance(value, sympy.Basic):
        return value
    i = sympy.Symbol("i")
    if value.has(i):
        value = value.subs(i, sympy.I)
    if value.has(sympy.UnevaluatedExpr):
        value = value.doit()
    return value


def scalars_equal(a: Scalar, b: Scalar) -> tuple[bool, str]:
    """Two values (matrices entry by entry; see :func:`values_equal`). When only one side carries a percent
    sign, p% also matches p/100; when only one carries a degree mark, d degrees also matches d*pi/180."""
    import sympy

    tol = REL_TOL if (a.decimal or b.decimal) else None
    va, vb = _prepare(a.value), _prepare(b.value)
    same, why = values_equal(va, vb, tol)
    if same:
        return same, why
    if a.percent != b.percent:
        alt_a, alt_b = (va / 100, vb) if a.percent else (va, vb / 100)
        if values_equal(alt_a, alt_b, tol)[0]:
            return True, "equal as a fraction (percent)"
    if a.degrees != b.degrees:
        alt_a, alt_b = (va * sympy.pi / 180, vb) if a.degrees else (va, vb * sympy.pi / 180)
        if values_equal(alt_a, alt_b, tol)[0]:
            return True, "equal in radians (degrees)"
    return same, why


def values_equal(x: Any, y: Any, tol: float | None) -> tuple[bool, str]:
    """Sympy values: identical, or numerically equal (``tol`` relative when given, else exact), or
    symbolically equal. Returns (equal, reason)."""
    import sympy

    if isinstance(x, sympy.MatrixBase) or isinstance(y, sympy.MatrixBase):
        if not (isinstance(x, sympy.MatrixBase) and isinstance(y, sympy.MatrixBase)) or x.shape != y.shape:
            return False, "matrix shapes differ"
        for xi, yi in zip(x, y):
            if not values_equal(xi, yi, tol)[0]:
                return False, "matrix entries differ"
        return True, "equal matrices"
    if not isinstance(x, sympy.Expr) or not isinstance(y, sympy.Expr):
        same = bool(x == y)
        return same, "same object" if same else "different objects"
    if x == y:
        return True, "identical"
    if any(v.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan) for v in (x, y)):
        return False, "different infinities"
    if not x.free_symbols and not y.free_symbols:
        return _numbers_equal(x, y, tol)
    return _expressions_equal(x, y, tol)


def _close(dx: Any, scale: Any, tol: float | None) -> bool | None:
    """Whether a numeric difference is negligible at ``scale``; None when it is not a finite number.

    Computed with sympy/mpmath floats (no conversion to Python floats), so huge magnitudes such as
    ``(10^8)!`` still compare.
    """
    import sympy

    try:
        diff = sympy.Abs(sympy.N(dx, EVAL_DIGITS))
        size = sympy.Abs(sympy.N(scale, EVAL_DIGITS))
        if not (diff.is_number and size.is_number) or diff.has(sympy.nan, sympy.zoo, sympy.oo):
            return None
        if tol is None:
            return bool(diff == 0) or bool(diff <= EXACT_REL_TOL * size)
        return bool(diff <= tol * size) or bool(diff <= ABS_TOL)
    except (TypeError, ValueError, OverflowError, ZeroDivisionError, AttributeError):
        return None


def _numbers_equal(x: Any, y: Any, tol: float | None) -> tuple[bool, str]:
    """Numbers without symbols: compared at EVAL_DIGITS digits."""
    try:
        scale = sympy_max_abs(x, y)
    except (TypeError, ValueError):
        return False, "not comparable numbers"
    verdict = _close(x - y, scale, tol)
    if verdict is None:
        return False, "not comparable numbers"
    if tol is None:
        return verdict, "equal numbers" if verdict else "different numbers"
    return verdict, f"equal within {tol:g}" if verdict else f"differ by more than {tol:g}"


def sympy_max_abs(x: Any, y: Any) -> Any:
    """max(|x|, |y|) as a sympy number (the scale of a relative tolerance)."""
    import sympy

    return sympy.Max(sympy.Abs(sympy.N(x, 20)), sympy.Abs(sympy.N(y, 20)))


def _points(symbols: list[Any], signed: bool) -> list[dict[Any, Any]]:
    """N_POINTS fixed pseudo-random rational substitutions in [1.13, 2.87] (away from 0 and 1, where special
    cases hide); with ``signed`` about half are negative."""
    import sympy

    rng = random.Random(_POINT_SEED)
    points = []
    for _ in range(N_POINTS):
        point = {}
        for s in symbols:
            magnitude = sympy.Rational(rng.randint(1130, 2870), 1000)
            point[s] = -magnitude if signed and rng.random() < 0.5 else magnitude
        points.append(point)
    return points


def _expressions_equal(x: Any, y: Any, tol: float | None) -> tuple[bool, str]:
    """Expressions with symbols: expand, then evaluation at random points, then simplify."""
    import sympy

    diff = x - y
    try:
        if tol is None and sympy.expand(diff) == 0:
            return True, "equal after expansion"
    except (TypeError, ValueError, NotImplementedError):
        pass
    symbols = sorted(diff.free_symbols, key=lambda s: s.name)
    # Positive points by default: answers with roots, logs and fractional powers are meant for positive
    # quantities, and principal branches disagree at negative ones. Where |.| or sign() appear, the sign
    # matters (|x| vs x), so then half the points are negative.
    signed = diff.has(sympy.Abs, sympy.sign)
    good = 0
    for point in _points(symbols, signed):
        try:
            dx, scale = diff.subs(point), sympy_max_abs(x.subs(point), y.subs(point))
        except (TypeError, ValueError, ZeroDivisionError, NotImplementedError):
            continue
        verdict = _close(dx, scale, tol if tol is not None else 1e-20)
        if verdict is False:
            return False, "differ at a sample point"
        good += verdict is True
    if good >= MIN_GOOD_POINTS:
        how = f"within {tol:g}" if tol is not None else "to 20 digits"
        return True, f"agree {how} at {good} sample points"
    try:
        if sympy.simplify(diff) == 0:
            return True, "equal after simplify"
    except (TypeError, ValueError, NotImplementedError):
        pass
    return False, "not shown equal"


__all__ = ["ABS_TOL", "REL_TOL", "Verdict", "compare", "exact_number", "nodes_equal", "values_equal"]
