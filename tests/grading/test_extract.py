"""Extraction of the final answer from a response (pure functions; exact expectations)."""

from __future__ import annotations

import time

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from harness.grading.extract import EXTRACT_TAIL_CHARS, Extraction, extract_answer

CASES = [
    # (response, expected answer, expected method)
    ("So the answer is $\\boxed{42}$.", "42", "boxed"),
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", "boxed"),
    ("nested \\boxed{\\left\\{ 1, \\frac{2}{3} \\right\\}} end", "\\left\\{ 1, \\frac{2}{3} \\right\\}", "boxed"),
    ("first \\boxed{1} then \\boxed{2} and finally \\boxed{3}", "3", "boxed"),
    ("\\boxed{(2, 2)} \\quad \\text{and} \\quad \\boxed{(6, 2)}", "(6, 2)", "boxed"),
    ("\\fbox{7}", "7", "boxed"),
    ("\\boxed{1} then \\fbox{9}", "9", "boxed"),
    ("the result is $\\boxed 5$.", "5", "boxed"),
    ("\\boxed {  x+1  }", "x+1", "boxed"),
    ("<think>maybe \\boxed{3}</think> The answer is \\boxed{4}.", "4", "boxed"),
    ("<think>maybe \\boxed{3}</think> so it is 4, I think.", None, "none"),
    ("<think>long reasoning \\boxed{3} and then the budget ran out", None, "unclosed_think"),
    ("reasoning without an opening tag</think>\\boxed{8}", "8", "boxed"),
    ("We get \\boxed{12", None, "unclosed_box"),
    ("\\boxed{5} was a guess; the real one is \\boxed{", None, "unclosed_box"),
    ("\\boxed{}", None, "empty_box"),
    ("Final Answer: The final answer is $28 \\%$. I hope it is correct.", "28 \\%", "answer_is"),
    ("The answer is 12,000,023. I hope it is correct.", "12,000,023", "answer_is"),
    ("The final answer is 16386.16.", "16386.16", "answer_is"),
    ("Final Answer: The largest $n$ is 34.", "34", "answer_is"),
    ("So the answer is: \\( (7, 6) \\) done", "(7, 6)", "answer_is"),
    ("Answer \\[ 9 \\]", "9", "answer_is"),
    ("The answer is $5$. Let me double-check the answer.", "5", "answer_is"),
    ("Answer $ \\frac{1}{2} \\$ = 3 $", "\\frac{1}{2} \\$ = 3", "answer_is"),
    ("$[0,1)$", "[0,1)", "math_only"),
    ("  $$ \\frac{3}{4} $$  ", "\\frac{3}{4}", "math_only"),
    ("$a$ and $b$", None, "none"),
    ("No final answer here, just prose about $x$.", None, "none"),
    ("", None, "none"),
    # A "final answer" stated after the last box wins: the boxes were intermediate results.
    ("$0.05 \\cdot 10,200 = \\boxed{255}$ so she has $10,455. Final Answer: The final answer is $10,455$.",
     "10,455", "final_answer_after_box"),
    # ...but an ordinary "answer" sentence after the box does not.
    ("\\boxed{5}. We can check that the answer is correct.", "5", "boxed"),
]


@pytest.mark.parametrize(("response", "answer", "method"), CASES)
def test_extraction_rules(response: str, answer: str | None, method: str) -> None:
    assert extract_answer(response) == Extraction(answer, method)


def test_boxes_are_never_concatenated() -> None:
    result = extract_answer("\\boxed{1}, \\boxed{2}, \\boxed{3}")
    assert result.answer == "3"


def test_huge_response_without_box_is_fast() -> None:
    text = "$" * 500_000 + "x" * 500_000  # 1 MB of unmatched delimiters and junk
    start = time.perf_counter()
    assert extract_answer(text).answer is None
    assert time.perf_counter() - start < 1.0


def test_answer_phrase_only_searched_in_tail() -> None:
    early = "The answer is 7. " + "filler " * (EXTRACT_TAIL_CHARS // 7 + 10)
    assert extract_answer(early).answer is None
    assert extract_answer("filler " * 10 + "The answer is 7.").answer == "7"


_balanced = st.recursive(
    st.text(alphabet=st.characters(exclude_characters="{}\\", exclude_categories=["Cs"]), max_size=8),
    lambda inner: st.lists(inner, max_size=3).map(lambda parts: "{" + "".join(parts) + "}"),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(content=st.lists(_balanced, min_size=1, max_size=4).map("".join), prefix=st.text(max_size=50))
def test_last_box_content_round_trips(content: str, prefix: str) -> None:
    assume("<think>" not in content and "</think>" not in content)  # think tags have their own rules
    prefix = prefix.replace("\\", "").replace("<think>", "")
    result = extract_answer(f"{prefix} \\boxed{{{content}}} done")
    if content.strip():
        assert result == Extraction(content.strip(), "boxed")
    else:
        assert result == Extraction(None, "empty_box")


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300))
def test_never_raises(text: str) -> None:
    result = extract_answer(text)
    assert result.answer is None or isinstance(result.answer, str)
    assert (result.answer is None) == (result.method in ("none", "unclosed_think", "unclosed_box", "empty_box"))
