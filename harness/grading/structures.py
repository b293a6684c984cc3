"""Structure-aware comparisons of answer trees: tuples, intervals, sets, unions, relations, named values,
vectors, times, numerals, text. Each takes the recursive ``same`` (``equivalence.nodes_equal``) where its
elements need it, and returns (equal, reason).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
    is_name,
    is_simple_name,
    text_key,
)
from harness.grading.values import prepare, scalars_equal

Same = Callable[[Node, Node], tuple[bool, str]]


def kind(node: Node) -> str:
    """A word for the kind of a node, for reasons."""
    if isinstance(node, Bracketed):
        return "interval/tuple"
    return {Unordered: "set/list", Scalar: "value", Text: "text", Time: "time", SetUnion: "union",
            BaseN: "base-n numeral", Relation: "relation", Assignment: "named values"}.get(type(node), "?")


def text_equal(a: Node, b: Node) -> tuple[bool, str]:
    """Text against anything: compare normalised strings."""
    def key(node: Node) -> str:
        if isinstance(node, Text):
            return node.text
        if isinstance(node, Scalar):
            return text_key(node.source)
        return ""

    same = bool(key(a)) and key(a) == key(b)
    return same, "same text" if same else "different text"


def time_equal(a: Node, b: Node) -> tuple[bool, str]:
    """Times of day: equal minutes, and hours equal on the 24-hour clock, or equal modulo 12 when one side did
    not say which half of the day it meant."""
    if not (isinstance(a, Time) and isinstance(b, Time)):
        return False, f"different kinds: {kind(a)} vs {kind(b)}"
    hours = a.hour == b.hour or (not (a.explicit and b.explicit) and a.hour % 12 == b.hour % 12)
    same = hours and a.minute == b.minute
    return same, "same time" if same else "different time"


def base_equal(a: Node, b: Node) -> tuple[bool, str]:
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


def ordered_equal(a: Bracketed, b: Bracketed, same: Same) -> tuple[bool, str]:
    """Tuples, intervals and lists: same brackets, same length, equal item by item."""
    if (a.open, a.close) != (b.open, b.close):
        return False, f"brackets differ: {a.open}{a.close} vs {b.open}{b.close}"
    return _in_order(a.items, b.items, same)


def _in_order(a: tuple[Node, ...], b: tuple[Node, ...], same: Same) -> tuple[bool, str]:
    """Element by element, in order."""
    if len(a) != len(b):
        return False, f"{len(a)} vs {len(b)} elements"
    for i, (x, y) in enumerate(zip(a, b)):
        equal, why = same(x, y)
        if not equal:
            return False, f"element {i + 1} differs ({why})"
    return True, f"all {len(a)} elements equal in order"


def unordered_equal(a: tuple[Node, ...], b: tuple[Node, ...], same: Same) -> tuple[bool, str]:
    """Sets and bare lists: every element of each side equals some element of the other (duplicates ignored)."""
    matched_b: set[int] = set()
    for x in a:
        hits = [j for j, y in enumerate(b) if same(x, y)[0]]
        if not hits:
            return False, "an element has no match"
        matched_b.update(hits)
    if len(matched_b) != len(b):
        return False, "an element of the gold is missing"
    return True, "same elements"


def assignment_equal(a: Node, b: Node, same: Same) -> tuple[bool, str]:
    """Named values: by name against named values; in written order against a tuple or a bare list."""
    if not isinstance(a, Assignment):
        a, b = b, a
    assert isinstance(a, Assignment)
    if isinstance(b, Assignment):
        if sorted(a.names) != sorted(b.names):
            return False, "different names"
        by_name = dict(zip(b.names, b.values))
        ok = all(same(value, by_name[name])[0] for name, value in zip(a.names, a.values))
        return ok, "same named values" if ok else "a named value differs"
    if (isinstance(b, Bracketed) and b.open == "(") or isinstance(b, Unordered):
        equal, why = _in_order(a.values, b.items, same)
        return equal, f"named values in order: {why}"
    return False, f"different kinds: named values vs {kind(b)}"


def relation_equal(a: Node, b: Node, same: Same) -> tuple[bool, str]:
    """Equations and inequalities; ``name = value`` (or a finished computation ``number = number``) against a
    bare value."""
    if not isinstance(a, Relation):
        a, b = b, a
    assert isinstance(a, Relation)
    if not isinstance(b, Relation):
        if a.op == "=" and (is_name(a.name) or (_is_number(a.lhs) and _is_number(a.rhs))):
            equal, why = same(a.rhs, b)
            return equal, f"value of {a.name[:20]}: {why}"
        interval = _inequality_as_interval(a)
        if interval is not None and isinstance(b, Bracketed):
            return ordered_equal(interval, b, same)
        return False, "relation vs value"
    if a.op != b.op:
        return False, f"different relations {a.op} vs {b.op}"
    if a.op == "=" and (a.name.replace(" ", "") == b.name.replace(" ", "") or
                        (is_simple_name(a.name) and is_simple_name(b.name))):
        equal, why = same(a.rhs, b.rhs)
        return equal, f"right sides: {why}"
    if all(isinstance(n, Scalar) for n in (a.lhs, a.rhs, b.lhs, b.rhs)):
        return _proportional(a, b)
    same_l, _ = same(a.lhs, b.lhs)
    same_r, _ = same(a.rhs, b.rhs) if same_l else (False, "")
    return same_l and same_r, "same sides" if same_l and same_r else "different sides"


def _is_number(node: Node) -> bool:
    """A value without symbols (the left side of a finished computation, ``\\frac{20}{2} = 10``)."""
    return isinstance(node, Scalar) and bool(getattr(node.value, "is_number", False))


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
        da = prepare(a.lhs.value) - prepare(a.rhs.value)
        db = prepare(b.lhs.value) - prepare(b.rhs.value)
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


def sets_equal(a: Node, b: Node, same: Same) -> tuple[bool, str]:
    """Unions, intervals and finite sets compared as sets of reals (via sympy sets)."""
    import sympy

    sa, sb = _as_set(a), _as_set(b)
    if sa is None or sb is None:
        if isinstance(a, SetUnion) and isinstance(b, SetUnion) and len(a.parts) == len(b.parts):
            return unordered_equal(a.parts, b.parts, same)
        return False, "not comparable as sets"
    try:
        equal = sympy.Complement(sa, sb) == sympy.EmptySet and sympy.Complement(sb, sa) == sympy.EmptySet
    except (TypeError, ValueError, NotImplementedError):
        return False, "sets not comparable"
    return bool(equal), "same set" if equal else "different sets"


def _as_set(node: Node) -> Any:
    """A sympy set for an interval / finite set / union of them with numeric bounds, else None."""
    import sympy

    if isinstance(node, SetUnion):
        parts = [_as_set(p) for p in node.parts]
        return None if any(p is None for p in parts) else sympy.Union(*parts)
    if isinstance(node, Bracketed) and len(node.items) == 2 and all(isinstance(i, Scalar) for i in node.items):
        lo, hi = (prepare(i.value) for i in node.items)  # type: ignore[union-attr]
        if not (getattr(lo, "is_extended_real", False) and getattr(hi, "is_extended_real", False)):
            return None
        return sympy.Interval(lo, hi, node.open == "(", node.close == ")")
    if isinstance(node, Unordered) and all(isinstance(i, Scalar) for i in node.items):
        values = [prepare(i.value) for i in node.items]  # type: ignore[union-attr]
        return sympy.FiniteSet(*values) if all(getattr(v, "is_number", False) for v in values) else None
    if isinstance(node, Scalar) and getattr(node.value, "is_number", False):
        return sympy.FiniteSet(prepare(node.value))
    return None


def vector_equal(vector: Scalar, items: Bracketed) -> tuple[bool, str]:
    """A column/row vector written as a matrix against the same entries written as a tuple ``(1, 2)``."""
    value = vector.value
    if not (hasattr(value, "shape") and len(value.shape) == 2 and 1 in value.shape):
        return False, "different kinds: value vs interval/tuple"
    entries = list(value)
    if items.open not in "([" or len(entries) != len(items.items):
        return False, "vector and tuple differ in length"
    for entry, item in zip(entries, items.items):
        if not isinstance(item, Scalar):
            return False, "vector and tuple differ"
        equal, _ = scalars_equal(Scalar(entry, vector.decimal, False, ""), item)
        if not equal:
            return False, "vector entries differ"
    return True, "same vector entries"
