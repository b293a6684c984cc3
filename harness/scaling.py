"""Scaling estimators: Maj@k, pass@k and mean@k from stored samples, budget curves, bootstrap CIs.

Pure functions on counts; nothing here reads files or touches a model. The definitions are DESIGN.md's:

* Maj@k is the expected correctness of a majority vote over a uniformly random k-subset of the n stored
  samples (ties credited 1/(number of tied keys) when the correct key is among them; 0 when nobody in the
  subset answered), computed exactly from answer-cluster sizes, never from "the first k samples".
* pass@k is the unbiased 1 - C(n-c, k)/C(n, k); mean@k is c/n for every k.
* The token axis is k x (mean output tokens per sample, averaged over problems).
* CIs are a percentile bootstrap over problems, the stored samples held fixed, seeded.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import numpy as np

from harness.types import BudgetPoint, Completion, CurvePoint, Grade, Method

INTERPOLATION_RULE = (
    "accuracy at a budget B is interpolated linearly in tokens between the neighbouring k points; this is the "
    "exact accuracy of the policy that draws k samples with probability p and k+1 with 1-p, p chosen so the "
    "average cost is exactly B; budgets outside [1 sample, largest k] are not reached (no extrapolation)"
)

CURVE_METHODS: tuple[str, ...] = ("maj", "pass", "mean")

# Counts go up to C(n, n/2); float64 holds them (relative error ~1e-16, every term positive, so no
# cancellation) up to n ~ 1020. Beyond that an exact run would need big integers and be far too slow.
MAJ_MAX_SAMPLES = 1000


@dataclass(frozen=True)
class ProblemCounts:
    """What the estimators need to know about one problem's n stored samples.

    ``cluster_sizes``: answered samples per vote key (any order); ``correct_cluster`` indexes it (None when no
    sample is correct); ``abstain``: samples without an answer; ``mean_tokens``: mean output tokens per sample,
    None when any sample lacks a count; ``truncated``: samples that hit max_tokens.
    """

    problem_id: str
    n: int
    cluster_sizes: tuple[int, ...]
    correct_cluster: int | None
    abstain: int
    n_correct: int
    mean_tokens: float | None
    truncated: int

    def __post_init__(self) -> None:
        where = f"problem {self.problem_id!r}"
        if self.n < 1 or self.abstain < 0 or any(s < 1 for s in self.cluster_sizes):
            raise ValueError(f"{where}: n must be >= 1, abstain >= 0 and every cluster size >= 1")
        if sum(self.cluster_sizes) + self.abstain != self.n:
            raise ValueError(f"{where}: cluster sizes {self.cluster_sizes} + abstain {self.abstain} != n {self.n}")
        if self.correct_cluster is None:
            expected = 0
        elif 0 <= self.correct_cluster < len(self.cluster_sizes):
            expected = self.cluster_sizes[self.correct_cluster]
        else:
            raise ValueError(f"{where}: correct_cluster {self.correct_cluster} is not an index of cluster_sizes")
        if self.n_correct != expected:
            raise ValueError(f"{where}: n_correct {self.n_correct} != size of the correct cluster {expected}")
        if not 0 <= self.truncated <= self.n:
            raise ValueError(f"{where}: truncated must be in [0, n], got {self.truncated}")


def problem_counts(grades: Sequence[Grade], completions: Sequence[Completion]) -> list[ProblemCounts]:
    """Group grades and completions, matched on (problem_id, sample_index), into one ProblemCounts per problem.

    Both sequences may be in any order. Problems keep the order in which ``grades`` first mentions them.
    Raises ValueError when a grade has no completion or vice versa, when a (problem, sample) appears twice,
    when a correct sample has no vote key, or when correct samples do not form exactly one vote key (the
    grader must give equivalent answers the same key and the same verdict).
    """
    by_key: dict[tuple[str, int], Completion] = {}
    for c in completions:
        key = (c.problem_id, c.sample_index)
        if key in by_key:
            raise ValueError(f"completion for problem {key[0]!r} sample {key[1]} appears twice")
        by_key[key] = c
    groups: dict[str, list[tuple[Grade, Completion]]] = {}
    seen: set[tuple[str, int]] = set()
    for g in grades:
        key = (g.problem_id, g.sample_index)
        if key in seen:
            raise ValueError(f"grade for problem {key[0]!r} sample {key[1]} appears twice")
        if key not in by_key:
            raise ValueError(f"grade for problem {key[0]!r} sample {key[1]} has no completion; regrade the run")
        seen.add(key)
        groups.setdefault(g.problem_id, []).append((g, by_key[key]))
    for key in by_key:
        if key not in seen:
            raise ValueError(f"completion for problem {key[0]!r} sample {key[1]} has no grade; grade the run first")
    return [_counts_of(pid, rows) for pid, rows in groups.items()]


def _counts_of(pid: str, rows: list[tuple[Grade, Completion]]) -> ProblemCounts:
    sizes = Counter(g.vote_key for g, _ in rows if g.vote_key is not None)
    if any(g.correct and g.vote_key is None for g, _ in rows):
        raise ValueError(f"problem {pid!r}: a sample graded correct has no vote key; fix the grader's vote keys")
    correct_keys = {g.vote_key for g, _ in rows if g.correct and g.vote_key is not None}
    if len(correct_keys) > 1:
        raise ValueError(f"problem {pid!r}: correct samples have different vote keys {sorted(correct_keys)};"
                         " equivalent answers must share one key")
    n_correct = sum(g.correct for g, _ in rows)
    correct_cluster = None
    if correct_keys:
        key = correct_keys.pop()
        if sizes[key] != n_correct:
            raise ValueError(f"problem {pid!r}: vote key {key!r} has both correct and incorrect samples;"
                             " equivalent answers must get the same verdict")
        correct_cluster = list(sizes).index(key)
    tokens = [c.output_tokens for _, c in rows]
    mean_tokens = None if any(t is None for t in tokens) else float(np.mean(np.array(tokens, dtype=np.float64)))
    return ProblemCounts(
        problem_id=pid, n=len(rows), cluster_sizes=tuple(sizes.values()), correct_cluster=correct_cluster,
        abstain=sum(g.vote_key is None for g, _ in rows), n_correct=n_correct, mean_tokens=mean_tokens,
        truncated=sum(c.finish_reason == "length" for _, c in rows),
    )


# ---------------------------------------------------------------------------------------------- estimators


def maj_at_k(pc: ProblemCounts, k: int) -> float:
    """Exact Maj@k of one problem (see the module docstring). Raises ValueError unless 1 <= k <= pc.n."""
    if not 1 <= k <= pc.n:
        raise ValueError(f"k must be in [1, {pc.n}] for problem {pc.problem_id!r}, got {k}")
    return float(maj_curve(pc)[k - 1])


def maj_curve(pc: ProblemCounts) -> np.ndarray:
    """Exact Maj@k of one problem for every k: a float64 array of shape (pc.n,), entry k-1 = Maj@k.

    Raises ValueError when pc.n > MAJ_MAX_SAMPLES (float64 binomials would overflow).
    """
    if pc.n > MAJ_MAX_SAMPLES:
        raise ValueError(f"exact Maj@k supports at most {MAJ_MAX_SAMPLES} samples per problem; problem"
                         f" {pc.problem_id!r} has {pc.n}: score a subset of its samples")
    if pc.correct_cluster is None:
        return np.zeros(pc.n)
    others = list(pc.cluster_sizes)
    a = others.pop(pc.correct_cluster)
    # The value depends only on the multiset of sizes, so identical problems (all correct, ...) share work.
    return _maj_curve_cached(a, tuple(sorted(others)), pc.abstain, False).copy()


@lru_cache(maxsize=8192)
def _maj_curve_cached(a: int, others: tuple[int, ...], abstain: int, exact: bool) -> np.ndarray:
    """Maj@k for k = 1..n given the correct cluster's size a, the other clusters' sizes and the abstainers.

    Count the k-subsets the correct key wins: fix j >= 1 votes for it (C(a, j) ways); each other cluster
    then gets at most j votes, t of them exactly j (credit 1/(1+t)); abstainers and clusters smaller than j
    can never reach j, so they merge into one unconstrained pool. A DP over the clusters of size >= j, with
    state (votes drawn from other samples, clusters tied at j), serves every k at once.
    ``exact`` counts in Python integers (slow; the tests use it to check the float64 path at n = 64).
    """
    n = a + sum(others) + abstain
    width = n - a + 1  # votes drawn from samples outside the correct cluster: 0..n-a
    comb = _comb_table(n, exact)
    scale = math.lcm(*range(1, n + 2)) if exact else 1  # makes every 1/(1+t) an integer in exact mode
    wins = np.zeros(n + 1, dtype=object if exact else np.float64)
    for j in range(1, a + 1):
        big = [s for s in others if s >= j]
        pool = n - a - sum(big)
        max_ties = min(len(big), (n - a) // j)
        dp = np.zeros((width, max_ties + 1), dtype=comb.dtype)
        dp[: pool + 1, 0] = comb[pool, : pool + 1]
        for s in big:
            dp = _add_cluster(dp, comb, s, j)
        if exact:
            weighted = sum(dp[:, t] * (scale // (t + 1)) for t in range(max_ties + 1))
        else:
            weighted = dp @ (1.0 / np.arange(1, max_ties + 2))
        wins[j : j + width] += comb[a, j] * weighted
    if exact:
        return np.array([float(wins[k] / (scale * comb[n, k])) for k in range(1, n + 1)])
    out: np.ndarray = np.clip(wins[1:] / comb[n, 1:], 0.0, 1.0)
    return out


def _add_cluster(dp: np.ndarray, comb: np.ndarray, size: int, j: int) -> np.ndarray:
    """Fold one other cluster of ``size`` >= j samples into dp[votes, ties]: it takes x < j votes, or x = j
    and adds a tie. The x < j part is a convolution along votes, done as one banded-matrix product."""
    width = dp.shape[0]
    band = np.zeros(width, dtype=comb.dtype)
    band[: min(j, width)] = comb[size, : min(j, width)]
    diff = _diff_index(width)
    conv = np.where(diff >= 0, band[np.clip(diff, 0, None)], 0).astype(comb.dtype)
    out: np.ndarray = conv @ dp
    if j < width and dp.shape[1] > 1:
        out[j:, 1:] += comb[size, j] * dp[: width - j, :-1]
    return out


@lru_cache(maxsize=64)
def _diff_index(width: int) -> np.ndarray:
    return np.subtract.outer(np.arange(width), np.arange(width))


@lru_cache(maxsize=64)
def _comb_table(n: int, exact: bool) -> np.ndarray:
    """C(s, x) for 0 <= s, x <= n (0 where x > s), as Python ints (exact) or float64."""
    table = [[math.comb(s, x) for x in range(n + 1)] for s in range(n + 1)]
    return np.array(table, dtype=object) if exact else np.array(table, dtype=np.float64)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k = 1 - C(n-c, k)/C(n, k), as 1 - prod_{i=n-c+1..n} (1 - k/i) (no huge binomials).

    Raises ValueError unless 0 <= c <= n and 1 <= k <= n.
    """
    _check_nck(n, c, k)
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def mean_at_k(n: int, c: int) -> float:
    """mean@k = c/n: the expected accuracy of one sample (the same for every k). Raises ValueError on bad n, c."""
    _check_nck(n, c, 1)
    return c / n


def _check_nck(n: int, c: int, k: int) -> None:
    if not (n >= 1 and 0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"need n >= 1, 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")


def per_problem_matrix(counts: Sequence[ProblemCounts], method: str, k_max: int) -> np.ndarray:
    """Per-problem values of ``method`` ("maj", "pass" or "mean") for k = 1..k_max: shape (len(counts), k_max).

    Raises ValueError on an unknown method or when k_max exceeds a problem's sample count.
    """
    _check_method(method)
    out = np.empty((len(counts), k_max))
    ks = np.arange(1, k_max + 1, dtype=np.float64)
    for row, pc in enumerate(counts):
        if not 1 <= k_max <= pc.n:
            raise ValueError(f"k_max must be in [1, {pc.n}] (problem {pc.problem_id!r} has {pc.n} samples)")
        if method == "maj":
            out[row] = maj_curve(pc)[:k_max]
        elif method == "mean":
            out[row] = pc.n_correct / pc.n
        else:  # pass@k for every k at once; k > n - c means every k-subset holds a correct sample
            i = np.arange(pc.n - pc.n_correct + 1, pc.n + 1, dtype=np.float64)
            miss = np.prod(np.clip(1.0 - ks[:, None] / i[None, :], 0.0, None), axis=1)
            out[row] = 1.0 - miss
    return out


def _check_method(method: str) -> None:
    if method not in CURVE_METHODS:
        raise ValueError(f"method must be one of {CURVE_METHODS}, got {method!r}")


# ---------------------------------------------------------------------------------------- curves and CIs


def curve(counts: Sequence[ProblemCounts], method: str = "maj", *, n_boot: int = 1000, seed: int = 0,
          confidence: float = 0.95) -> list[CurvePoint]:
    """The scaling curve of ``method``: one CurvePoint per k = 1..n_min (the smallest sample count).

    Accuracy is the mean over problems of the per-problem estimate (problems with more samples use all of
    them). CIs: percentile bootstrap over problems, ``n_boot`` resamples from ``default_rng(seed)``.
    ``tokens_per_problem`` is k x the mean tokens per sample (None without a token axis); truncation and
    no-answer rates are fractions of all stored samples, the same at every k; ``cap`` is None.
    Raises ValueError on no problems, an unknown method or bad bootstrap settings.
    """
    k_max, weights = _setup(counts, n_boot, seed, confidence)
    values = per_problem_matrix(counts, method, k_max)
    acc = values.mean(axis=0)
    low, high = _percentiles(weights @ values / len(counts), confidence)
    mean_tok = _mean_tokens(counts)
    total = sum(pc.n for pc in counts)
    trunc = sum(pc.truncated for pc in counts) / total
    no_answer = sum(pc.abstain for pc in counts) / total
    method_lit: Method = method  # type: ignore[assignment]  # checked by per_problem_matrix
    return [
        CurvePoint(method=method_lit, k=k, cap=None,
                   tokens_per_problem=None if mean_tok is None else k * mean_tok,
                   accuracy=_unit(acc[k - 1]), ci_low=_unit(low[k - 1]), ci_high=_unit(high[k - 1]),
                   truncation_rate=trunc, no_answer_rate=no_answer)
        for k in range(1, k_max + 1)
    ]


def accuracy_at_budgets(counts: Sequence[ProblemCounts], budgets: Sequence[float], method: str = "maj", *,
                        n_boot: int = 1000, seed: int = 0, confidence: float = 0.95) -> list[BudgetPoint]:
    """Accuracy of ``method`` at each budget (average output tokens per problem), one BudgetPoint per budget.

    Rule (INTERPOLATION_RULE): with m the mean tokens per sample, k samples cost k*m, so a budget B sits at
    k* = B/m; between the k points k = floor(k*) and k+1 the accuracy is p*A(k) + (1-p)*A(k+1) with
    p = k+1-k*. That is not a modelling guess: it is exactly the expected accuracy of the policy that, per
    problem, draws k samples with probability p and k+1 with 1-p, whose average cost is exactly B. Budgets
    below one sample or above n_min samples are not reached (accuracy None, a note says why); nothing is
    extrapolated. The CI resamples problems and redoes the whole interpolation, tokens included; a resample
    whose B falls outside its own curve is clamped to the curve's end, and the note says how many did.
    Raises ValueError like ``curve``, and on a budget that is not finite.
    """
    k_max, weights = _setup(counts, n_boot, seed, confidence)
    mean_tok = _mean_tokens(counts)
    method_lit: Method = method  # type: ignore[assignment]
    if mean_tok is None or mean_tok <= 0:
        _check_method(method)
        note = ("no token axis: some samples have no output token count" if mean_tok is None
                else "no token axis: mean output tokens per sample is 0")
        return [BudgetPoint(float(b), method_lit, False, None, None, None, note=note) for b in budgets]
    values = per_problem_matrix(counts, method, k_max)
    tokens = np.array([pc.mean_tokens for pc in counts], dtype=np.float64)
    boot_acc = weights @ values / len(counts)  # (n_boot, k_max)
    boot_tok = weights @ tokens / len(counts)  # (n_boot,)
    point_acc = values.mean(axis=0)[None, :]
    out = []
    for b in budgets:
        if not math.isfinite(b):
            raise ValueError(f"budget must be a finite number of tokens, got {b}")
        k_star = float(b) / mean_tok
        if abs(k_star - round(k_star)) < 1e-9:  # B = k*m up to float rounding is the k point itself
            k_star = float(round(k_star))
        if k_star < 1:
            out.append(BudgetPoint(float(b), method_lit, False, None, None, None,
                                   note=f"below one sample ({mean_tok:.0f} tokens)"))
            continue
        if k_star > k_max:
            out.append(BudgetPoint(float(b), method_lit, False, None, None, None,
                                   note=f"not reached: needs more than k={k_max} samples"
                                        f" (max {k_max * mean_tok:.0f} tokens)"))
            continue
        acc, k_low, k_high = _interpolate(point_acc, np.array([k_star]))
        with np.errstate(divide="ignore"):
            boot_k = float(b) / boot_tok
        clamped = int(np.sum((boot_k < 1) | (boot_k > k_max)))
        low, high = _percentiles(_interpolate(boot_acc, boot_k)[0], confidence)
        note = f"CI: {clamped} of {len(boot_k)} resamples fell outside their curve and were clamped" if clamped else ""
        out.append(BudgetPoint(float(b), method_lit, True, _unit(acc[0]), _unit(low), _unit(high),
                               k_low=int(k_low[0]), k_high=int(k_high[0]), note=note))
    return out


def _interpolate(acc: np.ndarray, k_star: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise linear interpolation of acc[:, k-1] at real k_star (clamped to [1, k_max]).

    Returns (values, k_low, k_high); k_low == k_high when k_star is a whole k.
    """
    k_max = acc.shape[1]
    ks = np.clip(k_star, 1.0, float(k_max))
    k_low = np.floor(ks).astype(int)
    frac = ks - k_low
    k_high = np.where(frac > 0, np.minimum(k_low + 1, k_max), k_low)
    rows = np.arange(acc.shape[0])
    values = (1.0 - frac) * acc[rows, k_low - 1] + frac * acc[rows, k_high - 1]
    return values, k_low, k_high


def _setup(counts: Sequence[ProblemCounts], n_boot: int, seed: int, confidence: float) -> tuple[int, np.ndarray]:
    """Validate the shared arguments; return n_min and the bootstrap weights (n_boot, n_problems)."""
    if not counts:
        raise ValueError("no problems to score; grade some samples first")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return min(pc.n for pc in counts), _bootstrap_weights(len(counts), n_boot, seed)


def _bootstrap_weights(n_problems: int, n_boot: int, seed: int) -> np.ndarray:
    """How often each problem is drawn in each resample (rows sum to n_problems), so that a resampled mean is
    one matrix product instead of an (n_boot, n_problems, k) gather."""
    idx = np.random.default_rng(seed).integers(0, n_problems, size=(n_boot, n_problems))
    flat = (idx + n_problems * np.arange(n_boot)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * n_problems).reshape(n_boot, n_problems).astype(np.float64)


def _percentiles(samples: np.ndarray, confidence: float) -> tuple[Any, Any]:
    alpha = 1.0 - confidence
    low, high = np.quantile(samples, [alpha / 2, 1 - alpha / 2], axis=0)
    return low, high


def _mean_tokens(counts: Sequence[ProblemCounts]) -> float | None:
    tokens = [pc.mean_tokens for pc in counts]
    if any(t is None for t in tokens):
        return None
    return float(np.mean(np.array(tokens, dtype=np.float64)))


def _unit(x: Any) -> float:
    """A fraction as a plain float, with float rounding outside [0, 1] removed."""
    return float(min(1.0, max(0.0, float(x))))


# ---------------------------------------------------------------------------------------------- budgets

_BUDGET_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([kK]?)")


def parse_budget(text: str) -> int:
    """Parse a budget in average output tokens per problem: "2048", "8K", "1.5k" -> 1500.

    "k" means 1000 (SI), not 1024: budgets are average token counts, not memory sizes, and O1-Journey's
    budgets are plain numbers. Returns a positive int. Raises ValueError on anything else, including budgets
    that are not a whole number of tokens ("1.0005k") or are 0.
    """
    match = _BUDGET_RE.fullmatch(text.strip())
    error = ValueError(f"budget must look like 2k, 1500 or 1.5k, got {text!r}")
    if match is None:
        raise error
    try:
        value = Decimal(match.group(1)) * (1000 if match.group(2) else 1)
    except InvalidOperation:
        raise error from None
    if value != value.to_integral_value() or value <= 0:
        raise error
    return int(value)


def parse_budgets(text: str) -> list[int]:
    """Parse a comma-separated list of budgets ("1k,2k,4k" -> [1000, 2000, 4000]), in the order given.

    Raises ValueError (from ``parse_budget``) on an empty list or a bad item.
    """
    return [parse_budget(item) for item in text.split(",")]


# ------------------------------------------------------------------------------ per-problem values at a budget


def per_problem_at_budget(counts: Sequence[ProblemCounts], budget: float, method: str = "maj") -> np.ndarray | None:
    """Per-problem accuracy of ``method`` at ``budget`` (average output tokens per problem), shape (len(counts),).

    The same rule as ``accuracy_at_budgets`` (INTERPOLATION_RULE), applied to each problem's own values: with m
    the run's mean tokens per sample (over these ``counts``) and k* = budget/m, entry i is
    p*V_i(k) + (1-p)*V_i(k+1) between the neighbouring k points (p = k+1-k*), so the mean of the returned array
    is exactly ``accuracy_at_budgets(counts, [budget], method)[0].accuracy``. The k mix is a property of the whole
    run, so it is the same for every problem. Returns None when the budget is not reached: no token axis (a
    sample lacks a count, or the mean is 0), below one sample, or above n_min samples. Raises ValueError on no
    problems, an unknown method or a budget that is not finite.
    """
    if not counts:
        raise ValueError("no problems to score; grade some samples first")
    _check_method(method)
    if not math.isfinite(budget):
        raise ValueError(f"budget must be a finite number of tokens, got {budget}")
    mean_tok = _mean_tokens(counts)
    if mean_tok is None or mean_tok <= 0:
        return None
    k_max = min(pc.n for pc in counts)
    k_star = float(budget) / mean_tok
    if abs(k_star - round(k_star)) < 1e-9:  # as in accuracy_at_budgets: B = k*m up to rounding is the k point
        k_star = float(round(k_star))
    if k_star < 1 or k_star > k_max:
        return None
    values = per_problem_matrix(counts, method, k_max)
    return _interpolate(values, np.full(len(counts), k_star))[0]
