"""Verdicts decided in the calling process, without sympy or a worker: identical strings, text answers, and
plain numbers (integers, decimals, ``\\frac{a}{b}``, ``a/b``) compared with exact rational arithmetic.

The results are the ones :func:`equivalence.compare_normalised` gives for the same inputs (same policy,
same reasons), only cheaper: most answers of a real run are plain numbers, and they never leave the
process. Anything else returns None and goes to a worker.
"""

from __future__ import annotations

import re
from fractions import Fraction

from harness.grading.equivalence import Verdict
from harness.grading.nodes import text_key
from harness.grading.values import ABS_TOL, REL_TOL

# Longer digit strings go to a worker (they are rare, and Fraction arithmetic on them is not free).
MAX_FAST_DIGITS = 40

_INTEGER = re.compile(r"[-+]?\d+")
_DECIMAL = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+)")
_FRAC = re.compile(r"([-+]?)\\frac\{(\d+)\}\{(\d+)\}")
_SLASH = re.compile(r"([-+]?\d+)\s*/\s*(\d+)")
_REL_TOL = Fraction(REL_TOL)
_ABS_TOL = Fraction(ABS_TOL)


def plain_number(text: str) -> tuple[Fraction, bool] | None:
    """(exact value, written as a decimal) for a normalised plain number, else None."""
    if len(text) > MAX_FAST_DIGITS:
        return None
    if _INTEGER.fullmatch(text):
        return Fraction(int(text)), False
    if _DECIMAL.fullmatch(text):
        return Fraction(text), True
    match = _FRAC.fullmatch(text) or _SLASH.fullmatch(text)
    if match is None:
        return None
    if match.re is _FRAC:
        sign, num, den = match[1], int(match[2]), int(match[3])
        value = (-1 if sign == "-" else 1) * Fraction(num, den) if den else None
    else:
        value = Fraction(int(match[1]), int(match[2])) if int(match[2]) else None
    return None if value is None else (value, False)


def fast_signature(text: str) -> tuple[float | None, float | None, str] | None:
    """The :mod:`.signature` of a normalised plain number, computed here; None for anything else."""
    number = plain_number(text)
    return None if number is None else (float(number[0]), 0.0, text_key(text))


def _numbers_verdict(a: tuple[Fraction, bool], b: tuple[Fraction, bool]) -> Verdict:
    """Two plain numbers by the policy of :mod:`.values`: exact, or within REL_TOL when one is a decimal."""
    (x, x_dec), (y, y_dec) = a, b
    if x == y:
        return Verdict(True, "ok", "identical")
    if not (x_dec or y_dec):
        return Verdict(False, "ok", "different numbers")
    diff = abs(x - y)
    close = diff <= _REL_TOL * max(abs(x), abs(y)) or diff <= _ABS_TOL
    return Verdict(close, "ok", f"equal within {REL_TOL:g}" if close else f"differ by more than {REL_TOL:g}")


def fast_verdict(p: str, g: str, answer_type: str) -> Verdict | None:
    """The verdict on normalised answer ``p`` against normalised gold ``g``, or None when it needs a worker."""
    if not p or not g:
        return None  # the worker's compare explains what is missing
    if answer_type == "text":
        same = text_key(p) == text_key(g)
        return Verdict(same, "ok", "same text" if same else "different text")
    if answer_type == "integer":
        if _INTEGER.fullmatch(p) and _INTEGER.fullmatch(g):
            same = int(p) == int(g)
            return Verdict(same, "ok", "same integer" if same else "different integer")
        return None
    if p == g:
        return Verdict(True, "ok", "identical after normalisation")
    a, b = plain_number(p), plain_number(g)
    if a is None or b is None:
        return None
    return _numbers_verdict(a, b)
