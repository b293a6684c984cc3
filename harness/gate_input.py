"""What the gate compares: one run's per-problem counts plus the settings that decide comparability.

A gate input is read from a run folder (the primary input: graded with the current grader if needed) or from
a ``gate-input.json`` file exported from one (``tts-eval gate-input RUN_DIR --out FILE``). The export exists
because a paired comparison needs per-problem values, which ``report.json`` does not carry: it holds each
problem's ``ProblemCounts`` (sample count, answer-cluster sizes, which cluster is correct, abstentions, mean
output tokens, truncations), from which every Maj@k / pass@k / mean@k value and the token axis follow exactly.
A few kB for AIME, so a baseline can be committed and a CI job needs no copy of the baseline's run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.scaling import ProblemCounts

SCHEMA_VERSION = 1
KIND = "tts-eval gate input"
_COUNT_FIELDS = ("n", "cluster_sizes", "correct_cluster", "abstain", "n_correct", "mean_tokens", "truncated")


@dataclass(frozen=True)
class GateInput:
    """One side of a gate comparison.

    ``source`` is the path it was read from; ``counts`` one ProblemCounts per problem (benchmark order);
    ``subset`` the stored ``SubsetSpec.to_dict()`` (None when the run is not a ``--subset`` run);
    ``token_note`` None when every sample has an output token count, else why not.
    """

    source: str
    model: str
    benchmark: str
    benchmark_version: str
    benchmark_hash: str
    prompt_name: str
    prompt_hash: str
    grader_version: str
    counts: tuple[ProblemCounts, ...] = field(repr=False)
    subset: Mapping[str, Any] | None = None
    token_note: str | None = None

    @property
    def problem_ids(self) -> tuple[str, ...]:
        """The problem ids, in order."""
        return tuple(pc.problem_id for pc in self.counts)

    @property
    def samples_per_problem(self) -> int:
        """The smallest sample count over problems (the largest k every problem reaches)."""
        return min(pc.n for pc in self.counts)

    @property
    def mean_tokens(self) -> float | None:
        """Mean output tokens per sample, averaged over problems; None without a token axis."""
        tokens = [pc.mean_tokens for pc in self.counts]
        return None if any(t is None for t in tokens) else sum(t for t in tokens if t is not None) / len(tokens)


def ids_hash(ids: Sequence[str]) -> str:
    """sha256 of the ordered ids, as ``benchmarks.ids_hash`` computes it for Problems."""
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def load_gate_input(path: Path, *, workers: int | None = None, progress: bool = False) -> GateInput:
    """Read a gate input from a run folder (or its run.sqlite) or from an exported gate-input JSON file.

    A run is graded with the current grader first when its grades of that version do not cover every sample
    (written into the run, as ``tts-eval report`` does). Raises ValueError (or StoreError) with one line naming
    the path and the fix: no such path, a report.json instead of a gate input, a malformed file, no samples.
    """
    path = Path(path)
    if path.is_dir() or path.suffix == ".sqlite":
        return _from_run(path, workers=workers, progress=progress)
    if path.is_file():
        return read_gate_input(path)
    raise ValueError(f"{path}: no such run folder or gate-input file; give a run folder (results/NAME) or a "
                     "file written by `tts-eval gate-input`")


def _from_run(run_dir: Path, *, workers: int | None, progress: bool) -> GateInput:
    from harness.analysis import grade_store  # pulls the grader; only needed for run folders
    from harness.grading import GRADER_VERSION
    from harness.scaling import problem_counts
    from harness.store import RunStore

    with RunStore.open(run_dir) as store:
        completions = store.completions()
        if not completions:
            raise ValueError(f"{run_dir}: the run has no samples yet; finish it with `tts-eval run ... --resume`")
        grades = grade_store(store, workers=workers, progress=progress)
        manifest = store.manifest()
        subset = store.info("subset")
        missing = sum(c.output_tokens is None for c in completions)
        note = None
        if missing:
            stored = store.info("token_note")
            note = stored if isinstance(stored, str) and stored else (
                f"{missing} of {len(completions)} samples have no output token count")
    return GateInput(
        source=str(run_dir), model=manifest.model, benchmark=manifest.benchmark,
        benchmark_version=manifest.benchmark_version, benchmark_hash=manifest.benchmark_hash,
        prompt_name=manifest.prompt_name, prompt_hash=manifest.prompt_hash, grader_version=GRADER_VERSION,
        counts=tuple(problem_counts(grades, completions)), subset=subset, token_note=note)


def gate_input_to_dict(gi: GateInput) -> dict[str, Any]:
    """The content of a gate-input JSON file (plain JSON types). Raises nothing."""
    return {
        "schema_version": SCHEMA_VERSION, "kind": KIND, "exported_from": gi.source, "model": gi.model,
        "benchmark": gi.benchmark, "benchmark_version": gi.benchmark_version, "benchmark_hash": gi.benchmark_hash,
        "prompt_name": gi.prompt_name, "prompt_hash": gi.prompt_hash, "grader_version": gi.grader_version,
        "subset": None if gi.subset is None else dict(gi.subset), "token_note": gi.token_note,
        "problem_ids_hash": ids_hash(gi.problem_ids),
        "problems": [{"id": pc.problem_id, **{f: _plain(getattr(pc, f)) for f in _COUNT_FIELDS}} for pc in gi.counts],
    }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def write_gate_input(gi: GateInput, path: Path) -> Path:
    """Write ``gi`` as JSON to ``path`` (parents created). Returns the path. Raises OSError on a write error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(gate_input_to_dict(gi), indent=1, sort_keys=True, allow_nan=False) + "\n",
                    encoding="utf-8")
    return path


def read_gate_input(path: Path) -> GateInput:
    """Read a file written by ``write_gate_input``. Raises ValueError (one line naming the file) when it is not
    JSON, is a report.json (no per-problem counts), has another schema version, or a problem's counts are
    missing or inconsistent."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read a gate input ({exc})") from None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        if isinstance(data, dict) and "points" in data and "manifest" in data:
            raise ValueError(f"{path} is a report.json: it has no per-problem counts, so no paired comparison; "
                             "give the run folder, or export it with `tts-eval gate-input RUN_DIR --out FILE`")
        raise ValueError(f"{path} is not a gate input (no \"kind\": \"{KIND}\"); write one with `tts-eval gate-input`")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{path}: gate-input schema {data.get('schema_version')!r} is not {SCHEMA_VERSION}; "
                         "re-export it with this tts-eval")
    try:
        counts = tuple(_counts(row) for row in data["problems"])
        if not counts:
            raise ValueError("no problems")
        return GateInput(
            source=str(path), model=str(data["model"]), benchmark=str(data["benchmark"]),
            benchmark_version=str(data["benchmark_version"]), benchmark_hash=str(data["benchmark_hash"]),
            prompt_name=str(data["prompt_name"]), prompt_hash=str(data["prompt_hash"]),
            grader_version=str(data["grader_version"]), counts=counts, subset=data.get("subset"),
            token_note=data.get("token_note"))
    except (KeyError, TypeError, ValueError) as exc:
        what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ValueError(f"{path}: malformed gate input: {what}; re-export it with `tts-eval gate-input`") from None


def _counts(row: Mapping[str, Any]) -> ProblemCounts:
    tokens = row["mean_tokens"]
    correct = row["correct_cluster"]
    return ProblemCounts(
        problem_id=str(row["id"]), n=int(row["n"]), cluster_sizes=tuple(int(s) for s in row["cluster_sizes"]),
        correct_cluster=None if correct is None else int(correct), abstain=int(row["abstain"]),
        n_correct=int(row["n_correct"]), mean_tokens=None if tokens is None else float(tokens),
        truncated=int(row["truncated"]))
