"""The vllm backend on vLLM's CPU build with the tiny random model: rows, token counts, finish reasons, seeds,
extension and resume, refusals. One engine serves the whole module (it takes ~20-40 s to start)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.run import RunRequest, run_sampling
from harness.samplers.base import SampleRequest, SamplerError, sample_seed
from harness.store import RunStore
from harness.types import Completion, Problem, SamplingSpec
from tests.engines.conftest import ENGINE_OPTIONS, Unclosing

# Temperature 0.8 and 64 tokens give this model a mix of samples that end (EOS) and that hit max_tokens.
SPEC = SamplingSpec(max_tokens=64, temperature=0.8, top_p=0.95, seed=0)
PROBLEMS = 3


@pytest.fixture(scope="module")
def sampler(tiny_model_dir: Path) -> Iterator[Any]:
    from harness.samplers.vllm import VLLMSampler

    engine = VLLMSampler(str(tiny_model_dir), **ENGINE_OPTIONS)
    yield engine
    engine.close()


def run(sampler: Any, model: Path, out: Path, samples: int, *, resume: bool = False,
        spec: SamplingSpec = SPEC) -> list[Completion]:
    """Sample through the real run layer into ``out``; the stored rows, sorted."""
    request = RunRequest(bench="aime24", backend="vllm", model=str(model), samples=samples, spec=spec, out=out,
                         limit=PROBLEMS, resume=resume, commit_every=2)
    run_sampling(request, lambda backend, **options: Unclosing(sampler), progress=False)
    with RunStore.open(out) as store:
        return sorted(store.completions(with_token_ids=True), key=lambda c: (c.problem_id, c.sample_index))


def test_run_stores_requested_samples_with_engine_counts(sampler: Any, tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    rows = run(sampler, tiny_model_dir, tmp_path / "run", samples=3)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert len(rows) == PROBLEMS * 3
    assert len({c.problem_id for c in rows}) == PROBLEMS
    for c in rows:
        assert c.token_ids and c.output_tokens == len(c.token_ids)
        assert c.seed == sample_seed(SPEC.seed, c.problem_id, c.sample_index)
        assert c.text == tokenizer.decode(c.token_ids, skip_special_tokens=True)
        if c.finish_reason == "length":
            assert c.output_tokens == SPEC.max_tokens and eos not in c.token_ids
        else:
            assert c.finish_reason == "stop" and c.token_ids[-1] == eos and c.output_tokens <= SPEC.max_tokens
    assert {c.finish_reason for c in rows} == {"stop", "length"}
    with RunStore.open(tmp_path / "run") as store:
        settings = store.manifest().engine_settings
    import vllm

    assert settings["vllm_version"] == vllm.__version__ and settings["torch_version"] and settings["transformers_version"]
    assert (settings["dtype"], settings["max_model_len"], settings["generation_config"]) == ("float32", 1024, "vllm")
    assert settings["model_sampling_defaults"] == {} and settings["enable_prefix_caching"] is True
    assert (settings["tensor_parallel_size"], settings["pipeline_parallel_size"], settings["device"]) == (1, 1, "cpu")


def test_same_seed_same_texts_other_seed_other_texts(sampler: Any) -> None:
    reqs = [SampleRequest(Problem(f"q{k}", "t", f"What is {k} + {k}?", "0"),
                          ({"role": "user", "content": f"What is {k} + {k}?"},), (0, 1, 2)) for k in range(2)]
    first = sorted(sampler.sample(reqs, SPEC), key=lambda c: (c.problem_id, c.sample_index))
    again = sorted(sampler.sample(reqs, SPEC), key=lambda c: (c.problem_id, c.sample_index))
    other = sorted(sampler.sample(reqs, SamplingSpec(max_tokens=64, temperature=0.8, top_p=0.95, seed=1)),
                   key=lambda c: (c.problem_id, c.sample_index))
    assert first == again and [c.token_ids for c in first] == [c.token_ids for c in again]
    assert len({c.text for c in first}) == 6  # the samples of a problem differ from each other
    assert sum(a.text != b.text for a, b in zip(first, other)) == 6


def test_extending_2_to_4_keeps_the_first_2_and_equals_a_fresh_run_of_4(
        sampler: Any, tiny_model_dir: Path, tmp_path: Path) -> None:
    two = run(sampler, tiny_model_dir, tmp_path / "ext", samples=2)
    four = run(sampler, tiny_model_dir, tmp_path / "ext", samples=4, resume=True)
    fresh = run(sampler, tiny_model_dir, tmp_path / "fresh", samples=4)
    assert len(two) == PROBLEMS * 2 and len(four) == PROBLEMS * 4
    assert [c for c in four if c.sample_index < 2] == two
    # The extension asked for indices 2..3 (one request, n=2, seed of index 2); the fresh run for 0..3 (n=4).
    assert four == fresh
    # Indices that are not contiguous (1 and 3) are sent as two requests and still give the same samples.
    problem_rows = [c for c in fresh if c.problem_id == fresh[0].problem_id]
    with RunStore.open(tmp_path / "fresh") as store:
        problem = next(p for p in store.problems() if p.id == fresh[0].problem_id)
    from harness.prompts import load_prompt

    gap = SampleRequest(problem, load_prompt("default").messages(problem.question), (1, 3))
    assert sorted(sampler.sample([gap], SPEC), key=lambda c: c.sample_index) == [problem_rows[1], problem_rows[3]]


def test_stopping_early_aborts_the_rest_and_the_engine_stays_usable(sampler: Any) -> None:
    reqs = [SampleRequest(Problem(f"s{k}", "t", "Count.", "0"), ({"role": "user", "content": f"Count {k}."},), (0, 1))
            for k in range(4)]
    stream = sampler.sample(reqs, SPEC)
    next(stream)
    stream.close()
    assert not sampler._llm.llm_engine.has_unfinished_requests()
    assert len(list(sampler.sample(reqs, SPEC))) == 8


def test_a_batch_larger_than_one_step_works_on_cpu(sampler: Any) -> None:
    # ~50 prompts of ~100 tokens exceed one step's token budget; with chunked prefill on, vLLM 0.32's CPU build
    # crashes on seeded requests ("CPU Generator does not use offset"), so the backend turns it off on CPU.
    text = "Let x be a real number such that x squared plus three x plus two equals zero. Find every value. " * 4
    reqs = [SampleRequest(Problem(f"b{k}", "t", text, "0"), ({"role": "user", "content": f"{k}: {text}"},),
                          tuple(range(6))) for k in range(9)]
    budget = sampler.engine_settings()["max_num_batched_tokens"]
    assert 54 * len(sampler._render(reqs[0])) > budget
    rows = list(sampler.sample(reqs, SamplingSpec(max_tokens=4, temperature=0.8, seed=5)))
    assert len(rows) == 54 and all(1 <= c.output_tokens <= 4 for c in rows)
    assert sampler.engine_settings()["enable_chunked_prefill"] is False


def test_contradictory_settings_are_refused(sampler: Any, tiny_model_dir: Path, tmp_path: Path) -> None:
    req = [SampleRequest(Problem("r", "t", "Hi", "0"), ({"role": "user", "content": "Hi"},), (0, 1))]
    with pytest.raises(SamplerError, match=r"max_tokens \(2000\) must leave room for the prompt .*\(1024 tokens\)"):
        sampler.sample(req, SamplingSpec(max_tokens=2000))
    with pytest.raises(SamplerError, match=r"prompt \(\d+ tokens\) \+ max_tokens \(1020\) exceeds .* max_tokens <= \d+"):
        sampler.sample(req, SamplingSpec(max_tokens=1020))
    with pytest.raises(SamplerError, match="temperature 0 is greedy"):
        sampler.sample(req, SamplingSpec(max_tokens=8, temperature=0.0))
    with pytest.raises(SamplerError, match=r"max_tokens \(2000\)"):
        run(sampler, tiny_model_dir, tmp_path / "bad", samples=1, spec=SamplingSpec(max_tokens=2000))


def test_a_model_without_chat_template_is_refused_before_the_engine_starts(
        tiny_model_dir: Path, tmp_path: Path) -> None:
    from harness.samplers.vllm import VLLMSampler

    bare = tmp_path / "bare"
    shutil.copytree(tiny_model_dir, bare)
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((bare / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(SamplerError, match="has no chat template"):
        VLLMSampler(str(bare), **ENGINE_OPTIONS)
