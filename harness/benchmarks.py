"""Load a benchmark by name (the bundled ones) or by path (a custom JSONL file) into Problems.

A benchmark carries a version and the sha256 of its file; both go into every run's manifest, so curves made
on different data are never compared by accident.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from harness.types import ANSWER_TYPES, Problem

BENCHMARK_DIR = Path(__file__).resolve().parents[1] / "benchmarks"


@dataclass(frozen=True)
class BuiltinBenchmark:
    """A bundled benchmark: its file, version, expected checksum and answer type."""

    name: str
    file: str
    version: str
    sha256: str
    answer_type: str
    description: str


BUILTINS: dict[str, BuiltinBenchmark] = {
    b.name: b
    for b in (
        BuiltinBenchmark(
            "aime24", "aime24.jsonl", "aime24-v1",
            "37b64b36d0b758894ba5b9297732063100db12311028f207d1a494c5e426a41f", "integer",
            "AIME 2024 I and II, integer answers 0-999",
        ),
        BuiltinBenchmark(
            "math500", "math500.jsonl", "math500-v1",
            "3fe68ca2c1b94f9381a16527afdebf60247d7d364657d11e3d8d8db539cabac3", "math",
            "MATH500 (PRM800K test split), LaTeX answers",
        ),
    )
}

# Field names other datasets use for the same thing. A custom file may use these; the loader says which it read.
_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "unique_id", "idx", "problem_id"),
    "problem": ("problem", "question", "query"),
    "answer": ("answer", "gt", "gold", "gold_answer"),
}


class BenchmarkError(ValueError):
    """A benchmark cannot be loaded; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class Benchmark:
    """A loaded benchmark. ``fields`` maps our field names to the ones the file used."""

    name: str
    version: str
    sha256: str
    path: Path
    problems: tuple[Problem, ...]
    fields: tuple[tuple[str, str], ...] = ()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pick(row: dict[str, Any], name: str) -> tuple[str, Any] | None:
    for key in _ALIASES[name]:
        if key in row and row[key] is not None:
            return key, row[key]
    return None


def _parse_row(row: Any, where: str, benchmark: str, default_type: str) -> tuple[Problem, dict[str, str]]:
    if not isinstance(row, dict):
        raise BenchmarkError(f"{where}: expected a JSON object, got {type(row).__name__}")
    picked: dict[str, tuple[str, Any]] = {}
    for name in ("id", "problem", "answer"):
        hit = _pick(row, name)
        if hit is None:
            raise BenchmarkError(f"{where}: missing field {name!r} (a benchmark row needs id, problem, answer)")
        picked[name] = hit
    answer_type = row.get("answer_type", default_type)
    if answer_type not in ANSWER_TYPES:
        raise BenchmarkError(f"{where}: answer_type must be one of {', '.join(ANSWER_TYPES)}, got {answer_type!r}")
    problem_text = picked["problem"][1]
    if not isinstance(problem_text, str) or not problem_text.strip():
        raise BenchmarkError(f"{where}: field {picked['problem'][0]!r} must be a non-empty string")
    used = {picked[n][0] for n in picked}
    metadata = {k: v for k, v in row.items() if k not in used and k != "answer_type"}
    problem = Problem(
        id=str(picked["id"][1]), benchmark=benchmark, question=problem_text,
        answer=str(picked["answer"][1]), answer_type=answer_type, metadata=metadata,
    )
    return problem, {n: picked[n][0] for n in picked}


def read_problems(path: Path, benchmark: str, default_type: str = "math") -> tuple[list[Problem], dict[str, str]]:
    """Read a JSONL benchmark file; returns the problems and the field mapping used.

    Raises BenchmarkError naming the file and line for malformed JSON, missing fields or duplicate ids.
    """
    problems: list[Problem] = []
    fields: dict[str, str] = {}
    seen: dict[str, int] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchmarkError(f"{path}: cannot read benchmark file ({exc})") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BenchmarkError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
        problem, fields = _parse_row(row, where, benchmark, default_type)
        if problem.id in seen:
            raise BenchmarkError(f"{where}: duplicate id {problem.id!r} (first on line {seen[problem.id]})")
        seen[problem.id] = number
        problems.append(problem)
    if not problems:
        raise BenchmarkError(f"{path}: no problems in file")
    return problems, fields


def load_benchmark(name_or_path: str) -> Benchmark:
    """Load a bundled benchmark by name, or a custom JSONL file by path.

    Raises BenchmarkError for an unknown name (with the closest names), a missing file, a checksum mismatch
    of a bundled file, or a malformed row.
    """
    if name_or_path in BUILTINS:
        info = BUILTINS[name_or_path]
        path = BENCHMARK_DIR / info.file
        digest = _sha256(path)
        if digest != info.sha256:
            raise BenchmarkError(
                f"{path}: checksum {digest[:12]} does not match {info.name} version {info.version} "
                f"({info.sha256[:12]}); restore the file from git"
            )
        problems, _ = read_problems(path, info.name, info.answer_type)
        return Benchmark(info.name, info.version, digest, path, tuple(problems))
    path = Path(name_or_path)
    if path.suffix in (".jsonl", ".json") or path.exists():
        if not path.is_file():
            raise BenchmarkError(f"{path}: no such benchmark file")
        digest = _sha256(path)
        problems, fields = read_problems(path, path.stem)
        return Benchmark(path.stem, f"file-{digest[:12]}", digest, path, tuple(problems), tuple(fields.items()))
    close = difflib.get_close_matches(name_or_path, list(BUILTINS), n=2, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise BenchmarkError(
        f"unknown benchmark {name_or_path!r}{hint} (known: {', '.join(BUILTINS)}; or give a .jsonl path)"
    )


def select(problems: Sequence[Problem], *, limit: int | None = None, ids: Iterable[str] | None = None) -> list[Problem]:
    """Subset problems: ``ids`` keeps those ids (in benchmark order), then ``limit`` keeps the first N.

    Raises BenchmarkError for ids the benchmark does not have or a limit below 1.
    """
    chosen = list(problems)
    if ids is not None:
        wanted = [i for i in ids]
        known = {p.id for p in problems}
        missing = [i for i in wanted if i not in known]
        if missing:
            raise BenchmarkError(f"--ids names {len(missing)} unknown problem id(s), e.g. {missing[0]!r}")
        keep = set(wanted)
        chosen = [p for p in chosen if p.id in keep]
    if limit is not None:
        if limit < 1:
            raise BenchmarkError(f"--limit must be >= 1, got {limit}")
        chosen = chosen[:limit]
    return chosen


def read_ids_file(path: Path) -> list[str]:
    """Read problem ids, one per line (blank lines and # comments ignored)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BenchmarkError(f"{path}: cannot read ids file ({exc})") from exc
    return [s for line in text.splitlines() if (s := line.split("#", 1)[0].strip())]


def ids_hash(problems: Sequence[Problem]) -> str:
    """sha256 of the ordered problem ids: identifies a subset, so runs on different subsets are not compared."""
    return hashlib.sha256("\n".join(p.id for p in problems).encode()).hexdigest()
