"""The sequential axis: accuracy when each sample may use at most ``cap`` output tokens.

Pure functions on stored rows (DESIGN.md, "Truncated (sequential) curve"):

* **truncated**: a stored sample cut at cap b keeps its answer only if it finished within b tokens (finish
  reason "stop", or not stated, and output tokens <= b); otherwise it abstains. Tokens of a sample at b are
  min(length, b).
* **forced**: as truncated, but a sample cut at b answers with its budget-forcing continuation for b when one
  was generated (``tts-eval force``); its tokens are min(length, b) plus the continuation's tokens. The grades
  at b come from ``capped_grades`` (the finished samples and the continuations graded together, so their vote
  keys agree).
* **cap sweep**: an imported run whose sample i was generated with max_tokens = caps[i] (one sample per cap);
  each cap is its own one-sample curve, and without token counts its cost is only bounded by the cap.

Every capped curve is a Maj@k curve (k = 1..n) on the samples as they stand at the cap, with CIs made exactly
like the uncapped ones (same bootstrap seed, so points of different caps resample the same problems).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from harness import scaling
from harness.scaling import ProblemCounts
from harness.types import Completion, CurvePoint, Grade, Method

SWEEP_INFO_KEY = "cap_sweep"


@dataclass(frozen=True)
class CappedCurve:
    """One curve of the sequential axis: ``method`` ("truncated", "forced" or "maj" uncapped) at ``cap``.

    ``counts``: the per-problem counts of the samples as they stand at the cap (problem order of the run);
    ``points``: its Maj@k points, k = 1..n_min.
    """

    method: Method
    cap: int | None
    counts: tuple[ProblemCounts, ...]
    points: tuple[CurvePoint, ...]


def parse_caps(text: str) -> list[int]:
    """Parse caps like "1k,2k,4k" (k = 1000, as for budgets; write 1024 for powers of two).

    Returns the caps sorted ascending without duplicates. Raises ValueError on a bad item.
    """
    return sorted(set(scaling.parse_budgets(text)))


def finished_within(completion: Completion, cap: int) -> bool:
    """True when the sample ended on its own within ``cap`` tokens (an unknown finish reason counts as ended:
    imported outputs often do not say). Raises ValueError when the sample has no token count."""
    if completion.output_tokens is None:
        raise ValueError(f"problem {completion.problem_id!r} sample {completion.sample_index} has no output token "
                         "count; a token cap needs counted tokens (re-import with a tokenizer)")
    return completion.output_tokens <= cap and completion.finish_reason != "length"


def _abstain(grade: Grade, reason: str) -> Grade:
    return Grade(grade.problem_id, grade.sample_index, None, None, False, "no_answer", reason)


def truncated_counts(grades: Sequence[Grade], completions: Sequence[Completion], cap: int) -> list[ProblemCounts]:
    """Per-problem counts of the samples cut at ``cap`` (no forcing): a sample that did not finish within the
    cap abstains, and costs min(length, cap) tokens; it counts as truncated at this cap.

    Takes the run's grades and completions (matched on problem and sample index, any order). Raises ValueError
    on a cap < 1, a sample without a token count, or rows that do not match (see ``scaling.problem_counts``).
    """
    if cap < 1:
        raise ValueError(f"cap must be >= 1 token, got {cap}")
    by_key = {(c.problem_id, c.sample_index): c for c in completions}
    new_grades, new_comps = [], []
    for g in grades:
        c = by_key.get((g.problem_id, g.sample_index))
        if c is None:
            raise ValueError(f"grade for problem {g.problem_id!r} sample {g.sample_index} has no completion")
        done = finished_within(c, cap)
        new_grades.append(g if done else _abstain(g, f"cut at {cap} tokens before it finished"))
        new_comps.append(replace(c, output_tokens=min(c.output_tokens or 0, cap), token_ids=None,
                                 finish_reason="stop" if done else "length"))
    return scaling.problem_counts(new_grades, new_comps)


def forced_counts(capped_grades: Sequence[Grade], completions: Sequence[Completion], cap: int,
                  continuation_tokens: Mapping[tuple[str, int], int]) -> list[ProblemCounts]:
    """Per-problem counts at ``cap`` with budget forcing.

    ``capped_grades``: one grade per sample as it stands at the cap (stored by ``tts-eval force``);
    ``continuation_tokens``: output tokens of the forced continuation by (problem id, sample index). A sample
    that did not finish within the cap costs min(length, cap) + its continuation's tokens (0 when it has none,
    and then its capped grade must be an abstention). Raises ValueError like ``truncated_counts``, and when a
    cut sample without a continuation has an answer in ``capped_grades``.
    """
    by_key = {(c.problem_id, c.sample_index): c for c in completions}
    comps = []
    for g in capped_grades:
        key = (g.problem_id, g.sample_index)
        c = by_key.get(key)
        if c is None:
            raise ValueError(f"capped grade for problem {key[0]!r} sample {key[1]} has no completion")
        if finished_within(c, cap):
            comps.append(replace(c, token_ids=None, finish_reason="stop"))
            continue
        extra = continuation_tokens.get(key)
        if extra is None and g.vote_key is not None:
            raise ValueError(f"problem {key[0]!r} sample {key[1]} was cut at {cap} tokens and has no forced "
                             "continuation, but its capped grade has an answer; re-run `tts-eval force`")
        comps.append(replace(c, output_tokens=min(c.output_tokens or 0, cap) + (extra or 0), token_ids=None,
                             finish_reason="length"))
    return scaling.problem_counts(capped_grades, comps)


def capped_curve(counts: Sequence[ProblemCounts], method: Method, cap: int | None, *, n_boot: int = 1000,
                 seed: int = 0) -> CappedCurve:
    """The Maj@k curve of ``counts`` labelled as ``method`` at ``cap`` (CIs as in ``scaling.curve``).

    The truncation rate of its points is the share of samples cut at the cap. Raises ValueError like
    ``scaling.curve``.
    """
    points = [replace(p, method=method, cap=cap) for p in scaling.curve(counts, "maj", n_boot=n_boot, seed=seed)]
    return CappedCurve(method, cap, tuple(counts), tuple(points))


def sweep_counts(grades: Sequence[Grade], completions: Sequence[Completion], caps: Sequence[int]
                 ) -> dict[int, list[ProblemCounts]]:
    """A cap sweep's per-cap counts: sample index i holds the sample generated with max_tokens = caps[i].

    Returns {cap: counts of that cap's samples}. The samples were generated at the cap, so nothing is cut
    here; a sample without token counts keeps output_tokens None (the curve then has no token axis).
    Raises ValueError when a sample index has no cap or a cap has no samples.
    """
    keyed: dict[int, tuple[list[Grade], list[Completion]]] = {cap: ([], []) for cap in caps}
    by_key = {(c.problem_id, c.sample_index): c for c in completions}
    for g in grades:
        if not 0 <= g.sample_index < len(caps):
            raise ValueError(f"cap sweep: sample index {g.sample_index} of problem {g.problem_id!r} has no cap "
                             f"(caps {list(caps)})")
        gs, cs = keyed[caps[g.sample_index]]
        gs.append(replace(g, sample_index=0))
        cs.append(replace(by_key[(g.problem_id, g.sample_index)], sample_index=0))
    empty = [cap for cap, (gs, _) in keyed.items() if not gs]
    if empty:
        raise ValueError(f"cap sweep: no samples for cap(s) {empty}")
    return {cap: scaling.problem_counts(gs, cs) for cap, (gs, cs) in keyed.items()}


def per_problem_tokens(counts: Sequence[ProblemCounts]) -> np.ndarray | None:
    """Mean output tokens per sample of each problem, shape (problems,), or None without a token axis."""
    tokens = [pc.mean_tokens for pc in counts]
    if any(t is None for t in tokens):
        return None
    return np.array(tokens, dtype=np.float64)
