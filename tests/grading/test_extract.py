"""Extraction of the final answer from a response (pure functions; exact expectations)."""

from __future__ import annotations

import time

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from harness.grading.extract import (
    EXTRACT_TAIL_CHARS,
    MAX_RUN,
    SHORT_RESPONSE_CHARS,
    Extraction,
    extract_answer,
)

LONG = "Some reasoning about the problem that goes on for a while, " * 3  # longer than SHORT_RESPONSE_CHARS

CASES = [
    # (response, expected answer, expected method)
    ("So the answer is $\\boxed{42}$.", "42", "boxed"),
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", "boxed"),
    ("nested \\boxed{\\left\\{ 1, \\frac{2}{3} \\right\\}} end", "\\left\\{ 1, \\frac{2}{3} \\right\\}", "boxed"),
    ("\\fbox{7}", "7", "boxed"),
    ("\\boxed{1} then \\fbox{9}", "9", "boxed"),
    ("the result is $\\boxed 5$.", "5", "boxed"),
    ("\\boxed {  x+1  }", "x+1", "boxed"),
    ("\\boxed{\\boxed{7}}", "7", "boxed"),
    # Several boxes: the last one, unless a run of boxes joined only by commas/"and"/"or" ends the response.
    ("first \\boxed{1} then \\boxed{2} and finally \\boxed{3}", "3", "boxed"),
    ("\\boxed{42} is the number of pairs; their sum is \\boxed{277}.", "277", "boxed"),
    ("First \\boxed{1}. Then \\boxed{2}.", "2", "boxed"),
    ("\\boxed{1}, \\boxed{2}, \\boxed{3}", "1, 2, 3", "boxed_list"),
    ("\\boxed{1} and \\boxed{2} and \\boxed{3}", "1, 2, 3", "boxed_list"),
    ("\\boxed{(2, 2)} \\quad \\text{and} \\quad \\boxed{(6, 2)}", "(2, 2), (6, 2)", "boxed_list"),
    ("roots \\(\\boxed{1}\\) and \\(\\boxed{-2}\\).", "1, -2", "boxed_list"),
    ("$\\boxed{1}\\boxed{2}$", "1, 2", "boxed_list"),
    ("\\boxed{3} or \\boxed{4}", "3, 4", "boxed_list"),
    ("\\boxed{5}, \\boxed{5}", "5", "boxed"),  # duplicates dropped
    ("\\boxed{x=1, y=2}, \\boxed{x=3, y=4}", "x=1, y=2; x=3, y=4", "boxed_list"),  # list parts keep their groups
    ("so \\(x = \\boxed{2}\\) and \\(y = \\boxed{5}\\)", "x = 2, y = 5", "boxed_list"),  # names kept
    ("x = \\boxed{5}", "5", "boxed"),
    ("\\boxed{(3, 3)} \\text{ for part (a) and } \\boxed{(1, 1)}", "(1, 1)", "boxed"),  # prose between: separate
    # Reasoning sections and truncation.
    ("<think>maybe \\boxed{3}</think> The answer is \\boxed{4}.", "4", "boxed"),
    ("<think>long reasoning \\boxed{3} and then the budget ran out", None, "unclosed_think"),
    ("reasoning without an opening tag</think>\\boxed{8}", "8", "boxed"),
    ("We get \\boxed{12", None, "unclosed_box"),
    ("\\boxed{5} was a guess; the real one is \\boxed{", None, "unclosed_box"),
    ("\\boxed{}", None, "empty_box"),
    # Chat-template leftovers: a hallucinated next turn is cut.
    ("The answer is \\boxed{3}.<|im_end|>\n<|im_start|>user\nWhat is \\boxed{9}?", "3", "boxed"),
    # "Answer is" phrases.
    ("Final Answer: The final answer is $28 \\%$. I hope it is correct.", "28 \\%", "answer_is"),
    ("The answer is 12,000,023. I hope it is correct.", "12,000,023", "answer_is"),
    ("The final answer is 16386.16.", "16386.16", "answer_is"),
    ("Final Answer: The largest $n$ is 34.", "34", "answer_is"),
    ("Final Answer: Jane started growing Sphere 3 hours ago. I hope it is correct.", "3", "answer_is"),
    ("So the answer is: \\( (7, 6) \\) done", "(7, 6)", "answer_is"),
    ("Answer \\[ 9 \\]", "9", "answer_is"),
    ("The answer is $5$. Let me double-check the answer.", "5", "answer_is"),
    ("Answer $ \\frac{1}{2} \\$ = 3 $", "\\frac{1}{2} \\$ = 3", "answer_is"),
    # A "final answer" stated after the last box wins: the boxes were intermediate results.
    ("$0.05 \\cdot 10,200 = \\boxed{255}$ so she has $10,455. Final Answer: The final answer is $10,455$.",
     "10,455", "final_answer_after_box"),
    ("\\boxed{5}. We can check that the answer is correct.", "5", "boxed"),
    # Math only.
    ("$[0,1)$", "[0,1)", "math_only"),
    ("  $$ \\frac{3}{4} $$  ", "\\frac{3}{4}", "math_only"),
    # The fallback: last math block (or run of blocks) of the final sentence, else its last number.
    ("Therefore $x \\geq 5$ is the solution.", "x \\geq 5", "final_sentence"),
    ("The identity matrix is $ \\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix} $.",
     "\\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}", "final_sentence"),
    ("We had $y = 2$ before. So the pair is $(7, 6)$.", "(7, 6)", "final_sentence"),
    ("$1$ and $2$ and $3$", "1, 2, 3", "final_sentence"),
    ("Thus the probability that Alice wins is 2/3. <|im_start|>user", "2/3", "final_sentence"),
    ("So there are 12 sequences that meet the three conditions. I hope it is correct.", "12", "final_sentence"),
    ("$$x = \\frac{a}{b}.$$ Therefore, the error increases by 100%.", "100%", "final_sentence"),
    ("$1,000.99", "1,000.99", "final_sentence"),
    ("$28$ percent", "28", "final_sentence"),
    ("No final answer here, just prose.", None, "none"),
    ("", None, "none"),
]


@pytest.mark.parametrize(("response", "answer", "method"), CASES)
def test_extraction_rules(response: str, answer: str | None, method: str) -> None:
    assert extract_answer(response) == Extraction(answer, method)


def test_truncated_responses_only_count_a_closed_box() -> None:
    stated = LONG + "The answer is 5."
    assert extract_answer(stated, truncated=True) == Extraction(None, "truncated")
    assert extract_answer(stated, truncated=False) == Extraction("5", "answer_is")
    assert extract_answer(LONG + "so \\boxed{5}.", truncated=True) == Extraction("5", "boxed")
    assert extract_answer(LONG + "so \\boxed{5", truncated=True) == Extraction(None, "unclosed_box")


def test_fallback_needs_a_finished_looking_response_when_the_finish_is_unknown() -> None:
    cut = LONG + "and we find $x = 5$ after substituting the value into the second"
    assert len(cut) > SHORT_RESPONSE_CHARS
    assert extract_answer(cut) == Extraction(None, "none")  # ends mid-sentence: probably cut off
    assert extract_answer(cut, truncated=False) == Extraction("x = 5", "final_sentence")  # known to be finished
    assert extract_answer(cut + ".") == Extraction("x = 5", "final_sentence")
    assert extract_answer("$28$ %") == Extraction("28", "final_sentence")  # short: any ending


def test_boxes_are_never_concatenated() -> None:
    assert extract_answer("\\boxed{1}\\boxed{2}").answer == "1, 2"
    assert extract_answer("\\boxed{42} in total, so \\boxed{277}").answer == "277"


def test_huge_response_without_box_is_fast() -> None:
    text = "$" * 500_000 + "x" * 500_000  # 1 MB of unmatched delimiters and junk
    start = time.perf_counter()
    assert extract_answer(text).answer is None
    many_boxes = "".join(f"\\boxed{{{i}}}, " for i in range(100_000))  # a run of 100,000 boxes
    found = extract_answer(many_boxes)
    assert found.method == "boxed_list" and found.answer is not None
    assert found.answer.split(", ") == [str(i) for i in range(100_000 - MAX_RUN, 100_000)]  # the last MAX_RUN
    assert time.perf_counter() - start < 2.0


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
    assume("<think>" not in content and "</think>" not in content and "<|" not in content)
    prefix = prefix.replace("\\", "").replace("<think>", "").replace("<|", "")
    result = extract_answer(f"{prefix} prose \\boxed{{{content}}} done")
    if content.strip():
        assert result == Extraction(content.strip(), "boxed")
    else:
        assert result == Extraction(None, "empty_box")


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300), truncated=st.sampled_from([None, True, False]))
def test_never_raises(text: str, truncated: bool | None) -> None:
    result = extract_answer(text, truncated=truncated)
    no_answer = ("none", "unclosed_think", "unclosed_box", "empty_box", "truncated")
    assert (result.answer is None) == (result.method in no_answer)
    assert result.answer is None or (isinstance(result.answer, str) and result.answer)
