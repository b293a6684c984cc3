"""configs/baselines.csv: loading, unit conversion, and one-line errors for malformed rows."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from harness.baselines import DEFAULT_BASELINES, Baseline, load_baselines

SHARED_COPY = Path(__file__).parents[2] / "shared" / "data" / "baselines.csv"
HEADER = "series,model,benchmark,metric,accuracy_pct,avg_output_tokens,samples_k,sampling,source,verified\n"


def test_default_file_is_the_repo_copy() -> None:
    assert DEFAULT_BASELINES == Path(__file__).parents[1] / "configs" / "baselines.csv"
    assert DEFAULT_BASELINES.is_file()
    if SHARED_COPY.is_file():  # the repo copy must stay byte-identical to the curated source
        assert DEFAULT_BASELINES.read_bytes() == SHARED_COPY.read_bytes()


def test_counts_match_the_csv() -> None:
    rows = load_baselines()
    assert len(rows) == 33
    with DEFAULT_BASELINES.open(newline="", encoding="utf-8") as handle:
        raw = list(csv.DictReader(handle))
    raw_aime_with_tokens = [r for r in raw if r["benchmark"] == "aime24" and r["avg_output_tokens"]]
    aime_with_tokens = [b for b in load_baselines(benchmark="aime24") if b.avg_output_tokens is not None]
    # o1-preview, o1-mini, O1-Journey Ours-72B and six s1 budget-forcing points.
    assert len(aime_with_tokens) == len(raw_aime_with_tokens) == 9
    assert len([b for b in load_baselines(benchmark="math500") if b.avg_output_tokens is not None]) == 3


def test_row_values_and_percent_to_fraction() -> None:
    aime = {(b.series, b.metric, b.avg_output_tokens): b for b in load_baselines(benchmark="AIME24")}
    ours = aime[("O1-Journey Ours-72B", "accuracy", 8016.0)]
    assert ours == Baseline(
        series="O1-Journey Ours-72B",
        model="Qwen2.5-Math-72B SFT on o1-mini distilled data",
        benchmark="aime24",
        metric="accuracy",
        accuracy=0.433,
        avg_output_tokens=8016.0,
        samples_k=None,
        sampling="not stated",
        source="O1-Journey Part 2 report, Table 1; 13/30",
        verified="primary",
    )
    assert aime[("o1-mini (O1-Journey API run)", "accuracy", 9903.0)].accuracy == 0.7
    cons = aime[("o1-preview (OpenAI report)", "cons@64", None)]
    assert (cons.accuracy, cons.samples_k) == (0.567, 64)
    assert all(0.0 <= b.accuracy <= 1.0 for b in load_baselines())


def test_benchmark_filter() -> None:
    math500 = load_baselines(benchmark="math500")
    assert math500 and {b.benchmark for b in math500} == {"math500"}
    assert load_baselines(benchmark="gsm8k") == []


def _write(tmp_path: Path, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "b.csv"
    path.write_text(header + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


GOOD = "s,m,aime24,accuracy,40.0,9083,1,greedy,src,primary"


@pytest.mark.parametrize(
    ("bad_row", "phrase"),
    [
        ("s,m,aime24,accuracy,forty,9083,1,,src,primary", "accuracy_pct must be a number"),
        ("s,m,aime24,accuracy,0.4e3,9083,1,,src,primary", "accuracy_pct must be in [0, 100]"),
        ("s,m,aime24,accuracy,40,-5,1,,src,primary", "avg_output_tokens must be > 0"),
        ("s,m,aime24,accuracy,40,lots,1,,src,primary", "avg_output_tokens must be a number"),
        ("s,m,aime24,accuracy,40,9083,1.5,,src,primary", "samples_k must be an integer"),
        ("s,m,aime24,accuracy,40,nan,1,,src,primary", "finite"),
        ("s,m,,accuracy,40,9083,1,,src,primary", "benchmark is empty"),
        ("s,m,aime24,accuracy,40,9083,1,,src,primary,extra", "more fields"),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path: Path, bad_row: str, phrase: str) -> None:
    path = _write(tmp_path, GOOD, bad_row)
    with pytest.raises(ValueError) as info:
        load_baselines(path)
    message = str(info.value)
    assert message.startswith(f"{path}:3: ")
    assert phrase in message
    assert "\n" not in message


def test_good_custom_file(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD, "t,m,math500,pass@1,90,,,,src,primary")
    first, second = load_baselines(path)
    assert (first.accuracy, first.avg_output_tokens, first.samples_k) == (0.4, 9083.0, 1)
    assert (second.accuracy, second.avg_output_tokens, second.samples_k) == (0.9, None, None)


def test_missing_column_and_missing_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "s,m,aime24", header="series,model,benchmark\n")
    with pytest.raises(ValueError, match=r":1: header lacks column\(s\) \['metric'"):
        load_baselines(path)
    with pytest.raises(ValueError, match="baselines file not found"):
        load_baselines(tmp_path / "nope.csv")
