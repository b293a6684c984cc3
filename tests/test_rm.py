"""RM@k: weighted votes against enumeration from the definition, equal weights = Maj@k, the Monte Carlo path."""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import rm, scaling
from harness.types import Completion, Grade


def brute_rm(keys: list[str | None], correct: str | None, w: list[float], k: int) -> float:
    """Expected credit of the weighted vote over every k-subset, straight from the definition."""
    total = 0.0
    subsets = list(itertools.combinations(range(len(keys)), k))
    for subset in subsets:
        votes: dict[str, float] = defaultdict(float)
        for i in subset:
            if keys[i] is not None:
                votes[keys[i]] += w[i]  # type: ignore[index]
        if not votes or correct not in votes:
            continue
        top = max(votes.values())
        tied = [key for key, v in votes.items() if v >= top - 1e-9 * abs(top)]
        total += (correct in tied) / len(tied)
    return total / len(subsets)


KEYS = st.lists(st.sampled_from(["a", "b", "c", None]), min_size=1, max_size=7)


@settings(max_examples=120, deadline=None)
@given(KEYS, st.data())
def test_weighted_vote_matches_enumeration(keys: list[str | None], data: st.DataObject) -> None:
    weights = data.draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.5]), min_size=len(keys), max_size=len(keys)))
    values, errors = rm.rm_problem_curve(keys, "a", np.array(weights), len(keys), np.random.default_rng(0))
    for k in range(1, len(keys) + 1):
        assert values[k - 1] == pytest.approx(brute_rm(keys, "a", weights, k), abs=1e-12)
    assert not errors.any()  # n <= 7: every k is enumerated exactly


def rows(keys: list[str | None], correct: str) -> tuple[list[Grade], list[Completion]]:
    grades = [Grade("p", i, k, k, k == correct, "ok" if k else "no_answer") for i, k in enumerate(keys)]
    return grades, [Completion("p", i, i, "t", 10, "stop") for i in range(len(keys))]


def test_equal_weights_give_maj_at_k_exactly() -> None:
    keys: list[str | None] = ["a", "b", "b", None, "a", "c", "a", "b"]
    grades, comps = rows(keys, "a")
    points, error = rm.rm_curve(grades, comps, {("p", i): 1.0 for i in range(8)})
    (pc,) = scaling.problem_counts(grades, comps)
    assert [p.accuracy for p in points] == pytest.approx(list(scaling.maj_curve(pc)), abs=1e-12)
    assert error == 0.0 and points[2].tokens_per_problem == 30.0 and points[0].method == "rm"


def test_weights_change_the_winner() -> None:
    grades, comps = rows(["a", "b", "b"], "a")
    points, _ = rm.rm_curve(grades, comps, {("p", 0): 3.0, ("p", 1): 1.0, ("p", 2): 1.0})
    assert points[2].accuracy == 1.0  # "a" outweighs two "b" votes; plain Maj@3 would be 0
    sig, _ = rm.rm_curve(grades, comps, {("p", 0): 0.0, ("p", 1): -5.0, ("p", 2): -5.0}, weighting="sigmoid")
    assert sig[2].accuracy == 1.0
    with pytest.raises(ValueError, match="sigmoid"):
        rm.rm_curve(grades, comps, {("p", 0): -1.0, ("p", 1): 1.0, ("p", 2): 1.0})
    with pytest.raises(ValueError, match="no score"):
        rm.rm_curve(grades, comps, {("p", 0): 1.0})


def test_monte_carlo_path_is_unbiased_within_its_error() -> None:
    rng = np.random.default_rng(1)
    keys: list[str | None] = list(rng.choice(["a", "b", "c"], size=16, p=[0.4, 0.35, 0.25]))
    weights = rng.uniform(0, 1, size=16)
    values, errors = rm.rm_problem_curve(keys, "a", weights, 16, np.random.default_rng(2))
    assert errors[7] > 0 and errors[0] == 0  # C(16, 8) = 12870 subsets > EXACT_SUBSETS: sampled
    exact = brute_rm(keys, "a", list(weights), 8)
    assert abs(values[7] - exact) < 4 * errors[7]
