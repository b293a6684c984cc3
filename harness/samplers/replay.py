"""The replay backend: read samples produced elsewhere (JSONL) so they are graded and plotted the same way.

Three formats (``FORMATS``): our own ``native`` one object per sample, and two real-world layouts with one
object per problem and a list of responses (``qwen-maj``, from Qwen2.5-Math's evaluation; ``deepscaler``,
from a DeepScaleR budget sweep). Every row must belong to one of the benchmark's problems, and each
(problem, sample index) may appear once. A file without token counts gives completions with
``output_tokens`` None and a ``token_note`` saying so, unless a tokenizer is given to count them.

Errors are ``ReplayError``: one line naming the file, the line number and what is wrong.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from harness.types import FINISH_REASONS, Completion, Problem

FORMATS: Mapping[str, str] = {
    "native": "JSONL, one object per sample: problem_id, response; optional sample_index, output_tokens, "
    "finish_reason, seed",
    "qwen-maj": "Qwen2.5-Math evaluation output: one object per problem, idx and code (list of responses)",
    "deepscaler": "DeepScaleR evaluation output: one object per problem, question, id and "
    "generated_responses; matched to the benchmark by question text",
}

_FIELD_MAPS: Mapping[str, Mapping[str, str]] = {
    "native": {
        "problem_id": "problem_id",
        "sample_index": "sample_index (else 0, 1, 2... per problem in file order)",
        "text": "response",
        "output_tokens": "output_tokens",
        "finish_reason": "finish_reason",
        "seed": "seed",
    },
    "qwen-maj": {
        "problem_id": "str(idx)",
        "sample_index": "position in code",
        "text": "code[i] (identical to response[i])",
        "output_tokens": "(not in file)",
        "finish_reason": "(not in file)",
        "seed": "(not in file)",
    },
    "deepscaler": {
        "problem_id": "question (whitespace-normalised, matched to the benchmark's question), else str(id)",
        "sample_index": "position in generated_responses",
        "text": "generated_responses[i]",
        "output_tokens": "(not in file)",
        "finish_reason": "(not in file)",
        "seed": "(not in file)",
    },
}


class ReplayError(ValueError):
    """A replay file cannot be read: one line naming the file, the line number and what is wrong."""


@dataclass(frozen=True)
class ReplayData:
    """What a replay file holds.

    ``token_note`` is None when every completion has output_tokens, else a sentence saying why some or all
    are missing (or how they were counted). ``field_map`` says which source field fed each Completion field.
    """

    completions: tuple[Completion, ...]
    token_note: str | None
    field_map: Mapping[str, str]


@dataclass(frozen=True)
class _Sample:
    """One sample as read from a line, before it is checked against the benchmark."""

    line: int
    problem_id: str
    sample_index: int | None
    text: str
    output_tokens: int | None = None
    finish_reason: str | None = None
    seed: int | None = None


class _Lookup:
    """Finds the benchmark problem a row belongs to: by id, else by whitespace-normalised question."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.ids = {p.id for p in problems}
        self.by_question: dict[str, str] = {}
        for p in problems:
            self.by_question.setdefault(_normalise(p.question), p.id)
        self.benchmarks = sorted({p.benchmark for p in problems})

    def resolve(self, problem_id: str, question: str | None, where: str) -> str:
        if question is not None and _normalise(question) in self.by_question:
            return self.by_question[_normalise(question)]
        if problem_id in self.ids:
            return problem_id
        bench = ", ".join(self.benchmarks) or "(no problems given)"
        also = " and its question matches none of its problems" if question is not None else ""
        raise ReplayError(
            f"{where}: problem {problem_id!r} is not in the benchmark ({bench}){also}; "
            "pass --bench with the benchmark the file was made on"
        )


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _where(path: Path, line: int) -> str:
    return f"{path}:{line}"


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line. Raises ReplayError on bad JSON or a non-object."""
    if not path.is_file():
        raise ReplayError(f"replay file {path} does not exist")
    # Binary, decoded line by line, so that a bad byte is reported with its own line number.
    with path.open("rb") as handle:
        for number, raw_bytes in enumerate(handle, start=1):
            try:
                raw = raw_bytes.decode("utf-8-sig" if number == 1 else "utf-8")  # tolerate a BOM
            except UnicodeDecodeError:
                raise ReplayError(
                    f"{_where(path, number)}: not UTF-8 text; re-encode the file as UTF-8"
                ) from None
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ReplayError(
                    f"{_where(path, number)}: malformed JSON ({exc.msg}, column {exc.colno})"
                ) from None
            if not isinstance(row, dict):
                raise ReplayError(f"{_where(path, number)}: expected a JSON object, got {type(row).__name__}")
            yield number, row


def _field(
    row: Mapping[str, Any], name: str, kind: type | tuple[type, ...], where: str, *, required: bool
) -> Any:
    """Return ``row[name]`` checked to be of ``kind`` (None allowed when not required)."""
    if name not in row or row[name] is None:
        if required:
            raise ReplayError(f"{where}: missing required field {name!r}")
        return None
    value = row[name]
    # No field holds a bool, and bool is an int in Python: a true/false where a count belongs is a mistake.
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ReplayError(
            f"{where}: field {name!r} has the wrong type ({type(value).__name__}: {value!r:.40})"
        )
    return value


def _count(row: Mapping[str, Any], name: str, where: str) -> int | None:
    value = _field(row, name, int, where, required=False)
    if value is not None and value < 0:
        raise ReplayError(f"{where}: field {name!r} must be >= 0, got {value}")
    return value  # type: ignore[no-any-return]


def _native(path: Path, lookup: _Lookup) -> Iterator[_Sample]:
    for line, row in _lines(path):
        where = _where(path, line)
        raw_id = _field(row, "problem_id", (str, int), where, required=True)
        finish = row.get("finish_reason")
        if finish is not None and finish not in FINISH_REASONS:
            raise ReplayError(
                f"{where}: finish_reason must be one of {FINISH_REASONS} or null, got {finish!r}"
            )
        yield _Sample(
            line=line,
            problem_id=lookup.resolve(str(raw_id), None, where),
            sample_index=_count(row, "sample_index", where),
            text=_field(row, "response", str, where, required=True),
            output_tokens=_count(row, "output_tokens", where),
            finish_reason=finish,
            seed=_field(row, "seed", int, where, required=False),
        )


def _responses(row: Mapping[str, Any], name: str, where: str) -> list[str]:
    responses = _field(row, name, list, where, required=True)
    for i, text in enumerate(responses):
        if not isinstance(text, str):
            raise ReplayError(f"{where}: {name}[{i}] is {type(text).__name__}, expected a string")
    return responses  # type: ignore[no-any-return]


def _qwen_maj(path: Path, lookup: _Lookup) -> Iterator[_Sample]:
    for line, row in _lines(path):
        where = _where(path, line)
        idx = _field(row, "idx", (int, str), where, required=True)
        responses = _responses(row, "code", where)
        if "response" in row and row["response"] != responses:
            raise ReplayError(
                f"{where}: fields 'code' and 'response' differ; cannot tell which holds the samples"
            )
        problem_id = lookup.resolve(str(idx), None, where)
        for i, text in enumerate(responses):
            yield _Sample(line=line, problem_id=problem_id, sample_index=i, text=text)


def _deepscaler(path: Path, lookup: _Lookup) -> Iterator[_Sample]:
    for line, row in _lines(path):
        where = _where(path, line)
        source_id = _field(row, "id", (int, str), where, required=True)
        question = _field(row, "question", str, where, required=True)
        problem_id = lookup.resolve(str(source_id), question, where)
        for i, text in enumerate(_responses(row, "generated_responses", where)):
            yield _Sample(line=line, problem_id=problem_id, sample_index=i, text=text)


_READERS: Mapping[str, Callable[[Path, _Lookup], Iterator[_Sample]]] = {
    "native": _native,
    "qwen-maj": _qwen_maj,
    "deepscaler": _deepscaler,
}


def _assemble(path: Path, samples: Iterator[_Sample]) -> list[Completion]:
    """Assign missing sample indices, reject duplicates, and build Completions (in file order)."""
    next_index: dict[str, int] = {}
    seen: dict[tuple[str, int], int] = {}
    out: list[Completion] = []
    for s in samples:
        index = s.sample_index if s.sample_index is not None else next_index.get(s.problem_id, 0)
        next_index[s.problem_id] = max(next_index.get(s.problem_id, 0), index + 1)
        key = (s.problem_id, index)
        if key in seen:
            raise ReplayError(
                f"{_where(path, s.line)}: duplicate sample: problem {s.problem_id!r} sample {index} "
                f"already on line {seen[key]}"
            )
        seen[key] = s.line
        out.append(
            Completion(
                problem_id=s.problem_id,
                sample_index=index,
                seed=s.seed,
                text=s.text,
                output_tokens=s.output_tokens,
                finish_reason=s.finish_reason,  # type: ignore[arg-type]
            )
        )
    return out


def _count_tokens(completions: list[Completion], tokenizer: str) -> list[Completion]:
    """Fill missing output_tokens by re-tokenising the text. Raises ReplayError if the tokenizer fails."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(tokenizer)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReplayError(f"could not load tokenizer {tokenizer!r}: {first}") from None

    def count(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    return [
        c if c.output_tokens is not None else replace(c, output_tokens=count(c.text)) for c in completions
    ]


def read_replay(
    path: Path, fmt: str, problems: Sequence[Problem], *, tokenizer: str | None = None
) -> ReplayData:
    """Read a replay file of format ``fmt`` (see FORMATS) against the benchmark's ``problems``.

    tokenizer: a tokenizer folder or Hub id; when given, completions without output_tokens get the length of
    their text re-tokenised (special tokens such as EOS not counted), and token_note says so.
    Returns the completions in file order with the token note and field map. Raises ReplayError for an
    unknown format, a missing file, malformed JSON, a missing or mistyped field, a problem not in
    ``problems``, a duplicated (problem, sample index), or a file with no samples.
    """
    path = Path(path)
    if fmt not in _READERS:
        close = difflib.get_close_matches(fmt, list(_READERS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ReplayError(f"unknown replay format {fmt!r} (choose from {', '.join(_READERS)}){hint}")
    completions = _assemble(path, _READERS[fmt](path, _Lookup(problems)))
    if not completions:
        raise ReplayError(f"{path}: no samples in the file")
    field_map = dict(_FIELD_MAPS[fmt])
    missing = sum(c.output_tokens is None for c in completions)
    if missing and tokenizer is not None:
        completions = _count_tokens(completions, tokenizer)
        field_map["output_tokens"] = f"re-tokenised text with {tokenizer} where the file has no count"
        note: str | None = (
            f"{missing} of {len(completions)} completions had no token count in {path.name}; their output "
            f"tokens were re-counted by tokenising the text with {tokenizer} (EOS not counted)"
        )
    elif missing:
        note = (
            f"{missing} of {len(completions)} completions have no token count in {path.name} "
            f"(format {fmt}); pass a tokenizer to count them"
        )
    else:
        note = None
    return ReplayData(completions=tuple(completions), token_note=note, field_map=field_map)
