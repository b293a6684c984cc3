"""Do the bootstrap CIs cover the truth about 95% of the time? A simulation with synthetic models of known accuracy.

Each simulated run draws 30 problems (AIME-sized) from a known population of problem types, samples 8 answers per
problem, and computes Maj@k and mean@k with their 95% bootstrap CIs, exactly as a report does. The truth is the
population's expected Maj@k, computed exactly from the answer distributions. Seeded, so it is deterministic.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from harness import scaling
from harness.scaling import ProblemCounts

# Problem types: (probability of the correct answer, probabilities of two wrong answers); the rest abstains.
TYPES = ((0.9, 0.05, 0.05), (0.6, 0.3, 0.05), (0.4, 0.45, 0.1), (0.25, 0.25, 0.25), (0.05, 0.6, 0.3))
N_PROBLEMS, N_SAMPLES, RUNS, N_BOOT = 30, 8, 200, 400


def true_maj(probs: tuple[float, ...], k: int) -> float:
    """Exact Maj@k of one problem type: sum over every vote count vector of k fresh samples."""
    full = list(probs) + [1.0 - sum(probs)]  # last category abstains
    total = 0.0
    for counts in itertools.product(range(k + 1), repeat=len(full)):
        if sum(counts) != k:
            continue
        p = math.factorial(k) * math.prod(q**c / math.factorial(c) for q, c in zip(full, counts))
        votes = counts[:-1]
        if votes[0] == 0:
            continue
        top = max(votes)
        if votes[0] == top:
            total += p / sum(v == top for v in votes)
    return total


def simulate(rng: np.random.Generator) -> list[ProblemCounts]:
    counts = []
    for i in range(N_PROBLEMS):
        probs = TYPES[rng.integers(len(TYPES))]
        draws = rng.choice(4, size=N_SAMPLES, p=list(probs) + [1 - sum(probs)])
        sizes = [int((draws == j).sum()) for j in range(3)]
        kept = [s for s in sizes if s]
        correct = 0 if sizes[0] else None
        counts.append(ProblemCounts(f"p{i}", N_SAMPLES, tuple(kept), correct, int((draws == 3).sum()), sizes[0],
                                    1000.0, 0))
    return counts


@pytest.mark.parametrize("method,k", [("mean", 1), ("maj", 1), ("maj", 4), ("maj", 8)])
def test_bootstrap_ci_covers_the_truth_about_95_percent(method: str, k: int) -> None:
    truth = float(np.mean([true_maj(t, k) for t in TYPES]))
    rng = np.random.default_rng(2024)
    hits = 0
    for run in range(RUNS):
        point = scaling.curve(simulate(rng), method, n_boot=N_BOOT, seed=run)[k - 1]
        hits += point.ci_low <= truth <= point.ci_high
    coverage = hits / RUNS
    print(f"{method}@{k}: coverage {coverage:.3f} over {RUNS} runs of {N_PROBLEMS} problems (truth {truth:.4f})")
    # 200 runs: a binomial standard error of about 1.5 points around 95%; percentile bootstrap CIs on 30
    # problems run a little narrow, so the band allows for that but not for a CI that is plainly wrong.
    assert 0.89 <= coverage <= 0.99
