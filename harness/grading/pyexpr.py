"""Python-style answers (``7*sin(pi*x/5)+1``, ``sqrt(2)/2``, ``x**2``): a whitelist tokenizer and a small
precedence-climbing reader that builds sympy objects directly. Nothing is evaluated as code.

Some datasets write golds (and some models write answers) in Python/sympy syntax, which the LaTeX grammar
misreads (``sqrt(2)`` as ``s*q*r*t*2``). :func:`looks_pythonic` decides whether a string takes this route: no
backslash, braces or ``$``; and a ``*``, ``**`` or a whitelisted function call such as ``sin(``. Only these
tokens exist: numbers, ``+ - * / ** ^ ( ) ,``, whitelisted function and constant names, and single-letter
variables (optionally followed by digits). Anything else raises :class:`Unparsable`, and the caller falls back
to the LaTeX parser.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

from harness.grading.nodes import Unparsable

# Integer powers whose result would have more bits than this are refused (2**10**10 would exhaust memory).
MAX_POWER_BITS = 100_000
# Longer inputs are not Python-style answers (and the reader recurses once per nested parenthesis).
MAX_CHARS = 400

_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|([A-Za-z_][A-Za-z_0-9]*)|(\*\*|[-+*/^(),]))")
_FUNCTION_NAMES = ("sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "asin", "acos", "atan", "arcsin", "arccos",
                   "arctan", "sinh", "cosh", "tanh", "log", "ln", "exp", "abs", "Abs")
_CALL = re.compile(r"\b(?:" + "|".join(_FUNCTION_NAMES) + r")\s*\(")


def looks_pythonic(text: str) -> bool:
    """Whether ``text`` should be read as a Python-style expression (see the module docstring)."""
    if len(text) > MAX_CHARS or any(c in text for c in "\\{}$="):
        return False
    return "*" in text or bool(_CALL.search(text))


@functools.cache
def _names() -> dict[str, Any]:
    """Whitelisted names -> sympy functions/constants (built on first use)."""
    import sympy

    funcs: dict[str, Any] = {
        "sqrt": sympy.sqrt, "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "cot": sympy.cot,
        "sec": sympy.sec, "csc": sympy.csc, "asin": sympy.asin, "acos": sympy.acos, "atan": sympy.atan,
        "arcsin": sympy.asin, "arccos": sympy.acos, "arctan": sympy.atan, "sinh": sympy.sinh,
        "cosh": sympy.cosh, "tanh": sympy.tanh, "log": sympy.log, "ln": sympy.log, "exp": sympy.exp,
        "abs": sympy.Abs, "Abs": sympy.Abs,
    }
    consts: dict[str, Any] = {"pi": sympy.pi, "e": sympy.E, "E": sympy.E, "I": sympy.I, "oo": sympy.oo,
                              "inf": sympy.oo, "infty": sympy.oo}
    return {"funcs": funcs, "consts": consts}


def _tokens(text: str) -> list[tuple[str, str]]:
    """(kind, text) tokens: kind is "num", "name" or "op". Raises Unparsable on any other character."""
    tokens: list[tuple[str, str]] = []
    i = 0
    text = text.rstrip()
    while i < len(text):
        match = _TOKEN.match(text, i)
        if match is None:
            raise Unparsable(f"not a Python-style expression at {text[i:i + 10]!r}")
        kind = "num" if match[1] else "name" if match[2] else "op"
        tokens.append((kind, match[1] or match[2] or match[3]))
        i = match.end()
    return tokens


class _Reader:
    """Precedence climbing over the token list: sum > product > unary sign > power (right-associative)."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens) or (expected is not None and self.tokens[self.pos][1] != expected):
            raise Unparsable(f"expected {expected or 'more input'} in a Python-style expression")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def sum(self) -> Any:
        value = self.product()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            value = value + self.product() if op == "+" else value - self.product()
        return value

    def product(self) -> Any:
        value = self.unary()
        while self.peek() in ("*", "/"):
            op = self.take()[1]
            right = self.unary()
            value = value * right if op == "*" else value / right
        return value

    def unary(self) -> Any:
        if self.peek() in ("+", "-"):
            sign = self.take()[1]
            return self.unary() if sign == "+" else -self.unary()
        return self.power()

    def power(self) -> Any:
        base = self.atom()
        if self.peek() in ("**", "^"):
            self.take()
            exponent = self.unary()
            _check_power(base, exponent)
            return base ** exponent
        return base

    def atom(self) -> Any:
        import sympy

        kind, text = self.take()
        if kind == "num":
            from harness.grading.leaf import exact_number

            return exact_number(text)
        if text == "(":
            value = self.sum()
            self.take(")")
            return value
        if kind == "name":
            table = _names()
            if text in table["funcs"] and self.peek() == "(":
                self.take("(")
                args = [self.sum()]
                while self.peek() == ",":
                    self.take(",")
                    args.append(self.sum())
                self.take(")")
                if len(args) > 2 or (len(args) == 2 and text != "log"):
                    raise Unparsable(f"{text}() takes one argument")
                return table["funcs"][text](*args) if text != "log" or len(args) == 1 else sympy.log(*args)
            if text in table["consts"]:
                return table["consts"][text]
            if re.fullmatch(r"[A-Za-z]\d*", text):
                return sympy.Symbol(text)
        raise Unparsable(f"unexpected {text!r} in a Python-style expression")


def _check_power(base: Any, exponent: Any) -> None:
    """Refuse integer powers too large to hold (their size is known before computing them)."""
    if getattr(base, "is_Integer", False) and getattr(exponent, "is_Integer", False) and exponent > 0:
        bits = float(exponent) * math.log2(max(2, abs(int(base))))
        if bits > MAX_POWER_BITS:
            raise Unparsable("number too large")


def parse_python(text: str) -> Any:
    """The sympy value of a Python-style expression. Raises Unparsable when ``text`` is not one."""
    if len(text) > MAX_CHARS:
        raise Unparsable("Python-style expression too long")
    reader = _Reader(_tokens(text))
    try:
        value = reader.sum()
    except (TypeError, ValueError, ZeroDivisionError, RecursionError) as err:
        if isinstance(err, Unparsable):
            raise
        raise Unparsable(f"cannot read {text[:40]!r}: {type(err).__name__}") from None
    if reader.pos != len(reader.tokens):
        raise Unparsable(f"unexpected {reader.peek()!r} in a Python-style expression")
    return value
