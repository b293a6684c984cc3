"""Unit tests of the openai backend against a tiny local stub server (no vLLM): request shape, seeds, token
counts, retries with backoff, error mapping, concurrency and rate limits. The stub answers deterministically
from each request's seed, so every expected row is computed exactly; faults come from the test fault proxy.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import pytest

from harness.samplers.base import SampleRequest, SamplerError
from harness.samplers.openai import OpenAISampler, backoff_delay
from harness.types import Completion, Problem, SamplingSpec
from tests.engines.fault_proxy import FaultProxy

MODEL = "tiny"
FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 5.0}


def stub_length(seed: int, max_tokens: int) -> int:
    """How many visible tokens the stub 'generates' for a seed (capped at max_tokens)."""
    return min(3 + seed % 5, max_tokens)


class StubServer:
    """An OpenAI-compatible chat server in a thread. Choice j of a request with seed s answers
    ``"sample seed {s+j}"`` with ``stub_length(s+j)`` visible tokens (+ ``reasoning`` hidden ones)."""

    def __init__(self, *, owned_by: str = "vllm", max_model_len: int | None = 1024, api_key: str | None = None,
                 reasoning: int = 0, delay_s: float = 0.0, always_status: int | None = None,
                 bad_prompt: str | None = None, finish: str | None = None, overshoot: int = 0) -> None:
        self.owned_by, self.max_model_len, self.api_key = owned_by, max_model_len, api_key
        self.reasoning, self.delay_s, self.always_status = reasoning, delay_s, always_status
        self.bad_prompt, self.finish, self.overshoot = bad_prompt, finish, overshoot
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[str | None] = []
        self.starts: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()

    def __enter__(self) -> Self:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if not stub.authorised(self):
                    return
                card = {"id": MODEL, "object": "model", "owned_by": stub.owned_by, "max_model_len": stub.max_model_len}
                stub.reply(self, 200, {"object": "list", "data": [card, {"id": "other-model", "owned_by": "x"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if not stub.authorised(self):
                    return
                with stub.lock:
                    stub.bodies.append(body)
                    stub.starts.append(time.monotonic())
                    stub.in_flight += 1
                    stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
                try:
                    time.sleep(stub.delay_s * (10 if "slow" in body["messages"][-1]["content"] else 1))
                    status, payload = stub.answer(body)
                finally:
                    with stub.lock:
                        stub.in_flight -= 1
                stub.reply(self, status, payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def authorised(self, handler: BaseHTTPRequestHandler) -> bool:
        self.headers.append(handler.headers.get("Authorization"))
        if self.api_key and handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            self.reply(handler, 401, {"error": {"message": "Incorrect API key provided"}})
            return False
        return True

    @staticmethod
    def reply(handler: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def answer(self, body: dict[str, Any]) -> tuple[int, Any]:
        if self.always_status:
            return self.always_status, {"error": {"message": f"status {self.always_status}"}}
        if body["model"] != MODEL:
            return 404, {"error": {"message": f"The model `{body['model']}` does not exist."}}
        if self.bad_prompt and self.bad_prompt in body["messages"][-1]["content"]:
            return 400, {"error": {"message": "This prompt is not acceptable"}}
        max_tokens, seed, n = body["max_completion_tokens"], body.get("seed", 0), body.get("n", 1)
        choices, used = [], 0
        for j in range(n):
            length = stub_length(seed + j, max_tokens) + self.overshoot
            used += length + self.reasoning
            choice: dict[str, Any] = {
                "index": j, "message": {"role": "assistant", "content": f"sample seed {seed + j}"},
                "finish_reason": self.finish or ("length" if length == max_tokens else "stop")}
            if body.get("return_token_ids"):
                choice["token_ids"] = [(seed + j) % 100] * length
            choices.append(choice)
        usage = {"prompt_tokens": 5, "completion_tokens": used, "total_tokens": used + 5,
                 "completion_tokens_details": {"reasoning_tokens": self.reasoning * n}}
        return 200, {"id": "x", "object": "chat.completion", "model": MODEL, "choices": choices, "usage": usage}


def request(pid: str, indices: tuple[int, ...], text: str = "question") -> SampleRequest:
    return SampleRequest(Problem(pid, "unit", text, "1"), ({"role": "user", "content": text},), indices)


def expected(req: SampleRequest, spec: SamplingSpec, *, reasoning: int = 0, with_ids: bool = True) -> list[Completion]:
    """What the stub must produce for ``req``, sample by sample."""
    rows = []
    for index, seed in zip(req.sample_indices, req.seeds(spec.seed)):
        length = stub_length(seed, spec.max_tokens)
        rows.append(Completion(req.problem.id, index, seed, f"sample seed {seed}", length + reasoning,
                               "length" if length == spec.max_tokens else "stop",
                               tuple([seed % 100] * length) if with_ids else None))
    return rows


def by_key(rows: list[Completion]) -> dict[tuple[str, int], Completion]:
    return {(c.problem_id, c.sample_index): c for c in rows}


SPEC = SamplingSpec(max_tokens=6, temperature=0.6, seed=3)


def test_token_ids_mode_sends_one_request_per_contiguous_run() -> None:
    reqs = [request("a", (0, 1, 2, 5, 6)), request("b", (4,))]
    with StubServer() as stub:
        sampler = OpenAISampler(MODEL, base_url=stub.url, concurrency=1, max_n_per_request=2, **FAST)
        got = list(sampler.sample(reqs, SPEC))
    assert sampler.engine_settings()["token_counts"] == "token_ids"
    seeds_a = dict(zip(reqs[0].sample_indices, reqs[0].seeds(SPEC.seed)))
    # Runs (0,1,2) and (5,6), cut at max_n_per_request=2: n and seed of each request's first index.
    sent = [(b.get("n", 1), b["seed"]) for b in stub.bodies]
    assert sent == [(2, seeds_a[0]), (1, seeds_a[2]), (2, seeds_a[5]), (1, reqs[1].seeds(SPEC.seed)[0])]
    assert all(b["return_token_ids"] is True and b["max_completion_tokens"] == 6 for b in stub.bodies)
    assert by_key(got) == by_key(expected(reqs[0], SPEC) + expected(reqs[1], SPEC))
    assert len(got) == 6


def test_usage_mode_one_sample_per_request_reasoning_counted_once() -> None:
    reqs = [request("a", (0, 1, 3))]
    spec = SamplingSpec(max_tokens=50, temperature=0.6, seed=1)
    with StubServer(owned_by="openai", reasoning=7) as stub:
        sampler = OpenAISampler(MODEL, base_url=stub.url, **FAST)
        got = list(sampler.sample(reqs, spec))
    assert sampler.engine_settings()["token_counts"] == "usage"
    assert sorted(b["seed"] for b in stub.bodies) == sorted(reqs[0].seeds(1))
    assert all("n" not in b and "return_token_ids" not in b for b in stub.bodies)
    # completion_tokens = visible + 7 reasoning tokens; counted once, not 7 more.
    assert by_key(got) == by_key(expected(reqs[0], spec, reasoning=7, with_ids=False))


def test_reasoning_tokens_above_completion_tokens_are_refused() -> None:
    with StubServer(owned_by="openai") as stub:
        sampler = OpenAISampler(MODEL, base_url=stub.url, **FAST)
        stub.answer_orig = stub.answer  # type: ignore[attr-defined]

        def lying(body: dict[str, Any]) -> tuple[int, Any]:
            status, payload = stub.answer_orig(body)  # type: ignore[attr-defined]
            payload["usage"]["completion_tokens_details"]["reasoning_tokens"] = 999
            return status, payload

        stub.answer = lying  # type: ignore[method-assign]
        with pytest.raises(SamplerError, match="999 reasoning tokens"):
            list(sampler.sample([request("a", (0,))], SPEC))


def test_transient_faults_are_retried_and_nothing_is_lost_or_duplicated() -> None:
    reqs = [request(f"p{k}", tuple(range(3))) for k in range(4)]
    plan = ["429", "ok", "drop", "reset", "500", "503", "truncate", "hang", "slow", "429"]
    with StubServer() as stub:
        direct = list(OpenAISampler(MODEL, base_url=stub.url, max_n_per_request=1, **FAST).sample(reqs, SPEC))
        with FaultProxy(stub.url, plan, slow_s=0.2, hang_s=1.0) as proxy:
            sampler = OpenAISampler(MODEL, base_url=proxy.url, concurrency=3, max_n_per_request=1, max_retries=len(plan),
                                    backoff_base_s=0.01, backoff_max_s=0.05, timeout_s=0.5)
            got = list(sampler.sample(reqs, SPEC))
    assert set(proxy.stats) == set(plan)  # every fault really happened
    assert len(got) == len({(c.problem_id, c.sample_index) for c in got}) == 12
    assert by_key(got) == by_key(direct)


def test_retries_are_bounded() -> None:
    with StubServer(always_status=500) as stub:
        sampler = OpenAISampler(MODEL, base_url=stub.url, max_retries=2, **FAST)
        with pytest.raises(SamplerError, match=r"gave up on problem a samples 0\.\.0 after 3 attempts.*500"):
            list(sampler.sample([request("a", (0,))], SPEC))
    assert len(stub.bodies) == 3


def test_a_bad_request_is_an_error_at_once_and_earlier_samples_are_kept() -> None:
    reqs = [request("good", (0, 1)), request("bad", (0,), text="a bad prompt")]
    with StubServer(bad_prompt="bad prompt") as stub:
        sampler = OpenAISampler(MODEL, base_url=stub.url, concurrency=1, **FAST)
        got: list[Completion] = []
        with pytest.raises(SamplerError, match="answered 400: This prompt is not acceptable"):
            got.extend(sampler.sample(reqs, SPEC))  # keeps what came before the error
    assert [(c.problem_id, c.sample_index) for c in got] == [("good", 0), ("good", 1)]
    assert len(stub.bodies) == 2  # the 400 was not retried


def test_no_server_listening_is_one_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(SamplerError, match=f"no server is listening at http://127.0.0.1:{port}/v1"):
        OpenAISampler(MODEL, base_url=f"http://127.0.0.1:{port}/v1", **FAST)
    assert time.monotonic() - started < 5


def test_wrong_model_name_suggests_the_served_one() -> None:
    with StubServer() as stub, pytest.raises(SamplerError, match=r"model 'tiny2' is not served at .*one of \['tiny'"):
        OpenAISampler("tiny2", base_url=stub.url, **FAST)


def test_api_key_comes_from_the_named_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    with StubServer(api_key="sesame") as stub:
        monkeypatch.setenv("MY_KEY", "wrong")
        with pytest.raises(SamplerError, match=r"refused the API key \(401.*set \$MY_KEY"):
            OpenAISampler(MODEL, base_url=stub.url, api_key_env="MY_KEY", **FAST)
        monkeypatch.setenv("MY_KEY", "sesame")
        sampler = OpenAISampler(MODEL, base_url=stub.url, api_key_env="MY_KEY", **FAST)
        assert len(list(sampler.sample([request("a", (0,))], SPEC))) == 1
        settings = sampler.engine_settings()
    assert stub.headers[-1] == "Bearer sesame"
    assert settings["api_key_env"] == "MY_KEY" and "sesame" not in json.dumps(settings)


def test_concurrency_is_bounded() -> None:
    reqs = [request(f"p{k}", (0,)) for k in range(9)]
    with StubServer(delay_s=0.1) as stub:
        got = list(OpenAISampler(MODEL, base_url=stub.url, concurrency=3, **FAST).sample(reqs, SPEC))
    assert len(got) == 9
    assert stub.max_in_flight == 3


def test_rate_limit_spaces_request_starts() -> None:
    reqs = [request(f"p{k}", (0,)) for k in range(5)]
    with StubServer() as stub:
        sampler = OpenAISampler(MODEL, base_url=stub.url, concurrency=5, requests_per_minute=600, **FAST)
        list(sampler.sample(reqs, SPEC))
    gaps = [b - a for a, b in zip(stub.starts, stub.starts[1:])]
    assert min(gaps) >= 0.09  # 600 per minute: one start every 0.1 s


def test_completions_are_yielded_as_they_arrive_and_leaving_early_cancels() -> None:
    reqs = [request("fast", (0,)), request("slow", (0,), text="slow one")]
    with StubServer(delay_s=0.3) as stub:
        stream = OpenAISampler(MODEL, base_url=stub.url, concurrency=2, **FAST).sample(reqs, SPEC)
        first = next(stream)
        assert first.problem_id == "fast" and stub.in_flight == 1  # the slow one is still being answered
        stream.close()


def test_base_urls_shard_requests_over_servers_each_once() -> None:
    # Two servers of one model, the second 4x slower: every request goes to exactly one of them, each has at
    # most `concurrency` in flight, the faster one takes more, and the rows are those one server would give.
    reqs = [request(f"p{k}", (0, 1, 2)) for k in range(12)]
    with StubServer(delay_s=0.02) as fast, StubServer(delay_s=0.08) as slow:
        sampler = OpenAISampler(MODEL, base_urls=[fast.url, slow.url], concurrency=2, max_n_per_request=1, **FAST)
        got = list(sampler.sample(reqs, SPEC))
        settings = sampler.engine_settings()
    assert by_key(got) == by_key([c for r in reqs for c in expected(r, SPEC)]) and len(got) == 36
    sent = sorted((b["messages"][-1]["content"], b["seed"]) for b in fast.bodies + slow.bodies)
    assert len(sent) == 36 and len(set(sent)) == 36  # 36 requests (n=1 each), none sent twice
    assert fast.max_in_flight <= 2 and slow.max_in_flight <= 2
    assert len(fast.bodies) > len(slow.bodies) > 0
    assert settings["base_urls"] == [fast.url, slow.url] and settings["base_url"] == fast.url


def test_base_urls_are_checked_before_sending() -> None:
    with StubServer() as one, StubServer(max_model_len=2048) as other:
        with pytest.raises(SamplerError, match=r"serves 'tiny' with max_model_len 2048 .* use identical servers"):
            OpenAISampler(MODEL, base_urls=[one.url, other.url], **FAST)
        with pytest.raises(SamplerError, match="no server is listening at http://127.0.0.1:9/v1"):
            OpenAISampler(MODEL, base_urls=[one.url, "http://127.0.0.1:9/v1"], **FAST)
        with pytest.raises(SamplerError, match="give base_url or base_urls, not both"):
            OpenAISampler(MODEL, base_url=one.url, base_urls=[one.url], **FAST)
        for bad in ([], [one.url, one.url], one.url):
            with pytest.raises(SamplerError, match="base_urls must be a non-empty list of distinct URLs"):
                OpenAISampler(MODEL, base_urls=bad, **FAST)  # type: ignore[arg-type]
    assert one.bodies == [] and other.bodies == []


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    rng = random.Random(0)
    for attempt, cap in [(0, 1.0), (1, 2.0), (3, 8.0), (10, 30.0)]:
        delays = [backoff_delay(attempt, 1.0, 30.0, rng) for _ in range(200)]
        assert cap / 2 <= min(delays) and max(delays) <= cap
        assert max(delays) - min(delays) > cap / 4  # jittered, not constant
    assert backoff_delay(0, 1.0, 30.0, rng, retry_after_s=12.0) == 12.0
    assert backoff_delay(0, 1.0, 30.0, rng, retry_after_s=500.0) == 30.0


def test_contradictory_settings_are_refused_before_sending() -> None:
    with StubServer(max_model_len=100) as stub:
        sampler = OpenAISampler(MODEL, base_url=stub.url, **FAST)
        with pytest.raises(SamplerError, match=r"max_tokens \(100\) must leave room .* context \(100 tokens\)"):
            sampler.sample([request("a", (0,))], SamplingSpec(max_tokens=100))
        with pytest.raises(SamplerError, match="temperature 0 is greedy"):
            sampler.sample([request("a", (0, 1))], SamplingSpec(max_tokens=10, temperature=0))
        reasoning = OpenAISampler(MODEL, base_url=stub.url, reasoning_model=True, **FAST)
        with pytest.raises(SamplerError, match="o1-style reasoning model samples at fixed settings"):
            reasoning.sample([request("a", (0,))], SamplingSpec(max_tokens=10, temperature=0.6))
        list(reasoning.sample([request("a", (0,))], SamplingSpec(max_tokens=10, temperature=1.0, top_p=1.0)))
    assert stub.bodies[-1].keys() == {"model", "messages", "max_completion_tokens", "return_token_ids"}
    assert len(stub.bodies) == 1


def test_a_prompt_that_leaves_less_than_max_tokens_is_refused() -> None:
    # The stub reports 5 prompt tokens: 5 + 6 > 10, and a vLLM server would silently generate at most 5.
    with StubServer(max_model_len=10) as stub:
        sampler = OpenAISampler(MODEL, base_url=stub.url, **FAST)
        with pytest.raises(SamplerError, match=r"prompt \(5 tokens\) \+ max_tokens \(6\) .* max_tokens <= 5"):
            list(sampler.sample([request("a", (0,))], SPEC))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"finish": "content_filter"}, "finish reason 'content_filter' is not an answer"),
    ({"overshoot": 10}, "exceed max_tokens 6; the server ignores max_completion_tokens"),
])
def test_unusable_answers_are_errors_not_samples(kwargs: dict[str, Any], message: str) -> None:
    with StubServer(**kwargs) as stub, pytest.raises(SamplerError, match=message):
        list(OpenAISampler(MODEL, base_url=stub.url, **FAST).sample([request("a", (0,))], SPEC))


def test_bad_options_are_refused() -> None:
    for kwargs, message in [({"concurrency": 0}, "concurrency must be an integer >= 1"),
                            ({"token_counts": "guess"}, "token_counts must be one of"),
                            ({"requests_per_minute": -1}, "requests_per_minute must be > 0")]:
        with pytest.raises(SamplerError, match=message):
            OpenAISampler(MODEL, base_url="http://127.0.0.1:9/v1", **kwargs)  # type: ignore[arg-type]


def test_importing_the_backends_loads_no_heavy_library() -> None:
    code = ("import sys, harness.samplers.openai, harness.samplers.vllm; "
            "print(sorted(m for m in ('torch', 'transformers', 'vllm', 'ray', 'httpx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert out.stdout.strip() == "[]"


def test_model_configs_fit_the_backends_they_name() -> None:
    import inspect
    import tomllib

    from harness.samplers.ray import RaySampler
    from harness.samplers.vllm import VLLMSampler

    classes = {"vllm": VLLMSampler, "openai": OpenAISampler, "ray": RaySampler}
    paths = sorted((Path(__file__).resolve().parent.parent / "configs" / "models").glob("*.toml"))
    assert {p.stem for p in paths} >= {"qwen25-math-72b-instruct", "o1-distilled-72b", "o1-mini", "o1-preview"}
    for path in paths:
        config = tomllib.loads(path.read_text())
        inspect.signature(classes[config["backend"]]).bind(config["model"], **config["backend_options"])
        spec = SamplingSpec(**config["sampling"])
        options = config["backend_options"]
        if config["backend"] in ("vllm", "ray"):
            assert spec.max_tokens < options["max_model_len"], path.name
        if options.get("reasoning_model"):
            assert (spec.temperature, spec.top_p, spec.top_k, spec.stop) == (1.0, 1.0, -1, ()), path.name
