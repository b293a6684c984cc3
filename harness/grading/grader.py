"""Grade completions against gold answers: extract -> normalise -> compare (in killable workers) -> vote keys.

Within one problem, every sample's final answer is extracted, identical normalised answers are compared to
the gold once, and verdicts are cached by (normalised answer, normalised gold, answer type) for the life
of the Grader. Answers are clustered into vote keys by the same equivalence that grades them. Across
problems, :meth:`Grader.grade_many` keeps every worker busy with a small thread pool.

Work that needs no parsing (empty or over-long answers, identical normalised strings, two plain integers)
is decided in this process; everything that parses runs in a worker under the deadline.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Self, TypeVar, cast

from harness.grading.equivalence import Verdict, compare
from harness.grading.extract import Extraction, extract_answer
from harness.grading.parse import MAX_ANSWER_CHARS, normalize
from harness.grading.pool import PoolError, WorkerPool
from harness.types import ANSWER_TYPES, Completion, Grade, GradeStatus, Problem

log = logging.getLogger(__name__)

# Bump whenever a verdict or vote key can change for the same input; it goes into every run manifest and
# keys the stored grades.
GRADER_VERSION = "0.1.0"

# Vote keys: at most this many pairwise checks among one problem's wrong answers (each one is a worker
# round trip, up to the deadline on hostile input). Answers left over keep their own normalised string.
MAX_CLUSTER_COMPARISONS = 48
# Vote keys longer than this are shortened to a prefix plus a hash, so keys stay short and stable.
MAX_KEY_CHARS = 80
# The verdict cache is cleared when it holds this many entries (bounded memory on huge runs).
MAX_CACHE_ENTRIES = 200_000
_PLAIN_INT = frozenset("0123456789")
_T = TypeVar("_T")


def _short_key(text: str) -> str:
    """A vote key for a normalised answer: the text itself, or a prefix and a hash when it is long."""
    if len(text) <= MAX_KEY_CHARS:
        return text
    digest = hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()[:12]
    return f"{text[:MAX_KEY_CHARS - 14]}~{digest}"


def _is_plain_int(text: str) -> bool:
    """True for an optionally signed run of digits (the in-process fast path of integer answers)."""
    body = text[1:] if text[:1] in "+-" else text
    return bool(body) and len(body) < 50 and set(body) <= _PLAIN_INT


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
        self._cache: dict[tuple[str, str, str], Verdict] = {}
        self._closed = False

    # -- comparisons ------------------------------------------------------------------------------------

    def _get_pool(self) -> WorkerPool:
        """The worker pool, started on first use."""
        with self._pool_lock:
            if self._closed:
                raise RuntimeError("Grader is closed; create a new one")
            if self._pool is None:
                self._pool = WorkerPool(self.workers, self.deadline_s, self.memory_mb)
            return self._pool

    def _fast_verdict(self, p: str, g: str, answer_type: str) -> Verdict | None:
        """A verdict decided without parsing, or None when the answer needs a worker."""
        if not p or not g:
            return None  # the worker's compare() explains what is missing
        if answer_type == "integer":
            if _is_plain_int(p) and _is_plain_int(g):
                same = int(p) == int(g)
                return Verdict(same, "ok", "same integer" if same else "different integer")
            return None
        if p == g:
            return Verdict(True, "ok", "identical after normalisation")
        return None

    def _verdict(self, pred: str, gold: str, answer_type: str) -> Verdict:
        """Cached comparison of one raw answer with one raw gold answer."""
        if not pred.strip():
            return Verdict(False, "no_answer", "empty answer")
        if len(pred) > MAX_ANSWER_CHARS:
            return Verdict(False, "unparsable", f"answer longer than {MAX_ANSWER_CHARS} characters")
        p, g = normalize(pred), normalize(gold)
        key = (p, g, answer_type)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        verdict = self._fast_verdict(p, g, answer_type)
        if verdict is None:
            try:
                verdict = self._get_pool().run(compare, pred, gold, answer_type)
            except PoolError as err:
                if err.kind == "error":  # an exception inside the checker: a grader bug worth a report
                    log.warning("checker error on answer %.80r vs gold %.80r: %s", pred, gold, err)
                status = "unparsable" if err.kind == "error" else "timeout"
                verdict = Verdict(False, status, str(err)[:120])
        if len(self._cache) >= MAX_CACHE_ENTRIES:
            self._cache.clear()
        self._cache[key] = verdict
        return verdict

    def check(self, pred: str, gold: str, answer_type: str = "math") -> Verdict:
        """Compare a bare answer with a gold answer (no extraction). ``answer_type``: integer, math or text.

        Returns a Verdict; raises ValueError on an unknown answer type.
        """
        if answer_type not in ANSWER_TYPES:
            raise ValueError(f"answer_type must be one of {ANSWER_TYPES}, got {answer_type!r}")
        return self._verdict(pred, gold, answer_type)

    # -- grading ----------------------------------------------------------------------------------------

    def grade(self, problem: Problem, completions: Sequence[Completion]) -> list[Grade]:
        """Grade one problem's completions; returns one Grade per completion, in the same order.

        Raises ValueError when a completion belongs to another problem.
        """
        for c in completions:
            if c.problem_id != problem.id:
                raise ValueError(f"completion of problem {c.problem_id!r} passed to grade() for {problem.id!r}")
        extractions = [extract_answer(c.text) for c in completions]
        norms = [self._norm(ex.answer) for ex in extractions]
        verdicts: dict[str, Verdict] = {}
        raw_of: dict[str, str] = {}
        for ex, norm in zip(extractions, norms):
            if ex.answer is not None and norm is not None and norm not in verdicts:
                raw_of[norm] = ex.answer
                verdicts[norm] = self._verdict(ex.answer, problem.answer, problem.answer_type)
        keys = self._vote_keys(problem, verdicts, raw_of)
        return [self._grade_one(c, ex, norm, verdicts, keys) for c, ex, norm in zip(completions, extractions, norms)]

    @staticmethod
    def _norm(answer: str | None) -> str | None:
        """The dedupe key of an extracted answer: its normalised text (over-long answers stay raw)."""
        if answer is None:
            return None
        return normalize(answer) if len(answer) <= MAX_ANSWER_CHARS else answer

    def _grade_one(self, c: Completion, ex: Extraction, norm: str | None, verdicts: Mapping[str, Verdict],
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

    def _vote_keys(self, problem: Problem, verdicts: Mapping[str, Verdict], raw_of: Mapping[str, str]) -> dict[str, str]:
        """Cluster one problem's distinct normalised answers into vote keys.

        Answers equal to the gold share the key "normalised gold". Other parsed answers join the first
        earlier cluster they are equivalent to (checked against each cluster's first answer, at most
        MAX_CLUSTER_COMPARISONS checks per problem), else start their own cluster keyed by their normalised
        text. Policy: unparsable and timed-out answers still vote, each under its own normalised string (so
        eight identical unparsable answers can outvote a scattered correct one, as a human reading the
        samples would count them); they are never compared with others.
        """
        gold_key = _short_key(normalize(problem.answer))
        keys: dict[str, str] = {}
        reps: list[str] = []
        budget = MAX_CLUSTER_COMPARISONS
        for norm, v in verdicts.items():
            if v.status == "ok" and v.equal:
                keys[norm] = gold_key
                continue
            if v.status == "ok":
                for rep in reps:
                    if budget <= 0:
                        break
                    budget -= 1
                    pair = self._verdict(raw_of[norm], raw_of[rep], problem.answer_type)
                    if pair.status == "ok" and pair.equal:
                        keys[norm] = keys[rep]
                        break
                else:
                    reps.append(norm)
            keys.setdefault(norm, _short_key(norm))
        return keys

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
