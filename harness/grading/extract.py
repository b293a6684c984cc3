"""Find the final answer in a model's response (pure string functions; no sympy, no parsing).

The rules, in order (the first that applies decides):

1. Reasoning sections. Text up to the last ``</think>`` is dropped; the answer comes from what follows. A
   response that opens ``<think>`` and never closes it was cut off while reasoning: no answer
   (method ``"unclosed_think"``), even if a box appears inside the reasoning.
2. Boxes. The answer is the content of the LAST ``\\boxed{...}`` or ``\\fbox{...}`` (braces balanced, nested
   braces kept), or of ``\\boxed X`` (no braces: the token up to the next space or ``$``). Several boxes: only
   the last one counts, contents are never joined (method ``"boxed"``). If that last box is never closed, the
   response was cut while writing it: no answer (``"unclosed_box"``); an empty box is no answer
   (``"empty_box"``). One exception: a "final answer is X" phrase (rule 3, with the word "final") AFTER the
   last box wins over it, as in "... = \\boxed{255} ... Final Answer: The final answer is $10,455$." (the box
   held an intermediate result; method ``"final_answer_after_box"``).
3. "Answer is" phrases (only when there is no box). The last occurrence of the word ``answer`` followed by
   ``is``, ``is:`` or ``:`` (case-insensitive; "final answer is", "The answer is: " ...). If a math block
   (``$..$``, ``$$..$$``, ``\\(..\\)``, ``\\[..\\]``) follows, its content is the answer; otherwise the plain text
   up to the end of the sentence (". ", a newline, or the end), if that is at most
   ``MAX_PLAIN_ANSWER_CHARS`` long; a plain sentence with " is " keeps the part after its last " is "
   ("Final Answer: The largest $n$ is 34" -> "34"). "answer" directly followed by a math block
   (``Answer $9$``) also counts. Method ``"answer_is"``.
4. Math only. The whole response (stripped) is one math block, e.g. ``$[0,1)$``: its content
   (``"math_only"``). No other fallback: in particular not "the last math expression anywhere", which would
   turn intermediate steps of unfinished responses into answers.
5. Otherwise no answer (``"none"``).

Only the last ``EXTRACT_TAIL_CHARS`` characters are searched by rules 3 and 4, which keeps a pathological
response (megabytes without a box) linear-time and cheap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Rules 3-4 look at this many trailing characters only: final-answer phrases sit at the end of a response.
EXTRACT_TAIL_CHARS = 4000
# A plain-text "The answer is ..." capture longer than this is prose, not an answer.
MAX_PLAIN_ANSWER_CHARS = 80

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_ANSWER_WORD = re.compile(r"\banswer\b\s*(is\b\s*:?|:)?\s*", re.IGNORECASE)
# Opening delimiter -> closing delimiter of a math block; longest first so "$$" wins over "$".
_MATH_DELIMS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))


@dataclass(frozen=True)
class Extraction:
    """What :func:`extract_answer` found.

    ``answer`` is the raw answer text (not normalised), or None when the response has no final answer.
    ``method`` names the rule that decided: "boxed", "final_answer_after_box", "answer_is", "math_only", or, when ``answer`` is None,
    "none", "unclosed_think", "unclosed_box", "empty_box".
    """

    answer: str | None
    method: str


def strip_reasoning(text: str) -> str | None:
    """The part of ``text`` after the last ``</think>``; ``text`` itself when there is no think block.

    Returns None when a ``<think>`` block is opened and never closed (the response was truncated).
    """
    close = text.rfind("</think>")
    if close >= 0:
        return text[close + len("</think>"):]
    if "<think>" in text:
        return None
    return text


def _matching_brace(text: str, open_pos: int) -> int | None:
    """Index of the ``}`` closing the ``{`` at ``open_pos``, or None when it is never closed."""
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


def _last_box_start(text: str) -> tuple[int, int] | None:
    """(start of the last box command, index just after the command name), or None when there is none."""
    best: tuple[int, int] | None = None
    for command in _BOX_COMMANDS:
        pos = text.rfind(command)
        # "\boxedx" is a different command; skip such false hits by searching further left.
        while pos >= 0 and pos + len(command) < len(text) and text[pos + len(command)].isalpha():
            pos = text.rfind(command, 0, pos)
        if pos >= 0 and (best is None or pos > best[0]):
            best = (pos, pos + len(command))
    return best


def last_boxed(text: str) -> Extraction | None:
    """The content of the last ``\\boxed``/``\\fbox`` in ``text``; None when ``text`` has no box at all.

    Returns an Extraction with answer None and method "unclosed_box"/"empty_box" for a box that cannot hold
    an answer (see the module docstring).
    """
    found = _last_box_start(text)
    if found is None:
        return None
    _, after = found
    i = after
    while i < len(text) and text[i].isspace():
        i += 1
    if i < len(text) and text[i] == "{":
        close = _matching_brace(text, i)
        if close is None:
            return Extraction(None, "unclosed_box")
        content = text[i + 1:close].strip()
    else:
        # "\boxed 5": the single token after the command (a space is required by LaTeX, so i > after).
        match = re.match(r"[^\s$]+", text[i:]) if i > after else None
        content = match.group(0).strip() if match else ""
    if not content:
        return Extraction(None, "empty_box")
    return Extraction(content, "boxed")


def _find_unescaped(text: str, needle: str, start: int) -> int:
    """Index of the first ``needle`` at or after ``start`` not preceded by a backslash (``\\$`` is a dollar
    sign, not a delimiter), or -1."""
    pos = text.find(needle, start)
    while pos > 0 and text[pos - 1] == "\\":
        pos = text.find(needle, pos + 1)
    return pos


def _math_block_at(text: str, pos: int) -> str | None:
    """Content of the math block opening exactly at ``pos``, or None when none opens there or it never closes."""
    for opener, closer in _MATH_DELIMS:
        if text.startswith(opener, pos):
            start = pos + len(opener)
            end = _find_unescaped(text, closer, start) if closer.startswith("$") else text.find(closer, start)
            if end < 0:
                return None
            content = text[start:end].strip()
            return content or None
    return None


def _plain_sentence(text: str) -> str | None:
    """Text up to the end of the first sentence (". ", ".\\n", a newline, or the end), if it is short. A
    sentence with " is " keeps what follows its last " is " ("The largest $n$ is 34" -> "34")."""
    match = re.match(r"[^\n]*?(?=\.\s|\.$|\n|$)", text)
    sentence = match.group(0).strip() if match else ""
    sentence = re.sub(r"\s*I hope it is correct\.?$", "", sentence).strip()
    if " is " in sentence:
        sentence = sentence.rsplit(" is ", 1)[1].strip()
    if not sentence or len(sentence) > MAX_PLAIN_ANSWER_CHARS:
        return None
    block = math_only(sentence)
    return block if block is not None else sentence


def answer_is_phrase(text: str, final_only: bool = False) -> str | None:
    """The answer stated by the last "answer is ..." / "answer: ..." phrase of ``text`` (rule 3), or None.

    With ``final_only`` only phrases saying "final answer" count.
    """
    tail = text[-EXTRACT_TAIL_CHARS:]
    for match in reversed(list(_ANSWER_WORD.finditer(tail))):
        if final_only and not re.search(r"final\s+$", tail[max(0, match.start() - 12):match.start()], re.IGNORECASE):
            continue
        rest = tail[match.end():]
        block = _math_block_at(rest, 0)
        if block is not None:
            return block
        if match.group(1):  # plain text only after "is"/":", never after a bare "answer"
            return _plain_sentence(rest)
    return None


def math_only(text: str) -> str | None:
    """The content of ``text`` when all of it (stripped) is one math block (rule 4), else None."""
    stripped = text.strip()
    if len(stripped) > EXTRACT_TAIL_CHARS:
        return None
    for opener, closer in _MATH_DELIMS:
        if stripped.startswith(opener) and stripped.endswith(closer) and len(stripped) > len(opener + closer):
            inner = stripped[len(opener):-len(closer)]
            if closer not in inner:  # "$a$ and $b$" is two blocks, not one
                return inner.strip() or None
    return None


def extract_answer(response: str) -> Extraction:
    """The final answer of a model response, by the rules in this module's docstring.

    Takes the whole response text. Returns an :class:`Extraction`; never raises on any string input.
    """
    body = strip_reasoning(response)
    if body is None:
        return Extraction(None, "unclosed_think")
    boxed = last_boxed(body)
    if boxed is not None:
        found = _last_box_start(body)
        after_box = body[found[0]:] if found else ""
        final = answer_is_phrase(after_box, final_only=True) if boxed.answer is not None else None
        return Extraction(final, "final_answer_after_box") if final is not None else boxed
    stated = answer_is_phrase(body)
    if stated is not None:
        return Extraction(stated, "answer_is")
    only = math_only(body)
    if only is not None:
        return Extraction(only, "math_only")
    return Extraction(None, "none")
