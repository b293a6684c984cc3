"""Numeric signatures: a cheap way to know that two answers are NOT equivalent without comparing them.

The signature of a plain value is its complex value at double precision; of an expression with symbols, its
value with every symbol set to a fixed positive number derived from the symbol's name; of ``name = value``,
the value's; of a text answer, its text key. Two answers whose numeric signatures differ by more than
:data:`SIGNATURE_REL_TOL` relative (and :data:`SIGNATURE_ABS_TOL` absolute), or whose text keys differ, are
different under :func:`equivalence.compare` too, whose tolerances are much tighter. Signatures never decide
that two answers are equal. Answers with a percent sign or degree mark (which compare by several readings),
matrices, and other structured answers (tuples, sets, inequalities) have no signature.

The vote-key clustering uses them to skip most worker comparisons between wrong answers.
"""

from __future__ import annotations

import cmath
import zlib
from typing import Any

from harness.grading.nodes import Node, Relation, Scalar, Text, is_name, text_key
from harness.grading.values import prepare

# (real part, imaginary part, text key): the numeric parts are None for a text answer. The text key of a
# value is that of its source, which is what a text answer is compared with.
Signature = tuple[float | None, float | None, str]

# Far looser than the comparison tolerances (REL_TOL 1e-6 for decimals, exact otherwise), so a signature
# difference beyond them is a real difference.
SIGNATURE_REL_TOL = 1e-5
SIGNATURE_ABS_TOL = 1e-8


def _symbol_value(name: str) -> Any:
    """A fixed positive rational in [1.1, 2.1) for a symbol name (positive, like the comparison's points)."""
    import sympy

    return sympy.Rational(1100 + zlib.crc32(name.encode("utf-8")) % 1000, 1000)


def signature(node: Node) -> Signature | None:
    """The signature of a parsed answer, or None when it has none (see the module docstring)."""
    import sympy

    if isinstance(node, Text):
        return None, None, node.text
    if isinstance(node, Relation) and node.op == "=" and is_name(node.name):
        return signature(node.rhs)  # compared by its value, against values and against "y = value"
    if not isinstance(node, Scalar) or node.percent or node.degrees:
        return None
    value = prepare(node.value)
    if not isinstance(value, sympy.Expr) or value.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan):
        return None
    try:
        if value.free_symbols:
            value = value.subs({s: _symbol_value(s.name) for s in value.free_symbols})
        number = complex(sympy.N(value, 17))
    except (TypeError, ValueError, OverflowError, ZeroDivisionError, AttributeError):
        return None
    if not cmath.isfinite(number):  # NaN or overflow
        return None
    return number.real, number.imag, text_key(node.source)


def surely_different(a: Signature | None, b: Signature | None) -> bool:
    """Whether two signatures prove their answers different (False when either is missing)."""
    if a is None or b is None:
        return False
    if a[0] is None or b[0] is None:  # a text answer: compared as text with the other side
        return a[2] != b[2]
    x, y = complex(a[0], a[1] or 0.0), complex(b[0], b[1] or 0.0)
    diff = abs(x - y)
    return diff > SIGNATURE_ABS_TOL and diff > SIGNATURE_REL_TOL * max(abs(x), abs(y))
