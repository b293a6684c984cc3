"""Reading recorded outputs: the native format on small files, the two real-world formats on real files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.samplers.replay import FORMATS, ReplayError, read_replay
from harness.types import Problem

REPO = Path(__file__).resolve().parent.parent
SHARED = next((p for p in (REPO / "shared" / "data", REPO.parent / "shared" / "data") if p.is_dir()), None)
needs_shared = pytest.mark.skipif(SHARED is None, reason="needs the shared data folder (../shared/data)")

PROBLEMS = [
    Problem(id=f"p{i}", benchmark="toy", question=f"What is {i}+{i}?", answer=str(2 * i)) for i in range(3)
]


def _write(path: Path, rows: list[Any]) -> Path:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def _aime24() -> list[Problem]:
    assert SHARED is not None
    rows = [json.loads(line) for line in (SHARED / "aime24.jsonl").read_text(encoding="utf-8").splitlines()]
    return [
        Problem(
            id=r["id"], benchmark="aime24", question=r["problem"], answer=r["answer"], answer_type="integer"
        )
        for r in rows
    ]


def test_native_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "s.jsonl",
        [
            {"problem_id": "p0", "response": "a", "output_tokens": 5, "finish_reason": "stop"},
            {"problem_id": "p1", "response": "b", "output_tokens": 7, "finish_reason": "length", "seed": 42},
            "",  # blank lines are skipped
            {"problem_id": "p0", "response": "c", "output_tokens": 0, "finish_reason": None},
            {"problem_id": "p1", "response": "d", "sample_index": 5, "output_tokens": 3},
        ],
    )
    data = read_replay(path, "native", PROBLEMS)
    got = [
        (c.problem_id, c.sample_index, c.text, c.output_tokens, c.finish_reason, c.seed)
        for c in data.completions
    ]
    assert got == [
        ("p0", 0, "a", 5, "stop", None),
        ("p1", 0, "b", 7, "length", 42),
        ("p0", 1, "c", 0, None, None),
        ("p1", 5, "d", 3, None, None),
    ]
    assert data.token_note is None
    assert data.field_map["text"] == "response"


def test_native_without_counts_says_so(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "s.jsonl",
        [{"problem_id": "p0", "response": "a", "output_tokens": 4}, {"problem_id": "p0", "response": "b"}],
    )
    data = read_replay(path, "native", PROBLEMS)
    assert [c.output_tokens for c in data.completions] == [4, None]
    assert data.token_note is not None and data.token_note.startswith(
        "1 of 2 completions have no token count"
    )


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [
                {"problem_id": "p0", "response": "a"},
                {"problem_id": "p0", "response": "b"},
                '{"problem_id": "p1", "resp',
            ],
            r"s\.jsonl:3: malformed JSON",
        ),
        (
            [{"problem_id": "p0", "response": "a"}, {"problem_id": "p1"}],
            r"s\.jsonl:2: missing required field 'response'",
        ),
        ([{"response": "a"}], r"s\.jsonl:1: missing required field 'problem_id'"),
        (
            [
                {"problem_id": "p0", "response": "a", "sample_index": 1},
                {"problem_id": "p0", "response": "b"},
                {"problem_id": "p0", "response": "c", "sample_index": 1},
            ],
            r"s\.jsonl:3: duplicate sample: problem 'p0' sample 1 already on line 1",
        ),
        (
            [{"problem_id": "p9", "response": "a"}],
            r"s\.jsonl:1: problem 'p9' is not in the benchmark \(toy\).*--bench",
        ),
        (
            [{"problem_id": "p0", "response": "a", "finish_reason": "eos"}],
            r"s\.jsonl:1: finish_reason must be one of",
        ),
        (
            [{"problem_id": "p0", "response": "a", "output_tokens": -1}],
            r"s\.jsonl:1: field 'output_tokens' must be >= 0",
        ),
        (
            [{"problem_id": "p0", "response": "a", "output_tokens": "12"}],
            r"s\.jsonl:1: field 'output_tokens' has the wrong",
        ),
        (
            [{"problem_id": "p0", "response": "a", "output_tokens": True}],
            r"s\.jsonl:1: field 'output_tokens' has the wrong",
        ),
        ([[1, 2]], r"s\.jsonl:1: expected a JSON object"),
        ([""], r"s\.jsonl: no samples in the file"),
    ],
)
def test_native_errors_name_the_line(tmp_path: Path, rows: list[Any], message: str) -> None:
    path = _write(tmp_path / "s.jsonl", rows)
    with pytest.raises(ReplayError, match=message) as info:
        read_replay(path, "native", PROBLEMS)
    assert "\n" not in str(info.value)


def test_bytes_that_are_not_utf8_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    good = json.dumps({"problem_id": "p0", "response": "a"}).encode()
    path.write_bytes(b"\xef\xbb\xbf" + good + b"\n" + good.replace(b'"a"', b'"\xff"') + b"\n")
    with pytest.raises(ReplayError, match=r"b\.jsonl:2: not UTF-8 text"):
        read_replay(path, "native", PROBLEMS)
    path.write_bytes(b"\xef\xbb\xbf" + good + b"\r\n")  # a BOM and CRLF line ends are fine
    assert [c.text for c in read_replay(path, "native", PROBLEMS).completions] == ["a"]


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    assert set(FORMATS) == {"native", "qwen-maj", "deepscaler"}
    with pytest.raises(ReplayError, match="did you mean 'qwen-maj'"):
        read_replay(tmp_path / "x.jsonl", "qwen_maj", PROBLEMS)
    with pytest.raises(ReplayError, match="does not exist"):
        read_replay(tmp_path / "x.jsonl", "native", PROBLEMS)


@needs_shared
def test_qwen_maj_real_file() -> None:
    assert SHARED is not None
    path = SHARED / "real" / "qwen25math-cot-100-n8" / "math_cot_100.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    problems = [
        Problem(id=str(r["idx"]), benchmark="qwen-math-cot-100", question=r["question"], answer=r["gt"])
        for r in rows
    ]
    data = read_replay(path, "qwen-maj", problems)
    assert len(data.completions) == 800
    assert len({c.problem_id for c in data.completions}) == 100
    by_key = {(c.problem_id, c.sample_index): c for c in data.completions}
    assert set(by_key) == {(p.id, i) for p in problems for i in range(8)}
    row = rows[37]
    assert [by_key[(str(row["idx"]), i)].text for i in range(8)] == row["code"]
    assert all(
        c.output_tokens is None and c.finish_reason is None and c.seed is None for c in data.completions
    )
    assert data.token_note is not None and data.token_note.startswith(
        "800 of 800 completions have no token count"
    )
    assert data.field_map["problem_id"] == "str(idx)"


@needs_shared
def test_qwen_maj_rejects_code_and_response_that_differ(tmp_path: Path) -> None:
    assert SHARED is not None
    first = (SHARED / "real" / "qwen25math-cot-100-n8" / "math_cot_100.jsonl").read_text().splitlines()[0]
    row = json.loads(first)
    row["response"] = row["response"][:-1]
    problems = [Problem(id=str(row["idx"]), benchmark="b", question=row["question"], answer=row["gt"])]
    with pytest.raises(ReplayError, match=r"q\.jsonl:1: fields 'code' and 'response' differ"):
        read_replay(_write(tmp_path / "q.jsonl", [row]), "qwen-maj", problems)


@needs_shared
def test_deepscaler_real_file_matches_by_question() -> None:
    assert SHARED is not None
    path = SHARED / "real" / "deepscaler-1.5b-aime24-budget-sweep" / "max_tokens_8192.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    problems = _aime24()
    data = read_replay(path, "deepscaler", problems)
    assert len(data.completions) == 30
    assert sorted(c.problem_id for c in data.completions) == sorted(p.id for p in problems)
    assert {c.sample_index for c in data.completions} == {0}
    # The source ids 60..89 run in the order of the ids as strings (2024-I-1, 2024-I-10, ...), not contest
    # order: matching by question gets it right, which the gold answers confirm.
    answers = {p.id: p.answer for p in problems}
    for row, c in zip(rows, data.completions, strict=True):
        assert c.text == row["generated_responses"][0]
        assert answers[c.problem_id] == row["gold_answer"].lstrip("0")
    assert data.completions[1].problem_id == "2024-I-10"
    assert data.token_note is not None and "30 of 30" in data.token_note


@needs_shared
def test_deepscaler_against_the_wrong_benchmark() -> None:
    assert SHARED is not None
    path = SHARED / "real" / "deepscaler-1.5b-aime24-budget-sweep" / "max_tokens_128.jsonl"
    with pytest.raises(
        ReplayError, match=r"max_tokens_128\.jsonl:1: problem '60' is not in the benchmark \(toy\)"
    ):
        read_replay(path, "deepscaler", PROBLEMS)


@pytest.mark.slow
def test_tokenizer_counts_missing_tokens(tmp_path: Path, tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    texts = ["The answer is $\\boxed{42}$.", "Let x = 3. Then 2x = 6."]
    path = _write(
        tmp_path / "s.jsonl",
        [
            {"problem_id": "p0", "response": texts[0]},
            {"problem_id": "p1", "response": texts[1], "output_tokens": 99},
        ],
    )
    data = read_replay(path, "native", PROBLEMS, tokenizer=str(tiny_model_dir))
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert [c.output_tokens for c in data.completions] == [
        len(tok(texts[0], add_special_tokens=False)["input_ids"]),
        99,
    ]
    assert data.token_note is not None and "re-counted by tokenising the text" in data.token_note
    with pytest.raises(ReplayError, match="could not load tokenizer"):
        read_replay(path, "native", PROBLEMS, tokenizer=str(tmp_path / "nothing-here"))
