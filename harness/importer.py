"""``tts-eval import``: store recorded outputs (made elsewhere) as a run, so they are graded and plotted the same way."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from harness import benchmarks, provenance
from harness.grading import GRADER_VERSION
from harness.store import RunStore
from harness.types import RunManifest, SamplingSpec


@dataclass(frozen=True)
class ImportSummary:
    """What an import stored."""

    run_dir: Path
    problems: int
    completions: int
    token_note: str | None


def _source_sha256(path: Path) -> str:
    """sha256 of the imported file's bytes (comparable with a source's provenance list); for a folder (a cap
    sweep), of its sorted ``*.jsonl`` files' names and bytes."""
    if not path.is_dir():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    digest = hashlib.sha256()
    for part in sorted(path.glob("*.jsonl")):
        digest.update(part.name.encode() + b"\0" + part.read_bytes())
    return digest.hexdigest()


def import_run(file: Path, fmt: str, bench: str, out: Path, *, model: str = "unknown (imported)",
               spec: SamplingSpec | None = None, command: str = "") -> ImportSummary:
    """Read ``file`` in format ``fmt`` against benchmark ``bench`` and store it as a new run in ``out``.

    ``file`` is a folder for format ``deepscaler-sweep`` (one run with a cap per file; see harness.sweep).
    Only problems that have samples are stored; per-sample scores and the source's own labels are kept
    (harness.import_extra). ``spec`` records sampling settings the user knows from the
    source (None: not stated). Raises ReplayError/BenchmarkError/StoreError on bad input; nothing is written
    before the whole file has been read and checked.
    """
    from harness.import_extra import read_for_import, store_import_extras

    benchmark = benchmarks.load_benchmark(bench)
    data, sweep = read_for_import(file, fmt, benchmark.problems)
    have = {c.problem_id for c in data.completions}
    problems = [p for p in benchmark.problems if p.id in have]
    per_problem: dict[str, int] = {}
    for c in data.completions:
        per_problem[c.problem_id] = per_problem.get(c.problem_id, 0) + 1
    commit, dirty = provenance.git_state()
    manifest = RunManifest(
        model=model, backend="replay", sampling=spec, samples_per_problem=min(per_problem.values()),
        benchmark=benchmark.name, benchmark_version=benchmark.version, benchmark_hash=benchmark.sha256,
        prompt_name="unknown (imported)", prompt_version="", prompt_template="", prompt_hash="",
        grader_version=GRADER_VERSION,
        engine_settings={"format": fmt, "source_file": str(file), "source_sha256": _source_sha256(file),
                         "field_map": dict(data.field_map)},
        problem_ids_hash=benchmarks.ids_hash(problems), package_versions=provenance.package_versions(),
        git_commit=commit, git_dirty=dirty, command=command, machine=provenance.machine(),
        started_at=provenance.now(), finished_at=provenance.now(),
    )
    with RunStore.create(out, manifest, problems) as store:
        store.add_completions(data.completions)
        if data.token_note:
            store.set_info("token_note", data.token_note)
        store_import_extras(store, fmt, file, sweep)
        return ImportSummary(out, len(problems), store.count_completions(), data.token_note)
