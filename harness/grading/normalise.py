"""Normalise an answer string into one canonical spelling (pure string work, no sympy; never raises).

The grader uses the result as the cache key and as the vote key of an answer, and the parser reads it. What it
rewrites: math delimiters and ``\\boxed``; ``\\left``/``\\right`` and sizing commands; ``\\dfrac``/``\\tfrac``;
spacing commands (also glued ones such as ``\\quadx``); ``\\text``-like commands; ``\\text{and}``/"and"/"or"
between answers (into a comma list); percent and degree marks; relation symbols; ``\\infty`` spellings;
single-token command arguments (``\\frac12``); primes (``x'`` keeps its prime as ``x^{\\prime}``); repeating
decimals (``0.\\overline{3}`` -> ``\\frac{1}{3}``); times of day (``4:30 p.m.`` -> ``16:30``); units after a
number; thousands separators (``1,000`` and ``1{,}000``; but ``(1,2)`` stays a tuple and ``1,22`` a list: a
comma is never a decimal mark); equation chains (``x = 5 + 6 = 11`` -> ``x = 11``) and ``\\approx``; ``x \\in S``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from harness.grading.brackets import brace_arguments, split_top_level, unwrap_command
from harness.grading.nodes import is_name

_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u00d7": "\\times ", "\u00b7": "\\cdot ", "\u2264": "\\leq ",
    "\u2265": "\\geq ", "\u2260": "\\neq ", "\u03c0": "\\pi ", "\u221e": "\\infty ", "\u221a": "\\sqrt",
    "\u00b2": "^2", "\u00b3": "^3", "\u00b1": "\\pm ", "\u00b0": "^{\\circ}", "\u2208": "\\in ",
    "\u222a": "\\cup ", "\u00a0": " ", "\u20ac": "", "\u00a3": "", "\u00a5": "", "\u2032": "'",
}
# "\\frac" written with doubled backslashes (a JSON/Python escape applied twice): halve every pair.
_DOUBLED_ESCAPE = re.compile(r"(?<!\\)\\\\(?=(?:frac|dfrac|sqrt|left|right|begin|end|text|boxed|pi|cdot|times|"
                             r"infty|le|ge|ne|mathrm|mathbf|circ|cup|pm)(?![a-z]))")
_MATH_DELIMS = re.compile(r"(?<!\\)\\[()\[\]]|\\\$|\$")
_SIZING = re.compile(r"\\(?:left|right|middle|[bB]igg?[lr]?)(?![a-zA-Z])\s*\.?")
_FRAC_VARIANTS = re.compile(r"\\[dtc]frac(?![a-zA-Z])")
_DROP = re.compile(r"(?<!\\)\\(?:displaystyle|textstyle|scriptstyle|limits)(?![a-zA-Z])|(?<!\\)\\!\s*|\{\s*,\s*\}")
# \quad and \qquad are also dropped when glued to the next word ("\quadx_{2}"): no LaTeX command starts so.
_SPACES = re.compile(r"(?<!\\)\\(?:,|;|:|>|q?quad|enspace|thinspace(?![a-zA-Z]))|(?<!\\)\\ |~")
_TEXT_COMMANDS = re.compile(r"\\(?:textbf|textit|textrm|textnormal|textsf|texttt|textup|mathrm|mathbf|mathit|"
                            r"mathsf|mathtt|mbox|hbox|text|operatorname)\s*\{")
_AND_OR_TEXT = re.compile(r",?\s*\\text\{\s*,?\s*(?:and|or)\s*\}\s*,?")
# "and"/"or" between answers; also glued to a number or bracket: "(11,7)or(7,11)", "W(x)=1orW(x)=-1".
_AND_OR_WORD = re.compile(r",?\s+(?:and|or)\s+|\s*,\s*(?:and|or)\s+|(?<=[\d)\]}])\s*(?:and|or)\s*(?=[A-Z(\[{\\\d-])")
_PERCENT = re.compile(r"\s*(?:\\%|%|\\text\{\s*(?:percent|percentage|pct)\s*\}|\b(?:percentage|percent|pct)\b)")
_DEGREE = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![a-zA-Z])|\\degree(?![a-zA-Z])")
_DEGREE_WORD = re.compile(r"\s*(?:\\text\{\s*degrees?\s*\}|\bdegrees?)\s*$")
_RELATIONS = (
    (re.compile(r"\\(?:leq|le|leqslant|leqq)(?![a-zA-Z])|<="), "\\leq "),
    (re.compile(r"\\(?:geq|ge|geqslant|geqq)(?![a-zA-Z])|>="), "\\geq "),
    (re.compile(r"\\(?:neq|ne)(?![a-zA-Z])|!="), "\\neq "),
    (re.compile(r"\\lt(?![a-zA-Z])"), "<"),
    (re.compile(r"\\gt(?![a-zA-Z])"), ">"),
)
_INFINITY = re.compile(r"\binfinity\b|\binf\b")
_SINGLE_LETTER_TEXT = re.compile(r"\\text\{\s*([A-Za-z])\s*\}")
_SUBSCRIPT_CHAR = re.compile(r"_([A-Za-z0-9])")
_PRIME = re.compile(r"(?<=[A-Za-z}])('+)(?![A-Za-z])")
_REPEATING = re.compile(r"(?<![\d.])(\d*)\.(\d*)\\overline\{(\d{1,12})\}")
_NAME_IN = re.compile(r"^[A-Za-z](?:_\{\w+\})?\s*\\in(?![a-zA-Z])\s*")
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_THOUSANDS_SPACE = re.compile(r"^[-+]?\d{1,3}(?: \d{3})+(?:\.\d+)?$")
_NUMBER_THEN_WORDS = re.compile(r"^([-+]?(?:\d+(?:\.\d*)?|\.\d+))(\s*)([A-Za-z][A-Za-z. ]*?)\s*(?:\^\{?[23]\}?)?$")
# Words that follow a number as a factor, not as a unit.
_NOT_UNITS = frozenset({"pi", "sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "infty"})
# Two-letter words after a number that are units; other short words ("12ab") are factors of a product.
_SHORT_UNITS = frozenset({"cm", "mm", "km", "kg", "mg", "ft", "yd", "mi", "hr", "ml", "cc", "lb", "oz", "sq",
                          "in", "am", "pm", "rs", "mph", "kmh", "sec", "min", "hrs", "lbs", "yds", "usd"})
_TRAILING_TEXT_UNIT = re.compile(r"(?<=\S)\s*\\text\{[^{}]*\}(?:\s*\^\s*\{?\d\}?)?\s*$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(?:\\text\{\s*)?(?:([AaPp])\.?\s*(?:[Mm]\.?)?\.?)?\s*\}?$")
_WHOLE_TEXT = re.compile(r"^\\text\{([^{}]*)\}$")


def _outside_text(text: str, pattern: re.Pattern[str], repl: str | Callable[[re.Match[str]], str]) -> str:
    """Apply ``pattern.sub(repl, ...)`` to the parts of ``text`` outside ``\\text{...}`` groups."""
    pieces = re.split(r"(\\text\{[^{}]*\})", text)
    return "".join(p if p.startswith("\\text{") else pattern.sub(repl, p) for p in pieces)


def canonical_time(text: str) -> str | None:
    """``08:34 \\text{P.M.}`` -> ``20:34``; ``4:30 a.m.`` -> ``04:30``; ``4:30`` -> ``4:30`` (half of the day
    not given); ``20:34:00`` -> ``20:34``. None when ``text`` is not a time of day.

    A two-digit hour means the half of the day is fixed (see :class:`nodes.Time`)."""
    match = _TIME.match(text)
    if match is None:
        return None
    hour, minute, second, half = int(match[1]), int(match[2]), match[3], match[4]
    if hour > 23 or minute > 59 or (second not in (None, "00")) or (half and not 1 <= hour <= 12):
        return None
    if half and half.lower() == "p" and hour != 12:
        hour += 12
    elif half and half.lower() == "a" and hour == 12:
        hour = 0
    explicit = bool(half) or len(match[1]) == 2 or hour > 12
    return f"{hour:02d}:{minute:02d}" if explicit else f"{hour}:{minute:02d}"


def _repeating_decimal(match: re.Match[str]) -> str:
    """``1.2\\overline{34}`` -> ``\\frac{611}{495}`` (exact)."""
    whole, fixed, period = match[1] or "0", match[2], match[3]
    scale = 10 ** len(fixed)
    repeat = 10 ** len(period) - 1
    numerator = (int(whole) * scale + int(fixed or "0")) * repeat + int(period)
    common = math.gcd(numerator, scale * repeat)
    return f"\\frac{{{numerator // common}}}{{{scale * repeat // common}}}"


def strip_units(text: str) -> str:
    """Drop a unit after a value: ``15\\text{ cm}^2`` -> ``15``, ``10 square units`` -> ``10``.

    A plain word after a number is a unit when it is a known short unit, or has 3+ letters after a space, or
    4+ letters without one (``10weeks``); ``12ab`` and ``3 pi`` stay products.
    """
    stripped = _TRAILING_TEXT_UNIT.sub("", text)
    if stripped and stripped != text and not stripped.endswith(("=", "\\in", ",")):
        text = stripped
    match = _NUMBER_THEN_WORDS.match(text)
    if match:
        word = match[3].strip().split(" ")[0].rstrip(".").lower()
        long_enough = len(word) >= (3 if match[2] else 4)
        if word in _SHORT_UNITS or (long_enough and word not in _NOT_UNITS):
            return match[1]
    return text


def _simplify_chains(text: str) -> str:
    """``x \\approx 11`` -> ``11``; ``a \\approx b`` -> ``a``; ``x = 5+6 = 11`` -> ``x = 11``; ``1 = y = 0`` -> ``0``."""
    parts = split_top_level(text, ("\\approx",))
    if len(parts) > 1:
        text = parts[1] if is_name(parts[0]) else parts[0]
    parts = split_top_level(text, ("=",))
    if len(parts) > 2:
        text = f"{parts[0]} = {parts[-1]}" if is_name(parts[0]) else parts[-1]
    return text.strip()


def _spelling(s: str) -> str:
    """The first, purely lexical pass: delimiters, commands, symbols and marks in one spelling each."""
    if _DOUBLED_ESCAPE.search(s):
        s = s.replace("\\\\", "\\")
    for command in ("\\boxed", "\\fbox"):
        s = unwrap_command(s, command)
    for old, new in _UNICODE.items():
        s = s.replace(old, new)
    s = _MATH_DELIMS.sub(" ", s).replace('\\"', "").replace('"', "")
    s = _SIZING.sub("", s)
    s = _FRAC_VARIANTS.sub("\\\\frac", s)
    s = _DROP.sub("", s)
    s = _SPACES.sub(" ", s)
    s = _TEXT_COMMANDS.sub("\\\\text{", s)
    s = _AND_OR_TEXT.sub(", ", s)
    s = _SINGLE_LETTER_TEXT.sub(r"\1", s)
    s = _PERCENT.sub("\\\\%", s)
    s = _DEGREE.sub("^{\\\\circ}", s)
    s = _DEGREE_WORD.sub("^{\\\\circ}", s)
    for pattern, repl in _RELATIONS:
        s = pattern.sub(repl.replace("\\", "\\\\"), s)
    s = _INFINITY.sub("\\\\infty", s)
    s = _REPEATING.sub(_repeating_decimal, s)
    s = brace_arguments(s, "\\frac", 2)
    s = brace_arguments(s, "\\sqrt", 1)
    s = _SUBSCRIPT_CHAR.sub(r"_{\1}", s)
    s = _outside_text(s, _PRIME, lambda m: "^{" + "\\prime" * len(m[1]) + "}")
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"^(?:=\s*)+", "", s)
    return re.sub(r"(?:\s|\.|,|;|\\(?![a-zA-Z%{}]))+$", "", s)


def normalize(text: str) -> str:
    """The canonical spelling of an answer (see the module docstring). Pure string work; never raises."""
    s = _spelling(text.strip())
    whole_text = _WHOLE_TEXT.match(s)
    time = canonical_time(whole_text[1].strip() if whole_text else s)
    if time is not None:
        return time
    s = _outside_text(s, _AND_OR_WORD, ", ")
    s = _NAME_IN.sub("", s)
    s = strip_units(s)
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    elif _THOUSANDS_SPACE.match(s):
        s = s.replace(" ", "")
    if not split_top_level(s, (",", ";"))[1:]:
        s = _simplify_chains(s)
    return s
