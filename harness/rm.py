"""RM@k: majority voting where each sample's vote is weighted by a stored per-sample score (off by default).

The O1-Journey taxonomy separates Maj@k (plain votes) from votes guided by a reward model. Here a reward
model's scores are data stored with the run (``scores`` table, e.g. ``pred_score`` imported from Qwen2.5-Math's
RM@8 outputs), never computed by tts-eval, and the tokens on the x axis do not include the reward model's cost.

Definition (mirrors Maj@k): over a uniformly random k-subset of the n stored samples, each answered sample adds
its weight to its vote key; the key(s) with the largest total win, ties (totals equal to 1e-9 relative) credited
1/(number tied) when the correct key is among them; a subset where nobody answered scores 0. Weights must be
>= 0: ``raw`` uses the scores as they are, ``sigmoid`` maps a reward model's logit s to 1/(1+e^-s). With equal
weights RM@k is exactly Maj@k. Computed by enumerating every k-subset when there are at most ``EXACT_SUBSETS``
of them, else as the mean over ``MC_SUBSETS`` random k-subsets (an unbiased estimate; its largest standard
error is reported).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np

from harness.scaling import _bootstrap_weights, _percentiles  # the same resampling as every other curve
from harness.types import Completion, CurvePoint, Grade

WEIGHTINGS: tuple[str, ...] = ("raw", "sigmoid")
EXACT_SUBSETS = 2000
# Random k-subsets per problem where exact enumeration would cost more (the estimate's error is reported).
MC_SUBSETS = 1000
_TIE_RTOL = 1e-9


def weights_of(scores: Sequence[float], weighting: str) -> np.ndarray:
    """Vote weights from scores: ``raw`` (must be >= 0) or ``sigmoid``. Raises ValueError otherwise."""
    values = np.asarray(scores, dtype=np.float64)
    if weighting == "sigmoid":
        return 1.0 / (1.0 + np.exp(-values))
    if weighting != "raw":
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if values.size and values.min() < 0:
        raise ValueError(f"raw vote weights must be >= 0, got {values.min()}; use weighting 'sigmoid' for "
                         "reward-model logits")
    return values


def rm_problem_curve(keys: Sequence[str | None], correct_key: str | None, weights: np.ndarray, k_max: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """RM@k of one problem for k = 1..k_max, and the standard error of each value (0 where exact).

    ``keys[i]``: sample i's vote key (None: no answer); ``correct_key``: the gold's key (None: nobody is
    right); ``weights[i]`` >= 0. Raises ValueError on mismatched lengths or k_max outside [1, n].
    """
    n = len(keys)
    if len(weights) != n or not 1 <= k_max <= n:
        raise ValueError(f"need len(weights) == len(keys) and 1 <= k_max <= {n}")
    values, errors = np.zeros(k_max), np.zeros(k_max)
    if correct_key is None or correct_key not in keys:
        return values, errors
    labels = sorted({k for k in keys if k is not None})
    member = np.zeros((n, len(labels)))
    for i, key in enumerate(keys):
        if key is not None:
            member[i, labels.index(key)] = 1.0
    votes = member * np.asarray(weights, dtype=np.float64)[:, None]
    right = labels.index(correct_key)
    sampled = [k for k in range(1, k_max + 1) if math.comb(n, k) > EXACT_SUBSETS]
    for k in range(1, k_max + 1):
        if k not in sampled:
            chosen = _all_subsets(n, k)
            values[k - 1] = _credit(chosen @ member, chosen @ votes, right).mean()
    if sampled:
        # The first k of a uniformly random permutation are a uniformly random k-subset, so one set of
        # permutations serves every k: running sums along each permutation are the k-subset totals.
        order = rng.random((MC_SUBSETS, n)).argsort(axis=1)
        at = np.array(sampled) - 1
        members = np.cumsum(member[order], axis=1)[:, at]  # (subsets, sampled ks, keys)
        totals = np.cumsum(votes[order], axis=1)[:, at]
        credit = _credit(members, totals, right)  # (subsets, sampled ks)
        values[at] = credit.mean(axis=0)
        errors[at] = credit.std(axis=0, ddof=1) / math.sqrt(MC_SUBSETS)
    return values, errors


def _all_subsets(n: int, k: int) -> np.ndarray:
    """Indicator rows of every k-subset of range(n), shape (C(n, k), n)."""
    rows = np.zeros((math.comb(n, k), n))
    for r, subset in enumerate(itertools.combinations(range(n), k)):
        rows[r, list(subset)] = 1.0
    return rows


def _credit(present_counts: np.ndarray, totals: np.ndarray, right: int) -> np.ndarray:
    """Credit of each subset given its per-key sample counts and vote totals, both (..., keys).

    Only keys with a sample in the subset compete (a key whose samples all weigh 0 can still tie); a subset
    where nobody answered gets 0.
    """
    present = present_counts > 0
    masked = np.where(present, totals, -np.inf)
    top = masked.max(axis=-1, keepdims=True)
    scale = np.abs(np.where(np.isfinite(top), top, 0.0))
    tied = present & (masked >= top - _TIE_RTOL * scale)
    counted = tied.sum(axis=-1)
    return np.where(counted > 0, tied[..., right] / np.maximum(counted, 1), 0.0)


def rm_curve(grades: Sequence[Grade], completions: Sequence[Completion], scores: Mapping[tuple[str, int], float],
             *, weighting: str = "raw", n_boot: int = 1000, seed: int = 0) -> tuple[list[CurvePoint], float]:
    """The RM@k curve of a run (k = 1..n_min), CIs as for Maj@k; returns (points, largest standard error).

    ``scores`` by (problem id, sample index); every answered sample needs one. Tokens per problem are k x the
    mean output tokens (None without counts). Raises ValueError on a missing score, a bad weighting, negative
    raw weights, or rows that do not match.
    """
    by_problem: dict[str, list[Grade]] = {}
    for g in grades:
        by_problem.setdefault(g.problem_id, []).append(g)
    tokens = {(c.problem_id, c.sample_index): c.output_tokens for c in completions}
    if set(tokens) != {(g.problem_id, g.sample_index) for g in grades}:
        raise ValueError("grades and completions do not cover the same samples; grade the run first")
    k_max = min(len(gs) for gs in by_problem.values())
    rng = np.random.default_rng(seed)
    rows, errs, mean_tokens = [], [], []
    for pid, gs in by_problem.items():
        missing = [g.sample_index for g in gs if g.vote_key is not None and (pid, g.sample_index) not in scores]
        if missing:
            raise ValueError(f"problem {pid!r} sample {missing[0]} has an answer but no score; store the scores "
                             "of every sample (or leave RM@k off)")
        w = weights_of([scores.get((pid, g.sample_index), 0.0) for g in gs], weighting)
        correct = next((g.vote_key for g in gs if g.correct), None)
        values, se = rm_problem_curve([g.vote_key for g in gs], correct, w, k_max, rng)
        rows.append(values)
        errs.append(se)
        counted = [tokens[(pid, g.sample_index)] for g in gs]
        mean_tokens.append(None if any(t is None for t in counted) else float(np.mean(counted)))  # type: ignore[arg-type]
    matrix = np.vstack(rows)
    weights = _bootstrap_weights(len(rows), n_boot, seed)
    low, high = _percentiles(weights @ matrix / len(rows), 0.95)
    acc = matrix.mean(axis=0)
    tok = None if any(t is None for t in mean_tokens) else float(np.mean(mean_tokens))  # type: ignore[arg-type]
    n_all = len(grades)
    no_answer = sum(g.vote_key is None for g in grades) / n_all
    points = [CurvePoint("rm", k, None, None if tok is None else k * tok, _unit(acc[k - 1]), _unit(low[k - 1]),
                         _unit(high[k - 1]), no_answer_rate=no_answer) for k in range(1, k_max + 1)]
    # The error of the mean over problems of independent per-problem estimates.
    se_mean = np.sqrt((np.vstack(errs) ** 2).sum(axis=0)) / len(rows)
    return points, float(se_mean.max())


def _unit(x: float) -> float:
    return float(min(1.0, max(0.0, x)))
