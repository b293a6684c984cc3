"""Published reference results (o1, DeepSeek-R1, s1, ...) to draw beside a run's curve.

The table lives in ``configs/baselines.csv``: one row per reported number, with its source and how it was
obtained. Rows with ``avg_output_tokens`` can be placed on the accuracy-vs-tokens plot; the others are
reported numbers without a cost and only appear in tables.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

DEFAULT_BASELINES = Path(__file__).parents[1] / "configs" / "baselines.csv"

COLUMNS: tuple[str, ...] = (
    "series",
    "model",
    "benchmark",
    "metric",
    "accuracy_pct",
    "avg_output_tokens",
    "samples_k",
    "sampling",
    "source",
    "verified",
)


@dataclass(frozen=True)
class Baseline:
    """One reported result. ``accuracy`` is a fraction in [0, 1] (the CSV stores percent).

    ``avg_output_tokens`` is the reported average output tokens per problem (None when the source gives no
    cost); ``samples_k`` the number of samples behind the number (None when not stated).
    ``verified`` says how the number was checked: primary, secondary copy, digitized (read off a figure).
    """

    series: str
    model: str
    benchmark: str
    metric: str
    accuracy: float
    avg_output_tokens: float | None
    samples_k: int | None
    sampling: str
    source: str
    verified: str


def load_baselines(path: Path | None = None, benchmark: str | None = None) -> list[Baseline]:
    """Read the baselines table.

    Takes the CSV path (default: the repository's ``configs/baselines.csv``) and optionally a benchmark
    name; when given, only rows of that benchmark are returned (compared case-insensitively).
    Returns the rows in file order. Raises ValueError naming the file (and line) when the file is missing,
    lacks a column, or a row has a bad value.
    """
    path = DEFAULT_BASELINES if path is None else Path(path)
    if not path.is_file():
        raise ValueError(f"baselines file not found: {path}; pass the path of a CSV with columns {COLUMNS}")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path}:1: header lacks column(s) {missing}; expected {COLUMNS}")
        rows: list[Baseline] = []
        for row in reader:
            # line_num is the line the row ends on, which is right for rows without embedded newlines.
            rows.append(_parse_row(row, f"{path}:{reader.line_num}"))
    if benchmark is not None:
        wanted = benchmark.strip().lower()
        rows = [r for r in rows if r.benchmark.lower() == wanted]
    return rows


def _parse_row(row: dict[str, str | None], where: str) -> Baseline:
    """Turn one CSV row into a Baseline; ``where`` ("file:line") prefixes every error message."""
    if None in row:  # csv puts surplus fields under the key None
        raise ValueError(f"{where}: more fields than the {len(COLUMNS)} columns; quote values containing commas")
    values = {k: (v or "").strip() for k, v in row.items() if k is not None}
    for name in ("series", "model", "benchmark", "metric"):
        if not values[name]:
            raise ValueError(f"{where}: {name} is empty; every row needs series, model, benchmark and metric")
    try:
        pct = float(values["accuracy_pct"])
    except ValueError:
        raise ValueError(f"{where}: accuracy_pct must be a number in [0, 100], got {values['accuracy_pct']!r}") from None
    if not 0.0 <= pct <= 100.0:
        raise ValueError(f"{where}: accuracy_pct must be in [0, 100] (percent, not a fraction), got {pct}")
    tokens = _optional_number(values["avg_output_tokens"], "avg_output_tokens", where)
    if tokens is not None and tokens <= 0:
        raise ValueError(f"{where}: avg_output_tokens must be > 0 or empty, got {tokens}")
    k = _optional_number(values["samples_k"], "samples_k", where)
    if k is not None and (k != int(k) or k < 1):
        raise ValueError(f"{where}: samples_k must be an integer >= 1 or empty, got {values['samples_k']!r}")
    return Baseline(
        series=values["series"],
        model=values["model"],
        benchmark=values["benchmark"],
        metric=values["metric"],
        # Rounded so that 43.3 % reads back as 0.433 rather than 0.43299999999999994.
        accuracy=round(pct / 100.0, 12),
        avg_output_tokens=tokens,
        samples_k=None if k is None else int(k),
        sampling=values["sampling"],
        source=values["source"],
        verified=values["verified"],
    )


def _optional_number(text: str, name: str, where: str) -> float | None:
    """Parse a number that may be left empty (None); raise ValueError naming the column otherwise."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: {name} must be a number or empty, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}: {name} must be a finite number or empty, got {text!r}")
    return value
