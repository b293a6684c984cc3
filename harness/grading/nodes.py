"""The parsed answer tree: small frozen dataclasses, plus the string tests that decide what is a "name".

A parsed answer is one :data:`Node`: a value (:class:`Scalar`), a text answer, a relation, an ordered group
(tuple / interval), an unordered group (set / list of solutions), a union of sets, a time of day, a base-n
numeral, or a group of named values (``p = 5, q = 2``). Nothing here imports sympy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from harness.grading.brackets import unwrap_command


class Unparsable(ValueError):
    """The answer cannot be parsed; the message says why."""


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
    """A text answer (``\\text{Evelyn}``, ``(C)``): compared as a normalised string (see :func:`text_key`)."""

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
    """A time of day. ``explicit``: the answer fixed the half of the day (am/pm, an hour above 12, or a
    leading zero); then ``hour`` is on the 24-hour clock. Otherwise ``hour`` (1-12) may mean either half."""

    hour: int
    minute: int
    explicit: bool


@dataclass(frozen=True)
class BaseN:
    """A numeral in another base, ``204_{5}``: digits and base, compared as written."""

    digits: str
    base: str


@dataclass(frozen=True)
class Assignment:
    """Named values given together, ``p = 5, q = 2``: one solution of a system. Compared name by name with
    another assignment, and in written order with a tuple ``(5, 2)``."""

    names: tuple[str, ...]
    values: tuple[Node, ...]


Node = Scalar | Text | Relation | Bracketed | Unordered | SetUnion | Time | BaseN | Assignment


def text_key(text: str) -> str:
    """The comparison form of a text answer: ``\\text{}`` removed, case-folded, spaces collapsed, ``(C)`` -> ``c``."""
    s = unwrap_command(text, "\\text")
    s = re.sub(r"\s+", " ", s).strip().strip(".").strip().casefold()
    match = re.fullmatch(r"\(([a-z])\)", s)
    return match[1] if match else s


_NAME_SUBSCRIPTS = re.compile(r"_\{[^{}]*\}|_\w|'+|\^\{(?:\\prime)+\}")
_NAME_FORBIDDEN = re.compile(r"[\d+\-*/^=<>]|\\(?:leq|geq|neq|pm|sqrt|infty)")
_SIMPLE_NAME = re.compile(r"^[A-Za-z](?:_\{\w+\})?(?:'*|\^\{(?:\\prime)+\})$|^[A-Za-z]\([A-Za-z](?:,[A-Za-z])*\)$")


def is_name(text: str) -> bool:
    """True when ``text`` names a quantity rather than computing one: ``x``, ``a_{37}``, ``f(x)``, ``|AB|``,
    ``(p,q)``, ``S_{MBCN}:S``, ``\\frac{NO}{BO}``. No digits outside subscripts, no arithmetic or relations."""
    core = _NAME_SUBSCRIPTS.sub("", text).strip()
    return bool(core) and len(core) <= 40 and not _NAME_FORBIDDEN.search(core)


def is_simple_name(text: str) -> bool:
    """A single (subscripted) letter or a one-letter function of letters: ``y``, ``x_{1}``, ``f(x)``."""
    return bool(_SIMPLE_NAME.match(text.replace(" ", "")))
