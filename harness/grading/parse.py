"""Normalise an answer string and parse it into a small tree of sympy values.

Two steps:

* :func:`normalize` (pure string work, no sympy; the grader also uses it for cache and vote keys) rewrites
  LaTeX spellings into one canonical form: math delimiters, ``\\left``/``\\right``, ``\\dfrac``, spacing
  commands, thousands separators, units after a number, ``\\text{and}``, percent and degree marks, relation
  symbols, chains ``x = 5 + 6 = 11`` and ``\\approx``, ``x \\in S``, times of day.
* :func:`parse_answer` splits the normalised string at the top level itself (lists, tuples, intervals, sets,
  unions, ``\\pm``, relations) and parses each leaf with the grammar-based parser of ``latex2sympy2_extended``.

Safety: untrusted text never reaches ``eval``, ``exec``, ``sympify`` or ``parse_expr``. latex2sympy2_extended
calls ``parse_expr`` only for ``variable_values`` (never passed here) and ``sympy.Number(text)`` (which runs
``sympify`` on a string) for number tokens; :class:`_SafeConverter` replaces both number paths with a
regex-checked constructor of exact integers/rationals. Its ``FiniteSet``/``And`` call ``sympify`` on sympy
objects only. Leaves are parsed with sympy objects throughout; nothing is printed and re-parsed.

sympy and latex2sympy2_extended are imported on first parse, so importing this module stays cheap.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sympy

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
# Exponents of decimal/scientific literals beyond this are refused (1e100000 would be a huge integer).
MAX_EXPONENT = 400


class Unparsable(ValueError):
    """The answer cannot be parsed; the message says why."""


# ---------------------------------------------------------------------------------------------------------
# Normalisation (strings only)
# ---------------------------------------------------------------------------------------------------------

_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u00d7": "\\times ", "\u00b7": "\\cdot ", "\u2264": "\\leq ",
    "\u2265": "\\geq ", "\u2260": "\\neq ", "\u03c0": "\\pi ", "\u221e": "\\infty ", "\u221a": "\\sqrt",
    "\u00b2": "^2", "\u00b3": "^3", "\u00b1": "\\pm ", "\u00b0": "^{\\circ}", "\u2208": "\\in ",
    "\u222a": "\\cup ", "\u00a0": " ", "\u20ac": "", "\u00a3": "", "\u00a5": "",
}
# "\\frac" written with doubled backslashes (a JSON/Python escape applied twice): halve every pair.
_DOUBLED_ESCAPE = re.compile(r"(?<!\\)\\\\(?=(?:frac|dfrac|sqrt|left|right|begin|end|text|boxed|pi|cdot|times|"
                             r"infty|le|ge|ne|mathrm|mathbf|circ|cup|pm)(?![a-z]))")
_MATH_DELIMS = re.compile(r"(?<!\\)\\[()\[\]]|\\\$|\$")
_SIZING = re.compile(r"\\(?:left|right|middle|[bB]igg?[lr]?)(?![a-zA-Z])\s*\.?")
_FRAC_VARIANTS = re.compile(r"\\[dtc]frac(?![a-zA-Z])")
_DROP = re.compile(r"(?<!\\)\\(?:displaystyle|textstyle|scriptstyle|limits)(?![a-zA-Z])|(?<!\\)\\!\s*|\{\s*,\s*\}")
_SPACES = re.compile(r"(?<!\\)\\(?:,|;|:|>|quad|qquad|enspace|thinspace)(?![a-zA-Z])|(?<!\\)\\ |~")
_TEXT_COMMANDS = re.compile(r"\\(?:textbf|textit|textrm|textnormal|textsf|texttt|textup|mathrm|mathbf|mathit|"
                            r"mathsf|mathtt|mbox|hbox|text)\s*\{")
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
_NAME_IN = re.compile(r"^[A-Za-z](?:_\{\w+\})?\s*\\in(?![a-zA-Z])\s*")
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_THOUSANDS_SPACE = re.compile(r"^[-+]?\d{1,3}(?: \d{3})+(?:\.\d+)?$")
_NUMBER_THEN_WORDS = re.compile(r"^([-+]?(?:\d+(?:\.\d*)?|\.\d+))(\s*)([A-Za-z][A-Za-z. ]*?)\s*(?:\^\{?[23]\}?)?$")
# Words that follow a number as a factor, not as a unit.
_NOT_UNITS = frozenset({"pi", "sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "infty"})
# Two-letter words after a number that are units; other short words ("12ab") are factors of a product.
_SHORT_UNITS = frozenset({"cm", "mm", "km", "kg", "mg", "ft", "yd", "mi", "hr", "ml", "cc", "lb", "oz", "sq",
                          "in", "am", "pm", "rs", "mph", "kmh", "sec", "min", "hrs", "lbs", "yds"})
_TRAILING_TEXT_UNIT = re.compile(r"(?<=\S)\s*\\text\{[^{}]*\}(?:\s*\^\s*\{?\d\}?)?\s*$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(?:\\text\{\s*)?(?:([AaPp])\.?\s*(?:[Mm]\.?)?\.?)?\s*\}?$")


def _brace_arguments(text: str, command: str, n_args: int) -> str:
    """Put braces around single-token arguments: ``\\frac12`` -> ``\\frac{1}{2}``, ``\\sqrt3`` -> ``\\sqrt{3}``."""
    out: list[str] = []
    pattern = re.compile(re.escape(command) + r"(?![a-zA-Z])")
    i = 0
    while (match := pattern.search(text, i)) is not None:
        out.append(text[i:match.end()])
        j = match.end()
        for _ in range(n_args):
            while j < len(text) and text[j] == " ":
                j += 1
            if j < len(text) and text[j] == "{":
                close = _matching_close(text, j)
                if close < 0:
                    break
                out.append(text[j:close + 1])
                j = close + 1
                continue
            token = re.match(r"\\[a-zA-Z]+|[A-Za-z0-9]", text[j:])
            if token is None:
                break
            out.append("{" + token.group(0) + "}")
            j += len(token.group(0))
        i = j
    out.append(text[i:])
    return "".join(out)


def _unwrap_command(text: str, command: str) -> str:
    """Replace every ``\\command{X}`` by ``X`` (balanced braces)."""
    while True:
        start = text.find(command + "{")
        if start < 0:
            return text
        open_pos = start + len(command)
        depth, close = 0, -1
        for k in range(open_pos, len(text)):
            if text[k] == "{":
                depth += 1
            elif text[k] == "}":
                depth -= 1
                if depth == 0:
                    close = k
                    break
        if close < 0:
            return text[:start] + text[open_pos + 1:]
        text = text[:start] + text[open_pos + 1:close] + text[close + 1:]


def _outside_text(text: str, pattern: re.Pattern[str], repl: str) -> str:
    """Apply ``pattern.sub(repl, ...)`` to the parts of ``text`` outside ``\\text{...}`` groups."""
    pieces = re.split(r"(\\text\{[^{}]*\})", text)
    return "".join(p if p.startswith("\\text{") else pattern.sub(repl, p) for p in pieces)


def _canonical_time(text: str) -> str | None:
    """``08:34 \\text{P.M.}`` -> ``20:34``; ``20:34:00`` -> ``20:34``; None when ``text`` is not a time of day."""
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
    return f"{hour}:{minute:02d}"


def _strip_units(text: str) -> str:
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


def normalize(text: str) -> str:
    """The canonical spelling of an answer (see the module docstring). Pure string work; never raises."""
    s = text.strip()
    if _DOUBLED_ESCAPE.search(s):
        s = s.replace("\\\\", "\\")
    for command in ("\\boxed", "\\fbox"):
        s = _unwrap_command(s, command)
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
    s = _brace_arguments(s, "\\frac", 2)
    s = _brace_arguments(s, "\\sqrt", 1)
    s = _SUBSCRIPT_CHAR.sub(r"_{\1}", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"^(?:=\s*)+", "", s)
    s = re.sub(r"(?:\s|\.|,|;|\\(?![a-zA-Z%{}]))+$", "", s)
    time = _canonical_time(s)
    if time is not None:
        return time
    s = _outside_text(s, _AND_OR_WORD, ", ")
    s = _NAME_IN.sub("", s)
    s = _strip_units(s)
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    elif _THOUSANDS_SPACE.match(s):
        s = s.replace(" ", "")
    if not split_top_level(s, (",", ";"))[1:]:
        s = _simplify_chains(s)
    return s


# ---------------------------------------------------------------------------------------------------------
# Top-level structure
# ---------------------------------------------------------------------------------------------------------

_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(")]}")


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting in ``text`` (any of ``()[]{}``); -1 when brackets close more than open."""
    depth = deepest = 0
    for char in text:
        if char in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
        elif char in _CLOSERS:
            depth -= 1
            if depth < 0:
                return -1
    return deepest


def split_top_level(text: str, separators: tuple[str, ...]) -> list[str]:
    """Split ``text`` at ``separators`` that are outside every bracket; parts are stripped.

    Brackets of any kind count (``[0,1)`` is one group, as intervals need). A separator that is a command
    (``\\cup``) only matches as a whole command. Unbalanced text is returned whole.
    """
    parts: list[str] = []
    depth, start, i = 0, 0, 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in "{}":
            i += 2  # "\{" and "\}" are set braces, still brackets for splitting purposes
            depth += 1 if text[i - 1] == "{" else -1
            continue
        if char in _OPENERS:
            depth += 1
        elif char in _CLOSERS:
            depth -= 1
            if depth < 0:
                return [text.strip()]
        elif depth == 0:
            for sep in separators:
                if text.startswith(sep, i) and not (sep[0] == "\\" and text[i + len(sep):i + len(sep) + 1].isalpha()):
                    parts.append(text[start:i].strip())
                    i += len(sep)
                    start = i
                    break
            else:
                i += 1
                continue
            continue
        i += 1
    if depth != 0:
        return [text.strip()]
    parts.append(text[start:].strip())
    return parts


def _matching_close(text: str, open_pos: int) -> int:
    """Index of the bracket closing the one at ``open_pos`` (any kind matches any kind), or -1."""
    depth = 0
    for i in range(open_pos, len(text)):
        if text[i] in _OPENERS:
            depth += 1
        elif text[i] in _CLOSERS:
            depth -= 1
            if depth == 0:
                return i
    return -1


_NAME_SUBSCRIPTS = re.compile(r"_\{[^{}]*\}|_\w|'+")
_NAME_FORBIDDEN = re.compile(r"[\d+\-*/^=<>]|\\(?:leq|geq|neq|pm|sqrt|infty)")
_SIMPLE_NAME = re.compile(r"^[A-Za-z](?:_\{\w+\})?'*$|^[A-Za-z]\([A-Za-z](?:,[A-Za-z])*\)$")


def is_name(text: str) -> bool:
    """True when ``text`` names a quantity rather than computing one: ``x``, ``a_{37}``, ``f(x)``, ``|AB|``,
    ``(p,q)``, ``S_{MBCN}:S``, ``\\frac{NO}{BO}``. No digits outside subscripts, no arithmetic or relations."""
    core = _NAME_SUBSCRIPTS.sub("", text).strip()
    return bool(core) and len(core) <= 40 and not _NAME_FORBIDDEN.search(core)


def is_simple_name(text: str) -> bool:
    """A single (subscripted) letter or a one-letter function of letters: ``y``, ``x_{1}``, ``f(x)``."""
    return bool(_SIMPLE_NAME.match(text.replace(" ", "")))


# ---------------------------------------------------------------------------------------------------------
# The answer tree
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scalar:
    """One value: a sympy expression or matrix. ``decimal``: the source wrote a decimal literal (then numeric
    tolerance applies); ``percent``/``degrees``: it ended in a percent sign / degree mark (removed from
    ``value``)."""

    value: Any
    decimal: bool
    percent: bool
    source: str
    degrees: bool = False


@dataclass(frozen=True)
class Text:
    """A text answer (``\\text{Evelyn}``, ``(C)``): compared as a normalised string."""

    text: str


@dataclass(frozen=True)
class Relation:
    """``lhs op rhs`` with op one of ``=``, ``<``, ``<=``, ``!=`` (``>``/``>=`` are flipped on parsing).
    ``name`` is the source of the left side of an equation as written (used by the "x = 3" rules)."""

    op: str
    lhs: Node
    rhs: Node
    name: str


@dataclass(frozen=True)
class Bracketed:
    """An ordered group with its brackets: a tuple ``(1,2)``, an interval ``[0,1)``, a list ``[x, x+1]``."""

    open: str
    close: str
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Unordered:
    """Elements whose order does not matter: ``\\{1,2\\}``, a bare list ``1, 2``, the two values of ``\\pm``."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class SetUnion:
    """``A \\cup B \\cup ...``: compared as sets of reals."""

    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Time:
    """A time of day, ``H:MM`` on a 24-hour clock when the answer said am/pm."""

    hour: int
    minute: int


@dataclass(frozen=True)
class BaseN:
    """A numeral in another base, ``204_{5}``: digits and base, compared as written."""

    digits: str
    base: str


Node = Scalar | Text | Relation | Bracketed | Unordered | SetUnion | Time | BaseN

_WHOLE_TEXT = re.compile(r"^\\text\{([^{}]*)\}$")
_WORDY = re.compile(r"^[A-Za-z][A-Za-z .'()-]*$")
_BASE_N = re.compile(r"^(\d+)_\{(\d+)\}$")
_REL_OPS = ("\\leq", "\\geq", "\\neq", "<", ">", "=")
_DECIMAL = re.compile(r"\d\.\d|(?<![\d}])\.\d|\d\.(?![\d])|\d[eE][-+]?\d")
_PLAIN_NUMBER = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")
_FRACTION = re.compile(r"^([-+]?\d+)\s*/\s*(\d+)$")
_MIXED = re.compile(r"^(\d+)\s+(\d+)\s*/\s*(\d+)$")


def text_key(text: str) -> str:
    """The comparison form of a text answer: ``\\text{}`` removed, case-folded, spaces collapsed, ``(C)`` -> ``c``."""
    s = _unwrap_command(text, "\\text")
    s = re.sub(r"\s+", " ", s).strip().strip(".").strip().casefold()
    match = re.fullmatch(r"\(([a-z])\)", s)
    return match[1] if match else s


def exact_number(text: str) -> sympy.Rational:
    """An exact sympy Integer/Rational from a decimal literal (commas ignored): ``"0.5"`` -> 1/2,
    ``"1.5E3"`` -> 1500. Raises Unparsable for anything else, so no string ever reaches sympify."""
    import sympy

    match = re.fullmatch(r"(\d*)(?:\.(\d*))?(?:[eE]([-+]?\d+))?", text.replace(",", "").strip())
    if match is None or not (match[1] or match[2]):
        raise Unparsable(f"not a number literal: {text[:40]!r}")
    whole, frac, exp = match[1] or "0", match[2] or "", int(match[3] or 0)
    if abs(exp) > MAX_EXPONENT or len(whole) + len(frac) > 1000:
        raise Unparsable("number literal too large")
    value = sympy.Rational(int(whole + frac), 10 ** len(frac))
    return value * sympy.Rational(10) ** exp


@functools.cache
def _converter() -> Any:
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


def _parse_scalar(s: str) -> Scalar:
    """Parse one value (no top-level commas/relations) into a Scalar; raises Unparsable.

    A trailing percent sign or degree mark is removed and recorded on the Scalar (the comparison decides
    what it means); one inside an expression becomes a factor 1/100 or pi/180.
    """
    source = s
    s = _strip_units(s)
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
    return Scalar(_scalar_value(s), bool(_DECIMAL.search(s)), percent, source, degrees)


def _scalar_value(s: str) -> Any:
    """The sympy value of one leaf: plain numbers, fractions and mixed numbers directly, the rest through the
    safe LaTeX converter. Raises Unparsable, or _TextAnswer for prose."""
    import sympy

    if _PLAIN_NUMBER.match(s):
        return (-1 if s.startswith("-") else 1) * exact_number(s.lstrip("+-"))
    if (match := _FRACTION.match(s)) and int(match[2]) != 0:
        return sympy.Rational(int(match[1]), int(match[2]))
    if (match := _MIXED.match(s)) and int(match[3]) != 0:
        return int(match[1]) + sympy.Rational(int(match[2]), int(match[3]))
    try:
        return _converter().parse(s)
    except (RecursionError, MemoryError, Unparsable):
        raise
    except Exception as err:  # noqa: BLE001 - the ANTLR listener raises bare Exceptions; sympy many kinds
        if _WORDY.match(s) and re.search(r"[A-Za-z]{3}", s):
            raise _TextAnswer(s) from None
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise Unparsable(f"cannot parse {s[:60]!r}: {first_line[:80]}") from None


class _TextAnswer(Exception):
    """Raised inside parsing when a leaf is prose; the caller turns it into a Text node."""


def _split_relation(s: str) -> Node | None:
    """A Relation (or an interval for ``a < x < b``) when ``s`` has top-level relation symbols, else None."""
    pieces: list[str] = []
    ops: list[str] = []
    depth, start, i = 0, 0, 0
    while i < len(s):
        char = s[i]
        if char in _OPENERS:
            depth += 1
        elif char in _CLOSERS:
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
    if not ops:
        return None
    if any(not p for p in pieces):
        raise Unparsable("relation with an empty side")
    if len(ops) == 1:
        return _relation(ops[0], pieces[0], pieces[1])
    if len(ops) == 2 and is_simple_name(pieces[1]):
        lows, highs = ("<", "\\leq"), (">", "\\geq")
        if ops[0] in lows and ops[1] in lows:
            lo, hi, strict = pieces[0], pieces[2], (ops[0] == "<", ops[1] == "<")
        elif ops[0] in highs and ops[1] in highs:
            lo, hi, strict = pieces[2], pieces[0], (ops[1] == ">", ops[0] == ">")
        else:
            raise Unparsable("mixed relation chain")
        return Bracketed("(" if strict[0] else "[", ")" if strict[1] else "]",
                         (parse_answer(lo), parse_answer(hi)))
    raise Unparsable("relation chain")


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
    if s.startswith("\\{") and s.endswith("\\}") and _matching_close(s, 1) == len(s) - 1:
        inner = s[2:-2].strip()
        items = split_top_level(inner, (",", ";")) if inner else []
        return Unordered(_items(items))
    if s[:1] not in _OPENERS or s[-1:] not in _CLOSERS or _matching_close(s, 0) != len(s) - 1:
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


def parse_answer(text: str, _pm_depth: int = 0) -> Node:
    """Parse a normalised answer into a :data:`Node` tree.

    Takes the output of :func:`normalize`. Returns the tree; raises :class:`Unparsable` (with the reason)
    when the answer is too long, too deeply nested, or not something the grammar knows. Results (failures
    included) are cached per process: a worker sees the same gold answer for every sample of a problem.
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


def _parse_uncached(text: str, _pm_depth: int) -> Node:
    """parse_answer without the cache."""
    s = text.strip()
    if not s:
        raise Unparsable("empty answer")
    if len(s) > MAX_ANSWER_CHARS:
        raise Unparsable(f"answer longer than {MAX_ANSWER_CHARS} characters")
    depth = nesting_depth(s)
    if depth > MAX_NESTING:
        raise Unparsable(f"brackets nested deeper than {MAX_NESTING}")
    if match := _WHOLE_TEXT.match(s):
        inner = _strip_units(match[1].strip())
        return _parse_scalar(inner) if _PLAIN_NUMBER.match(inner) else Text(text_key(match[1]))
    if time := _canonical_time(s):
        hour, minute = time.split(":")
        return Time(int(hour), int(minute))
    if match := _BASE_N.match(s):
        return BaseN(match[1].lstrip("0") or "0", match[2])
    parts = split_top_level(s, ("\\cup",))
    if len(parts) > 1:
        return SetUnion(tuple(parse_answer(p) for p in parts))
    parts = split_top_level(s, (",", ";"))
    if len(parts) > 1:
        return Unordered(_items(parts))
    expanded = _expand_pm(s)
    if expanded is not None:
        if _pm_depth >= MAX_PM:
            raise Unparsable(f"more than {MAX_PM} \\pm signs")
        return Unordered(tuple(parse_answer(e, _pm_depth + 1) for e in expanded))
    relation = _split_relation(s)
    if relation is not None:
        return relation
    bracketed = _parse_bracketed(s)
    if bracketed is not None:
        return bracketed
    try:
        return _parse_scalar(s)
    except _TextAnswer:
        return Text(text_key(s))
