"""What ``tts-eval import`` keeps beyond the samples: per-sample scores, the source's own labels, cap sweeps.

* ``qwen-maj`` (Qwen2.5-Math's RM@8 example): ``pred_score[i][0]`` (the reward model's score of sample i) is
  stored as the score ``pred_score`` (for RM@k), and ``score[i]`` (the file's own verdict) as ``source_correct``.
* ``deepscaler-sweep``: a folder of ``max_tokens_<CAP>.jsonl`` files stored as one cap-sweep run (see
  ``harness.sweep``), with the files' ``is_correct`` as ``source_correct``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.samplers.replay import ReplayData, ReplayError, read_replay
from harness.sequential import SWEEP_INFO_KEY
from harness.store import RunStore
from harness.sweep import SOURCE_LABEL, SweepData, read_sweep
from harness.types import Problem

SWEEP_FORMAT = "deepscaler-sweep"
RM_SCORE = "pred_score"
SWEEP_TOKEN_NOTE = ("the sweep files have no token counts; each cap's samples spent at most the cap in output "
                    "tokens, so a cap is only an upper bound of the tokens per problem")


def read_for_import(path: Path, fmt: str, problems: Sequence[Problem]) -> tuple[ReplayData, SweepData | None]:
    """Read an import source: a replay file (any replay format) or a cap-sweep folder (``deepscaler-sweep``).

    Returns the replay data and, for a sweep, the sweep. Raises ReplayError on bad input.
    """
    if fmt != SWEEP_FORMAT:
        if Path(path).is_dir():
            raise ReplayError(f"{path} is a folder; format {fmt!r} reads one file (a folder of max_tokens_<CAP>.jsonl "
                              f"files is --format {SWEEP_FORMAT})")
        return read_replay(path, fmt, problems), None
    sweep = read_sweep(path, problems)
    field_map = {"problem_id": "question matched to the benchmark (as format deepscaler)",
                 "sample_index": "position of the file's cap among the folder's caps",
                 "text": "generated_responses[0]", "output_tokens": "(not in files)", "cap": "file name"}
    return ReplayData(sweep.completions, SWEEP_TOKEN_NOTE, field_map), sweep


def store_import_extras(store: RunStore, fmt: str, path: Path, sweep: SweepData | None) -> None:
    """Store the scores, source labels and sweep description of an import (nothing for other formats)."""
    if sweep is not None:
        store.set_info(SWEEP_INFO_KEY, {"caps": list(sweep.caps), "files": list(sweep.files),
                                        "index_is": "position of the cap in caps"})
        store.add_scores(SOURCE_LABEL, sweep.labels)
    elif fmt == "qwen-maj":
        scores, labels = qwen_scores(path, {p.id for p in store.problems()})
        if scores:
            store.add_scores(RM_SCORE, scores)
        if labels:
            store.add_scores(SOURCE_LABEL, labels)


def qwen_scores(path: Path, problem_ids: set[str]) -> tuple[list[tuple[str, int, float]], list[tuple[str, int, float]]]:
    """The reward-model scores (``pred_score``) and own verdicts (``score``) of a qwen-maj file, per sample.

    Returns two lists of (problem id, sample index, value); a row without the field adds nothing. Raises
    ReplayError when a present field is malformed or its length differs from the row's samples.
    """
    scores: list[tuple[str, int, float]] = []
    labels: list[tuple[str, int, float]] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row: Any = json.loads(line)
        pid = str(row.get("idx"))
        if pid not in problem_ids:
            continue
        n = len(row.get("code") or [])
        rm = row.get("pred_score")
        if rm is not None:
            if not isinstance(rm, list) or len(rm) != n:
                raise ReplayError(f"{path}:{number}: pred_score must be a list with one entry per sample")
            for i, item in enumerate(rm):
                value = item[0] if isinstance(item, list) and item else item
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ReplayError(f"{path}:{number}: pred_score[{i}] is not a number")
                scores.append((pid, i, float(value)))
        verdicts = row.get("score")
        if isinstance(verdicts, list) and len(verdicts) == n and all(isinstance(v, bool) for v in verdicts):
            labels += [(pid, i, 1.0 if v else 0.0) for i, v in enumerate(verdicts)]
    return scores, labels
