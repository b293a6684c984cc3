"""tts-eval's answer checker against Math-Verify, side by side: accuracy on the labelled corpus and throughput.

Run from the repository root (Math-Verify is a dev dependency):

    .venv/bin/python bench/bench_grader.py accuracy     # ../shared/data/grading-cases.jsonl
    .venv/bin/python bench/bench_grader.py throughput   # 500 MATH500 golds x 64 answers = 32,000 pairs
    .venv/bin/python bench/bench_grader.py              # both

Accuracy: both checkers see the same inputs. tts-eval: bare answers as they are, full responses through its
extraction (a gold solution without any answer is used whole). Math-Verify 0.9.0: ``verify(parse(gold),
parse(pred))`` with default settings, bare answers wrapped in ``\\boxed{}``. Agreement is with the corpus
``label``; cases with ``flags`` (matters of policy) are also reported apart.

Throughput: synthetic answers from bench/synth_answers.py, each given to both checkers as the response
``\\boxed{answer}``. tts-eval: ``Grader.grade_many`` with its worker pool (started before timing, as in a real
run) on all pairs. Math-Verify: one process, gold parsed once per problem, then parse + verify per answer, on
the answers of ``--mv-problems`` problems spread over the set (every k-th); its rate is scaled to all pairs
(its cost is flat per pair). Both are timed on this machine in the same run, best of ``--repeats`` cold runs:
fresh worker processes for tts-eval, sympy's cache cleared for Math-Verify.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # running the file directly puts bench/ on sys.path, not the repository root
sys.path.insert(0, str(ROOT / "bench"))

from synth_answers import load_golds, synthetic_run

from harness.grading import Grader, extract_answer
from harness.types import Completion, Problem

DATA = next((p for p in (ROOT / "shared" / "data", ROOT.parent / "shared" / "data") if p.is_dir()), ROOT)


def ours_inputs(row: dict[str, Any]) -> tuple[str | None, str]:
    """(answer, gold) as tts-eval reads a corpus row: full responses go through extraction."""
    pred = row["pred"] if row["pred_kind"] == "boxed_content" else extract_answer(row["pred"]).answer
    gold = row["gold"]
    if row["gold_kind"] != "boxed_content":
        gold = extract_answer(gold).answer or gold
    return pred, gold


def math_verify_equal(pred: str, gold: str, pred_bare: bool, gold_bare: bool) -> bool:
    """Math-Verify's verdict with default settings (bare answers wrapped in a box)."""
    from math_verify import parse, verify

    wrap = "\\boxed{{{}}}".format
    return bool(verify(parse(wrap(gold) if gold_bare else gold), parse(wrap(pred) if pred_bare else pred)))


def _tally(rows: list[dict[str, Any]], verdicts: list[bool]) -> dict[str, int]:
    return {"n": len(rows), "agree": sum(v == r["label"] for r, v in zip(rows, verdicts)),
            "fp": sum(v and not r["label"] for r, v in zip(rows, verdicts)),
            "fn": sum(r["label"] and not v for r, v in zip(rows, verdicts))}


def _line(name: str, rows: list[dict[str, Any]], ours: list[bool], theirs: list[bool]) -> str:
    a, b = _tally(rows, ours), _tally(rows, theirs)
    return (f"{name:<26} {a['n']:>4}  {a['agree'] / a['n']:>6.1%} {b['agree'] / b['n']:>6.1%}  "
            f"{a['fp']:>3} {b['fp']:>3}  {a['fn']:>3} {b['fn']:>3}")


def accuracy(cases: Path, workers: int) -> None:
    """Print per-category accuracy, false positives and false negatives of both checkers."""
    rows = [json.loads(line) for line in cases.read_text(encoding="utf-8").splitlines() if line.strip()]
    inputs = [ours_inputs(r) for r in rows]
    with Grader(workers=workers) as grader:
        checks = grader.check_many([(p if p is not None else "", g, "math") for p, g in inputs])
    ours = [v.equal for v in checks]
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    theirs = [math_verify_equal(r["pred"], r["gold"], r["pred_kind"] == "boxed_content",
                                r["gold_kind"] == "boxed_content") for r in rows]
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_cat[r["category"]].append(i)
    print(f"accuracy on {cases.name} ({len(rows)} cases): agreement with `label`; FP = said equal, label false")
    print(f"{'category':<26} {'n':>4}  {'ours':>6} {'MV':>6}  {'FP':>3} {'MV':>3}  {'FN':>3} {'MV':>3}")
    for cat in sorted(by_cat, key=lambda c: (-len(by_cat[c]), c)):
        idx = by_cat[cat]
        print(_line(cat, [rows[i] for i in idx], [ours[i] for i in idx], [theirs[i] for i in idx]))
    print("-" * 70)
    for name, flagged in (("all cases", None), ("without flags", False), ("with flags", True)):
        idx = [i for i, r in enumerate(rows) if flagged is None or bool(r.get("flags")) == flagged]
        print(_line(name, [rows[i] for i in idx], [ours[i] for i in idx], [theirs[i] for i in idx]))


def _time_ours(table: dict[str, Problem], completions: list[Completion], workers: int) -> tuple[float, float, list[Any]]:
    """(seconds to grade, seconds to start the pool, grades) with a fresh Grader and fresh worker processes."""
    start = time.perf_counter()
    with Grader(workers=workers) as grader:
        grader._get_pool()
        ready = time.perf_counter()
        grades = grader.grade_many(table, completions)
        return time.perf_counter() - ready, ready - start, grades


def throughput(problems: int, samples: int, mv_problems: int, workers: int, seed: int, repeats: int) -> None:
    """Print pairs per second of both checkers on the synthetic run (best of ``repeats`` cold runs each)."""
    golds = load_golds(DATA / "math500.jsonl")[:problems]
    triples = synthetic_run(golds, samples, seed)
    table = {pid: Problem(pid, "math500", "", gold) for pid, gold in golds}
    counter: dict[str, int] = defaultdict(int)
    completions = []
    for pid, _, answer in triples:
        completions.append(Completion(pid, counter[pid], None, f"\\boxed{{{answer}}}", None, "stop"))
        counter[pid] += 1
    runs = [_time_ours(table, completions, workers) for _ in range(repeats)]
    ours_s, startup_s, grades = min(runs, key=lambda r: r[0])
    print(f"throughput on {len(triples):,} (answer, gold) pairs: {problems} MATH500 golds x {samples} answers "
          f"(seed {seed}, {len({(p, a) for p, _, a in triples}):,} distinct pairs); best of {repeats} cold runs each")
    print(f"  tts-eval     {len(triples) / ours_s:>9,.0f} pairs/s  {ours_s:7.1f} s  ({workers} worker processes; "
          f"pool start-up {startup_s:.1f} s not included); marked correct {sum(g.correct for g in grades):,}")
    # Math-Verify's sample: every k-th problem, so that it spans the subjects like the full set.
    step = max(1, problems // mv_problems)
    sampled = {pid for pid, _ in golds[::step][:mv_problems]}
    sub = [(i, t) for i, t in enumerate(triples) if t[0] in sampled]
    mv_runs = [_time_math_verify([t for _, t in sub]) for _ in range(repeats)]
    mv_s, mv_verdicts = min(mv_runs, key=lambda r: r[0])
    rate = len(sub) / mv_s
    differ = sum(grades[i].correct != v for (i, _), v in zip(sub, mv_verdicts))
    print(f"  Math-Verify  {rate:>9,.0f} pairs/s  {len(triples) / rate:7.1f} s  (1 process; measured on "
          f"{len(sub):,} pairs of {len(sampled)} problems in {mv_s:.1f} s, scaled to all pairs)")
    print(f"  verdicts on Math-Verify's sample: tts-eval {sum(grades[i].correct for i, _ in sub):,} correct, "
          f"Math-Verify {sum(mv_verdicts):,}; they differ on {differ:,} pairs")
    print(f"  ratio        {len(triples) / ours_s / rate:>9.1f}x")


def _time_math_verify(triples: list[tuple[str, str, str]]) -> tuple[float, list[bool]]:
    """Seconds Math-Verify takes on ``triples`` (gold parsed once per problem), and its verdicts."""
    from math_verify import parse, verify
    from sympy.core.cache import clear_cache

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    clear_cache()  # a cold start, as tts-eval's fresh workers have: sympy caches results in-process
    start = time.perf_counter()
    gold_parsed: dict[str, Any] = {}
    verdicts = []
    for pid, gold, answer in triples:
        if pid not in gold_parsed:
            gold_parsed[pid] = parse(f"\\boxed{{{gold}}}")
        verdicts.append(bool(verify(gold_parsed[pid], parse(f"\\boxed{{{answer}}}"))))
    return time.perf_counter() - start, verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", nargs="?", choices=["accuracy", "throughput", "all"], default="all")
    parser.add_argument("--cases", type=Path, default=DATA / "grading-cases.jsonl")
    parser.add_argument("--problems", type=int, default=500)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--mv-problems", type=int, default=50, help="problems whose answers time Math-Verify")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="cold runs of each checker; the best is shown")
    args = parser.parse_args()
    if args.part in ("accuracy", "all"):
        accuracy(args.cases, args.workers)
        print()
    if args.part in ("throughput", "all"):
        throughput(args.problems, args.samples, args.mv_problems, args.workers, args.seed, args.repeats)


if __name__ == "__main__":
    main()
