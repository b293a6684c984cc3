"""Benchmarks: bundled files match their recorded checksums; custom files fail loudly and precisely."""

import json
from pathlib import Path

import pytest

from harness.benchmarks import BenchmarkError, ids_hash, load_benchmark, read_ids_file, select

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_aime24_is_30_integer_problems_in_contest_order():
    bench = load_benchmark("aime24")
    assert bench.version == "aime24-v1"
    assert len(bench.problems) == 30
    assert bench.problems[0].id == "2024-I-1" and bench.problems[-1].id == "2024-II-15"
    assert {p.answer_type for p in bench.problems} == {"integer"}
    assert all(0 <= int(p.answer) <= 999 for p in bench.problems)
    assert bench.problems[0].answer == "204"


def test_math500_counts_match_the_source_card():
    bench = load_benchmark("math500")
    assert len(bench.problems) == 500
    levels = {}
    for p in bench.problems:
        levels[p.metadata["level"]] = levels.get(p.metadata["level"], 0) + 1
    assert levels == {1: 43, 2: 90, 3: 105, 4: 128, 5: 134}


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared not beside the checkout")
def test_bundled_files_are_byte_copies_of_shared_data():
    for name in ("aime24", "math500"):
        assert load_benchmark(name).path.read_bytes() == (SHARED / f"{name}.jsonl").read_bytes()


def test_unknown_name_suggests_the_closest():
    with pytest.raises(BenchmarkError, match=r"did you mean 'aime24'"):
        load_benchmark("aime2024")


def test_custom_file_and_aliases(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"idx": 7, "question": "1+1?", "gt": "2", "level": 1}) + "\n"
                    + json.dumps({"id": "b", "problem": "Name?", "answer": "Evelyn", "answer_type": "text"}) + "\n")
    bench = load_benchmark(str(path))
    assert [p.id for p in bench.problems] == ["7", "b"]
    assert bench.problems[0].answer == "2" and bench.problems[0].metadata == {"level": 1}
    assert bench.problems[1].answer_type == "text"
    assert bench.version.startswith("file-")


@pytest.mark.parametrize("lines, message", [
    (['{"id": "a", "problem": "p", "answer": "1"}', '{"id": "b", "problem": "p"'], r"mine\.jsonl:2: not valid JSON"),
    (['{"id": "a", "problem": "p"}'], r"mine\.jsonl:1: missing field 'answer'"),
    (['{"id": "a", "problem": "p", "answer": "1"}', '{"id": "a", "problem": "q", "answer": "2"}'],
     r"mine\.jsonl:2: duplicate id 'a' \(first on line 1\)"),
    (['[1, 2]'], r"mine\.jsonl:1: expected a JSON object"),
    (['{"id": "a", "problem": "p", "answer": "1", "answer_type": "float"}'], r":1: answer_type must be one of"),
])
def test_malformed_custom_file_names_file_and_line(tmp_path, lines, message):
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BenchmarkError, match=message):
        load_benchmark(str(path))


def test_missing_custom_file(tmp_path):
    with pytest.raises(BenchmarkError, match="no such benchmark file"):
        load_benchmark(str(tmp_path / "nope.jsonl"))


def test_select_ids_then_limit(tmp_path):
    problems = load_benchmark("aime24").problems
    ids = tmp_path / "ids.txt"
    ids.write_text("2024-II-1  # a comment\n\n2024-I-3\n2024-I-2\n")
    chosen = select(problems, ids=read_ids_file(ids), limit=2)
    assert [p.id for p in chosen] == ["2024-I-2", "2024-I-3"]
    with pytest.raises(BenchmarkError, match="unknown problem id"):
        select(problems, ids=["2024-III-1"])
    with pytest.raises(BenchmarkError, match="--limit must be >= 1"):
        select(problems, limit=0)
    assert ids_hash(chosen) != ids_hash(problems[:2])
