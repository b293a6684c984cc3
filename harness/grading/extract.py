"""Find the final answer in a model's response (pure string functions; no sympy, no parsing).

The rules, in order (the first that applies decides):

0. Chat-template leftovers. The response is cut at the first ``<|im_end|>``, ``<|endoftext|>``,
   ``<|im_start|>``, ``<|eot_id|>`` or ``<|end_of_text|>`` after some content: what follows is a hallucinated
   next turn, never the answer.
1. Reasoning sections. Text up to the last ``</think>`` is dropped; the answer comes from what follows. A
   response that opens ``<think>`` and never closes it was cut off while reasoning: no answer
   (``"unclosed_think"``), even if a box appears inside the reasoning.
2. Boxes. The answer is the content of the LAST ``\\boxed{...}`` or ``\\fbox{...}`` (braces balanced, nested
   braces kept), or of ``\\boxed X`` (no braces: the token up to the next space or ``$``) (``"boxed"``).
   Boxes are never concatenated. Several boxes: the last one is the answer, with one exception: a run of
   boxes at the end separated only by commas, semicolons, "and"/"or" (also as ``\\text{and}``), spacing
   commands and math delimiters (``\\boxed{1}, \\boxed{2}``, ``\\boxed{(2, 2)} \\quad\\text{and}\\quad
   \\boxed{(6, 2)}``) is one multi-part answer: the list of the boxed values, duplicates dropped
   (``"boxed_list"``); when every box of the run follows a ``name =``, the names are kept (``x = \\boxed{2}
   and y = \\boxed{5}`` -> ``x = 2, y = 5``). Boxes separated by anything else (prose) are separate, and only
   the last counts. If the last box is never closed, the response was cut while writing it: no answer
   (``"unclosed_box"``); an empty box is no answer (``"empty_box"``). A "final answer is X" phrase (rule 3,
   with the word "final") AFTER the last box wins over it, as in "... = \\boxed{255} ... Final Answer: The
   final answer is $10,455$." (the box held an intermediate result; ``"final_answer_after_box"``).
3. "Answer is" phrases (only when there is no box): see :func:`phrases.answer_is_phrase` (``"answer_is"``).
4. Math only: the whole response (stripped) is one math block, e.g. ``$[0,1)$`` (``"math_only"``).
5. Fallback for finished responses only: the last math block of the final sentence, else the last number
   written in it (:func:`phrases.final_sentence_answer`; ``"final_sentence"``). A response known to be
   truncated (``truncated=True``: the engine stopped it at max_tokens) gets only rule 2: without a closed
   box it has no answer (``"truncated"``), since the end of an unfinished response is an intermediate step.
   When it is not known whether the response finished (``truncated=None``, e.g. imported outputs without
   finish reasons), the fallback applies only to a response that ends like a finished one: with ``.``, ``!``,
   ``?`` or a closed math block, or one of at most :data:`SHORT_RESPONSE_CHARS` characters.
6. Otherwise no answer (``"none"``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from harness.grading.brackets import matching_brace
from harness.grading.phrases import (
    EXTRACT_TAIL_CHARS,
    SIGN_OFF,
    answer_is_phrase,
    final_sentence_answer,
    is_joiner,
    join_parts,
    math_only,
)

__all__ = ["EXTRACT_TAIL_CHARS", "Extraction", "extract_answer", "last_boxed", "strip_reasoning"]

_BOX_COMMANDS = ("\\boxed", "\\fbox")
# A response this short may end any way and still count as finished (a bare answer with a unit: "$28$ %").
SHORT_RESPONSE_CHARS = 100
# At most this many boxes form one multi-part answer (a bound on work for hostile responses).
MAX_RUN = 64
_CHAT_TOKENS = re.compile(r"<\|(?:im_end|im_start|endoftext|eot_id|end_of_text)\|>")
# "y_1 =" written just before a box of a multi-part answer (math delimiters and spacing allowed around it).
_NAME_BEFORE = re.compile(r"([A-Za-z](?:_\{?\w{1,3}\}?)?)\s*=\s*(?:\\[()\[\]]|\$|\s)*$")


@dataclass(frozen=True)
class Extraction:
    """What :func:`extract_answer` found.

    ``answer`` is the raw answer text (not normalised), or None when the response has no final answer.
    ``method`` names the rule that decided: "boxed", "boxed_list", "final_answer_after_box", "answer_is",
    "math_only", "final_sentence", or, when ``answer`` is None, "none", "unclosed_think", "unclosed_box",
    "empty_box", "truncated".
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


def _cut_chat_tokens(text: str) -> str:
    """``text`` up to the first chat-template token that follows some content (rule 0)."""
    for match in _CHAT_TOKENS.finditer(text):
        if text[:match.start()].strip():
            return text[:match.start()]
    return text


def _last_box_start(text: str, end: int) -> tuple[int, int] | None:
    """(start of the last box command before ``end``, index just after the command name), or None."""
    best: tuple[int, int] | None = None
    for command in _BOX_COMMANDS:
        pos = text.rfind(command, 0, end)
        # "\boxedx" is a different command; skip such false hits by searching further left.
        while pos >= 0 and pos + len(command) < len(text) and text[pos + len(command)].isalpha():
            pos = text.rfind(command, 0, pos)
        if pos >= 0 and (best is None or pos > best[0]):
            best = (pos, pos + len(command))
    return best


def _box_at(text: str, after: int) -> tuple[str | None, int] | None:
    """(content, end index) of the box whose command ends at ``after``; content None when it never closes.
    Returns None for ``\\boxed`` followed by nothing usable."""
    i = after
    while i < len(text) and text[i].isspace():
        i += 1
    if i < len(text) and text[i] == "{":
        close = matching_brace(text, i)
        return (None, len(text)) if close is None else (text[i + 1:close].strip(), close + 1)
    # "\boxed 5": the single token after the command (a space is required by LaTeX, so i > after).
    match = re.match(r"[^\s$]+", text[i:i + 200]) if i > after else None
    return (match.group(0).strip(), i + match.end()) if match else ("", i)


def _name_before(text: str, end: int) -> tuple[int, str | None]:
    """A ``name =`` written just before ``end`` (a box's start): (where it starts, the name), or (end, None)."""
    low = max(0, end - 40)
    match = _NAME_BEFORE.search(text[low:end])
    return (end, None) if match is None else (low + match.start(), match[1])


def last_boxed(text: str) -> Extraction | None:
    """The answer in the last box (or run of boxes) of ``text`` (rule 2); None when ``text`` has no box.

    Returns an Extraction with answer None and method "unclosed_box"/"empty_box" for a box that cannot hold
    an answer.
    """
    found = _last_box_start(text, len(text))
    if found is None:
        return None
    box = _box_at(text, found[1])
    if box is None or box[0] is None:
        return Extraction(None, "unclosed_box")
    contents, start = [box[0]], found[0]
    names = [_name_before(text, start)[1]]
    while len(contents) < MAX_RUN and (previous := _last_box_start(text, start)) is not None:
        prev_box = _box_at(text, previous[1])
        if prev_box is None or prev_box[0] is None or prev_box[1] > start:
            break  # the earlier box encloses this one
        if not is_joiner(text[prev_box[1]:max(prev_box[1], _name_before(text, start)[0])]):
            break
        contents.insert(0, prev_box[0])
        names.insert(0, _name_before(text, previous[0])[1])
        start = previous[0]
    if len(contents) > 1 and all(names):  # "y_1 = \boxed{a} and y_2 = \boxed{b}": keep the names
        contents = [f"{name} = {c}" if c else "" for name, c in zip(names, contents)]
    parts = list(dict.fromkeys(c for c in contents if c))
    if not parts:
        return Extraction(None, "empty_box")
    if len(parts) == 1:
        return Extraction(parts[0], "boxed")
    return Extraction(join_parts(parts), "boxed_list")


def _ends_cleanly(body: str) -> bool:
    """Whether a response ends like a finished one (rule 5, when its finish reason is unknown)."""
    tail = SIGN_OFF.sub("", body[-EXTRACT_TAIL_CHARS:]).rstrip()
    return len(body.strip()) <= SHORT_RESPONSE_CHARS or tail.endswith((".", "!", "?", "$", "\\]", "\\)"))


def extract_answer(response: str, *, truncated: bool | None = None) -> Extraction:
    """The final answer of a model response, by the rules in this module's docstring.

    ``truncated``: True when the response is known to have been cut at the token limit (finish reason
    "length"; then only a closed box counts), False when it is known to have finished, None when unknown.
    Returns an :class:`Extraction`; never raises on any string input.
    """
    body = strip_reasoning(_cut_chat_tokens(response))
    if body is None:
        return Extraction(None, "unclosed_think")
    boxed = last_boxed(body)
    if boxed is not None:
        if truncated or boxed.answer is None:
            return boxed
        found = _last_box_start(body, len(body))
        final = answer_is_phrase(body[found[0]:], final_only=True) if found else None
        return Extraction(final, "final_answer_after_box") if final is not None else boxed
    if truncated:
        return Extraction(None, "truncated")
    rules: list[tuple[str, Callable[[str], str | None]]] = [("answer_is", answer_is_phrase), ("math_only", math_only)]
    if truncated is False or _ends_cleanly(body):
        rules.append(("final_sentence", final_sentence_answer))
    for method, rule in rules:
        answer = rule(body)
        if answer is not None:
            return Extraction(answer, method)
    return Extraction(None, "none")

