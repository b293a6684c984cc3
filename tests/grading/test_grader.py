"""The Grader end to end: grades, statuses, vote keys, caching, grade_many, the labelled corpus and real outputs."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.grading import GRADER_VERSION, Grader, Verdict, extract_answer, grade_completions
from harness.types import Completion, Grade, Problem

from .test_golden import corpus_side

REPO = Path(__file__).resolve().parents[2]
DATA = next((p for p in (REPO / "shared" / "data", REPO.parent / "shared" / "data") if p.is_dir()), REPO)
CORPUS = DATA / "grading-cases.jsonl"
REAL = DATA / "real" / "qwen25math-cot-100-n8" / "math_cot_100.jsonl"
needs_corpus = pytest.mark.skipif(not CORPUS.is_file(), reason="needs ../shared/data/grading-cases.jsonl")
needs_real = pytest.mark.skipif(not REAL.is_file(), reason="needs ../shared/data/real/qwen25math-cot-100-n8")


@pytest.fixture(scope="module")
def grader() -> Iterator[Grader]:
    with Grader(workers=2, deadline_s=2.0) as g:
        yield g


def _completions(problem_id: str, texts: list[str]) -> list[Completion]:
    return [Completion(problem_id, i, None, t, None, "stop") for i, t in enumerate(texts)]


def test_version_and_exports() -> None:
    assert GRADER_VERSION == "0.2.0"
    assert extract_answer("\\boxed{1}").answer == "1"
    assert isinstance(Verdict(True, "ok", "x"), Verdict)


def test_import_is_light() -> None:
    code = ("import sys, harness, harness.grading; "
            "print([m for m in ('sympy', 'torch', 'transformers', 'vllm', 'ray') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_grade_statuses_and_vote_keys(grader: Grader) -> None:
    problem = Problem("p1", "t", "q", "\\frac{1}{2}")
    texts = [
        "\\boxed{0.5}",          # correct, decimal
        "\\boxed{\\frac12}",      # correct, other spelling
        "\\boxed{3}",            # wrong
        "\\boxed{\\frac{6}{2}}",  # wrong, equivalent to 3: same key
        "\\boxed{4}",            # wrong, its own key
        "no box at all",         # no answer
        "\\boxed{@@}",           # unparsable
        "\\boxed{@@}",           # identical unparsable: same key
        "<think>cut off",        # truncated reasoning
    ]
    grades = grader.grade(problem, _completions("p1", texts))
    assert [g.sample_index for g in grades] == list(range(len(texts)))
    assert [g.correct for g in grades] == [True, True, False, False, False, False, False, False, False]
    assert [g.status for g in grades] == ["ok"] * 5 + ["no_answer", "unparsable", "unparsable", "no_answer"]
    keys = [g.vote_key for g in grades]
    assert keys[0] == keys[1] == "\\frac{1}{2}"  # the correct cluster is keyed by the normalised gold
    assert keys[2] == keys[3] == "3"
    assert keys[4] == "4"
    assert keys[5] is None and keys[8] is None  # no answer: no vote
    assert keys[6] == keys[7] == "@@"  # policy: unparsable answers vote under their normalised string
    assert len({keys[0], keys[2], keys[4], keys[6]}) == 4
    assert grades[8].reason == "no final answer (unclosed_think)"
    assert grades[2].extracted == "3"
    assert all(isinstance(g, Grade) and g.reason for g in grades)


def test_identical_answers_are_compared_once(grader: Grader, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, ...]] = []
    round_trips: list[int] = []
    pool = grader._get_pool()
    real_run_many = pool.run_many

    def counting_run_many(func: object, arg_list: list[tuple[object, ...]], **kwargs: object) -> object:
        calls.extend(arg_list)
        round_trips.append(len(arg_list))
        return real_run_many(func, arg_list, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pool, "run_many", counting_run_many)
    problem = Problem("dedupe", "t", "q", "\\sqrt{2}/2")
    texts = ["\\boxed{\\frac{\\sqrt{2}}{2}}"] * 6 + ["\\boxed{\\dfrac{\\sqrt{2}}{2}}", "\\boxed{0.7}",
                                                     "\\boxed{0.71}", "\\boxed{\\frac{7}{10}}"]
    grades = grader.grade(problem, _completions("dedupe", texts))
    assert [g.correct for g in grades] == [True] * 7 + [False] * 3
    # Four distinct normalised answers, compared with the gold in one worker round trip; the wrong ones then
    # cluster in this process (plain numbers: 0.7 = 7/10, 0.71 differs), with no second round trip.
    assert round_trips == [4] and len(calls) == 4
    assert grades[7].vote_key == grades[9].vote_key == "0.7" and grades[8].vote_key == "0.71"
    grader.grade(problem, _completions("dedupe", texts))
    assert len(calls) == 4  # cached


def test_integer_problems(grader: Grader) -> None:
    problem = Problem("aime", "aime24", "q", "25", answer_type="integer")
    texts = ["\\boxed{025}", "\\boxed{25}", "\\boxed{2.5}", "\\boxed{x}", "The final answer is 25."]
    grades = grader.grade(problem, _completions("aime", texts))
    assert [(g.correct, g.status) for g in grades] == [
        (True, "ok"), (True, "ok"), (False, "ok"), (False, "unparsable"), (True, "ok")]
    assert grades[0].vote_key == grades[1].vote_key == grades[4].vote_key == "25"


def test_grade_rejects_foreign_completions(grader: Grader) -> None:
    with pytest.raises(ValueError, match="other|passed to grade"):
        grader.grade(Problem("a", "t", "q", "1"), _completions("b", ["\\boxed{1}"]))
    with pytest.raises(ValueError, match="unknown problem id 'zz'"):
        grader.grade_many({}, _completions("zz", ["\\boxed{1}"]))
    with pytest.raises(ValueError, match="answer_type"):
        grader.check("1", "1", "number")


def test_grade_many_keeps_order_and_matches_grade(grader: Grader) -> None:
    problems = {f"q{n}": Problem(f"q{n}", "t", "q", str(n)) for n in range(12)}
    completions = [c for n in range(12) for c in _completions(f"q{n}", [f"\\boxed{{{n + k % 2}}}" for k in range(4)])]
    random.Random(0).shuffle(completions)
    grades = grader.grade_many(problems, completions)
    assert [(g.problem_id, g.sample_index) for g in grades] == [(c.problem_id, c.sample_index) for c in completions]
    assert all(g.correct == (c.sample_index % 2 == 0) for g, c in zip(grades, completions))
    one = grader.grade(problems["q3"], [c for c in completions if c.problem_id == "q3"])
    assert [g for g in grades if g.problem_id == "q3"] == one
    assert grade_completions(list(problems.values()), completions[:5], workers=1) == grades[:5]


def _corpus_verdicts(grader: Grader) -> list[tuple[dict[str, object], bool]]:
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    sides = [(corpus_side(r["pred"], r["pred_kind"], is_gold=False), corpus_side(r["gold"], r["gold_kind"], is_gold=True))
             for r in rows]
    verdicts = grader.check_many([(pred or "", gold or "", "math") for pred, gold in sides])
    return [(row, pred is not None and v.equal) for row, (pred, _), v in zip(rows, sides, verdicts)]


# Measured with GRADER_VERSION 0.2.0: 354/372 agree, 338/344 without flags, no false positive (Math-Verify
# 0.9.0: 345/372, 329/344, 1 false positive; bench/bench_grader.py prints both). Raise these when the grader
# improves; the misses are listed as policies in tests/data/grading_golden.jsonl.
CORPUS_MIN_AGREEING = 354
CORPUS_MIN_AGREEING_UNFLAGGED = 338
CORPUS_MAX_FALSE_POSITIVES = 0


@needs_corpus
def test_whole_grading_corpus(grader: Grader) -> None:
    results = _corpus_verdicts(grader)
    agree = sum(equal == row["label"] for row, equal in results)
    false_pos = sum(equal and not row["label"] for row, equal in results)
    unflagged = [(row, equal) for row, equal in results if not row.get("flags")]
    agree_unflagged = sum(equal == row["label"] for row, equal in unflagged)
    print(f"\ngrading corpus: {agree}/{len(results)} = {agree / len(results):.1%} agree with the labels; "
          f"unflagged {agree_unflagged}/{len(unflagged)}; false positives {false_pos}")
    assert len(results) == 372
    assert agree >= CORPUS_MIN_AGREEING
    assert agree_unflagged >= CORPUS_MIN_AGREEING_UNFLAGGED and agree_unflagged / len(unflagged) >= 0.97
    assert false_pos <= CORPUS_MAX_FALSE_POSITIVES


@needs_real
def test_real_outputs_qwen25math(grader: Grader) -> None:
    """800 real responses: we disagree with the source's labels on 9, all source errors: problem 3's gold
    was truncated to "4:30p.." (the answers say 4:30 p.m.), and problem 72's "10000" was marked wrong
    against the gold "10{,}000"."""
    rows = [json.loads(line) for line in REAL.read_text(encoding="utf-8").splitlines()]
    problems = {str(r["idx"]): Problem(str(r["idx"]), "math", r["question"], r["gt"]) for r in rows}
    completions = [c for r in rows for c in _completions(str(r["idx"]), r["code"])]
    labels = {(str(r["idx"]), k): s for r in rows for k, s in enumerate(r["score"])}
    grades = grader.grade_many(problems, completions)
    assert Counter(g.status for g in grades) == Counter({"ok": 800})
    disagree = sorted((g.problem_id, g.sample_index) for g in grades if g.correct != labels[(g.problem_id, g.sample_index)])
    print(f"\nreal outputs: {sum(g.correct for g in grades)}/800 correct; {len(disagree)} disagree with the source")
    assert disagree == [("3", k) for k in range(8)] + [("72", 7)]


def test_truncated_samples_only_count_a_closed_box(grader: Grader) -> None:
    problem = Problem("cut", "t", "q", "5")
    text = "Some long reasoning. " * 10 + "The answer is 5."
    cut = [Completion("cut", 0, None, text, 100, "length"), Completion("cut", 1, None, text, 100, "stop"),
           Completion("cut", 2, None, text, None, None), Completion("cut", 3, None, text + " \\boxed{5}", 9, "length")]
    grades = grader.grade(problem, cut)
    assert [g.correct for g in grades] == [False, True, True, True]
    assert grades[0].status == "no_answer" and grades[0].reason == "no final answer (truncated)"


def test_check_many_matches_check(grader: Grader) -> None:
    pairs = [("0.5", "\\frac12", "math"), ("x=3", "3", "math"), ("025", "25", "integer"), ("", "1", "math"),
             ("Evelyn", "\\text{evelyn}", "text"), ("x" * 3000, "1", "math"), ("(1,2)", "(2,1)", "math")]
    many = grader.check_many(pairs)
    assert [(v.equal, v.status) for v in many] == [
        (True, "ok"), (True, "ok"), (True, "ok"), (False, "no_answer"), (True, "ok"), (False, "unparsable"),
        (False, "ok")]
    assert many == [grader.check(*pair) for pair in pairs]


def test_vote_keys_match_exhaustive_clustering() -> None:
    """The in-process and signature shortcuts never change a vote key: on synthetic answers to 40 MATH500 golds,
    plus wrong answers that are equivalent only symbolically, keys equal those of clustering every pair of wrong
    answers in a worker."""
    import sys as _sys

    _sys.path.insert(0, str(REPO / "bench"))
    from synth_answers import load_golds, synthetic_run

    from harness.grading import votes

    golds = load_golds(DATA / "math500.jsonl")[::12][:40]
    triples = synthetic_run(golds, 24, seed=3)
    tricky = {"\\sqrt{2}": ["2\\sqrt{2}", "\\sqrt{8}", "\\frac{4}{\\sqrt{2}}", "x = \\sqrt{8}", "\\sqrt{3}", "2.8284271",
                           "no solution", "\\text{No solution}", "\\sqrt{2}"],
              "(1, 2)": ["(2, 1)", "\\left(2, 1\\right)", "(2, 1.0)", "(1, 3)", "(1, 2)"]}
    golds += [(f"tricky-{gold}", gold) for gold in tricky]
    triples += [(f"tricky-{gold}", gold, a) for gold, answers in tricky.items() for a in answers]
    problems = {pid: Problem(pid, "math500", "", gold) for pid, gold in golds}
    completions = [Completion(pid, i, None, f"\\boxed{{{a}}}", None, "stop")
                   for i, (pid, _, a) in enumerate(triples)]
    with Grader(workers=2) as fast_grader:
        fast = fast_grader.grade_many(problems, completions)
    with Grader(workers=2) as slow_grader, pytest.MonkeyPatch.context() as mp:
        mp.setattr(votes, "fast_verdict", lambda *args: None)  # every pair goes to a worker
        mp.setattr(votes, "surely_different", lambda a, b: False)
        mp.setattr(votes, "MAX_CLUSTER_COMPARISONS", 10_000)
        slow = slow_grader.grade_many(problems, completions)
    assert [g.correct for g in fast] == [g.correct for g in slow]

    def partition(grades: list[Grade]) -> set[frozenset[tuple[str, int]]]:
        groups: dict[tuple[str, str | None], set[tuple[str, int]]] = {}
        for g in grades:
            groups.setdefault((g.problem_id, g.vote_key), set()).add((g.problem_id, g.sample_index))
        return {frozenset(v) for v in groups.values()}

    assert partition(fast) == partition(slow)
