"""Grade completions against gold answers: extract -> normalise -> compare (in killable workers) -> vote keys.

Within one problem, every sample's final answer is extracted (a response stopped at max_tokens only counts a
closed box), each distinct answer is normalised once, and each distinct normalised answer is compared with
the gold once: in this process when no parsing is needed (:mod:`.fast`), otherwise in a worker, all of a
problem's checks in one round trip, each under its own deadline. Verdicts are cached by (normalised answer,
normalised gold, answer type) for the life of the Grader. Answers are clustered into vote keys by the same
equivalence that grades them. Across problems, :meth:`Grader.grade_many` keeps every worker busy with a small
thread pool.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Self, TypeVar, cast

from harness.grading.equivalence import Verdict, compare_normalised, compare_signed
from harness.grading.extract import Extraction, extract_answer
from harness.grading.fast import fast_signature, fast_verdict
from harness.grading.normalise import normalize
from harness.grading.parse import MAX_ANSWER_CHARS
from harness.grading.pool import PoolError, WorkerPool
from harness.grading.signature import Signature
from harness.grading.votes import Check, vote_keys
from harness.types import ANSWER_TYPES, Completion, Grade, GradeStatus, Problem

log = logging.getLogger(__name__)

# Bump whenever a verdict or vote key can change for the same input; it goes into every run manifest and
# keys the stored grades.
GRADER_VERSION = "0.2.0"

# The verdict cache is cleared when it holds this many entries (bounded memory on huge runs).
MAX_CACHE_ENTRIES = 200_000
_T = TypeVar("_T")


def _precheck(raw: str) -> Verdict | None:
    """The verdict on a raw answer that cannot be compared at all (empty, or too long), else None."""
    if not raw.strip():
        return Verdict(False, "no_answer", "empty answer")
    if len(raw) > MAX_ANSWER_CHARS:
        return Verdict(False, "unparsable", f"answer longer than {MAX_ANSWER_CHARS} characters")
    return None


def _norm(raw: str) -> str:
    """The dedupe key of a raw answer: its normalised text (over-long answers stay raw, never normalised)."""
    return normalize(raw) if len(raw) <= MAX_ANSWER_CHARS else raw


class Grader:
    """Grades completions; holds the worker pool and the verdict cache. Use as a context manager.

    workers: worker processes (default: the CPU count). deadline_s: hard limit per comparison, in seconds
    (> 0); an overrun gives status "timeout". memory_mb: address-space limit per worker. progress: show a
    progress bar in grade_many (only on a terminal). Raises ValueError on a bad setting.
    """

    def __init__(self, workers: int | None = None, deadline_s: float = 5.0, memory_mb: int = 1536,
                 progress: bool = False) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1 (or None for the CPU count), got {workers}")
        if deadline_s <= 0:
            raise ValueError(f"deadline_s must be > 0, got {deadline_s}")
        if memory_mb < 256:
            raise ValueError(f"memory_mb must be >= 256, got {memory_mb}")
        self.workers = workers or os.cpu_count() or 1
        self.deadline_s = deadline_s
        self.memory_mb = memory_mb
        self.progress = progress
        self._pool: WorkerPool | None = None
        self._pool_lock = threading.Lock()
        self._cache: dict[Check, Verdict] = {}
        self._signatures: dict[str, Signature | None] = {}
        self._closed = False

    def _get_pool(self) -> WorkerPool:
        """The worker pool, started on first use."""
        with self._pool_lock:
            if self._closed:
                raise RuntimeError("Grader is closed; create a new one")
            if self._pool is None:
                self._pool = WorkerPool(self.workers, self.deadline_s, self.memory_mb)
            return self._pool

    # -- comparisons ------------------------------------------------------------------------------------

    def _resolve(self, checks: Sequence[Check], signed: bool = False) -> list[Verdict]:
        """Verdicts for normalised (answer, gold, type) checks: from the cache, in-process, or in one worker
        round trip for all the rest. Returns them in order. With ``signed`` (checks against the gold), the
        answers' signatures are kept for the vote keys."""
        verdicts: list[Verdict | None] = []
        todo: list[int] = []
        for i, check in enumerate(checks):
            verdict = self._cache.get(check)
            if verdict is None:
                verdict = fast_verdict(*check)
                if verdict is not None:
                    self._remember(check, verdict)
                    if signed:
                        self._signatures[check[0]] = fast_signature(check[0])
            verdicts.append(verdict)
            if verdict is None:
                todo.append(i)
        if todo:
            func = compare_signed if signed else compare_normalised
            results = self._get_pool().run_many(func, [checks[i] for i in todo])
            for i, result in zip(todo, results):
                if signed and not isinstance(result, PoolError):
                    result, self._signatures[checks[i][0]] = result
                verdicts[i] = self._from_worker(checks[i], result)
        return cast(list[Verdict], verdicts)

    def _from_worker(self, check: Check, result: object) -> Verdict:
        """A worker's result (a Verdict or a PoolError) as a Verdict, cached."""
        if isinstance(result, PoolError):
            if result.kind == "error":  # an exception inside the checker: a grader bug worth a report
                log.warning("checker error on answer %.80r vs gold %.80r: %s", check[0], check[1], result)
            status = "unparsable" if result.kind == "error" else "timeout"
            verdict = Verdict(False, status, str(result)[:120])
        else:
            verdict = cast(Verdict, result)
        self._remember(check, verdict)
        return verdict

    def _remember(self, check: Check, verdict: Verdict) -> None:
        """Cache a verdict (timeouts too: a hostile answer costs its deadline once, not once per sample)."""
        if len(self._cache) >= MAX_CACHE_ENTRIES:
            self._cache.clear()
            self._signatures.clear()
        self._cache[check] = verdict

    def check(self, pred: str, gold: str, answer_type: str = "math") -> Verdict:
        """Compare a bare answer with a gold answer (no extraction). ``answer_type``: integer, math or text.

        Returns a Verdict; raises ValueError on an unknown answer type.
        """
        return self.check_many([(pred, gold, answer_type)])[0]

    def check_many(self, pairs: Sequence[tuple[str, str, str]]) -> list[Verdict]:
        """:meth:`check` for many (answer, gold, answer type) triples, in parallel across the workers.

        Returns Verdicts in order. Raises ValueError on an unknown answer type.
        """
        for _, _, answer_type in pairs:
            if answer_type not in ANSWER_TYPES:
                raise ValueError(f"answer_type must be one of {ANSWER_TYPES}, got {answer_type!r}")
        out: list[Verdict | None] = [_precheck(pred) for pred, _, _ in pairs]
        checks = {(_norm(p), normalize(g), t): None for (p, g, t), v in zip(pairs, out) if v is None}
        unique = list(checks)
        chunk = max(1, min(64, -(-len(unique) // (2 * self.workers))))
        parts = [unique[i:i + chunk] for i in range(0, len(unique), chunk)]
        resolved: dict[Check, Verdict] = {}
        if len(parts) == 1:  # one chunk (a single check): no thread pool needed
            resolved.update(zip(parts[0], self._resolve(parts[0])))
        elif parts:
            with ThreadPoolExecutor(max_workers=min(len(parts), 2 * self.workers)) as executor:
                for part, verdicts in zip(parts, executor.map(self._resolve, parts)):
                    resolved.update(zip(part, verdicts))
        return [v if v is not None else resolved[(_norm(p), normalize(g), t)] for (p, g, t), v in zip(pairs, out)]

    # -- grading ----------------------------------------------------------------------------------------

    def grade(self, problem: Problem, completions: Sequence[Completion]) -> list[Grade]:
        """Grade one problem's completions; returns one Grade per completion, in the same order.

        Raises ValueError when a completion belongs to another problem.
        """
        for c in completions:
            if c.problem_id != problem.id:
                raise ValueError(f"completion of problem {c.problem_id!r} passed to grade() for {problem.id!r}")
        extractions = [extract_answer(c.text, truncated=None if c.finish_reason is None else c.finish_reason == "length")
                       for c in completions]
        norm_of = {raw: _norm(raw) for raw in dict.fromkeys(ex.answer for ex in extractions) if raw is not None}
        gold = normalize(problem.answer)
        raw_of: dict[str, str] = {}
        for raw, norm in norm_of.items():
            raw_of.setdefault(norm, raw)
        verdicts = {norm: v for norm, raw in raw_of.items() if (v := _precheck(raw)) is not None}
        todo = [norm for norm in raw_of if norm not in verdicts]
        verdicts.update(zip(todo, self._resolve([(n, gold, problem.answer_type) for n in todo], signed=True)))
        keys = vote_keys(gold, problem.answer_type, verdicts, self._resolve, self._signatures.get)
        return [self._grade_one(c, ex, norm_of.get(ex.answer) if ex.answer is not None else None, verdicts, keys)
                for c, ex in zip(completions, extractions)]

    @staticmethod
    def _grade_one(c: Completion, ex: Extraction, norm: str | None, verdicts: Mapping[str, Verdict],
                   keys: Mapping[str, str]) -> Grade:
        """The Grade of one completion from its extraction and the problem's verdicts and keys."""
        if ex.answer is None or norm is None:
            return Grade(c.problem_id, c.sample_index, None, None, False, "no_answer", f"no final answer ({ex.method})")
        v = verdicts[norm]
        if v.status == "no_answer":
            return Grade(c.problem_id, c.sample_index, ex.answer, None, False, "no_answer", v.reason)
        status = cast(GradeStatus, v.status)
        return Grade(c.problem_id, c.sample_index, ex.answer, keys.get(norm), v.equal and status == "ok", status,
                     v.reason)

    def grade_many(self, problems: Mapping[str, Problem], completions: Sequence[Completion]) -> list[Grade]:
        """Grade completions of many problems in parallel; returns Grades in the order of ``completions``.

        ``problems`` maps problem id -> Problem. Raises ValueError when a completion's problem is missing.
        """
        by_problem: dict[str, list[int]] = defaultdict(list)
        for i, c in enumerate(completions):
            if c.problem_id not in problems:
                raise ValueError(f"completion for unknown problem id {c.problem_id!r}; add its Problem to `problems`")
            by_problem[c.problem_id].append(i)
        results: list[Grade | None] = [None] * len(completions)
        if not completions:
            return []
        self._get_pool()  # start the workers once, before the threads race for them
        # Twice as many threads as workers: while one thread extracts and normalises, a worker stays busy.
        with ThreadPoolExecutor(max_workers=2 * self.workers, thread_name_prefix="grade") as executor:
            futures = {executor.submit(self.grade, problems[pid], [completions[i] for i in idx]): idx
                       for pid, idx in by_problem.items()}
            for future in self._progress(as_completed(futures), len(futures)):
                for i, grade in zip(futures[future], future.result()):
                    results[i] = grade
        return [g for g in results if g is not None]

    def _progress(self, items: Iterable[_T], total: int) -> Iterable[_T]:
        """Wrap ``items`` in a tqdm bar when progress is on and stderr is a terminal."""
        if not self.progress or not sys.stderr.isatty():
            return items
        from tqdm import tqdm

        return cast(Iterable[_T], tqdm(items, total=total, desc="grading", unit="problem"))

    # -- lifetime ---------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the worker processes (idempotent). The Grader cannot be used afterwards."""
        with self._pool_lock:
            self._closed = True
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def grade_completions(problems: Mapping[str, Problem] | Iterable[Problem], completions: Sequence[Completion], *,
                      workers: int | None = None, deadline_s: float = 5.0, progress: bool = False) -> list[Grade]:
    """Grade ``completions`` with a fresh Grader and close it; Grades come back in the input order.

    ``problems``: a mapping id -> Problem, or any iterable of Problems. Raises ValueError when a completion's
    problem is missing.
    """
    table = dict(problems) if isinstance(problems, Mapping) else {p.id: p for p in problems}
    with Grader(workers=workers, deadline_s=deadline_s, progress=progress) as grader:
        return grader.grade_many(table, completions)
