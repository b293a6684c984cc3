"""Time the sequential-axis analysis on synthetic data: truncated curves at caps, the frontier, budget mixes, RM@k.

Run from the repository root:  .venv/bin/python bench/bench_sequential.py [--problems 500] [--samples 64]

Each sample gets a length (log-normal around 3000 tokens, 16k max_tokens) and an answer; longer samples are a
little more often right, as with reasoning models. Prints a table of seconds per step (best of 3).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import frontier, rm, scaling, sequential
from harness.types import Completion, Grade

CAPS = (1000, 2000, 4000, 8000)


def synthetic(n_problems: int, n_samples: int, seed: int) -> tuple[list[Grade], list[Completion]]:
    rng = np.random.default_rng(seed)
    grades, comps = [], []
    for p in range(n_problems):
        skill = rng.beta(1, 1)
        for i in range(n_samples):
            tokens = int(min(16000, rng.lognormal(np.log(3000), 0.6)))
            finish = "length" if tokens >= 16000 else "stop"
            right = rng.random() < skill * min(1.0, tokens / 4000)
            key = "gold" if right else (None if rng.random() < 0.05 else f"w{rng.zipf(1.5) % 12}")
            grades.append(Grade(f"p{p}", i, key, key, right, "ok" if key else "no_answer"))
            comps.append(Completion(f"p{p}", i, i, "", tokens, finish))  # type: ignore[arg-type]
    return grades, comps


def best_of(fn: Callable[[], Any], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        scaling._maj_curve_cached.cache_clear()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=500)
    parser.add_argument("--samples", type=int, default=64)
    args = parser.parse_args()
    grades, comps = synthetic(args.problems, args.samples, 0)
    counts = scaling.problem_counts(grades, comps)

    def curves() -> list[sequential.CappedCurve]:
        out = [sequential.capped_curve(counts, "maj", None)]
        for cap in CAPS:
            out.append(sequential.capped_curve(sequential.truncated_counts(grades, comps, cap), "truncated", cap))
        return out

    built = curves()
    scores = {(g.problem_id, g.sample_index): float(np.random.default_rng(1).random()) for g in grades}
    steps: list[tuple[str, Callable[[], Any]]] = [
        (f"truncated counts, {len(CAPS)} caps", lambda: [sequential.truncated_counts(grades, comps, c) for c in CAPS]),
        (f"uncapped + {len(CAPS)} capped curves + CIs", curves),
        ("frontier (all caps x k)", lambda: frontier.frontier(built)),
        ("winning mix at 5 budgets + CIs", lambda: frontier.frontier_at_budgets(built, [2e3, 8e3, 3e4, 1e5, 1.5e5])),
        ("RM@k, all k (Monte Carlo past 2000 subsets)", lambda: rm.rm_curve(grades, comps, scores)),
    ]
    print(f"{args.problems} problems x {args.samples} samples, caps {CAPS}, n_boot = 1000, best of 3")
    print(f"{'step':46}{'seconds':>8}")
    for name, fn in steps:
        print(f"{name:46}{best_of(fn, 1 if name.startswith('RM') else 3):8.3f}")


if __name__ == "__main__":
    main()
