"""Tests of harness.scaling: exact estimators against brute force, budget interpolation, bootstrap CIs."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import scaling
from harness.scaling import (
    INTERPOLATION_RULE,
    ProblemCounts,
    accuracy_at_budgets,
    curve,
    maj_at_k,
    maj_curve,
    mean_at_k,
    parse_budget,
    parse_budgets,
    pass_at_k,
    per_problem_matrix,
    problem_counts,
)
from harness.types import Completion, Grade

# ------------------------------------------------------------------------------------------------ helpers


def make_rows(pid: str, keys: Sequence[str | None], correct_key: str | None,
              tokens: Sequence[int | None] | None = None,
              finish: Sequence[str | None] | None = None) -> tuple[list[Grade], list[Completion]]:
    """Grades and completions for one problem: sample i votes keys[i]; it is correct iff keys[i] == correct_key."""
    grades, comps = [], []
    for i, key in enumerate(keys):
        ok = key is not None and key == correct_key
        grades.append(Grade(pid, i, key, key, ok, "ok" if key is not None else "no_answer"))
        comps.append(Completion(pid, i, i, f"text {i}", 100 if tokens is None else tokens[i],
                                "stop" if finish is None else finish[i]))  # type: ignore[arg-type]
    return grades, comps


def counts_for(keys: Sequence[str | None], correct_key: str | None, pid: str = "p") -> ProblemCounts:
    grades, comps = make_rows(pid, keys, correct_key)
    (pc,) = problem_counts(grades, comps)
    return pc


def brute_maj(keys: Sequence[str | None], correct_key: str | None, k: int) -> Fraction:
    """Maj@k by enumerating every k-subset, straight from the definition."""
    total = Fraction(0)
    subsets = list(itertools.combinations(range(len(keys)), k))
    for subset in subsets:
        votes = Counter(keys[i] for i in subset if keys[i] is not None)
        if not votes or correct_key not in votes:
            continue
        top = max(votes.values())
        if votes[correct_key] == top:
            total += Fraction(1, sum(1 for v in votes.values() if v == top))
    return total / len(subsets)


def brute_pass(n: int, c: int, k: int) -> Fraction:
    subsets = list(itertools.combinations(range(n), k))  # samples 0..c-1 are the correct ones
    return Fraction(sum(1 for s in subsets if min(s) < c), len(subsets))


def simple_counts(pid: str, n: int, n_correct: int, tokens: float | None = 100.0) -> ProblemCounts:
    """n samples: n_correct share the correct key, the rest one wrong key each."""
    sizes = ((n_correct,) if n_correct else ()) + (1,) * (n - n_correct)
    return ProblemCounts(pid, n, sizes, 0 if n_correct else None, 0, n_correct, tokens, 0)


# ------------------------------------------------------------------------------------- exact estimators

keys_strategy = st.lists(st.sampled_from(["A", "B", "C", "D", None]), min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(keys=keys_strategy, correct=st.sampled_from(["A", "B", None]))
def test_maj_matches_brute_force(keys: list[str | None], correct: str | None) -> None:
    pc = counts_for(keys, correct)
    got = maj_curve(pc)
    assert got.shape == (len(keys),)
    for k in range(1, len(keys) + 1):
        want = brute_maj(keys, correct, k)
        assert abs(got[k - 1] - float(want)) <= 1e-12, (keys, correct, k)
        assert maj_at_k(pc, k) == got[k - 1]


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_pass_matches_brute_force(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 8))
    c = data.draw(st.integers(0, n))
    row = per_problem_matrix([simple_counts("p", n, c)], "pass", n)[0]
    for k in range(1, n + 1):
        want = float(brute_pass(n, c, k))
        assert abs(pass_at_k(n, c, k) - want) <= 1e-12
        assert abs(row[k - 1] - want) <= 1e-12


def test_hand_computed_case() -> None:
    # keys [A, A, B, None], A correct, n = 4.
    # Maj@1: the one sample is an A with probability 2/4 -> 1/2.
    # Maj@2: 6 pairs: {A,A}=1, {A1,B}=1/2 (tie), {A2,B}=1/2, {A1,-}=1, {A2,-}=1, {B,-}=0 -> 4/6 = 2/3.
    # Maj@3: 4 triples: {A,A,B}=1, {A,A,-}=1, {A1,B,-}=1/2, {A2,B,-}=1/2 -> 3/4.
    # Maj@4: A has 2 votes, B 1 -> 1.
    pc = counts_for(["A", "A", "B", None], "A")
    assert pc.cluster_sizes == (2, 1) and pc.correct_cluster == 0 and pc.abstain == 1 and pc.n_correct == 2
    np.testing.assert_allclose(maj_curve(pc), [1 / 2, 2 / 3, 3 / 4, 1.0], rtol=0, atol=1e-15)
    # pass@k with c = 2 of 4: 1/2, 1 - C(2,2)/C(4,2) = 5/6, then 1, 1.
    assert [pass_at_k(4, 2, k) for k in (1, 2, 3, 4)] == pytest.approx([0.5, 5 / 6, 1.0, 1.0], abs=1e-15)
    assert mean_at_k(4, 2) == 0.5


def test_no_answer_and_no_correct_give_zero() -> None:
    assert list(maj_curve(counts_for([None, None, None], None))) == [0.0, 0.0, 0.0]
    assert list(maj_curve(counts_for(["B", "B", "C"], "A"))) == [0.0, 0.0, 0.0]
    assert list(maj_curve(counts_for(["A"] * 5, "A"))) == [1.0] * 5


@pytest.mark.parametrize("seed", range(6))
def test_float_path_matches_exact_integers_at_n64(seed: int) -> None:
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(63, rng.dirichlet(np.ones(12)))  # + 1 below: the correct key has >= 1 sample
    a, others, abstain = int(draws[0]) + 1, tuple(int(d) for d in draws[1:-1] if d), int(draws[-1])
    exact = scaling._maj_curve_cached(a, others, abstain, True)
    fast = scaling._maj_curve_cached(a, others, abstain, False)
    assert len(fast) == 64
    np.testing.assert_allclose(fast, exact, rtol=1e-12, atol=1e-15)


def test_estimators_reject_bad_arguments() -> None:
    pc = counts_for(["A", "B"], "A")
    for k in (0, 3):
        with pytest.raises(ValueError, match="k must be in"):
            maj_at_k(pc, k)
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError, match="method must be one of"):
        per_problem_matrix([pc], "truncated", 1)
    with pytest.raises(ValueError, match="k_max must be in"):
        per_problem_matrix([pc], "maj", 3)
    big = ProblemCounts("big", 1001, (1001,), 0, 0, 1001, None, 0)
    with pytest.raises(ValueError, match="at most 1000 samples"):
        maj_curve(big)


# ---------------------------------------------------------------------------------------- problem_counts


def test_problem_counts_groups_in_any_order() -> None:
    g1, c1 = make_rows("q1", ["7", "7", None, "8"], "7", tokens=[10, 20, 30, 40],
                       finish=["stop", "length", "length", None])
    g2, c2 = make_rows("q2", ["1", "2"], None, tokens=[5, None])
    grades = [g1[3], g2[1], g1[0], g1[2], g2[0], g1[1]]
    comps = list(reversed(c1 + c2))
    q1, q2 = problem_counts(grades, comps)
    assert (q1.problem_id, q2.problem_id) == ("q1", "q2")  # first-seen order of the grades
    assert q1.n == 4 and sorted(q1.cluster_sizes) == [1, 2] and q1.abstain == 1 and q1.truncated == 2
    assert q1.correct_cluster is not None and q1.cluster_sizes[q1.correct_cluster] == 2 and q1.n_correct == 2
    assert q1.mean_tokens == 25.0
    assert q2.correct_cluster is None and q2.n_correct == 0 and q2.mean_tokens is None


def test_problem_counts_rejects_inconsistent_rows() -> None:
    grades, comps = make_rows("q", ["A", "A"], "A")
    with pytest.raises(ValueError, match="'q' sample 1 has no completion"):
        problem_counts(grades, comps[:1])
    with pytest.raises(ValueError, match="'q' sample 1 has no grade"):
        problem_counts(grades[:1], comps)
    with pytest.raises(ValueError, match="appears twice"):
        problem_counts(grades + grades[:1], comps)
    split = [Grade("q", 0, "A", "A", True, "ok"), Grade("q", 1, "A'", "A'", True, "ok")]
    with pytest.raises(ValueError, match="problem 'q': correct samples have different vote keys"):
        problem_counts(split, comps)
    mixed = [Grade("q", 0, "A", "A", True, "ok"), Grade("q", 1, "A", "A", False, "ok")]
    with pytest.raises(ValueError, match="both correct and incorrect"):
        problem_counts(mixed, comps)
    keyless = [Grade("q", 0, "A", None, True, "ok"), Grade("q", 1, "A", "A", True, "ok")]
    with pytest.raises(ValueError, match="has no vote key"):
        problem_counts(keyless, comps)


def test_problem_counts_dataclass_validates() -> None:
    with pytest.raises(ValueError, match="!= n"):
        ProblemCounts("p", 5, (2, 1), 0, 1, 2, None, 0)
    with pytest.raises(ValueError, match="n_correct"):
        ProblemCounts("p", 4, (2, 1), 0, 1, 1, None, 0)


# ----------------------------------------------------------------------------------------------- curves


def test_curve_tokens_rates_and_values() -> None:
    a = ProblemCounts("a", 4, (2, 1), 0, 1, 2, 100.0, 1)  # the hand-computed problem
    b = ProblemCounts("b", 5, (5,), 0, 0, 5, 300.0, 2)  # 5 samples: only k <= 4 are used on the curve
    points = curve([a, b], "maj", n_boot=50)
    assert [p.k for p in points] == [1, 2, 3, 4]
    assert [p.tokens_per_problem for p in points] == [k * 200.0 for k in (1, 2, 3, 4)]
    want = [(x + 1.0) / 2 for x in (1 / 2, 2 / 3, 3 / 4, 1.0)]
    assert [p.accuracy for p in points] == pytest.approx(want, abs=1e-15)
    assert all(p.method == "maj" and p.cap is None for p in points)
    assert all(p.truncation_rate == 3 / 9 and p.no_answer_rate == 1 / 9 for p in points)
    mean = curve([a, b], "mean", n_boot=50)
    assert [p.accuracy for p in mean] == pytest.approx([(0.5 + 1.0) / 2] * 4, abs=1e-15)


def test_curve_without_token_axis() -> None:
    points = curve([simple_counts("a", 3, 2, tokens=None), simple_counts("b", 3, 1)], "pass", n_boot=20)
    assert all(p.tokens_per_problem is None for p in points)


def test_bootstrap_is_seeded_and_contains_estimate() -> None:
    rng = np.random.default_rng(7)
    counts = [simple_counts(f"p{i}", 8, int(rng.integers(0, 9))) for i in range(40)]
    first, again = curve(counts, n_boot=300, seed=3), curve(counts, n_boot=300, seed=3)
    other = curve(counts, n_boot=300, seed=4)
    assert [(p.ci_low, p.ci_high) for p in first] == [(p.ci_low, p.ci_high) for p in again]
    assert [(p.ci_low, p.ci_high) for p in first] != [(p.ci_low, p.ci_high) for p in other]
    for p in first:
        assert p.ci_low < p.accuracy < p.ci_high


def test_all_correct_run_has_degenerate_ci() -> None:
    counts = [simple_counts(f"p{i}", 4, 4) for i in range(30)]
    for method in ("maj", "pass", "mean"):
        for p in curve(counts, method, n_boot=200):
            assert (p.accuracy, p.ci_low, p.ci_high) == (1.0, 1.0, 1.0)
    (b,) = accuracy_at_budgets(counts, [250.0], n_boot=200)
    assert (b.accuracy, b.ci_low, b.ci_high) == (1.0, 1.0, 1.0)


# ---------------------------------------------------------------------------------------------- budgets


def budget_fixture() -> list[ProblemCounts]:
    # Mean tokens 100 per sample: k samples cost 100k; Maj@k = (1/2, 2/3, 3/4, 1) averaged with 1.
    return [ProblemCounts("a", 4, (2, 1), 0, 1, 2, 50.0, 0), ProblemCounts("b", 4, (4,), 0, 0, 4, 150.0, 0)]


def test_budget_between_points_interpolates_linearly() -> None:
    (b,) = accuracy_at_budgets(budget_fixture(), [250.0], n_boot=100)
    # Halfway between k=2 (200 tokens, 5/6) and k=3 (300 tokens, 7/8).
    assert b.reached and (b.k_low, b.k_high) == (2, 3)
    assert b.accuracy == pytest.approx((5 / 6 + 7 / 8) / 2, abs=1e-15)
    assert b.accuracy is not None and b.ci_low is not None and b.ci_high is not None
    assert b.ci_low <= b.accuracy <= b.ci_high
    (q,) = accuracy_at_budgets(budget_fixture(), [125.0], n_boot=10)  # a quarter of the way from k=1 to k=2
    assert q.accuracy == pytest.approx(0.75 * 3 / 4 + 0.25 * 5 / 6, abs=1e-15)


def test_budget_exactly_at_points() -> None:
    points = accuracy_at_budgets(budget_fixture(), [100.0, 300.0, 400.0], n_boot=10)
    assert [(p.k_low, p.k_high) for p in points] == [(1, 1), (3, 3), (4, 4)]
    assert [p.accuracy for p in points] == pytest.approx([3 / 4, 7 / 8, 1.0], abs=1e-15)
    assert all(p.reached for p in points)
    # 3 x 0.1 is 0.30000000000000004 in floats: still exactly the k = 3 point, not "between 3 and 4".
    tenths = [ProblemCounts("a", 4, (2, 1), 0, 1, 2, 0.05, 0), ProblemCounts("b", 4, (4,), 0, 0, 4, 0.15, 0)]
    (at3,) = accuracy_at_budgets(tenths, [0.3], n_boot=10)
    (at4,) = accuracy_at_budgets(tenths, [0.1 * 4], n_boot=10)
    assert (at3.k_low, at3.k_high, at4.k_low, at4.k_high) == (3, 3, 4, 4) and at4.reached


def test_budget_not_reached_above_and_below() -> None:
    above, below = accuracy_at_budgets(budget_fixture(), [401.0, 99.0], n_boot=10)
    assert not above.reached and above.accuracy is None and above.ci_low is None
    assert above.note == "not reached: needs more than k=4 samples (max 400 tokens)"
    assert not below.reached and below.accuracy is None
    assert below.note == "below one sample (100 tokens)"


def test_budget_without_token_axis() -> None:
    counts = [simple_counts("a", 3, 2, tokens=None), simple_counts("b", 3, 1)]
    (b,) = accuracy_at_budgets(counts, [1000.0], n_boot=10)
    assert not b.reached and b.accuracy is None and "no token axis" in b.note


def test_budget_ci_moves_tokens_too() -> None:
    # Two problems, tokens 10 and 1000: resamples change the mean cost a lot, so some fall off the curve.
    counts = [simple_counts("cheap", 4, 4, tokens=10.0), simple_counts("dear", 4, 0, tokens=1000.0)]
    (b,) = accuracy_at_budgets(counts, [1000.0], n_boot=200, seed=1)
    assert b.reached and b.k_low == 1 and b.k_high == 2
    assert "resamples fell outside their curve" in b.note
    assert b.ci_low == 0.0 and b.ci_high == 1.0


def test_interpolation_rule_is_stated() -> None:
    assert "linear" in INTERPOLATION_RULE and "k+1" in INTERPOLATION_RULE


@pytest.mark.parametrize("text,want", [("2k", 2000), ("1.5k", 1500), ("2048", 2048), ("8K", 8000),
                                       (" 4k ", 4000), ("1.001k", 1001), (".5k", 500)])
def test_parse_budget(text: str, want: int) -> None:
    assert parse_budget(text) == want


@pytest.mark.parametrize("text", ["x", "", "2kb", "-1k", "0", "1.0005k", "2 k k", "1e3", "nan"])
def test_parse_budget_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"budget must look like 2k, 1500 or 1\.5k, got"):
        parse_budget(text)


def test_parse_budget_message_is_exact() -> None:
    with pytest.raises(ValueError) as info:
        parse_budget("x")
    assert str(info.value) == "budget must look like 2k, 1500 or 1.5k, got 'x'"


def test_parse_budgets() -> None:
    assert parse_budgets("1k,2k, 4k") == [1000, 2000, 4000]
    with pytest.raises(ValueError):
        parse_budgets("1k,,2k")
    assert math.isclose(sum(parse_budgets("1.5k,500")), 2000)
