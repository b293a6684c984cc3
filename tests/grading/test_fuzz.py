"""Fuzzing: random LaTeX-like answers and responses never crash or hang the grader.

Each generated answer goes through the whole grader (extraction, normalisation, the in-process fast path and
the worker pool): every call must return a well-formed verdict within the deadline plus a second, whatever
the input.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.grading import Grader
from harness.types import GRADE_STATUSES, Completion, Problem

DEADLINE = 1.0

_TOKENS = st.sampled_from([
    "1", "2", "0", "9", "12", ".", ",", "x", "y", "i", "e", "+", "-", "*", "/", "^", "_", "=", "<", "\\leq", "(", ")",
    "[", "]", "{", "}", "\\{", "\\}", "\\frac", "\\dfrac", "\\sqrt", "\\pi", "\\infty", "\\cup", "\\pm", "\\%",
    "^\\circ", "\\text{", "and", "\\begin{pmatrix}", "\\end{pmatrix}", "&", "\\\\", "\\boxed{", "$", "!", ":",
    "\\left(", "\\right)", " ", "sin(", "**", "'", "\\overline{", "p.m.", "\\cdot", "\\times", "10^{", "\\ln",
])
_LATEXISH = st.lists(_TOKENS, max_size=24).map("".join)
_ANY = st.one_of(_LATEXISH, st.text(max_size=60))


@pytest.fixture(scope="module")
def grader() -> Iterator[Grader]:
    with Grader(workers=2, deadline_s=DEADLINE) as g:
        yield g


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pred=_ANY, gold=_LATEXISH, answer_type=st.sampled_from(["math", "math", "integer", "text"]))
def test_random_answers_never_crash_or_hang(grader: Grader, pred: str, gold: str, answer_type: str) -> None:
    start = time.monotonic()
    verdict = grader.check(pred, gold or "1", answer_type)
    assert time.monotonic() - start < DEADLINE + 1.0
    assert verdict.status in GRADE_STATUSES and verdict.reason
    assert not verdict.equal or verdict.status == "ok"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.lists(_ANY, max_size=4).map(" ".join), min_size=1, max_size=6), gold=_LATEXISH,
       finish=st.sampled_from([None, "stop", "length"]))
def test_random_responses_grade_cleanly(grader: Grader, texts: list[str], gold: str, finish: str | None) -> None:
    problem = Problem("fuzz", "t", "q", gold or "1")
    completions = [Completion("fuzz", i, None, t, None, finish) for i, t in enumerate(texts)]  # type: ignore[arg-type]
    start = time.monotonic()
    grades = grader.grade(problem, completions)
    # One round trip for the gold checks and one for the vote keys, each call under its own deadline.
    assert time.monotonic() - start < 2 * len(texts) * DEADLINE + 2.0
    assert [g.sample_index for g in grades] == list(range(len(texts)))
    for g in grades:
        assert g.status in GRADE_STATUSES and g.reason
        assert (g.vote_key is None) == (g.status == "no_answer")
