"""Answers stated in words or math blocks rather than boxes (pure string functions; see :mod:`.extract`).

* :func:`answer_is_phrase`: "The final answer is $X$", "Answer: X".
* :func:`math_only`: a response that is one math block, ``$[0,1)$``.
* :func:`final_sentence_answer`: the fallback for finished responses with neither a box nor a phrase: the
  last math block of the final sentence, else the last number in it.

Only the last ``EXTRACT_TAIL_CHARS`` characters are searched, which keeps a pathological response (megabytes
without a box) linear-time and cheap.
"""

from __future__ import annotations

import re

from harness.grading.brackets import split_top_level

# These rules look at this many trailing characters only: final answers sit at the end of a response.
EXTRACT_TAIL_CHARS = 4000
# A plain-text "The answer is ..." capture longer than this is prose, not an answer.
MAX_PLAIN_ANSWER_CHARS = 80

_ANSWER_WORD = re.compile(r"\banswer\b\s*(is\b\s*:?|:)?\s*", re.IGNORECASE)
# Opening delimiter -> closing delimiter of a math block; longest first so "$$" wins over "$".
MATH_DELIMS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))
# A number written in prose: optional sign, thousands groups or digits, decimals, a fraction, a percent sign.
_NUMBER = re.compile(r"(?<![\w.,])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?(?:\s*%)?")
_PROSE = re.compile(r"[A-Za-z]{3,}\s+[A-Za-z]{3,}")
SIGN_OFF = re.compile(r"(?:\s*(?:I hope (?:it|this) is correct|Hope this helps)[.!]?)+\s*$", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
# What may separate the parts of one multi-part answer, once math delimiters, spacing and \text{} are gone.
_JOINER_NOISE = re.compile(r"\\[()\[\]]|\$|\\(?:q?quad|,|;|:|!| )|~|&|\\\\|\\text\{|\}")
_JOINER = re.compile(r"^[\s,;]*(?:(?:and|or)[\s,;]*)?$", re.IGNORECASE)


def _find_unescaped(text: str, needle: str, start: int) -> int:
    """Index of the first ``needle`` at or after ``start`` not preceded by a backslash (``\\$`` is a dollar
    sign, not a delimiter), or -1."""
    pos = text.find(needle, start)
    while pos > 0 and text[pos - 1] == "\\":
        pos = text.find(needle, pos + 1)
    return pos


def math_block_at(text: str, pos: int) -> tuple[str, int] | None:
    """(content, end index) of the math block opening exactly at ``pos``; None when none opens there or it
    never closes."""
    for opener, closer in MATH_DELIMS:
        if text.startswith(opener, pos) and not (opener.startswith("\\") and pos > 0 and text[pos - 1] == "\\"):
            start = pos + len(opener)
            end = _find_unescaped(text, closer, start) if closer.startswith("$") else text.find(closer, start)
            return None if end < 0 else (text[start:end].strip(), end + len(closer))
    return None


def _plain_sentence(text: str) -> str | None:
    """Text up to the end of the first sentence (". ", ".\\n", a newline, or the end), if it is short. A
    sentence with " is " keeps what follows its last " is " ("The largest $n$ is 34" -> "34"); a sentence of
    prose with exactly one number keeps the number ("Jane started 3 hours ago" -> "3")."""
    match = re.match(r"[^\n]*?(?=\.\s|\.$|\n|$)", text)
    sentence = SIGN_OFF.sub("", match.group(0) if match else "").strip()
    if " is " in sentence:
        sentence = sentence.rsplit(" is ", 1)[1].strip()
    if not sentence or len(sentence) > MAX_PLAIN_ANSWER_CHARS:
        return None
    block = math_only(sentence)
    if block is not None:
        return block
    numbers = _NUMBER.findall(sentence)
    if _PROSE.search(sentence) and "$" not in sentence and len(numbers) == 1:
        return str(numbers[0]).strip()
    return sentence


def answer_is_phrase(text: str, final_only: bool = False) -> str | None:
    """The answer stated by the last "answer is ..." / "answer: ..." phrase of ``text``, or None.

    If a math block follows the phrase, its content; otherwise the plain sentence (see :func:`_plain_sentence`),
    but only after "is"/":", never after a bare "answer". With ``final_only`` only "final answer" counts.
    """
    tail = text[-EXTRACT_TAIL_CHARS:]
    for match in reversed(list(_ANSWER_WORD.finditer(tail))):
        if final_only and not re.search(r"final\s+$", tail[max(0, match.start() - 12):match.start()], re.IGNORECASE):
            continue
        rest = tail[match.end():]
        block = math_block_at(rest, 0)
        if block is not None and block[0]:
            return block[0]
        if match.group(1):
            return _plain_sentence(rest)
    return None


def math_only(text: str) -> str | None:
    """The content of ``text`` when all of it (stripped) is one math block, else None."""
    stripped = text.strip()
    if len(stripped) > EXTRACT_TAIL_CHARS:
        return None
    for opener, closer in MATH_DELIMS:
        if stripped.startswith(opener) and stripped.endswith(closer) and len(stripped) > len(opener + closer):
            inner = stripped[len(opener):-len(closer)]
            if closer not in inner:  # "$a$ and $b$" is two blocks, not one
                return inner.strip() or None
    return None


def _final_sentence(paragraph: str) -> tuple[str, list[tuple[str, str]]]:
    """The last sentence of ``paragraph``: (its text outside math, its math blocks as (content, the text
    between the previous block and this one))).

    Sentences end at ``.``/``!``/``?`` followed by a space in the text, or at a math block whose content
    ends with one; the paragraph's own final punctuation does not start a new (empty) sentence.
    """
    text_parts: list[str] = []
    blocks: list[tuple[str, str]] = []
    i = start = 0
    while i < len(paragraph):
        found = math_block_at(paragraph, i) if paragraph[i] in "$\\" else None
        if found is None:
            i += 1
            continue
        content, end = found
        gap = _add_text(paragraph[start:i], text_parts, blocks)
        if content.rstrip().endswith((".", "!", "?")) and paragraph[end:].strip():
            text_parts.clear()
            blocks.clear()
        else:
            blocks.append((content.rstrip(".,;: "), gap))
            text_parts.append(" ")
        i = start = end
    _add_text(paragraph[start:], text_parts, blocks)
    return "".join(text_parts), [b for b in blocks if b[0]]


def _add_text(text: str, text_parts: list[str], blocks: list[tuple[str, str]]) -> str:
    """Append plain text to the current sentence, starting a new sentence after any inner sentence end;
    returns the text that now ends the sentence."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text) if text[m.end():].strip()]
    if ends:
        text_parts.clear()
        blocks.clear()
        text = text[ends[-1]:]
    text_parts.append(text)
    return text


def is_joiner(text: str) -> bool:
    """Whether ``text`` between two boxes or math blocks only joins parts of one answer: commas, semicolons,
    one "and"/"or" (also as ``\\text{and}``), spacing commands and math delimiters."""
    return len(text) <= 80 and bool(_JOINER.match(_JOINER_NOISE.sub(" ", text)))


def join_parts(parts: list[str]) -> str:
    """The parts of a multi-part answer as one list answer, duplicates dropped: joined with ", ", or with
    "; " when a part is itself a list (so ``x=1, y=2`` and ``x=3, y=4`` stay two groups)."""
    unique = list(dict.fromkeys(p for p in parts if p))
    joiner = "; " if any(len(split_top_level(p, (",", ";"))) > 1 for p in unique) else ", "
    return joiner.join(unique)


def final_sentence_answer(body: str) -> str | None:
    """The fallback answer of a finished response: the last math block of its final sentence (or the run of
    blocks joined as in :func:`is_joiner`, ``$1$ and $2$``, as a list), else the last number written in that
    sentence; None when it has neither. Chat-template tokens must already be cut."""
    tail = SIGN_OFF.sub("", body[-EXTRACT_TAIL_CHARS:]).rstrip()
    paragraphs = [p for p in re.split(r"\n\s*\n", tail) if p.strip()]
    if not paragraphs:
        return None
    text, blocks = _final_sentence(paragraphs[-1].strip())
    if blocks:
        run = [blocks[-1][0]]
        for (content, _), (_, gap) in zip(reversed(blocks[:-1]), reversed(blocks[1:])):
            if not is_joiner(gap):
                break
            run.insert(0, content)
        return join_parts(run)
    numbers = _NUMBER.findall(text)
    return numbers[-1].strip() if numbers else None
