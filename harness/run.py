"""Sampling a run: benchmark -> prompts -> sampler -> run store, resumable and extensible.

Only this module and the samplers touch a model; grading and reporting read the store afterwards.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from harness import benchmarks, prompts, provenance, subset
from harness.grading import GRADER_VERSION
from harness.samplers.base import Sampler, SampleRequest
from harness.store import RunStore
from harness.types import Completion, Problem, RunManifest, SamplingSpec

log = logging.getLogger(__name__)

SamplerFactory = Callable[..., Sampler]

# Manifest fields that must not change when a run is resumed or extended: changing any of them would mix
# samples drawn under different conditions into one curve.
_FROZEN_FIELDS = ("model", "backend", "sampling", "benchmark", "benchmark_version", "benchmark_hash", "prompt_hash")


class RunError(ValueError):
    """The run cannot start as asked (contradictory flags, a resume that changes conditions, ...)."""


@dataclass(frozen=True)
class RunRequest:
    """What ``tts-eval run`` was asked to do."""

    bench: str
    backend: str
    model: str
    samples: int
    spec: SamplingSpec
    out: Path
    prompt: str = "default"
    limit: int | None = None
    ids_file: Path | None = None
    resume: bool = False
    backend_options: Mapping[str, Any] = field(default_factory=dict)
    command: str = ""
    commit_every: int = 16
    subset: int | None = None  # a stratified subset of this many problems (harness.subset), fixed by subset_seed
    subset_seed: int = 0


@dataclass(frozen=True)
class RunSummary:
    """What a sampling pass did."""

    run_dir: Path
    requested: int
    added: int
    total: int


def check_request(req: RunRequest) -> None:
    """Refuse contradictory settings before anything is loaded."""
    if req.samples < 1:
        raise RunError(f"--samples must be >= 1, got {req.samples}")
    if req.commit_every < 1:
        raise RunError(f"--commit-every must be >= 1, got {req.commit_every}")
    if req.subset is not None and (req.limit is not None or req.ids_file is not None):
        raise RunError("--subset draws its own problems; drop --limit/--ids (or drop --subset)")
    if req.spec.temperature == 0 and req.samples > 1:
        raise RunError(
            f"temperature 0 is greedy: {req.samples} samples per problem would all be the same; "
            "use --samples 1 or a temperature > 0")


def build_manifest(req: RunRequest, bench: benchmarks.Benchmark, problems: Sequence[Problem],
                   template: prompts.PromptTemplate, engine_settings: Mapping[str, Any]) -> RunManifest:
    """The manifest of a run about to sample (``model_revision``: ``provenance.model_fingerprint``)."""
    commit, dirty = provenance.git_state()
    revision = engine_settings.get("revision") or req.backend_options.get("revision")
    return RunManifest(
        model=req.model, backend=req.backend, sampling=req.spec, samples_per_problem=req.samples,
        model_revision=provenance.model_fingerprint(req.model, None if revision is None else str(revision)),
        benchmark=bench.name, benchmark_version=bench.version, benchmark_hash=bench.sha256,
        prompt_name=template.name, prompt_version=template.version, prompt_template=template.text,
        prompt_hash=template.sha256, grader_version=GRADER_VERSION, engine_settings=dict(engine_settings),
        problem_ids_hash=benchmarks.ids_hash(problems), package_versions=provenance.package_versions(),
        git_commit=commit, git_dirty=dirty, command=req.command, machine=provenance.machine(),
        started_at=provenance.now(),
    )


def _check_resume(old: RunManifest, new: RunManifest, run_dir: Path) -> None:
    for name in _FROZEN_FIELDS:
        if getattr(old, name) != getattr(new, name):
            raise RunError(
                f"{run_dir}: cannot resume: {name} was {getattr(old, name)!r}, now {getattr(new, name)!r}; "
                "use the original settings or a new --out")
    # Only two recorded identities can disagree: runs made before fingerprints were recorded have none, and
    # "unpinned" says nothing about which weights a hub name gave.
    pinned = [r for r in (old.model_revision, new.model_revision) if r and r != provenance.UNPINNED]
    if len(pinned) == 2 and pinned[0] != pinned[1]:
        raise RunError(
            f"{run_dir}: cannot resume: the model changed (model_revision was {old.model_revision!r}, now "
            f"{new.model_revision!r}); resume with the same model files (or pin -o revision=...) or use a new --out")


def missing_requests(problems: Sequence[Problem], existing: Mapping[str, set[int]], samples: int,
                     template: prompts.PromptTemplate) -> list[SampleRequest]:
    """One request per problem for the sample indices in ``range(samples)`` not stored yet."""
    requests = []
    for problem in problems:
        have = existing.get(problem.id, set())
        todo = tuple(i for i in range(samples) if i not in have)
        if todo:
            requests.append(SampleRequest(problem, template.messages(problem.question), todo))
    return requests


def _progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc="sampling", unit="sample", disable=not enabled or not sys.stderr.isatty())


def store_stream(store: RunStore, stream: Iterator[Completion], *, commit_every: int, bar: Any) -> int:
    """Write completions to the store in small batches as they arrive; flush what is buffered on any exit
    (including KeyboardInterrupt), so finished samples are never lost. Returns how many were new."""
    buffer: list[Completion] = []
    added = 0
    last = time.monotonic()
    try:
        for completion in stream:
            buffer.append(completion)
            bar.update(1)
            if len(buffer) >= commit_every or time.monotonic() - last > 5.0:
                added += store.add_completions(buffer)
                buffer, last = [], time.monotonic()
    finally:
        added += store.add_completions(buffer)
    return added


def _resume_store(req: RunRequest, manifest: RunManifest, problems: Sequence[Problem],
                  subset_info: Mapping[str, Any] | None) -> tuple[RunStore, RunManifest]:
    """Open the existing run in ``req.out`` and check that ``manifest`` may continue it (closing it if not).

    Returns the open store and the manifest to store (first start time kept, samples_per_problem the larger).
    """
    store = RunStore.open(req.out)
    try:
        old = store.manifest()
        _check_resume(old, manifest, req.out)
        # A subset run extended with other problems would silently stop being the subset the gate compares.
        if store.info("subset") != subset_info:
            raise RunError(f"{req.out}: cannot resume: the run has {subset.describe_dict(store.info('subset'))},"
                           f" the command asks for {subset.describe_dict(subset_info)}; repeat the original"
                           " --subset/--subset-seed or use a new --out")
    except BaseException:
        store.close()
        raise
    return store, replace(manifest, samples_per_problem=max(req.samples, old.samples_per_problem),
                          started_at=old.started_at,
                          notes=old.notes + (f"resumed {provenance.now()}: {req.command}",))


def _remove_empty_run(path: Path) -> None:
    """Delete a run store this command created and that holds no sample, so the same command can be repeated
    without --resume after a setup error (nothing finished is lost: there is nothing)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def run_sampling(req: RunRequest, factory: SamplerFactory, *, progress: bool = True) -> RunSummary:
    """Sample every missing (problem, sample index) of the run into ``req.out``.

    ``factory(backend, **options)`` makes the sampler (``harness.samplers.registry.make_sampler`` in the CLI; a
    fake in unit tests). A resume is checked against the stored run before the engine is started (loading a
    large model takes minutes). Raises RunError/StoreError/BenchmarkError/PromptError on bad input,
    SamplerError when the engine fails; completions finished before a failure stay stored.
    """
    check_request(req)
    bench = benchmarks.load_benchmark(req.bench)
    ids = benchmarks.read_ids_file(req.ids_file) if req.ids_file else None
    problems = benchmarks.select(bench.problems, limit=req.limit, ids=ids)
    drawn = None
    if req.subset is not None:
        problems, drawn = subset.draw_subset(bench.problems, req.subset, req.subset_seed, bench.sha256)
    subset_info = None if drawn is None else drawn.to_dict()
    template = prompts.load_prompt(req.prompt)
    store_path = req.out / "run.sqlite"
    resuming = store_path.exists()
    if resuming and not req.resume:
        raise RunError(f"{req.out} already holds a run; pass --resume to continue or extend it, or choose another --out")
    manifest = build_manifest(req, bench, problems, template, {})
    if drawn is not None:
        manifest = replace(manifest, notes=(drawn.describe(),))
    if resuming:  # fail fast, before the engine starts
        store, manifest = _resume_store(req, manifest, problems, subset_info)
        store.close()
    sampler = factory(req.backend, model=req.model, **req.backend_options)
    created = False
    try:
        manifest = replace(manifest, engine_settings=dict(sampler.engine_settings()))
        if resuming:
            store, manifest = _resume_store(req, manifest, problems, subset_info)
            store.add_problems(problems)
            store.write_manifest(replace(manifest, problem_ids_hash=benchmarks.ids_hash(store.problems())))
        else:
            store = RunStore.create(req.out, manifest, problems)
            created = True
            store.set_info("subset", subset_info)
        with store:
            # Recorded so that later engine work on this run (`tts-eval force`) starts the engine the same way.
            store.set_info("backend_options", dict(req.backend_options))
            requests = missing_requests(problems, store.existing_indices(), req.samples, template)
            wanted = sum(len(r.sample_indices) for r in requests)
            log.info("%d samples to draw for %d problems", wanted, len(requests))
            try:
                with _progress(wanted, progress) as bar:
                    added = store_stream(store, sampler.sample(requests, req.spec), commit_every=req.commit_every,
                                         bar=bar)
            except BaseException:
                created = created and store.count_completions() == 0
                raise
            created = False
            store.write_manifest(replace(store.manifest(), finished_at=provenance.now()))
            return RunSummary(req.out, wanted, added, store.count_completions())
    finally:
        sampler.close()
        if created:
            _remove_empty_run(store_path)
