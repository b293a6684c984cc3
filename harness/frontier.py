"""The frontier over (cap, k), the winning mix at a budget, and the matched-budget table against baselines.

Every (cap, k) point is a policy: draw k samples, each allowed at most ``cap`` tokens (uncapped points too),
and majority-vote. A per-problem coin that picks policy A with probability 1 - s and B with s costs and
scores exactly the s-weighted average of the two (the rule ``scaling.INTERPOLATION_RULE`` uses between k and
k+1). So the accuracy reachable at each average cost is the **upper concave envelope** of the points, cut at
its highest point (spending more tokens never has to lower accuracy), and at a budget between two vertices the
winning policy is that mix of the two. Budgets below the cheapest point or above the most expensive measured
point are "not reached"; nothing is extrapolated.

The frontier picks the best of many noisy points, so its accuracies lean optimistic; the CI at a budget
resamples problems for the chosen mix and does not redo the choice (stated in the report).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness import scaling
from harness.baselines import Baseline
from harness.scaling import ProblemCounts, _bootstrap_weights, _percentiles  # shared bootstrap, same seeds
from harness.sequential import CappedCurve
from harness.types import CurvePoint, FrontierBudget, FrontierPoint, MatchedBudget

FRONTIER_RULE = (
    "frontier = upper concave envelope of every (cap, k) Maj@k point (uncapped, truncated and forced curves), up to "
    "its most accurate point; at a budget between two vertices the winning policy draws, per problem, the cheaper "
    "vertex's policy with probability 1-s and the dearer one's with s so that the average cost is exactly the "
    "budget; CIs resample problems for that chosen mix (the choice itself is not resampled, so the frontier leans "
    "optimistic)"
)
_FRONTIER_METHODS = ("maj", "truncated", "forced")


@dataclass(frozen=True)
class _Candidate:
    point: CurvePoint
    curve: CappedCurve


def frontier(curves: Sequence[CappedCurve]) -> list[FrontierPoint]:
    """The frontier vertices, cheapest first (accuracy rising), from the points of ``curves``.

    Only Maj-style curves ("maj", "truncated", "forced") with token counts take part. Returns [] when no point
    has a positive token count. Raises nothing.
    """
    return [_to_frontier(c.point) for c in _hull(curves)]


def _to_frontier(p: CurvePoint) -> FrontierPoint:
    return FrontierPoint(method=p.method, cap=p.cap, k=p.k, tokens_per_problem=float(p.tokens_per_problem or 0.0),
                         accuracy=p.accuracy, ci_low=p.ci_low, ci_high=p.ci_high)


def _candidates(curves: Sequence[CappedCurve]) -> list[_Candidate]:
    return [_Candidate(p, c) for c in curves if c.method in _FRONTIER_METHODS for p in c.points
            if p.tokens_per_problem is not None and p.tokens_per_problem > 0]


def _hull(curves: Sequence[CappedCurve]) -> list[_Candidate]:
    """Upper concave envelope (Andrew's monotone chain, upper half), cut after its first highest vertex."""
    # Cheapest first; at equal cost the more accurate first, so that the others at that cost are dropped.
    cands = sorted(_candidates(curves), key=lambda c: (c.point.tokens_per_problem, -c.point.accuracy))
    hull: list[_Candidate] = []
    for cand in cands:
        if hull and cand.point.tokens_per_problem == hull[-1].point.tokens_per_problem:
            continue
        while len(hull) >= 2 and _cross(hull[-2].point, hull[-1].point, cand.point) >= 0:
            hull.pop()  # the middle vertex lies on or under the chord: a mix of its neighbours does as well
        hull.append(cand)
    if not hull:
        return []
    best = max(range(len(hull)), key=lambda i: (hull[i].point.accuracy, -i))
    return hull[: best + 1]


def _cross(a: CurvePoint, b: CurvePoint, c: CurvePoint) -> float:
    ax, bx, cx = (float(p.tokens_per_problem or 0) for p in (a, b, c))
    return (bx - ax) * (c.accuracy - a.accuracy) - (b.accuracy - a.accuracy) * (cx - ax)


def frontier_at_budgets(curves: Sequence[CappedCurve], budgets: Sequence[float], *, n_boot: int = 1000,
                        seed: int = 0, confidence: float = 0.95) -> list[FrontierBudget]:
    """The winning mix and its accuracy at each budget (average output tokens per problem), with a CI.

    Takes the curves (all over the same problems, in the same order), the budgets and the bootstrap settings
    (the same seed as the curves gives the same resamples). Returns one FrontierBudget per budget. Raises
    ValueError on a budget that is not finite or curves over different problems.
    """
    hull = _hull(curves)
    cands = _candidates(curves)
    out = []
    for b in budgets:
        if not np.isfinite(b):
            raise ValueError(f"budget must be a finite number of tokens, got {b}")
        out.append(_mix_at(hull, cands, float(b), n_boot, seed, confidence))
    return out


def _mix_at(hull: list[_Candidate], cands: list[_Candidate], budget: float, n_boot: int, seed: int,
            confidence: float) -> FrontierBudget:
    if not hull:
        return FrontierBudget(budget, False, None, None, None, note="no token axis: the run has no token counts")
    xs = [float(c.point.tokens_per_problem or 0) for c in hull]
    dearest = max(float(c.point.tokens_per_problem or 0) for c in cands)
    if budget < xs[0] * (1 - 1e-12):
        return FrontierBudget(budget, False, None, None, None,
                              note=f"below the cheapest policy ({xs[0]:.0f} tokens: {_name(hull[0].point)})")
    if budget > dearest * (1 + 1e-12):
        return FrontierBudget(budget, False, None, None, None,
                              note=f"not reached: the most expensive measured policy costs {dearest:.0f} tokens")
    if budget >= xs[-1]:
        low = high = hull[-1]
        share = 0.0
        note = (f"the most accurate policy costs {xs[-1]:.0f} tokens, less than the budget"
                if budget > xs[-1] * (1 + 1e-12) else "")
    else:
        i = max(j for j in range(len(xs)) if xs[j] <= budget)
        low, high = hull[i], hull[i + 1]
        share = (budget - xs[i]) / (xs[i + 1] - xs[i])
        if share <= 1e-12:  # a vertex costs exactly the budget
            high, share = low, 0.0
        note = ""
    acc = (1 - share) * low.point.accuracy + share * high.point.accuracy
    ci_low, ci_high = _mix_ci(low, high, share, n_boot, seed, confidence)
    return FrontierBudget(budget, True, _unit(acc), _unit(ci_low), _unit(ci_high), low=_to_frontier(low.point),
                          high=_to_frontier(high.point), share_high=share, note=note)


def _name(p: CurvePoint) -> str:
    return f"k={p.k}, " + ("uncapped" if p.cap is None else f"cap {p.cap} ({p.method})")


def _values(cand: _Candidate) -> np.ndarray:
    k_max = min(pc.n for pc in cand.curve.counts)
    return scaling.per_problem_matrix(cand.curve.counts, "maj", k_max)[:, cand.point.k - 1]


def _mix_ci(low: _Candidate, high: _Candidate, share: float, n_boot: int, seed: int,
            confidence: float) -> tuple[float, float]:
    ids_low = [pc.problem_id for pc in low.curve.counts]
    if ids_low != [pc.problem_id for pc in high.curve.counts]:
        raise ValueError("frontier curves cover different problems; analyse one run at a time")
    values = (1 - share) * _values(low) + share * _values(high)
    weights = _bootstrap_weights(len(values), n_boot, seed)
    lo, hi = _percentiles(weights @ values / len(values), confidence)
    return float(lo), float(hi)


def _unit(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


# -------------------------------------------------------------------------------------- matched budgets


def matched_table(baselines: Sequence[Baseline], benchmark: str, curves: Sequence[CappedCurve],
                  maj_counts: Sequence[ProblemCounts], *, sweep_points: Sequence[CurvePoint] = (),
                  n_boot: int = 1000, seed: int = 0) -> list[MatchedBudget]:
    """The headline table: for each baseline of ``benchmark`` with a token count, this run at those tokens.

    The run's accuracy is read from the frontier when the run has capped curves with token counts (curve
    "frontier"), else from the uncapped Maj@k budget curve (curve "maj", ``scaling.accuracy_at_budgets``). A
    cap sweep without token counts (``sweep_points``: one point per cap) gives a lower bound instead: the
    accuracy at the largest cap not above the baseline's tokens is reachable within them (curve
    "cap sweep (lower bound)"). Returns rows in the baselines' order. Raises nothing on an empty input.
    """
    rows = [b for b in baselines if b.benchmark.lower() == benchmark.lower() and b.avg_output_tokens]
    if not rows:
        return []
    tokens = [float(b.avg_output_tokens or 0) for b in rows]
    capped = [c for c in curves if c.cap is not None and any(p.tokens_per_problem for p in c.points)]
    out: list[MatchedBudget] = []
    if sweep_points and not capped:
        for b, t in zip(rows, tokens):
            out.append(_sweep_row(b, t, sweep_points))
        return out
    if capped:
        for b, t, fb in zip(rows, tokens, frontier_at_budgets(curves, tokens, n_boot=n_boot, seed=seed)):
            out.append(MatchedBudget(b.series, t, b.accuracy, fb.accuracy, fb.ci_low, fb.ci_high, fb.reached,
                                     "frontier", fb.note or _mix_note(fb)))
        return out
    for b, t, bp in zip(rows, tokens, scaling.accuracy_at_budgets(maj_counts, tokens, "maj", n_boot=n_boot, seed=seed)):
        between = f"k={bp.k_low}\u2013{bp.k_high}" if bp.reached and bp.k_low != bp.k_high else (
            f"k={bp.k_low}" if bp.reached else "")
        out.append(MatchedBudget(b.series, t, b.accuracy, bp.accuracy, bp.ci_low, bp.ci_high, bp.reached, "maj",
                                 "; ".join(x for x in (between, bp.note) if x)))
    return out


def _mix_note(fb: FrontierBudget) -> str:
    if fb.low is None or fb.high is None:
        return ""
    if fb.low == fb.high or not fb.share_high:
        return _fp_name(fb.low)
    share = fb.share_high or 0.0
    return f"{100 * (1 - share):.0f}% {_fp_name(fb.low)} + {100 * share:.0f}% {_fp_name(fb.high)}"


def _fp_name(p: FrontierPoint) -> str:
    return f"k={p.k} " + ("uncapped" if p.cap is None else f"at cap {p.cap} ({p.method})")


def mix_description(fb: FrontierBudget) -> str:
    """A short text naming the winning mix of a FrontierBudget ("" when not reached)."""
    return _mix_note(fb)


def _sweep_row(b: Baseline, tokens: float, points: Sequence[CurvePoint]) -> MatchedBudget:
    below = [p for p in points if p.cap is not None and p.cap <= tokens]
    if not below:
        smallest = min((p.cap for p in points if p.cap is not None), default=None)
        return MatchedBudget(b.series, tokens, b.accuracy, None, None, None, False, "cap sweep (lower bound)",
                             f"not reached: the smallest cap ({smallest}) exceeds {tokens:.0f} tokens")
    p = max(below, key=lambda q: q.cap or 0)
    return MatchedBudget(b.series, tokens, b.accuracy, p.accuracy, p.ci_low, p.ci_high, True,
                         "cap sweep (lower bound)",
                         f"cap {p.cap}: the run spends at most {p.cap} tokens per problem there (no token counts), "
                         "so this accuracy is reachable within the baseline's tokens")
