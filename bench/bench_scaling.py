"""Time the scaling stage on synthetic data: exact Maj@k for every k, curves with bootstrap CIs, budgets.

Run from the repository root:  .venv/bin/python bench/bench_scaling.py [--problems 500] [--samples 64]

The synthetic run mimics a reasoning model: each problem has its own accuracy, wrong answers spread over a
few keys with a long tail, a few samples with no answer, token counts around a few thousand. Every problem
gets its own cluster structure, and the Maj@k cache is cleared before each timing, so it measures cold work.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

# Running the file directly puts bench/ on sys.path, not the repository root that holds harness/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import scaling
from harness.scaling import ProblemCounts


def synthetic_counts(n_problems: int, n_samples: int, seed: int) -> list[ProblemCounts]:
    """Random but plausible ProblemCounts: per-problem accuracy ~ Beta(1, 1), Zipf-like wrong answers."""
    rng = np.random.default_rng(seed)
    counts = []
    for p in range(n_problems):
        p_correct, p_abstain = rng.beta(1.0, 1.0), 0.05
        wrong_weights = 1.0 / np.arange(1, 21) ** rng.uniform(0.5, 2.0)
        probs = np.concatenate([[p_correct, p_abstain], (1 - p_correct - p_abstain) * wrong_weights
                                / wrong_weights.sum()]).clip(0, None)
        draws = rng.multinomial(n_samples, probs / probs.sum())
        n_correct, abstain = int(draws[0]), int(draws[1])
        sizes = [n_correct] + [int(d) for d in draws[2:] if d > 0] if n_correct else [int(d) for d in draws[2:] if d]
        counts.append(ProblemCounts(
            problem_id=f"p{p}", n=n_samples, cluster_sizes=tuple(sizes),
            correct_cluster=0 if n_correct else None, abstain=abstain, n_correct=n_correct,
            mean_tokens=float(rng.uniform(500, 8000)), truncated=int(rng.binomial(n_samples, 0.02)),
        ))
    return counts


def timed(fn: Callable[[], object], repeats: int = 3) -> float:
    """Best wall time of ``repeats`` cold runs (the Maj@k cache cleared before each), in seconds."""
    best = float("inf")
    for _ in range(repeats):
        scaling._maj_curve_cached.cache_clear()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=500)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    counts = synthetic_counts(args.problems, args.samples, args.seed)
    n, budgets = args.samples, [1000.0, 4000.0, 16000.0, 64000.0, 256000.0]
    rows = [
        ("Maj@k matrix, all k (exact)", lambda: scaling.per_problem_matrix(counts, "maj", n)),
        ("pass@k matrix, all k", lambda: scaling.per_problem_matrix(counts, "pass", n)),
        (f"maj curve + bootstrap ({args.n_boot})", lambda: scaling.curve(counts, "maj", n_boot=args.n_boot)),
        (f"pass curve + bootstrap ({args.n_boot})", lambda: scaling.curve(counts, "pass", n_boot=args.n_boot)),
        (f"maj at {len(budgets)} budgets + bootstrap",
         lambda: scaling.accuracy_at_budgets(counts, budgets, "maj", n_boot=args.n_boot)),
    ]
    print(f"{args.problems} problems x {n} samples, k = 1..{n}, n_boot = {args.n_boot}, best of 3 cold runs")
    print(f"{'step':<40} {'seconds':>8}")
    for name, fn in rows:
        print(f"{name:<40} {timed(fn):>8.3f}")
    # The DP's slowest shape: a lone correct sample against n-1 singleton wrong answers, all tied at j = 1.
    worst = ProblemCounts("worst", n, (1,) * n, 0, 0, 1, None, 0)
    print(f"{'one worst-case problem (1 + singletons)':<40} {timed(lambda: scaling.maj_curve(worst)):>8.4f}")


if __name__ == "__main__":
    main()
