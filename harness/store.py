"""The run store: one SQLite file per run (``results/<run>/run.sqlite``), append-only for samples.

Completions are unique on (problem id, sample index) and committed in small batches as they arrive, so a
killed run loses at most the batch in flight and a resumed run asks only for what is missing. Grades are kept
per grader version, so a re-grade with a newer grader never overwrites an older verdict.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from harness.types import Completion, Grade, Problem, RunManifest, SamplingSpec

STORE_FILE = "run.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS problems (
    position INTEGER NOT NULL, id TEXT PRIMARY KEY, benchmark TEXT NOT NULL, question TEXT NOT NULL,
    answer TEXT NOT NULL, answer_type TEXT NOT NULL, metadata TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS completions (
    problem_id TEXT NOT NULL REFERENCES problems(id), sample_index INTEGER NOT NULL, seed INTEGER,
    text TEXT NOT NULL, output_tokens INTEGER, finish_reason TEXT, token_ids TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (problem_id, sample_index));
CREATE TABLE IF NOT EXISTS grades (
    problem_id TEXT NOT NULL, sample_index INTEGER NOT NULL, grader_version TEXT NOT NULL,
    extracted TEXT, vote_key TEXT, correct INTEGER NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (problem_id, sample_index, grader_version));
CREATE TABLE IF NOT EXISTS scores (
    problem_id TEXT NOT NULL, sample_index INTEGER NOT NULL, name TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (problem_id, sample_index, name));
CREATE TABLE IF NOT EXISTS forced (
    problem_id TEXT NOT NULL, sample_index INTEGER NOT NULL, cap INTEGER NOT NULL, prefix_tokens INTEGER NOT NULL,
    prompt_name TEXT NOT NULL, seed INTEGER, text TEXT NOT NULL, output_tokens INTEGER NOT NULL,
    finish_reason TEXT, token_ids TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (problem_id, sample_index, cap));
CREATE TABLE IF NOT EXISTS capped_grades (
    problem_id TEXT NOT NULL, sample_index INTEGER NOT NULL, cap INTEGER NOT NULL, grader_version TEXT NOT NULL,
    extracted TEXT, vote_key TEXT, correct INTEGER NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (problem_id, sample_index, cap, grader_version));
"""
# scores: one number per (sample, name), e.g. a reward model's score (RM@k) or an imported file's own label.
# forced: budget-forcing continuations (derived completions) of a sample cut at a token cap; text, tokens and
#   ids are the continuation's only; prefix_tokens = min(sample length, cap) tokens of the sample were kept.
# capped_grades: the grades of the samples as they stand at a cap with forcing (a sample that finished
#   within the cap, or its forced continuation), graded together so that their vote keys agree.
# Tables added after schema 1 are created on open (CREATE IF NOT EXISTS), so older stores keep working.


@dataclass(frozen=True)
class ForcedAnswer:
    """A budget-forcing continuation of sample (problem_id, sample_index), cut at ``cap`` tokens.

    ``prefix_tokens``: tokens of the sample that were kept (min(length, cap)); ``prompt_name``: the versioned
    forcing prompt appended to the prefix; ``completion``: the continuation alone (its text, output tokens,
    finish reason, seed and ids; problem id and sample index are the sample's).
    """

    cap: int
    prefix_tokens: int
    prompt_name: str
    completion: Completion

    def __post_init__(self) -> None:
        if self.cap < 1 or not 0 <= self.prefix_tokens <= self.cap:
            raise ValueError(f"need cap >= 1 and 0 <= prefix_tokens <= cap, got {self.cap}, {self.prefix_tokens}")
        if self.completion.output_tokens is None:
            raise ValueError("a forced continuation must have its output token count")


class StoreError(RuntimeError):
    """The run folder is missing, not a run, or inconsistent with what was asked."""


def manifest_to_dict(manifest: RunManifest) -> dict[str, Any]:
    """A JSON-ready dict of the manifest (SamplingSpec nested)."""
    return dataclasses.asdict(manifest)


def manifest_from_dict(data: Mapping[str, Any]) -> RunManifest:
    """Rebuild a RunManifest from ``manifest_to_dict`` output; unknown keys are an error (a newer store)."""
    fields = {f.name for f in dataclasses.fields(RunManifest)}
    unknown = set(data) - fields
    if unknown:
        raise StoreError(f"manifest has unknown field(s) {sorted(unknown)}: written by a newer tts-eval?")
    values = dict(data)
    if values.get("sampling") is not None:
        sampling = dict(values["sampling"])
        sampling["stop"] = tuple(sampling.get("stop", ()))
        values["sampling"] = SamplingSpec(**sampling)
    values["notes"] = tuple(values.get("notes", ()))
    return RunManifest(**values)


class RunStore:
    """An open run store. Use ``RunStore.create`` for a new run and ``RunStore.open`` for an existing one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so each batch is one transaction.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    @classmethod
    def create(cls, run_dir: Path, manifest: RunManifest, problems: Sequence[Problem]) -> RunStore:
        """Create ``run_dir/run.sqlite`` with the manifest and problems. Raises StoreError if one exists."""
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / STORE_FILE
        if path.exists():
            raise StoreError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
        store = cls(path)
        store._set_meta("schema_version", SCHEMA_VERSION)
        store.write_manifest(manifest)
        store.add_problems(problems)
        return store

    @classmethod
    def open(cls, run_dir: Path) -> RunStore:
        """Open an existing run. Raises StoreError when ``run_dir`` holds no run."""
        path = run_dir / STORE_FILE if run_dir.is_dir() else run_dir
        if not path.is_file():
            raise StoreError(f"{run_dir}: no run here (expected {STORE_FILE}); run `tts-eval run` or `tts-eval import` first")
        store = cls(path)
        version = store._get_meta("schema_version")
        if version != SCHEMA_VERSION:
            raise StoreError(f"{path}: store schema {version!r} is not {SCHEMA_VERSION}; re-create the run")
        return store

    def close(self) -> None:
        """Close the database (pending transactions are already committed)."""
        self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- meta -------------------------------------------------------------------------------------------
    def _set_meta(self, key: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value, sort_keys=True)))

    def _get_meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def write_manifest(self, manifest: RunManifest) -> None:
        """Store (replace) the run's manifest."""
        self._set_meta("manifest", manifest_to_dict(manifest))

    def manifest(self) -> RunManifest:
        """The run's manifest. Raises StoreError if the store has none."""
        data = self._get_meta("manifest")
        if data is None:
            raise StoreError(f"{self.path}: no manifest stored")
        return manifest_from_dict(data)

    def set_info(self, key: str, value: Any) -> None:
        """Store a small JSON value beside the manifest (e.g. the replay field map, a token note)."""
        self._set_meta(f"info:{key}", value)

    def info(self, key: str) -> Any:
        """A value stored with ``set_info``, or None."""
        return self._get_meta(f"info:{key}")

    # --- problems ---------------------------------------------------------------------------------------
    def add_problems(self, problems: Sequence[Problem]) -> None:
        """Add problems not stored yet (an extended run may add more); existing ids must be unchanged."""
        stored = {p.id: p for p in self.problems()}
        start = len(stored)
        rows: list[tuple[object, ...]] = []
        for problem in problems:
            old = stored.get(problem.id)
            if old is not None:
                if (old.question, old.answer, old.answer_type) != (problem.question, problem.answer, problem.answer_type):
                    raise StoreError(f"problem {problem.id!r} differs from the one stored in {self.path}")
                continue
            rows.append((start + len(rows), problem.id, problem.benchmark, problem.question, problem.answer,
                         problem.answer_type, json.dumps(dict(problem.metadata), sort_keys=True, default=str)))
        with self._transaction():
            self._db.executemany("INSERT INTO problems VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def problems(self) -> list[Problem]:
        """The stored problems in benchmark order."""
        cur = self._db.execute(
            "SELECT id, benchmark, question, answer, answer_type, metadata FROM problems ORDER BY position")
        return [Problem(id=r[0], benchmark=r[1], question=r[2], answer=r[3], answer_type=r[4],
                        metadata=json.loads(r[5])) for r in cur]

    # --- completions ------------------------------------------------------------------------------------
    def existing_indices(self) -> dict[str, set[int]]:
        """Sample indices already stored, by problem id."""
        found: dict[str, set[int]] = {}
        for pid, index in self._db.execute("SELECT problem_id, sample_index FROM completions"):
            found.setdefault(pid, set()).add(index)
        return found

    def add_completions(self, batch: Iterable[Completion]) -> int:
        """Insert a batch in one transaction; returns how many were new. A (problem, index) already stored is
        kept as it was (append-only) and not counted."""
        rows = [
            (c.problem_id, c.sample_index, c.seed, c.text, c.output_tokens, c.finish_reason,
             None if c.token_ids is None else json.dumps(list(c.token_ids)))
            for c in batch
        ]
        if not rows:
            return 0
        with self._transaction():
            before = self._db.total_changes
            self._db.executemany(
                "INSERT OR IGNORE INTO completions (problem_id, sample_index, seed, text, output_tokens,"
                " finish_reason, token_ids) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            return self._db.total_changes - before

    def completions(self, *, with_token_ids: bool = False) -> list[Completion]:
        """All stored completions, ordered by problem position then sample index."""
        cur = self._db.execute(
            "SELECT c.problem_id, c.sample_index, c.seed, c.text, c.output_tokens, c.finish_reason, "
            + ("c.token_ids " if with_token_ids else "NULL ")
            + "FROM completions c JOIN problems p ON p.id = c.problem_id ORDER BY p.position, c.sample_index")
        return [Completion(problem_id=r[0], sample_index=r[1], seed=r[2], text=r[3], output_tokens=r[4],
                           finish_reason=r[5], token_ids=None if r[6] is None else tuple(json.loads(r[6])))
                for r in cur]

    def count_completions(self) -> int:
        """How many completions are stored."""
        return int(self._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0])

    # --- grades -----------------------------------------------------------------------------------------
    def write_grades(self, grades: Sequence[Grade], grader_version: str) -> None:
        """Replace the grades of ``grader_version`` with ``grades`` (one transaction)."""
        with self._transaction():
            self._db.execute("DELETE FROM grades WHERE grader_version = ?", (grader_version,))
            self._db.executemany(
                "INSERT INTO grades VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(g.problem_id, g.sample_index, grader_version, g.extracted, g.vote_key, int(g.correct),
                  g.status, g.reason) for g in grades])

    def grades(self, grader_version: str) -> list[Grade]:
        """The grades stored for ``grader_version`` (empty if the run was not graded with it)."""
        cur = self._db.execute(
            "SELECT g.problem_id, g.sample_index, g.extracted, g.vote_key, g.correct, g.status, g.reason "
            "FROM grades g JOIN problems p ON p.id = g.problem_id WHERE g.grader_version = ? "
            "ORDER BY p.position, g.sample_index", (grader_version,))
        return [Grade(problem_id=r[0], sample_index=r[1], extracted=r[2], vote_key=r[3], correct=bool(r[4]),
                      status=r[5], reason=r[6]) for r in cur]

    # --- scores -----------------------------------------------------------------------------------------
    def add_scores(self, name: str, rows: Iterable[tuple[str, int, float]]) -> None:
        """Store (replace) score ``name`` for the given (problem id, sample index, value) rows, one transaction.

        Raises ValueError on an empty name or a value that is not a finite number.
        """
        if not name:
            raise ValueError("a score needs a non-empty name")
        data = [(pid, int(index), name, float(value)) for pid, index, value in rows]
        if not all(math.isfinite(v) for *_, v in data):
            raise ValueError(f"score {name!r} has a NaN or infinite value; store finite numbers only")
        with self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?)", data)

    def scores(self, name: str) -> dict[tuple[str, int], float]:
        """Score ``name`` by (problem id, sample index); empty when the run has none of that name."""
        cur = self._db.execute("SELECT problem_id, sample_index, value FROM scores WHERE name = ?", (name,))
        return {(r[0], r[1]): r[2] for r in cur}

    def score_names(self) -> list[str]:
        """The names of the scores stored with the run, sorted."""
        return [r[0] for r in self._db.execute("SELECT DISTINCT name FROM scores ORDER BY name")]

    # --- budget forcing ---------------------------------------------------------------------------------
    def add_forced(self, batch: Iterable[ForcedAnswer]) -> int:
        """Insert forced continuations in one transaction; one already stored for (problem, sample, cap) is
        kept (append-only). Returns how many were new."""
        rows = [(f.completion.problem_id, f.completion.sample_index, f.cap, f.prefix_tokens, f.prompt_name,
                 f.completion.seed, f.completion.text, f.completion.output_tokens, f.completion.finish_reason,
                 None if f.completion.token_ids is None else json.dumps(list(f.completion.token_ids)))
                for f in batch]
        if not rows:
            return 0
        with self._transaction():
            before = self._db.total_changes
            self._db.executemany(
                "INSERT OR IGNORE INTO forced (problem_id, sample_index, cap, prefix_tokens, prompt_name, seed, text,"
                " output_tokens, finish_reason, token_ids) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            return self._db.total_changes - before

    def forced(self, cap: int | None = None) -> list[ForcedAnswer]:
        """Stored forced continuations (of one cap, or all), by cap, problem position, sample index."""
        cur = self._db.execute(
            "SELECT f.problem_id, f.sample_index, f.cap, f.prefix_tokens, f.prompt_name, f.seed, f.text,"
            " f.output_tokens, f.finish_reason, f.token_ids FROM forced f JOIN problems p ON p.id = f.problem_id"
            " WHERE ? IS NULL OR f.cap = ? ORDER BY f.cap, p.position, f.sample_index", (cap, cap))
        return [ForcedAnswer(cap=r[2], prefix_tokens=r[3], prompt_name=r[4], completion=Completion(
                    problem_id=r[0], sample_index=r[1], seed=r[5], text=r[6], output_tokens=r[7],
                    finish_reason=r[8], token_ids=None if r[9] is None else tuple(json.loads(r[9]))))
                for r in cur]

    def forced_caps(self) -> list[int]:
        """The caps that have forced continuations, ascending."""
        return [r[0] for r in self._db.execute("SELECT DISTINCT cap FROM forced ORDER BY cap")]

    def write_capped_grades(self, cap: int, grades: Sequence[Grade], grader_version: str) -> None:
        """Replace the grades at ``cap`` of ``grader_version`` with ``grades`` (one transaction)."""
        with self._transaction():
            self._db.execute("DELETE FROM capped_grades WHERE cap = ? AND grader_version = ?", (cap, grader_version))
            self._db.executemany(
                "INSERT INTO capped_grades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(g.problem_id, g.sample_index, cap, grader_version, g.extracted, g.vote_key, int(g.correct),
                  g.status, g.reason) for g in grades])

    def capped_grades(self, cap: int, grader_version: str) -> list[Grade]:
        """The grades at ``cap`` stored for ``grader_version`` (empty if none), by problem position and index."""
        cur = self._db.execute(
            "SELECT g.problem_id, g.sample_index, g.extracted, g.vote_key, g.correct, g.status, g.reason "
            "FROM capped_grades g JOIN problems p ON p.id = g.problem_id WHERE g.cap = ? AND g.grader_version = ? "
            "ORDER BY p.position, g.sample_index", (cap, grader_version))
        return [Grade(problem_id=r[0], sample_index=r[1], extracted=r[2], vote_key=r[3], correct=bool(r[4]),
                      status=r[5], reason=r[6]) for r in cur]

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
