"""Bracket-aware string helpers shared by extraction, normalisation and parsing (pure string work, no sympy).

Every function here is linear in the length of its input (no backtracking regexes), so hostile answers of any
size stay cheap.
"""

from __future__ import annotations

import re

OPENERS = {"(": ")", "[": "]", "{": "}"}
CLOSERS = frozenset(")]}")


def matching_brace(text: str, open_pos: int) -> int | None:
    """Index of the ``}`` closing the ``{`` at ``open_pos`` (only curly braces count), or None if never closed."""
    depth = 0
    for i in range(open_pos, len(text)):
        char = text[i]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


def matching_close(text: str, open_pos: int) -> int:
    """Index of the bracket closing the one at ``open_pos`` (any kind matches any kind, as intervals need), or -1."""
    depth = 0
    for i in range(open_pos, len(text)):
        if text[i] in OPENERS:
            depth += 1
        elif text[i] in CLOSERS:
            depth -= 1
            if depth == 0:
                return i
    return -1


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting in ``text`` (any of ``()[]{}``); -1 when brackets close more than open."""
    depth = deepest = 0
    for char in text:
        if char in OPENERS:
            depth += 1
            deepest = max(deepest, depth)
        elif char in CLOSERS:
            depth -= 1
            if depth < 0:
                return -1
    return deepest


def _separator_at(text: str, i: int, separators: tuple[str, ...]) -> str | None:
    """The separator starting at ``text[i]``, or None. A command separator (``\\cup``) must be a whole command."""
    for sep in separators:
        if text.startswith(sep, i) and not (sep[0] == "\\" and text[i + len(sep):i + len(sep) + 1].isalpha()):
            return sep
    return None


def split_top_level(text: str, separators: tuple[str, ...]) -> list[str]:
    """Split ``text`` at ``separators`` that are outside every bracket; parts are stripped.

    Brackets of any kind count (``[0,1)`` is one group, as intervals need); ``\\{``/``\\}`` count as brackets.
    Unbalanced text is returned whole, as a one-element list.
    """
    parts: list[str] = []
    depth, start, i = 0, 0, 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in "{}":
            depth += 1 if text[i + 1] == "{" else -1
            i += 2
            continue
        if char in OPENERS:
            depth += 1
        elif char in CLOSERS:
            depth -= 1
            if depth < 0:
                return [text.strip()]
        elif depth == 0 and (sep := _separator_at(text, i, separators)) is not None:
            parts.append(text[start:i].strip())
            i += len(sep)
            start = i
            continue
        i += 1
    if depth != 0:
        return [text.strip()]
    parts.append(text[start:].strip())
    return parts


def unwrap_command(text: str, command: str) -> str:
    """Replace every ``\\command{X}`` by ``X`` (balanced braces, nested ones too); an unclosed one loses its
    command only."""
    while command + "{" in text:
        out: list[str] = []
        i = 0
        while (start := text.find(command + "{", i)) >= 0:
            open_pos = start + len(command)
            close = matching_brace(text, open_pos)
            out.append(text[i:start])
            if close is None:
                out.append(text[open_pos + 1:])
                i = len(text)
                break
            out.append(text[open_pos + 1:close])
            i = close + 1
        out.append(text[i:])
        text = "".join(out)
    return text


def brace_arguments(text: str, command: str, n_args: int) -> str:
    """Put braces around single-token arguments: ``\\frac12`` -> ``\\frac{1}{2}``, ``\\sqrt3`` -> ``\\sqrt{3}``."""
    out: list[str] = []
    pattern = re.compile(re.escape(command) + r"(?![a-zA-Z])")
    i = 0
    while (match := pattern.search(text, i)) is not None:
        out.append(text[i:match.end()])
        j = match.end()
        if command == "\\sqrt" and text[j:j + 1] == "[":  # \sqrt[3]{x}: keep the index as written
            close = text.find("]", j)
            if close > 0:
                out.append(text[j:close + 1])
                j = close + 1
        for _ in range(n_args):
            while j < len(text) and text[j] == " ":
                j += 1
            if j < len(text) and text[j] == "{":
                end = matching_brace(text, j)
                if end is None:
                    break
                out.append(text[j:end + 1])
                j = end + 1
                continue
            token = re.match(r"\\[a-zA-Z]+|[A-Za-z0-9]", text[j:j + 40])
            if token is None:
                break
            out.append("{" + token.group(0) + "}")
            j += len(token.group(0))
        i = j
    out.append(text[i:])
    return "".join(out)
