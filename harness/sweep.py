"""Import a budget sweep: one JSONL file per max_tokens cap (``max_tokens_{CAP}.jsonl``), stored as ONE run.

Storage (a "cap sweep"): the sample generated at the i-th smallest cap is sample index i of its problem, and
``info("cap_sweep") = {"caps": [...], ...}`` maps index i -> caps[i]. Each file holds one sample per problem
(DeepScaleR's evaluation output, read by the ``deepscaler`` replay format), so the run has len(caps) samples
per problem, and the analysis scores each cap on its own (``sequential.sweep_counts``), never voting across caps.
The files' own correctness labels (``is_correct``) are stored as the score ``source_correct`` (1.0 or 0.0), so
the report can set the source's accuracy per cap beside our grader's. The files carry no token counts: a cap
is only an upper bound of what a sample spent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.samplers.replay import ReplayError, read_replay
from harness.types import Completion, Problem

_FILE = re.compile(r"max_tokens_(\d+)\.jsonl")
SOURCE_LABEL = "source_correct"


@dataclass(frozen=True)
class SweepData:
    """A sweep read from a folder: completions (index = cap position), the caps, and the source's labels."""

    completions: tuple[Completion, ...]
    caps: tuple[int, ...]
    labels: tuple[tuple[str, int, float], ...]
    files: tuple[str, ...]


def sweep_files(folder: Path) -> list[tuple[int, Path]]:
    """The (cap, file) pairs in ``folder``, by cap. Raises ReplayError when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReplayError(f"{folder}: a cap sweep is a folder of max_tokens_<CAP>.jsonl files")
    found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _FILE.fullmatch(p.name)))
    if not found:
        raise ReplayError(f"{folder}: no max_tokens_<CAP>.jsonl files; is this a budget sweep folder?")
    return found


def _labels(path: Path) -> list[tuple[str, bool]]:
    """(question, is_correct) per line of a DeepScaleR file, in file order."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row: Any = json.loads(line)
        label = row.get("is_correct") if isinstance(row, dict) else None
        if not isinstance(label, bool):
            raise ReplayError(f"{path}:{number}: field 'is_correct' must be true or false")
        out.append((str(row.get("question", "")), label))
    return out


def read_sweep(folder: Path, problems: Sequence[Problem]) -> SweepData:
    """Read every ``max_tokens_<CAP>.jsonl`` in ``folder`` against the benchmark's ``problems``.

    Returns completions with sample_index = position of their cap, the caps ascending, and the source labels
    as (problem id, sample index, 1.0 or 0.0). Raises ReplayError on a bad file, a file with more than one
    sample per problem, or a label that does not line up with its sample.
    """
    completions: list[Completion] = []
    labels: list[tuple[str, int, float]] = []
    caps = []
    files = []
    for index, (cap, path) in enumerate(sweep_files(folder)):
        data = read_replay(path, "deepscaler", problems)
        extra = [c for c in data.completions if c.sample_index != 0]
        if extra:
            raise ReplayError(f"{path}: problem {extra[0].problem_id!r} has several samples; a sweep file holds one "
                              "sample per problem")
        flags = _labels(path)
        if len(flags) != len(data.completions):
            raise ReplayError(f"{path}: {len(flags)} labels for {len(data.completions)} samples")
        for c, (_, correct) in zip(data.completions, flags):
            completions.append(replace(c, sample_index=index))
            labels.append((c.problem_id, index, 1.0 if correct else 0.0))
        caps.append(cap)
        files.append(path.name)
    return SweepData(tuple(completions), tuple(caps), tuple(labels), tuple(files))
