"""The sequential axis and the frontier: truncated and forced counts, the upper envelope against brute force,
the winning mix at a budget, and the matched-budget table."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import frontier as fr
from harness import scaling, sequential
from harness.baselines import Baseline
from harness.sequential import CappedCurve
from harness.types import Completion, CurvePoint, Grade


def rows(pid: str, spec: Sequence[tuple[str | None, bool, int, str | None]]) -> tuple[list[Grade], list[Completion]]:
    """spec: (vote key, correct, output tokens, finish reason) per sample."""
    grades, comps = [], []
    for i, (key, ok, tokens, finish) in enumerate(spec):
        grades.append(Grade(pid, i, key, key, ok, "ok" if key is not None else "no_answer"))
        comps.append(Completion(pid, i, i, "t", tokens, finish))  # type: ignore[arg-type]
    return grades, comps


# problem a: 4 samples; b: 4 samples
GA, CA = rows("a", [("7", True, 100, "stop"), ("7", True, 300, "stop"), ("5", False, 150, "stop"),
                    (None, False, 400, "length")])
GB, CB = rows("b", [("1", False, 50, "stop"), ("2", True, 500, "stop"), ("2", True, 200, None),
                    ("1", False, 250, "stop")])
GRADES, COMPS = GA + GB, CA + CB


def test_truncated_counts_exact() -> None:
    a, b = sequential.truncated_counts(GRADES, COMPS, 200)
    # a: samples 0 and 2 finished within 200 (keys 7, 5); 1 (300 > 200) and 3 (length) abstain
    assert (a.n, sorted(a.cluster_sizes), a.abstain, a.n_correct, a.truncated) == (4, [1, 1], 2, 1, 2)
    assert a.mean_tokens == pytest.approx((100 + 200 + 150 + 200) / 4)
    # b: 0 (50) and 2 (200, finish not stated: counts as finished) keep answers; 1 and 3 cut
    assert (sorted(b.cluster_sizes), b.abstain, b.n_correct, b.truncated) == ([1, 1], 2, 1, 2)
    assert b.mean_tokens == pytest.approx((50 + 200 + 200 + 200) / 4)
    # a cap at or above every length keeps every finished answer; "length" samples still abstain
    a, b = sequential.truncated_counts(GRADES, COMPS, 10_000)
    assert (a.abstain, a.n_correct, b.abstain, b.n_correct) == (1, 2, 0, 2)


def test_truncated_needs_tokens_and_a_positive_cap() -> None:
    g, c = rows("x", [("1", True, None, "stop")])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="token count"):
        sequential.truncated_counts(g, c, 10)
    with pytest.raises(ValueError, match="cap must be"):
        sequential.truncated_counts(GRADES, COMPS, 0)


def test_forced_counts_add_continuation_tokens() -> None:
    # at cap 200 the cut samples answer through their continuations (capped grades), costing 200 + extra
    capped = [GA[0], Grade("a", 1, "7", "7", True, "ok"), GA[2], Grade("a", 3, "9", "9", False, "ok"),
              GB[0], Grade("b", 1, None, None, False, "no_answer"), GB[2], Grade("b", 3, "2", "2", True, "ok")]
    extra = {("a", 1): 5, ("a", 3): 7, ("b", 3): 3}
    a, b = sequential.forced_counts(capped, COMPS, 200, extra)
    assert (sorted(a.cluster_sizes), a.n_correct, a.abstain, a.truncated) == ([1, 1, 2], 2, 0, 2)
    assert a.mean_tokens == pytest.approx((100 + 205 + 150 + 207) / 4)
    assert (sorted(b.cluster_sizes), b.n_correct, b.abstain) == ([1, 2], 2, 1)
    assert b.mean_tokens == pytest.approx((50 + 200 + 200 + 203) / 4)
    bad = capped[:5] + [Grade("b", 1, "2", "2", True, "ok")] + capped[6:]
    with pytest.raises(ValueError, match="no forced continuation"):
        sequential.forced_counts(bad, COMPS, 200, extra)


def test_sweep_counts_score_each_cap_alone() -> None:
    per_cap = sequential.sweep_counts(GRADES, COMPS, [128, 256, 512, 1024])
    assert sorted(per_cap) == [128, 256, 512, 1024]
    assert [pc.n_correct for pc in per_cap[256]] == [1, 1]  # sample index 1 of a and b
    assert [pc.abstain for pc in per_cap[1024]] == [1, 0]
    with pytest.raises(ValueError, match="has no cap"):
        sequential.sweep_counts(GRADES, COMPS, [128, 256])


def test_parse_caps_sorted_unique() -> None:
    assert sequential.parse_caps("4k,1k,2k,1000") == [1000, 2000, 4000]
    with pytest.raises(ValueError):
        sequential.parse_caps("1k,,2k")


# ------------------------------------------------------------------------------------------------ frontier


def curve_of(points: Sequence[tuple[float, float]], cap: int | None = None) -> CappedCurve:
    """A hand-made curve: point k = (tokens, accuracy); counts are not needed for the envelope itself."""
    pts = tuple(CurvePoint("maj" if cap is None else "truncated", k, cap, t, a, a, a)
                for k, (t, a) in enumerate(points, start=1))
    return CappedCurve(pts[0].method, cap, (), pts)


def brute_best(points: Sequence[tuple[float, float]], budget: float) -> float:
    """Best accuracy at average cost <= budget over mixes of two policies (the definition, by enumeration)."""
    best = max((a for t, a in points if t <= budget), default=-1.0)
    for (t1, a1), (t2, a2) in itertools.combinations(points, 2):
        lo, hi = sorted([(t1, a1), (t2, a2)])
        if lo[0] < budget < hi[0]:
            s = (budget - lo[0]) / (hi[0] - lo[0])
            best = max(best, (1 - s) * lo[1] + s * hi[1])
    return best


def test_frontier_of_a_known_case() -> None:
    maj = curve_of([(1000, 0.30), (2000, 0.30), (3000, 0.42), (4000, 0.44)])  # Maj@2 == Maj@1: not concave
    cap = curve_of([(400, 0.10), (800, 0.28)], cap=512)
    got = [(p.method, p.cap, p.k, p.tokens_per_problem, p.accuracy) for p in fr.frontier([maj, cap])]
    # k=2 lies under the chord from k=1 to k=3, and the capped k=1 point under the one from 400 to 1000
    assert got == [("truncated", 512, 1, 400, 0.10), ("truncated", 512, 2, 800, 0.28), ("maj", None, 1, 1000, 0.30),
                   ("maj", None, 3, 3000, 0.42), ("maj", None, 4, 4000, 0.44)]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(0, 20)), min_size=1, max_size=12),
       st.floats(1, 40))
def test_frontier_matches_brute_force(raw: list[tuple[int, int]], budget: float) -> None:
    points = [(100.0 * t, a / 20) for t, a in raw]
    curves = [curve_of(points[i : i + 3], cap=i + 1) for i in range(0, len(points), 3)]
    hull = fr.frontier(curves)
    xs = [p.tokens_per_problem for p in hull]
    assert xs == sorted(xs) and [p.accuracy for p in hull] == sorted(p.accuracy for p in hull)
    # every point lies on or under the envelope, and every vertex is one of the points
    for t, a in points:
        if t >= xs[0]:
            assert a <= np.interp(t, xs, [p.accuracy for p in hull]) + 1e-12
    assert {(p.tokens_per_problem, p.accuracy) for p in hull} <= set(points)
    b = 100.0 * budget
    value = _envelope_value(curves, b)
    if b < min(t for t, _ in points) or b > max(t for t, _ in points):
        assert value is None
    else:
        assert value == pytest.approx(brute_best(points, b), abs=1e-12)


def _envelope_value(curves: list[CappedCurve], budget: float) -> float | None:
    """The frontier's accuracy at a budget, without the CI (which needs per-problem counts)."""
    hull = fr._hull(curves)
    xs = [float(c.point.tokens_per_problem or 0) for c in hull]
    dearest = max(float(c.point.tokens_per_problem or 0) for c in fr._candidates(curves))
    if budget < xs[0] or budget > dearest:
        return None
    return float(np.interp(budget, xs, [c.point.accuracy for c in hull]))


def counts_curve(method: str, cap: int | None, tokens: float, correct: Sequence[int], n: int = 4) -> CappedCurve:
    """A curve from real ProblemCounts: problem i has correct[i] of n samples right (others one wrong key each)."""
    counts = [scaling.ProblemCounts(f"p{i}", n, ((c,) if c else ()) + (1,) * (n - c), 0 if c else None, 0, c,
                                    tokens, 0) for i, c in enumerate(correct)]
    return sequential.capped_curve(counts, method, cap, n_boot=200, seed=3)  # type: ignore[arg-type]


def test_mix_at_budget_names_the_policies_and_is_exact() -> None:
    maj = counts_curve("maj", None, 1000.0, [4, 3, 2, 0, 1])
    short = counts_curve("truncated", 256, 200.0, [2, 1, 0, 0, 0])
    hull = fr.frontier([maj, short])
    assert (hull[0].cap, hull[0].k) == (256, 1) and hull[-1].cap is None
    (mid,) = fr.frontier_at_budgets([maj, short], [600.0], n_boot=200, seed=3)
    low, high = mid.low, mid.high
    assert mid.reached and low is not None and high is not None and mid.share_high is not None
    assert low.tokens_per_problem <= 600 <= high.tokens_per_problem
    s = (600 - low.tokens_per_problem) / (high.tokens_per_problem - low.tokens_per_problem)
    assert mid.share_high == pytest.approx(s)
    assert mid.accuracy == pytest.approx((1 - s) * low.accuracy + s * high.accuracy)
    assert mid.ci_low is not None and mid.ci_high is not None and mid.ci_low <= mid.accuracy <= mid.ci_high
    assert "256" in fr.mix_description(mid)
    below, above = fr.frontier_at_budgets([maj, short], [100.0, 10_000.0])
    assert not below.reached and "cheapest" in below.note
    assert not above.reached and "most expensive" in above.note


BASE = [Baseline("o1-mini (test)", "o1-mini", "aime24", "accuracy", 0.7, 2000.0, 1, "", "", "primary"),
        Baseline("tiny", "x", "aime24", "accuracy", 0.1, 100.0, 1, "", "", "primary"),
        Baseline("no tokens", "o1", "aime24", "pass@1", 0.74, None, 1, "", "", "primary"),
        Baseline("other bench", "o1", "math500", "accuracy", 0.9, 2000.0, 1, "", "", "primary")]


def test_matched_table_from_the_maj_curve() -> None:
    maj = counts_curve("maj", None, 1000.0, [4, 3, 2, 0, 1])
    rows_ = fr.matched_table(BASE, "aime24", [maj], list(maj.counts), n_boot=200, seed=3)
    assert [r.baseline for r in rows_] == ["o1-mini (test)", "tiny"]  # token counts of this benchmark only
    hit, miss = rows_
    expected = scaling.accuracy_at_budgets(list(maj.counts), [2000.0], n_boot=200, seed=3)[0]
    assert (hit.reached, hit.curve, hit.accuracy, hit.ci_low) == (True, "maj", expected.accuracy, expected.ci_low)
    assert hit.baseline_tokens == 2000.0 and hit.baseline_accuracy == 0.7
    assert not miss.reached and miss.accuracy is None and "below one sample" in miss.note


def test_matched_table_uses_the_frontier_with_caps() -> None:
    maj = counts_curve("maj", None, 1000.0, [4, 3, 2, 0, 1])
    short = counts_curve("truncated", 64, 80.0, [1, 0, 0, 0, 0])
    hit, low = fr.matched_table(BASE, "aime24", [maj, short], list(maj.counts))
    assert hit.curve == "frontier" and hit.reached and low.reached  # the 64-token cap reaches 100 tokens
    assert low.accuracy == pytest.approx(fr.frontier_at_budgets([maj, short], [100.0])[0].accuracy)


def test_matched_table_of_a_sweep_is_a_lower_bound() -> None:
    pts = [CurvePoint("truncated", 1, cap, None, acc, 0.0, acc) for cap, acc in ((128, 0.0), (1024, 0.1), (4096, 0.3))]
    hit, miss = fr.matched_table(BASE, "aime24", [], [], sweep_points=pts)
    assert (hit.reached, hit.accuracy, hit.curve) == (True, 0.1, "cap sweep (lower bound)") and "cap 1024" in hit.note
    assert not miss.reached and "smallest cap (128)" in miss.note
