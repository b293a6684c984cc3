"""Compare two sympy values: numbers exactly or within a stated tolerance, expressions symbolically.

Policy:

* Exact against exact (neither side written as a decimal): equal when the difference evaluates to zero. It
  is evaluated at :data:`EVAL_DIGITS` significant digits; when that gives "zero to working precision" (which
  is what a true identity such as ``(1+\\sqrt2)^2 = 3+2\\sqrt2`` gives), it is evaluated again with up to
  :data:`ZERO_CHECK_BITS` bits of working precision, so a tiny true difference (``2^{2^{-1000}}`` vs 1, about
  1e-302) is still seen.
* A decimal on either side: equal within :data:`REL_TOL` relative (or :data:`ABS_TOL` absolute near zero).
  Rounded answers: ``0.333`` for 1/3 is wrong (off by 1e-3 relative), ``0.3333333`` is right: an answer must
  carry about seven significant digits to match an irrational or repeating gold. This is stricter than
  graders that round both sides to a few digits, on purpose: a rounded answer to an exact question is a
  different answer.
* Expressions with symbols: expansion; else agreement at :data:`N_POINTS` fixed pseudo-random positive points,
  and, where both sides are real there, at as many mixed-sign points (so ``\\sqrt{x^2}`` is not ``x``); else
  ``simplify``.

Expensive steps are bounded by the caller's deadline (the worker is killed on overrun), not here.
"""

from __future__ import annotations

import random
from typing import Any

from harness.grading.nodes import Scalar

# A decimal answer matches when |a - b| <= REL_TOL * max(|a|, |b|): 1e-6 accepts every printed digit of a
# 7-significant-figure answer (0.8660254 for sqrt(3)/2) and rejects a rounding to 3-4 figures (0.333 for 1/3).
REL_TOL = 1e-6
# Below this magnitude a decimal counts as zero (so "0.0000001" matches "0" but "0.001" does not).
ABS_TOL = 1e-9
# Exact sides are evaluated at this many digits; a difference that vanishes at this precision is re-checked
# with up to ZERO_CHECK_BITS bits of working precision (about 1200 digits; a few ms on typical answers).
EVAL_DIGITS = 50
ZERO_CHECK_BITS = 4000
# Expressions with symbols agree at a point when they match to this relative precision.
POINT_REL_TOL = 1e-20
# Expressions with free symbols are evaluated at this many pseudo-random points (fixed seed). They are equal
# when every point that evaluates agrees and at least MIN_GOOD_POINTS do.
N_POINTS = 5
MIN_GOOD_POINTS = 3
_POINT_SEED = 20240601


def prepare(value: Any) -> Any:
    """The value as compared: the symbol ``i`` is the imaginary unit; unevaluated wrappers and matrix
    sums/products are evaluated."""
    import sympy

    if isinstance(value, sympy.MatrixExpr):  # an unevaluated sum/product of matrices: compute it
        value = value.doit()
        value = value.as_explicit() if isinstance(value, sympy.MatrixExpr) else value
    if isinstance(value, sympy.MatrixBase):
        return value.applyfunc(prepare)
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
    va, vb = prepare(a.value), prepare(b.value)
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


def _no_digits(value: Any) -> bool:
    """Whether an evaluated number is zero, or a zero "to working precision" (all digits lost to
    cancellation, as identities evaluate), in both its real and imaginary parts."""
    for part in value.as_real_imag():
        if part != 0 and getattr(part, "_prec", 100) > 1:
            return False
    return True


def _vanishes(dx: Any, value: Any) -> bool:
    """Whether an exact difference ``dx`` (``value``: it evaluated to EVAL_DIGITS digits) is zero; when that
    evaluation left no significant digit (as identities do), it is evaluated again with up to
    ZERO_CHECK_BITS bits of working precision."""
    import sympy

    if value == 0 or not _no_digits(value):
        return bool(value == 0)
    return _no_digits(sympy.N(dx, EVAL_DIGITS, maxn=ZERO_CHECK_BITS))


def _close(dx: Any, scale: Any, tol: float | None) -> bool | None:
    """Whether a numeric difference is negligible at ``scale`` (``tol`` relative; None: exact, see
    :func:`_vanishes`); None when it is not a finite number. Computed with sympy/mpmath floats, so huge
    magnitudes such as ``(10^8)!`` compare."""
    import sympy

    try:
        value = sympy.N(dx, EVAL_DIGITS)
        if not value.is_number or value.has(sympy.nan, sympy.zoo, sympy.oo):
            return None
        if tol is None:
            return _vanishes(dx, value)
        diff, size = sympy.Abs(value), sympy.Abs(sympy.N(scale, EVAL_DIGITS))
        if not size.is_number:
            return None
        return bool(diff <= tol * size) or bool(diff <= ABS_TOL)
    except (TypeError, ValueError, OverflowError, ZeroDivisionError, AttributeError):
        return None


def _numbers_equal(x: Any, y: Any, tol: float | None) -> tuple[bool, str]:
    """Numbers without symbols: compared by the policy in the module docstring."""
    try:
        scale = max_abs(x, y)
    except (TypeError, ValueError):
        return False, "not comparable numbers"
    verdict = _close(x - y, scale, tol)
    if verdict is None:
        return False, "not comparable numbers"
    if tol is None:
        return verdict, "equal numbers" if verdict else "different numbers"
    return verdict, f"equal within {tol:g}" if verdict else f"differ by more than {tol:g}"


def max_abs(x: Any, y: Any) -> Any:
    """max(|x|, |y|) as a sympy number (the scale of a relative tolerance)."""
    import sympy

    return sympy.Max(sympy.Abs(sympy.N(x, 20)), sympy.Abs(sympy.N(y, 20)))


def _points(symbols: list[Any], signed: bool) -> list[dict[Any, Any]]:
    """N_POINTS fixed pseudo-random rational substitutions with magnitudes in [1.13, 2.87] (away from 0 and 1,
    where special cases hide). With ``signed``, point i makes symbol j negative when bit j of i is set (so the
    first three symbols meet every sign pattern), later symbols at random."""
    import sympy

    rng = random.Random(_POINT_SEED + signed)
    points = []
    for i in range(1, N_POINTS + 1):
        point = {}
        for j, s in enumerate(symbols):
            magnitude = sympy.Rational(rng.randint(1130, 2870), 1000)
            negative = signed and (bool(i >> j & 1) if j < 3 else rng.random() < 0.5)
            point[s] = -magnitude if negative else magnitude
        points.append(point)
    return points


def _at_points(x: Any, y: Any, tol: float, signed: bool) -> tuple[int, bool]:
    """(points where both sides evaluate, whether any of them disagree). With ``signed``, only points where
    both sides are real count (a principal-branch root of a negative number is no counter-example)."""
    import sympy

    diff = x - y
    # The symbols of both sides, not of the difference: "p + 1" minus "p" has none left, yet each side
    # still needs values to be evaluated.
    symbols = sorted(x.free_symbols | y.free_symbols, key=lambda s: s.name)
    good = 0
    for point in _points(symbols, signed):
        try:
            xv, yv = sympy.N(x.subs(point), 30), sympy.N(y.subs(point), 30)
            if signed and not (xv.is_real and yv.is_real):
                continue
            verdict = _close(diff.subs(point), max_abs(xv, yv), tol)
        except (TypeError, ValueError, ZeroDivisionError, NotImplementedError, AttributeError):
            continue
        if verdict is False:
            return good, True
        good += verdict is True
    return good, False


def _expressions_equal(x: Any, y: Any, tol: float | None) -> tuple[bool, str]:
    """Expressions with symbols: expand, then evaluation at points (positive, then mixed signs), then simplify."""
    import sympy

    diff = x - y
    expanded = False
    try:
        expanded = tol is None and sympy.expand(diff) == 0
    except (TypeError, ValueError, NotImplementedError):
        pass
    if expanded:
        return True, "equal after expansion"
    point_tol = tol if tol is not None else POINT_REL_TOL
    good, differ = _at_points(x, y, point_tol, signed=False)
    if differ:
        return False, "differ at a sample point"
    if good >= MIN_GOOD_POINTS:
        if _at_points(x, y, point_tol, signed=True)[1]:
            return False, "differ at a sample point with negative values"
        how = f"within {tol:g}" if tol is not None else "to 20 digits"
        return True, f"agree {how} at {good} sample points"
    try:
        if sympy.simplify(diff) == 0:
            return True, "equal after simplify"
    except (TypeError, ValueError, NotImplementedError):
        pass
    return False, "not shown equal"
