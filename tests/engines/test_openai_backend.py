"""The openai backend against a real vLLM OpenAI-compatible server process on loopback (tiny model, CPU):
the same kind of rows as the offline engine, both token-count modes agreeing, a fault-injecting proxy that loses
nothing and duplicates nothing, an interrupted run resumed, and bad input ending in one clear error.
One server serves the whole module."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.run import RunRequest, run_sampling
from harness.samplers.base import SamplerError, sample_seed
from harness.store import RunStore
from harness.types import Completion, SamplingSpec
from tests.engines.conftest import ENGINE_OPTIONS, free_port
from tests.engines.fault_proxy import FaultProxy

SPEC = SamplingSpec(max_tokens=64, temperature=0.8, top_p=0.95, seed=0)
PROBLEMS, SAMPLES = 3, 3
KEY_ENV, KEY = "TTS_ENGINE_TEST_KEY", "engine-test-key"
SERVED = "tiny"
FAST = {"api_key_env": KEY_ENV, "backoff_base_s": 0.05, "backoff_max_s": 0.5}


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m vllm.entrypoints.openai.api_server`` on 127.0.0.1 with an API key; its /v1 base URL."""
    import httpx

    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_model_dir),
               "--served-model-name", SERVED, "--host", "127.0.0.1", "--port", str(port), "--api-key", KEY,
               "--dtype", ENGINE_OPTIONS["dtype"], "--max-model-len", str(ENGINE_OPTIONS["max_model_len"]),
               "--kv-cache-memory-bytes", str(ENGINE_OPTIONS["kv_cache_memory_bytes"]), "--enforce-eager",
               "--generation-config", "vllm", "--disable-uvicorn-access-log",
               # vLLM 0.32's CPU build cannot rewind a seeded request's generator after a split prefill.
               "--no-enable-chunked-prefill"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                pytest.fail(f"the vLLM server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the vLLM server did not start in 300 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the server's own process group (start_new_session above)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


def run(base_url: str, model_dir: Path, out: Path, *, resume: bool = False, **options: Any) -> list[Completion]:
    """Sample through the real run layer and the registry-style factory; the stored rows, sorted."""
    from harness.samplers.openai import OpenAISampler

    request = RunRequest(bench="aime24", backend="openai", model=SERVED, samples=SAMPLES, spec=SPEC, out=out,
                         limit=PROBLEMS, resume=resume, commit_every=2,
                         backend_options={"base_url": base_url, **FAST, **options})
    run_sampling(request, lambda backend, **kw: OpenAISampler(**kw), progress=False)
    with RunStore.open(out) as store:
        return sorted(store.completions(with_token_ids=True), key=lambda c: (c.problem_id, c.sample_index))


@pytest.fixture(scope="module")
def reference(server: str, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Completion]:
    """The rows of a clean run straight to the server (token_ids mode, n per problem)."""
    mp = pytest.MonkeyPatch()
    mp.setenv(KEY_ENV, KEY)
    try:
        return run(server, tiny_model_dir, tmp_path_factory.mktemp("reference") / "run")
    finally:
        mp.undo()


def test_rows_have_server_token_counts_finish_reasons_and_seeds(
        server: str, reference: list[Completion], tiny_model_dir: Path) -> None:
    import vllm
    from transformers import AutoTokenizer

    from harness.samplers.openai import OpenAISampler

    eos = AutoTokenizer.from_pretrained(tiny_model_dir).convert_tokens_to_ids("<|im_end|>")
    assert len(reference) == PROBLEMS * SAMPLES
    for c in reference:
        assert c.token_ids and c.output_tokens == len(c.token_ids) and c.text
        assert c.seed == sample_seed(SPEC.seed, c.problem_id, c.sample_index)
        assert (c.finish_reason, c.output_tokens) == ("length", 64) or (
            c.finish_reason == "stop" and c.token_ids[-1] == eos and c.output_tokens <= 64)
    assert {c.finish_reason for c in reference} == {"stop", "length"}
    settings = OpenAISampler(SERVED, base_url=server, **FAST).engine_settings()
    assert settings["token_counts"] == "token_ids" and settings["server_version"] == vllm.__version__
    assert settings["served_model"]["max_model_len"] == 1024 and settings["api_key_set"] is True


def test_usage_mode_with_one_sample_per_request_gives_the_same_rows(
        server: str, reference: list[Completion], tiny_model_dir: Path, tmp_path: Path) -> None:
    rows = run(server, tiny_model_dir, tmp_path / "usage", token_counts="usage")
    # n=1 with seed s+i reproduces choice i of n=3 with seed s; usage.completion_tokens equals len(token_ids).
    assert [(c.problem_id, c.sample_index, c.seed, c.text, c.output_tokens, c.finish_reason) for c in rows] == [
        (c.problem_id, c.sample_index, c.seed, c.text, c.output_tokens, c.finish_reason) for c in reference]
    assert all(c.token_ids is None for c in rows)


def test_fault_injecting_proxy_loses_and_duplicates_nothing(
        server: str, reference: list[Completion], tiny_model_dir: Path, tmp_path: Path) -> None:
    plan = ["429", "ok", "drop", "500", "reset", "slow", "503", "truncate", "hang", "429", "drop"]
    with FaultProxy(server, plan, slow_s=1.0, hang_s=4.0) as proxy:
        rows = run(proxy.url, tiny_model_dir, tmp_path / "faults", max_n_per_request=1, concurrency=3,
                   max_retries=len(plan), timeout_s=2.0)
    assert set(proxy.stats) == set(plan)  # every kind of fault was really injected
    assert len(rows) == len({(c.problem_id, c.sample_index) for c in rows}) == PROBLEMS * SAMPLES
    assert rows == reference


def test_an_interrupted_run_resumes_with_nothing_lost_or_duplicated(
        server: str, reference: list[Completion], tiny_model_dir: Path, tmp_path: Path) -> None:
    # The probe (/models, /version) and 4 requests (one sample each) get through, then the server "goes down".
    plan = ["ok"] * 6 + ["503"] * 40
    cut = "gave up on problem .* after 3 attempts; last error: .*503"
    with FaultProxy(server, plan) as proxy, pytest.raises(SamplerError, match=cut):
        run(proxy.url, tiny_model_dir, tmp_path / "cut", max_n_per_request=1, concurrency=1, max_retries=2)
    with RunStore.open(tmp_path / "cut") as store:
        kept = store.completions(with_token_ids=True)
    assert len(kept) == 4
    rows = run(server, tiny_model_dir, tmp_path / "cut", resume=True)
    assert rows == reference


def test_bad_input_ends_in_one_clear_error(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.samplers.base import SampleRequest
    from harness.samplers.openai import OpenAISampler
    from harness.types import Problem

    closed = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(SamplerError, match="no server is listening at"):
        OpenAISampler(SERVED, base_url=closed, **FAST)
    with pytest.raises(SamplerError, match=r"model 'tiny-typo' is not served .* did you mean one of \['tiny'\]"):
        OpenAISampler("tiny-typo", base_url=server, **FAST)
    monkeypatch.setenv(KEY_ENV, "wrong")
    with pytest.raises(SamplerError, match=rf"refused the API key \(401.*\${KEY_ENV}"):
        OpenAISampler(SERVED, base_url=server, **FAST)
    monkeypatch.setenv(KEY_ENV, KEY)
    sampler = OpenAISampler(SERVED, base_url=server, **FAST)
    long_question = "Find the sum of all integers below 1000 that are multiples of three or five. " * 6
    req = [SampleRequest(Problem("long", "t", long_question, "0"), ({"role": "user", "content": long_question},), (0,))]
    with pytest.raises(SamplerError, match=r"max_tokens \(1024\) must leave room"):
        sampler.sample(req, SamplingSpec(max_tokens=1024))
    # vLLM's server would quietly cut max_tokens to fit the prompt; the backend sees the prompt length in the
    # answer's usage and refuses instead of storing samples with a smaller budget than asked.
    with pytest.raises(SamplerError, match=r"problem long: prompt \(\d+ tokens\) \+ max_tokens \(1000\) exceeds"):
        list(sampler.sample(req, SamplingSpec(max_tokens=1000)))
    # A prompt longer than the whole context is the server's 400, an error too (never an answer).
    huge = long_question * 12
    req = [SampleRequest(Problem("huge", "t", huge, "0"), ({"role": "user", "content": huge},), (0,))]
    with pytest.raises(SamplerError, match="answered 400"):
        list(sampler.sample(req, SamplingSpec(max_tokens=10)))
