"""Parse a normalised answer into the answer tree of :mod:`.nodes`.

:func:`parse_answer` splits the answer at the top level itself (unions, lists, ``\\pm``, relations, brackets,
named values) and hands each leaf to :mod:`.leaf` (exact numbers, Python-style expressions, or the
grammar-based LaTeX parser). Input is the output of :func:`normalise.normalize`.

Limits are checked before any parsing: length, bracket depth, number of elements, ``\\pm`` count.
sympy and latex2sympy2_extended are imported on first parse, so importing this module stays cheap.
"""

from __future__ import annotations

import functools
import re

from harness.grading.brackets import CLOSERS, OPENERS, matching_close, nesting_depth, split_top_level
from harness.grading.leaf import PLAIN_NUMBER, TextAnswer, parse_scalar
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
    is_simple_name,
    text_key,
)
from harness.grading.normalise import canonical_time, strip_units

# Answers longer than this are refused (status "unparsable") before any parsing: real final answers are
# short, and the parser's cost grows with length.
MAX_ANSWER_CHARS = 2000
# Deeper bracket nesting than this is refused before parsing: the ANTLR parser recurses per level.
MAX_NESTING = 50
# At most this many elements in one list/tuple/set, and this many expanded "\pm" signs per element.
MAX_ITEMS = 64
MAX_PM = 3
# Parsed answers kept per process (the ANTLR parser costs ~5-10 ms per leaf; trees are small).
PARSE_CACHE_SIZE = 4096

_WHOLE_TEXT = re.compile(r"^\\text\{([^{}]*)\}$")
_BASE_N = re.compile(r"^(\d+)_\{(\d+)\}$")
_REL_OPS = ("\\leq", "\\geq", "\\neq", "<", ">", "=")
_ABS_NAME = re.compile(r"^\|\s*([A-Za-z](?:_\{\w+\})?)\s*\|$")
_ASSIGNED = re.compile(r"^([A-Za-z])(?:_\{(\w+)\})?\s*=(?!=)")


def _relation_pieces(s: str) -> tuple[list[str], list[str]]:
    """``s`` split at top-level relation symbols: (pieces, operators)."""
    pieces: list[str] = []
    ops: list[str] = []
    depth, start, i = 0, 0, 0
    while i < len(s):
        char = s[i]
        if char in OPENERS:
            depth += 1
        elif char in CLOSERS:
            depth -= 1
        elif depth == 0:
            op = next((o for o in _REL_OPS if s.startswith(o, i) and not (o[0] == "\\" and s[i + len(o):i + len(o) + 1].isalpha())), None)
            if op is not None:
                pieces.append(s[start:i].strip())
                ops.append(op)
                i += len(op)
                start = i
                continue
        i += 1
    pieces.append(s[start:].strip())
    return pieces, ops


def _split_relation(s: str) -> Node | None:
    """A Relation (or an interval for ``a < x < b``, a union for ``a <= |x| <= b``) when ``s`` has top-level
    relation symbols, else None."""
    pieces, ops = _relation_pieces(s)
    if not ops:
        return None
    if any(not p for p in pieces):
        raise Unparsable("relation with an empty side")
    if len(ops) == 1:
        return _relation(ops[0], pieces[0], pieces[1])
    middle = pieces[1] if len(ops) == 2 else ""
    if not (is_simple_name(middle) or _ABS_NAME.match(middle.replace(" ", ""))):
        raise Unparsable("relation chain")
    lows, highs = ("<", "\\leq"), (">", "\\geq")
    if ops[0] in lows and ops[1] in lows:
        lo, hi, strict = pieces[0], pieces[2], (ops[0] == "<", ops[1] == "<")
    elif ops[0] in highs and ops[1] in highs:
        lo, hi, strict = pieces[2], pieces[0], (ops[1] == ">", ops[0] == ">")
    else:
        raise Unparsable("mixed relation chain")
    low, high = parse_answer(lo), parse_answer(hi)
    interval = Bracketed("(" if strict[0] else "[", ")" if strict[1] else "]", (low, high))
    if is_simple_name(middle):
        return interval
    return _absolute_band(low, high, strict, interval)


def _absolute_band(low: Node, high: Node, strict: tuple[bool, bool], band: Bracketed) -> Node:
    """``lo <= |x| <= hi`` with ``lo >= 0``: the union ``[-hi, -lo] U [lo, hi]``."""
    if not (isinstance(low, Scalar) and isinstance(high, Scalar) and getattr(low.value, "is_number", False)
            and bool(low.value >= 0)):
        raise Unparsable("relation chain on |x| with a negative or symbolic bound")
    neg = Bracketed("(" if strict[1] else "[", ")" if strict[0] else "]",
                    (Scalar(-high.value, high.decimal, False, "-" + high.source),
                     Scalar(-low.value, low.decimal, False, "-" + low.source)))
    return SetUnion((neg, band))


def _relation(op: str, left: str, right: str) -> Relation:
    """One relation, with ``>``/``\\geq`` flipped into ``<``/``<=``. The left side of an equation that only
    names the value (``S_{ABC} = 5``) may be unparsable; it is then kept as text."""
    rhs = parse_answer(right)
    try:
        lhs = parse_answer(left)
    except Unparsable:
        if op != "=" or not is_name(left):
            raise
        lhs = Text(text_key(left))
    if op in (">", "\\geq"):
        return Relation("<" if op == ">" else "<=", rhs, lhs, right)
    return Relation({"\\leq": "<=", "\\neq": "!="}.get(op, op), lhs, rhs, left)


def _expand_pm(s: str) -> list[str] | None:
    """``1 \\pm \\sqrt{5}`` -> [``1 + \\sqrt{5}``, ``1 - \\sqrt{5}``]; None when there is no ``\\pm``/``\\mp``."""
    match = re.search(r"\\(pm|mp)(?![a-zA-Z])", s)
    if match is None:
        return None
    first, second = ("+", "-") if match[1] == "pm" else ("-", "+")
    return [s[:match.start()] + first + s[match.end():], s[:match.start()] + second + s[match.end():]]


def _parse_bracketed(s: str) -> Node | None:
    """Tuples, intervals, lists and sets written with brackets around the whole of ``s``; else None."""
    if s.startswith("\\{") and s.endswith("\\}") and matching_close(s, 1) == len(s) - 1:
        inner = s[2:-2].strip()
        return Unordered(_items(split_top_level(inner, (",", ";")) if inner else []))
    if s[:1] not in OPENERS or s[-1:] not in CLOSERS or matching_close(s, 0) != len(s) - 1:
        return None
    inner = s[1:-1].strip()
    items = split_top_level(inner, (",",)) if inner else []
    if len(items) < 2 and ";" in inner:
        items = split_top_level(inner, (";",))
    if len(items) > MAX_ITEMS:
        raise Unparsable(f"more than {MAX_ITEMS} elements")
    if s[0] == "{":
        return Unordered(_items(items)) if len(items) > 1 else parse_answer(inner)
    if len(items) > 1:
        return Bracketed(s[0], s[-1], tuple(parse_answer(item) for item in items))
    return parse_answer(inner) if inner else None


def _items(parts: list[str]) -> tuple[Node, ...]:
    """The elements of a set or bare list, with each ``\\pm`` element expanded into its two values."""
    if len(parts) > MAX_ITEMS:
        raise Unparsable(f"more than {MAX_ITEMS} elements")
    items: list[Node] = []
    for part in parts:
        node = parse_answer(part)
        items.extend(node.items if isinstance(node, Unordered) and _expand_pm(part) else (node,))
    return tuple(items)


def _assignment(parts: list[str]) -> Assignment | None:
    """``p = 5, q = 2`` (two or more different one-letter names, not one letter with different subscripts,
    which are the roots ``x_1, x_2`` of one unknown) as an Assignment; else None."""
    names: list[str] = []
    for part in parts:
        match = _ASSIGNED.match(part)
        if match is None:
            return None
        names.append(match[0].rstrip("=").replace(" ", ""))
    letters = {name[0] for name in names}
    if len(parts) < 2 or len(set(names)) != len(names) or len(letters) < len(names):
        return None
    values = tuple(parse_answer(part[_ASSIGNED.match(part).end():]) for part in parts)  # type: ignore[union-attr]
    return Assignment(tuple(names), values)


def _parse_lists(s: str) -> Node | None:
    """Top-level unions, semicolon groups of named values, and comma lists; None when ``s`` has none."""
    parts = split_top_level(s, ("\\cup",))
    if len(parts) > 1:
        return SetUnion(tuple(parse_answer(p) for p in parts))
    groups = split_top_level(s, (";",))
    if len(groups) > 1:
        solutions = [_assignment(split_top_level(g, (",",))) for g in groups]
        if all(solutions):
            return Unordered(tuple(a for a in solutions if a is not None))
    parts = split_top_level(s, (",", ";"))
    if len(parts) > 1:
        return _assignment(parts) or Unordered(_items(parts))
    return None


def parse_answer(text: str, _pm_depth: int = 0) -> Node:
    """Parse a normalised answer into a :data:`nodes.Node` tree.

    Takes the output of :func:`normalise.normalize`. Returns the tree; raises :class:`Unparsable` (with the
    reason) when the answer is too long, too deeply nested, or not something the grammar knows. Results
    (failures included) are cached per process: a worker sees the same gold answer for every sample.
    """
    result = _parse_cached(text, _pm_depth)
    if isinstance(result, Unparsable):
        raise Unparsable(str(result))  # a fresh exception: re-raising one instance would grow its traceback
    return result


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parse_cached(text: str, pm_depth: int) -> Node | Unparsable:
    """parse_answer's cache: the tree, or the Unparsable error (both immutable)."""
    try:
        return _parse_uncached(text, pm_depth)
    except Unparsable as err:
        return err


def _parse_uncached(text: str, pm_depth: int) -> Node:
    """parse_answer without the cache."""
    s = text.strip()
    if not s:
        raise Unparsable("empty answer")
    if len(s) > MAX_ANSWER_CHARS:
        raise Unparsable(f"answer longer than {MAX_ANSWER_CHARS} characters")
    if nesting_depth(s) > MAX_NESTING:
        raise Unparsable(f"brackets nested deeper than {MAX_NESTING}")
    if match := _WHOLE_TEXT.match(s):
        inner = strip_units(match[1].strip())
        return parse_scalar(inner) if PLAIN_NUMBER.match(inner) else Text(text_key(match[1]))
    if time := canonical_time(s):
        hour, minute = time.split(":")
        return Time(int(hour), int(minute), explicit=len(hour) == 2)
    if match := _BASE_N.match(s):
        return BaseN(match[1].lstrip("0") or "0", match[2])
    listed = _parse_lists(s)
    if listed is not None:
        return listed
    expanded = _expand_pm(s)
    if expanded is not None:
        if pm_depth >= MAX_PM:
            raise Unparsable(f"more than {MAX_PM} \\pm signs")
        return Unordered(tuple(parse_answer(e, pm_depth + 1) for e in expanded))
    relation = _split_relation(s)
    if relation is not None:
        return relation
    bracketed = _parse_bracketed(s)
    if bracketed is not None:
        return bracketed
    try:
        return parse_scalar(s)
    except TextAnswer:
        return Text(text_key(s))
