"""Parse one value (a leaf of the answer tree) into sympy, without ever evaluating text as code.

Routes, in order: plain numbers, ``a/b`` fractions and mixed numbers (``2 1/2``) are built directly as exact
rationals; Python-style expressions go through :mod:`.pyexpr`; everything else goes through the grammar-based
LaTeX parser of ``latex2sympy2_extended``.

Safety: latex2sympy2_extended calls ``parse_expr`` only for ``variable_values`` (never passed here) and
``sympy.Number(text)`` (which runs ``sympify`` on a string) for number tokens; :func:`converter` replaces both
number paths with :func:`exact_number`, a regex-checked constructor of exact integers/rationals. Its
``FiniteSet``/``And`` call ``sympify`` on sympy objects only. Nothing is printed and re-parsed.
"""

from __future__ import annotations

import functools
import math
import re
from typing import TYPE_CHECKING, Any

from harness.grading.nodes import Scalar, Unparsable
from harness.grading.normalise import strip_units
from harness.grading.pyexpr import looks_pythonic, parse_python

if TYPE_CHECKING:
    import sympy

# Exponents of decimal/scientific literals beyond this are refused (1e100000 would be a huge integer).
MAX_EXPONENT = 400
# Digits in one number literal beyond this are refused.
MAX_DIGITS = 1000
# Values whose size alone makes them no answer are refused (status "unparsable") rather than compared:
# factorials of more than MAX_FACTORIAL_ARG, integer powers of more than MAX_POWER_BITS bits.
MAX_FACTORIAL_ARG = 10_000
MAX_POWER_BITS = 100_000

_DECIMAL = re.compile(r"\d\.\d|(?<![\d}])\.\d|\d\.(?![\d])|\d[eE][-+]?\d")
PLAIN_NUMBER = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")
_FRACTION = re.compile(r"^([-+]?\d+)\s*/\s*(\d+)$")
_MIXED = re.compile(r"^(\d+)\s+(\d+)\s*/\s*(\d+)$")
_WORDY = re.compile(r"^[A-Za-z][A-Za-z .'()-]*$")
# Within a wordy leaf, a word of four letters or two words of two make it prose ("xy" stays a product).
_PROSE = re.compile(r"[A-Za-z]{4,}|[A-Za-z]{2,}[ .'-]+[A-Za-z]{2,}")


class TextAnswer(Exception):
    """Raised inside parsing when a leaf is prose; the caller turns it into a Text node."""


def exact_number(text: str) -> sympy.Rational:
    """An exact sympy Integer/Rational from a decimal literal (commas ignored): ``"0.5"`` -> 1/2,
    ``"1.5E3"`` -> 1500. Raises Unparsable for anything else, so no string ever reaches sympify."""
    import sympy

    match = re.fullmatch(r"(\d*)(?:\.(\d*))?(?:[eE]([-+]?\d+))?", text.replace(",", "").strip())
    if match is None or not (match[1] or match[2]):
        raise Unparsable(f"not a number literal: {text[:40]!r}")
    whole, frac, exp = match[1] or "0", match[2] or "", int(match[3] or 0)
    if abs(exp) > MAX_EXPONENT or len(whole) + len(frac) > MAX_DIGITS:
        raise Unparsable("number literal too large")
    value = sympy.Rational(int(whole + frac), 10 ** len(frac))
    return value * sympy.Rational(10) ** exp


@functools.cache
def converter() -> Any:
    """A latex2sympy converter whose number handling never calls sympify (built on first use)."""
    from latex2sympy2_extended.latex2sympy2 import ConversionConfig, _Latex2Sympy, comma_number_regex

    class _SafeConverter(_Latex2Sympy):  # type: ignore[misc]
        def parse_number(self, text: str) -> Any:
            return exact_number(text)

        def parse(self, latex_str: str) -> Any:
            if comma_number_regex.match(latex_str):  # upstream would call sympy.Number(str) here
                return exact_number(latex_str)
            return super().parse(latex_str)

    # lowercase_symbols=False: "A" and "a" are different answers; variable_values None: no parse_expr.
    return _SafeConverter(None, config=ConversionConfig(lowercase_symbols=False))


def parse_scalar(s: str) -> Scalar:
    """Parse one value (no top-level commas/relations) into a Scalar; raises Unparsable or TextAnswer.

    A trailing percent sign or degree mark is removed and recorded on the Scalar (the comparison decides
    what it means); one inside an expression becomes a factor 1/100 or pi/180.
    """
    source = s
    s = strip_units(s)
    percent = s.endswith("\\%")
    if percent:
        s = s[:-2].strip()
    s = s.replace("\\%", "\\cdot\\frac{1}{100}")
    degrees = s.endswith("^{\\circ}") and s.count("^{\\circ}") == 1
    if degrees:
        s = s[: -len("^{\\circ}")].strip()
    s = s.replace("^{\\circ}", "\\cdot\\frac{\\pi}{180}")
    if not s:
        raise Unparsable("empty value")
    value = scalar_value(s)
    _refuse_huge(value)
    return Scalar(value, bool(_DECIMAL.search(s)), percent, source, degrees)


def _small_integer(expr: Any) -> int | float | None:
    """The exact value of an integer, or of a power of integers, when it fits in 64 bits; ``math.inf`` when
    such a power provably does not; None for anything else."""
    import sympy

    if expr.is_Integer:
        return int(expr) if abs(int(expr)).bit_length() <= 64 else math.inf
    if isinstance(expr, sympy.Pow) and expr.base.is_Integer and abs(int(expr.base)) > 1:
        exponent = _small_integer(expr.exp)
        if exponent == math.inf or (isinstance(exponent, int) and exponent * math.log2(abs(int(expr.base))) > 64):
            return math.inf
        if isinstance(exponent, int) and exponent >= 0:
            return int(int(expr.base) ** exponent)
    return None


def _refuse_huge(value: Any) -> None:
    """Raise Unparsable for a value containing a huge factorial or integer power (see MAX_FACTORIAL_ARG)."""
    import sympy

    if not isinstance(value, sympy.Basic):
        return
    for node in sympy.preorder_traversal(value):
        if isinstance(node, sympy.factorial):
            n = _small_integer(node.args[0])
            if n is not None and n > MAX_FACTORIAL_ARG:
                raise Unparsable("factorial too large to compare")
        elif isinstance(node, sympy.Pow) and node.base.is_Integer and abs(int(node.base)) > 1:
            exponent = _small_integer(node.exp)
            if exponent is not None and exponent * math.log2(abs(int(node.base))) > MAX_POWER_BITS:
                raise Unparsable("number too large to compare")


def scalar_value(s: str) -> Any:
    """The sympy value of one leaf (see the module docstring for the routes). Raises Unparsable, or
    TextAnswer for prose."""
    import sympy

    if PLAIN_NUMBER.match(s):
        return (-1 if s.startswith("-") else 1) * exact_number(s.lstrip("+-"))
    if (match := _FRACTION.match(s)) and int(match[2]) != 0:
        return sympy.Rational(int(match[1]), int(match[2]))
    if (match := _MIXED.match(s)) and int(match[3]) != 0:
        return int(match[1]) + sympy.Rational(int(match[2]), int(match[3]))
    if _WORDY.match(s) and _PROSE.search(s):
        raise TextAnswer(s)  # "no solution" is text, not the product n*o*s*o*l*u*t*i*o*n
    if looks_pythonic(s):
        try:
            return parse_python(s)
        except Unparsable:
            pass  # e.g. "2x*3": not Python after all; the LaTeX grammar may read it
    try:
        return converter().parse(s)
    except (RecursionError, MemoryError, Unparsable):
        raise
    except Exception as err:  # noqa: BLE001 - the ANTLR listener raises bare Exceptions; sympy many kinds
        if _WORDY.match(s) and re.search(r"[A-Za-z]{3}", s):
            raise TextAnswer(s) from None
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise Unparsable(f"cannot parse {s[:60]!r}: {first_line[:80]}") from None
