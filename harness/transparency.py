"""Technical Transparency Index (TTI) of the O1-Journey Part 2 report (Tables 3 and 4).

25 yes/no questions in four dimensions (data 14, methodology 33, evaluation 24, open source 29 points; 100 in
all); a work scores the points of each question answered "yes". ``configs/tti-checklist.csv`` holds the
questions (reworded), ``configs/tti-leaderboard.csv`` the report's scores of seven o1 replication efforts, and
``configs/tti-template.toml`` the file a user fills in (its header comment documents the schema):

    name = "My replication"
    [answers."data.sources"]
    answer = true                     # a TOML boolean
    evidence = "https://... section 2"  # optional string

Every question id must be answered exactly once. ``[answers.data.sources]`` (no quotes) names the same
question: TOML reads it as nested tables, which are folded back into dotted ids here.
"""

from __future__ import annotations

import csv
import difflib
import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIGS = Path(__file__).parents[1] / "configs"
DEFAULT_CHECKLIST = CONFIGS / "tti-checklist.csv"
DEFAULT_LEADERBOARD = CONFIGS / "tti-leaderboard.csv"
TEMPLATE = CONFIGS / "tti-template.toml"

DIMENSIONS: tuple[str, ...] = ("data", "methodology", "evaluation", "open_source")
CHECKLIST_COLUMNS: tuple[str, ...] = ("id", "dimension", "points", "question")
LEADERBOARD_COLUMNS: tuple[str, ...] = ("work", *DIMENSIONS, "total")
TOP_LEVEL_KEYS: tuple[str, ...] = ("name", "answers")
ANSWER_KEYS: tuple[str, ...] = ("answer", "evidence")
REPORT_SOURCE = "report (Table 4)"  # TTIScore.source of the leaderboard's rows (O1-Journey Part 2, Table 4)
_SEE = "see configs/tti-template.toml"


class TransparencyError(ValueError):
    """A user-fixable problem in a checklist, leaderboard or answers file; the message is one line."""


@dataclass(frozen=True)
class Question:
    """One checklist item: a dotted ``id`` (e.g. ``data.sources``), its dimension (one of DIMENSIONS), the
    points a "yes" earns, and the question text."""

    id: str
    dimension: str
    points: int
    question: str


@dataclass(frozen=True)
class Answer:
    """A work's answer to one question, with the evidence the user gave (a URL or pointer; may be "")."""

    id: str
    answer: bool
    evidence: str


@dataclass(frozen=True)
class FilledChecklist:
    """A parsed answers file: the work's name, one Answer per question in checklist order, and the file."""

    name: str
    answers: tuple[Answer, ...]
    source: str


@dataclass(frozen=True)
class TTIScore:
    """Points per dimension of one work; ``source`` is REPORT_SOURCE or the answers file it came from."""

    name: str
    data: int
    methodology: int
    evaluation: int
    open_source: int
    source: str

    @property
    def total(self) -> int:
        """The sum of the four dimensions (at most 100 with the report's checklist)."""
        return self.data + self.methodology + self.evaluation + self.open_source

    def points(self, dimension: str) -> int:
        """Points in ``dimension`` (one of DIMENSIONS); raises KeyError for another name."""
        if dimension not in DIMENSIONS:
            raise KeyError(f"unknown dimension {dimension!r}; expected one of {DIMENSIONS}")
        return int(getattr(self, dimension))


def load_checklist(path: Path | None = None) -> tuple[Question, ...]:
    """Read the checklist CSV (default ``configs/tti-checklist.csv``; columns CHECKLIST_COLUMNS).

    Returns the questions in file order. Raises TransparencyError (naming file and line) when the file is
    missing, a column is missing, an id repeats, a dimension is unknown, or points are not a positive integer.
    """
    path = DEFAULT_CHECKLIST if path is None else Path(path)
    questions: list[Question] = []
    for where, row in _csv_rows(path, CHECKLIST_COLUMNS):
        if row["dimension"] not in DIMENSIONS:
            raise TransparencyError(
                f"{where}: unknown dimension {row['dimension']!r}; use one of {DIMENSIONS}"
            )
        if row["id"] in {q.id for q in questions}:
            raise TransparencyError(f"{where}: duplicate question id {row['id']!r}; ids must be unique")
        points = _int(row["points"], f"{where}: points")
        if points <= 0:
            raise TransparencyError(f"{where}: points must be a positive integer, got {points}")
        questions.append(Question(row["id"], row["dimension"], points, row["question"]))
    if not questions:
        raise TransparencyError(f"{path}: no questions; expected one row per question")
    return tuple(questions)


def dimension_maxima(questions: Sequence[Question]) -> dict[str, int]:
    """Points available per dimension, in DIMENSIONS order (0 for a dimension without questions)."""
    return {d: sum(q.points for q in questions if q.dimension == d) for d in DIMENSIONS}


def load_leaderboard(path: Path | None = None, questions: Sequence[Question] | None = None) -> list[TTIScore]:
    """Read the report's leaderboard (default ``configs/tti-leaderboard.csv``; columns LEADERBOARD_COLUMNS).

    Takes the checklist (default: load_checklist()) to bound each dimension. Returns the rows in file order,
    with source REPORT_SOURCE. Raises TransparencyError naming file and line when a value is not an integer,
    exceeds its dimension's points, or the dimensions do not add up to the row's total: a wrong total is
    reported, never silently recomputed.
    """
    path = DEFAULT_LEADERBOARD if path is None else Path(path)
    maxima = dimension_maxima(load_checklist() if questions is None else questions)
    rows: list[TTIScore] = []
    for where, row in _csv_rows(path, LEADERBOARD_COLUMNS):
        values = {d: _int(row[d], f"{where}: {d}") for d in DIMENSIONS}
        for dim, value in values.items():
            if not 0 <= value <= maxima[dim]:
                raise TransparencyError(
                    f"{where}: {row['work']!r} has {dim} = {value}, outside 0..{maxima[dim]}"
                )
        score = TTIScore(row["work"], source=REPORT_SOURCE, **values)
        total = _int(row["total"], f"{where}: total")
        if total != score.total:
            raise TransparencyError(
                f"{where}: {row['work']!r}: dimensions add up to {score.total} but total is {total}; "
                "fix the row"
            )
        rows.append(score)
    return rows


def load_answers(path: Path, questions: Sequence[Question]) -> FilledChecklist:
    """Read and validate a filled answers file (TOML, schema in the module docstring).

    Returns the FilledChecklist. Raises TransparencyError, one line starting with the file name, when the
    file cannot be read or parse_answers rejects it.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TransparencyError(
            f"{path}: file not found; copy configs/tti-template.toml and fill it in"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TransparencyError(f"{path}: cannot read: {exc}") from None
    return parse_answers(text, str(path), questions)


def parse_answers(text: str, source: str, questions: Sequence[Question]) -> FilledChecklist:
    """Validate the TOML ``text`` of an answers file; ``source`` (the file name) prefixes every error.

    Returns the FilledChecklist with answers in checklist order. Raises TransparencyError for malformed TOML,
    a duplicate key or question id, an unknown key or id (with "did you mean"), a missing or empty name, an
    answer that is not a boolean, evidence that is not a string, or a question left unanswered.
    """
    ids = [q.id for q in questions]
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(text, source, exc) from None
    for key in doc:
        if key not in TOP_LEVEL_KEYS:
            raise TransparencyError(
                f"{source}: unknown top-level key {key!r}{_did_you_mean(key, TOP_LEVEL_KEYS)}"
            )
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        raise TransparencyError(f'{source}: set name = "..." at the top to the name of the work being scored')
    tree = doc.get("answers", {})
    if not isinstance(tree, dict):
        raise TransparencyError(f'{source}: answers must be tables like [answers."{ids[0]}"]; {_SEE}')
    entries = list(_flatten(tree, set(ids)))
    for qid, _ in entries:
        if qid not in ids:
            hint = _did_you_mean(qid, ids)
            raise TransparencyError(f"{_at(text, source, qid)}: unknown question id {qid!r}{hint}")
    for qid, count in Counter(qid for qid, _ in entries).items():
        if count > 1:  # only reachable through two spellings; TOML itself rejects a repeated table
            raise TransparencyError(
                f"{_at(text, source, qid)}: question {qid!r} is answered twice (quoted and unquoted "
                "spellings name the same question); keep one"
            )
    given = {qid: _answer(qid, value, text, source) for qid, value in entries}
    missing = [qid for qid in ids if qid not in given]
    if missing:
        listed = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise TransparencyError(
            f'{source}: no answer for {len(missing)} question(s): {listed}; add an [answers."<id>"] table '
            f"with answer = true or false for each ({_SEE})"
        )
    return FilledChecklist(name.strip(), tuple(given[qid] for qid in ids), source)


def score_answers(filled: FilledChecklist, questions: Sequence[Question]) -> TTIScore:
    """Sum the points of the "yes" answers per dimension.

    Takes answers validated against the same ``questions``. Returns a TTIScore whose source is the file.
    Raises TransparencyError if an answer's id is not in ``questions``.
    """
    by_id = {q.id: q for q in questions}
    points = dict.fromkeys(DIMENSIONS, 0)
    for answer in filled.answers:
        if answer.id not in by_id:
            raise TransparencyError(f"{filled.source}: question {answer.id!r} is not in the checklist")
        if answer.answer:
            points[by_id[answer.id].dimension] += by_id[answer.id].points
    return TTIScore(filled.name, source=filled.source, **points)


def rank(scores: Iterable[TTIScore]) -> list[tuple[int, TTIScore]]:
    """Sort by total, highest first; ties keep their input order and share a rank (1, 2, 2, 4).

    Returns (rank, score) pairs.
    """
    ordered = sorted(scores, key=lambda s: -s.total)  # sorted() is stable: ties keep input order
    ranked: list[tuple[int, TTIScore]] = []
    for position, score in enumerate(ordered, 1):
        same = ranked and ranked[-1][1].total == score.total
        ranked.append((ranked[-1][0] if same else position, score))
    return ranked


def render_template(questions: Sequence[Question]) -> str:
    """The text of ``configs/tti-template.toml`` for ``questions``: every id with answer = false."""
    maxima = dimension_maxima(questions)
    lines = [
        (
            f"# Technical Transparency Index (O1-Journey Part 2 report, Tables 3 and 4): "
            f"{len(questions)} yes/no questions, {sum(maxima.values())} points."
        ),
        "# Fill in every table: answer = true or false (a TOML boolean, no quotes) and evidence = a URL",
        '# or a pointer (paper section, file) that backs the answer ("" if none). Answer each id exactly',
        '# once; [answers.data.sources] without quotes names the same question as [answers."data.sources"].',
        "# A work that states it does not use a technique (e.g. no RL) answers true: it is transparent.",
        "# Score it:  tts-eval transparency score FILE.toml [--json]",
        "# Compare:   tts-eval transparency leaderboard FILE.toml ...",
        "",
        'name = ""  # the work being scored, e.g. "O1-Journey (Part 2)"',
    ]
    for dimension in DIMENSIONS:
        lines += ["", f"# ---- {dimension} ({maxima[dimension]} points) ----"]
        for q in (q for q in questions if q.dimension == dimension):
            suffix = "point" if q.points == 1 else "points"
            lines += [
                "",
                f"# {q.question} ({q.points} {suffix})",
                f'[answers."{q.id}"]',
                "answer = false",
                'evidence = ""',
            ]
    return "\n".join(lines) + "\n"


def _csv_rows(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[str, dict[str, str]]]:
    """Yield ("file:line", row) for each row of a CSV that must have ``columns``; raises TransparencyError."""
    if not path.is_file():
        raise TransparencyError(f"{path}: file not found; pass a CSV with columns {', '.join(columns)}")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or ())]
        if missing:
            raise TransparencyError(
                f"{path}:1: header lacks column(s) {', '.join(missing)}; expected {columns}"
            )
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if None in row or any(row[c] is None for c in columns):
                raise TransparencyError(f"{where}: expected {len(columns)} fields ({', '.join(columns)})")
            yield where, {c: row[c].strip() for c in columns}


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise TransparencyError(f"{what} must be an integer, got {text!r}") from None


def _flatten(tree: dict[str, Any], ids: set[str], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield (dotted id, value) for each answer in ``tree``, folding nested tables ([answers.data.sources])
    into dotted ids. A table is an answer when its id is known, it is empty, or it holds a non-table value."""
    for key, value in tree.items():
        qid = prefix + key
        if (
            isinstance(value, dict)
            and value
            and qid not in ids
            and all(isinstance(v, dict) for v in value.values())
        ):
            yield from _flatten(value, ids, qid + ".")
        else:
            yield qid, value


def _answer(qid: str, value: Any, text: str, source: str) -> Answer:
    """Validate one question's table; errors start with "file:line" of the offending line."""
    table = f'[answers."{qid}"]'
    where = _at(text, source, qid)
    if not isinstance(value, dict):
        raise TransparencyError(
            f"{where}: question {qid!r} must be a table {table} with answer = true or false, "
            f"got {_describe(value)}"
        )
    for key in value:
        if key not in ANSWER_KEYS:
            raise TransparencyError(
                f"{where}: unknown key {key!r} in {table}{_did_you_mean(key, ANSWER_KEYS)}"
            )
    if "answer" not in value:
        raise TransparencyError(
            f"{where}: question {qid!r} has no answer; add answer = true or false under {table}"
        )
    if not isinstance(value["answer"], bool):
        raise TransparencyError(
            f"{_at(text, source, qid, 'answer')}: question {qid!r}: answer must be true or false "
            f"(a TOML boolean, no quotes), got {_describe(value['answer'])}"
        )
    evidence = value.get("evidence", "")
    if not isinstance(evidence, str):
        raise TransparencyError(
            f"{_at(text, source, qid, 'evidence')}: question {qid!r}: evidence must be a string, "
            f"got {_describe(evidence)}"
        )
    return Answer(qid, value["answer"], evidence)


def _describe(value: Any) -> str:
    """A value as the user wrote it, with its TOML type: '"yes" (a string)'."""
    kinds = {
        str: "a string",
        int: "an integer",
        float: "a float",
        list: "an array",
        dict: "a table",
        bool: "a boolean",
    }
    shown = (
        f'"{value}"'
        if isinstance(value, str)
        else repr(value).lower()
        if isinstance(value, bool)
        else repr(value)
    )
    return f"{shown} ({kinds.get(type(value), 'a date/time')})"


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    """'; did you mean X?' for the closest choice (or an id ending in '.word'), else the list of choices."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    close = close or [c for c in choices if c.endswith("." + word)][:1]
    if close:
        return f"; did you mean {close[0]!r}?"
    if len(choices) <= 5:
        return f"; expected one of {', '.join(choices)}"
    return f"; the ids are listed in configs/{TEMPLATE.name}"


def _at(text: str, source: str, qid: str, key: str | None = None) -> str:
    """'file:line' of the line that defines question ``qid`` (its ``key`` line when found), or 'file'."""
    lines: dict[str, int] = {}
    for line, path in enumerate(_key_paths(text), 1):
        if path and path[0] == "answers":
            lines.setdefault(".".join(path[1:]), line)
    number = (
        (lines.get(f"{qid}.{key}") if key else None)
        or lines.get(qid)
        or next((n for p, n in lines.items() if p.startswith(qid + ".")), None)
    )
    return f"{source}:{number}" if number else source


# Only used to locate or explain an error tomllib or the checks above found, so an approximate reading of
# keys (multi-line strings are not understood) is enough.
_AT_LINE = re.compile(r"\(at line (\d+), column \d+\)")
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:"[^"]*"|'[^']*'|[\w-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[\w-]+))*)\s*=""")
_PART = re.compile(r""""([^"]*)"|'([^']*)'|([\w-]+)""")


def _toml_error(text: str, source: str, exc: tomllib.TOMLDecodeError) -> TransparencyError:
    """Turn tomllib's error into one line; a repeated key or table is named as a duplicate with both lines."""
    message = str(exc).splitlines()[0]
    found = _AT_LINE.search(message)
    if found is None:
        return TransparencyError(f"{source}: malformed TOML: {message}; {_SEE}")
    line = int(found.group(1))
    where = f"{source}:{line}"
    if message.startswith(("Cannot declare", "Cannot overwrite")):
        paths = _key_paths(text)
        path = paths[line - 1] if line <= len(paths) else None
        earlier = [n for n, p in enumerate(paths[: line - 1], 1) if path is not None and p == path]
        if path and earlier:
            also = f"(also at line {earlier[0]}); keep one"
            if path[0] == "answers" and len(path) > 1:
                if path[-1] in ANSWER_KEYS and len(path) > 2:
                    qid = ".".join(path[1:-1])
                    return TransparencyError(
                        f"{where}: duplicate key {path[-1]!r} for question {qid!r} {also}"
                    )
                return TransparencyError(f"{where}: duplicate question id {'.'.join(path[1:])!r} {also}")
            return TransparencyError(f"{where}: duplicate key {'.'.join(path)!r} {also}")
    return TransparencyError(f"{where}: malformed TOML: {message}; {_SEE}")


def _key_paths(text: str) -> list[tuple[str, ...] | None]:
    """For each line: the full key path it defines (a table header, or table + key), else None."""
    table: tuple[str, ...] = ()
    paths: list[tuple[str, ...] | None] = []
    for line in text.splitlines():
        header, key = _HEADER.match(line), _KEY.match(line)
        if header:
            table = _parts(header.group(1))
            paths.append(table)
        elif key:
            paths.append(table + _parts(key.group(1)))
        else:
            paths.append(None)
    return paths


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(next(g for g in m.groups() if g is not None) for m in _PART.finditer(dotted))
