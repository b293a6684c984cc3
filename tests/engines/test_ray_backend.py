"""The ray backend on one machine: Ray Data LLM's vLLM stage running vLLM's CPU build with the tiny model.

A local Ray with 8 logical CPUs serves the module: Ray Data runs a task or actor per stage and the vLLM actor
holds one CPU for its whole life. This backend's pipeline is only the vLLM stage and two light map steps (Ray's
chat-template, tokenize and detokenize stages are off), which also runs with the 2 CPUs this machine has (checked
by hand); logical CPUs cost nothing and leave headroom.

Ray Data starts a fresh vLLM engine for every run (~20-30 s here), so the module makes four: the reference run
(with one row the engine refuses), a vLLM-backend run to compare with, a CLI run killed with SIGKILL part-way,
and its resume.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.run import RunRequest, run_sampling
from harness.samplers.base import SampleRequest, SamplerError, sample_seed
from harness.store import RunStore
from harness.types import Completion, Problem, SamplingSpec
from tests.engines.conftest import ENGINE_OPTIONS, Unclosing

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                reason="Ray is not installed here; run `make test-engines` (it installs ray[data])")

REPO = Path(__file__).resolve().parents[2]
# Temperature 0.8 and 64 tokens give this model samples that end (EOS) and samples that hit max_tokens.
SPEC = SamplingSpec(max_tokens=64, temperature=0.8, top_p=0.95, seed=0)
PROBLEMS, SAMPLES = 4, 6
RAY_CPUS = 8  # logical CPUs for the local Ray (see the module docstring)
# ENGINE_OPTIONS as the ray backend takes them: its own options, the rest as vLLM engine arguments.
RAY_OPTIONS: dict[str, Any] = {
    "dtype": ENGINE_OPTIONS["dtype"], "max_model_len": ENGINE_OPTIONS["max_model_len"],
    "engine_kwargs": {k: v for k, v in ENGINE_OPTIONS.items() if k not in ("dtype", "max_model_len")},
}


@pytest.fixture(scope="module")
def sampler(tiny_model_dir: Path) -> Iterator[Any]:
    from harness.samplers.ray import RaySampler

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")  # no network here; and no prompt about it
        engine = RaySampler(str(tiny_model_dir), device="cpu", num_cpus=RAY_CPUS, batch_size=4,
                            max_concurrent_batches=2, **RAY_OPTIONS)
        yield engine
        engine.close()


def request(model: Path, out: Path, *, resume: bool = False) -> RunRequest:
    return RunRequest(bench="aime24", backend="ray", model=str(model), samples=SAMPLES, spec=SPEC, out=out,
                      limit=PROBLEMS, resume=resume, commit_every=2)


def stored(out: Path) -> list[Completion]:
    with RunStore.open(out) as store:
        return sorted(store.completions(with_token_ids=True), key=lambda c: (c.problem_id, c.sample_index))


class OneBadRow(Unclosing):
    """Adds a row the engine refuses (top_p 7) as sample 99 of the first problem: the run must go on without it."""

    def sample(self, requests: Sequence[SampleRequest], spec: SamplingSpec) -> Any:
        rows = self._sampler._rows(requests, spec)
        bad = {**rows[0], "sample_index": 99, "sampling_params": {**rows[0]["sampling_params"], "top_p": 7.0}}
        return self._sampler._stream([*rows, bad], spec)


class Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def reference(sampler: Any, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An uninterrupted ray run into a store (with one failing row), and the warnings it logged."""
    out = tmp_path_factory.mktemp("ray") / "run"
    handler = Warnings()
    logging.getLogger("harness.samplers.ray").addHandler(handler)
    try:
        summary = run_sampling(request(tiny_model_dir, out), lambda backend, **options: OneBadRow(sampler),
                               progress=False)
    finally:
        logging.getLogger("harness.samplers.ray").removeHandler(handler)
    return {"out": out, "rows": stored(out), "warnings": handler.messages, "summary": summary}


def test_a_ray_run_stores_every_sample_with_engine_counts_and_skips_a_failed_row(
        sampler: Any, reference: Mapping[str, Any], tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    rows: list[Completion] = reference["rows"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert len(rows) == PROBLEMS * SAMPLES and reference["summary"].added == PROBLEMS * SAMPLES
    assert {(c.problem_id, c.sample_index) for c in rows} == {
        (p, i) for p in {c.problem_id for c in rows} for i in range(SAMPLES)}
    for c in rows:
        assert c.seed == sample_seed(SPEC.seed, c.problem_id, c.sample_index)
        assert c.token_ids and c.output_tokens == len(c.token_ids)
        # vLLM's text is its incremental detokenization, which holds back a final incomplete UTF-8 character.
        assert c.text == tokenizer.decode(c.token_ids, skip_special_tokens=True).removesuffix("\ufffd")
        if c.finish_reason == "length":
            assert c.output_tokens == SPEC.max_tokens and eos not in c.token_ids
        else:
            assert c.finish_reason == "stop" and c.token_ids[-1] == eos and c.output_tokens <= SPEC.max_tokens
    assert {c.finish_reason for c in rows} == {"stop", "length"}
    assert len({c.text for c in rows}) == len(rows)  # every sample drew its own tokens
    # The refused row: logged, kept in row_errors, never stored.
    (error,) = sampler.row_errors
    assert (error.problem_id, error.sample_index) == (rows[0].problem_id, 99) and "top_p" in error.message
    assert any(f"problem {rows[0].problem_id} sample 99" in m for m in reference["warnings"])
    assert any("1 of 25 samples were not stored (1 failed in the engine, 0 not returned)" in m
               for m in reference["warnings"])
    with RunStore.open(reference["out"]) as store:
        manifest = store.manifest()
    settings = manifest.engine_settings
    assert manifest.backend == "ray" and settings["device"] == "cpu" and settings["cluster"]["CPU"] == RAY_CPUS
    assert (settings["replicas"], settings["tensor_parallel_size"], settings["max_model_len"]) == (1, 1, 1024)
    assert settings["engine_kwargs"]["enable_chunked_prefill"] is False
    assert settings["engine_kwargs"]["generation_config"] == "vllm" and settings["eos_token_ids"] == [eos]
    assert settings["ray_version"] and settings["vllm_version"]


def test_the_store_equals_a_vllm_backend_run_and_reports_the_same(
        reference: Mapping[str, Any], tiny_model_dir: Path, tmp_path: Path) -> None:
    from harness.cli import cli
    from harness.samplers.vllm import VLLMSampler

    vllm_out = tmp_path / "vllm"
    engine = VLLMSampler(str(tiny_model_dir), **ENGINE_OPTIONS)
    try:
        run_sampling(RunRequest(bench="aime24", backend="vllm", model=str(tiny_model_dir), samples=SAMPLES,
                                spec=SPEC, out=vllm_out, limit=PROBLEMS), lambda backend, **options: engine,
                     progress=False)
    finally:
        engine.close()
    # Same seeds on the same engine: the very same samples (vLLM's CPU sampling is deterministic per seed and
    # does not depend on the batch: the vllm backend sent n=6 per problem, Ray one row per sample).
    assert stored(vllm_out) == reference["rows"]

    def schema(out: Path) -> list[Any]:
        with contextlib.closing(sqlite3.connect(out / "run.sqlite")) as db:
            return db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()

    assert schema(reference["out"]) == schema(vllm_out)
    runner = CliRunner()
    for out in (reference["out"], vllm_out):
        result = runner.invoke(cli, ["report", str(out), "--no-progress", "--workers", "1", "--n-boot", "200"])
        assert result.exit_code == 0, result.output
    assert (reference["out"] / "curve.csv").read_text() == (vllm_out / "curve.csv").read_text()
    assert (reference["out"] / "report.json").is_file() and (reference["out"] / "report.md").is_file()


def _session_pids(session: int) -> list[int]:
    """Processes of one session (the killed CLI's Ray: raylet, workers and agents outlive their driver)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":  # fields after the name: state, ppid, pgrp, session
            pids.append(int(stat.parent.name))
    return pids


def _kill_session(session: int) -> None:
    deadline = time.monotonic() + 30
    while (pids := _session_pids(session)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
    assert not _session_pids(session), "processes of the killed run survived"


def test_a_run_killed_mid_way_resumes_to_the_uninterrupted_samples(
        sampler: Any, reference: Mapping[str, Any], tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    total = PROBLEMS * SAMPLES
    # One sample per batch and one batch at a time, so that the run is stored a sample at a time.
    command = [sys.executable, "-m", "harness.cli", "run", "--bench", "aime24", "--backend", "ray",
               "--model", str(tiny_model_dir), "--device", "cpu", "-o", f"num_cpus={RAY_CPUS}",
               "--dtype", "float32", "--max-model-len", "1024",
               "-o", "engine_kwargs={enforce_eager=true, kv_cache_memory_bytes=67108864}",
               "-o", "batch_size=1", "-o", "max_concurrent_batches=1", "--samples", str(SAMPLES),
               "--limit", str(PROBLEMS), "--max-tokens", str(SPEC.max_tokens), "--temperature", "0.8",
               "--top-p", "0.95", "--seed", "0", "--out", str(out), "--commit-every", "1", "--no-report",
               "--no-progress"]
    log_path = tmp_path / "killed.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    try:
        count, deadline = 0, time.monotonic() + 300
        while process.poll() is None and time.monotonic() < deadline:
            try:
                with contextlib.closing(sqlite3.connect(out / "run.sqlite")) as db:
                    count = db.execute("SELECT COUNT(*) FROM completions").fetchone()[0]
            except sqlite3.Error:
                count = 0  # not created yet, or being created
            if count >= 2:
                break
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        _kill_session(process.pid)  # start_new_session: the session id is the CLI's pid
    before = stored(out) if (out / "run.sqlite").exists() else []
    assert 2 <= len(before) < total, f"kill landed at {len(before)} of {total}:\n{log_path.read_text()[-3000:]}"

    summary = run_sampling(request(tiny_model_dir, out, resume=True), lambda backend, **options: Unclosing(sampler),
                           progress=False)
    after = stored(out)
    assert summary.requested == total - len(before) and summary.added == summary.requested
    assert set(before) <= set(after)  # nothing stored before the kill changed
    # The same samples as the uninterrupted run: vLLM's CPU sampling is deterministic per seed.
    assert after == reference["rows"]


def test_settings_the_cluster_or_engine_cannot_honour_are_refused(sampler: Any, tiny_model_dir: Path) -> None:
    from harness.samplers.ray import RaySampler

    req = [SampleRequest(Problem("r", "t", "Hi", "0"), ({"role": "user", "content": "Hi"},), (0, 1))]
    with pytest.raises(SamplerError, match=r"max_tokens \(2000\) must leave room for the prompt .*\(1024 tokens\)"):
        sampler.sample(req, SamplingSpec(max_tokens=2000))
    with pytest.raises(SamplerError, match=r"prompt \(\d+ tokens\) \+ max_tokens \(1020\) exceeds .* <= \d+"):
        sampler.sample(req, SamplingSpec(max_tokens=1020))
    with pytest.raises(SamplerError, match="temperature 0 is greedy"):
        sampler.sample(req, SamplingSpec(max_tokens=8, temperature=0.0))
    # This Ray has no GPUs: a GPU replica could never be placed, and Ray would wait for one forever.
    with pytest.raises(SamplerError, match=r"the Ray cluster has 0 GPUs and one replica needs 2"):
        RaySampler(str(tiny_model_dir), tensor_parallel_size=2, **RAY_OPTIONS)
    with pytest.raises(SamplerError, match=r"engine_kwargs may not set \['max_model_len'\]"):
        RaySampler(str(tiny_model_dir), device="cpu", engine_kwargs={"max_model_len": 64})


def test_a_model_without_chat_template_is_refused_before_any_engine_starts(
        sampler: Any, tiny_model_dir: Path, tmp_path: Path) -> None:
    import json
    import shutil

    from harness.samplers.ray import RaySampler

    bare = tmp_path / "bare"
    shutil.copytree(tiny_model_dir, bare)
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((bare / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(SamplerError, match="has no chat template"):
        RaySampler(str(bare), device="cpu", **RAY_OPTIONS)
