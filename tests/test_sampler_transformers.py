"""The transformers backend on the tiny model: counts, finish reasons, per-sample seeds, stop strings, errors.

The model's text is noise; these tests check the plumbing, exactly.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from harness.samplers.base import SampleRequest, SamplerError, sample_seed
from harness.samplers.transformers import TransformersSampler, _SeededSampling
from harness.types import Completion, Problem, SamplingSpec

REPO = Path(__file__).resolve().parent.parent
EOS_ID = 2  # <|im_end|> in the tiny model's vocabulary (special tokens are trained first)


def _problems() -> list[Problem]:
    rows = [json.loads(line) for line in (REPO / "benchmarks" / "aime24.jsonl").read_text().splitlines()]
    return [
        Problem(
            id=r["id"], benchmark="aime24", question=r["problem"], answer=r["answer"], answer_type="integer"
        )
        for r in rows
    ]


PROBLEMS = _problems()


def _request(problem: Problem, indices: tuple[int, ...]) -> SampleRequest:
    return SampleRequest(
        problem=problem, messages=({"role": "user", "content": problem.question},), sample_indices=indices
    )


def _by_key(completions: list[Completion]) -> dict[tuple[str, int], Completion]:
    return {(c.problem_id, c.sample_index): c for c in completions}


@pytest.fixture(scope="module")
def sampler(tiny_model_dir: Path) -> Iterator[TransformersSampler]:
    s = TransformersSampler(str(tiny_model_dir), batch_size=4)
    yield s
    s.close()


@pytest.mark.slow
def test_samples_have_counts_seeds_and_finish_reasons(
    sampler: TransformersSampler, tiny_model_dir: Path
) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    spec = SamplingSpec(max_tokens=256, temperature=0.6, seed=0)
    requests = [_request(PROBLEMS[0], (0, 1, 2, 3)), _request(PROBLEMS[1], (0, 1, 2, 3))]
    out = list(sampler.sample(requests, spec))
    assert sorted((c.problem_id, c.sample_index) for c in out) == [
        (p.id, i) for p in PROBLEMS[:2] for i in range(4)
    ]
    for c in out:
        assert c.token_ids is not None and c.output_tokens == len(c.token_ids)
        assert 1 <= c.output_tokens <= 256
        assert c.seed == sample_seed(0, c.problem_id, c.sample_index)
        assert c.text == tok.decode(list(c.token_ids), skip_special_tokens=True)
        assert "<|im_end|>" not in c.text and "<|endoftext|>" not in c.text
        if c.finish_reason == "stop":
            assert c.token_ids[-1] == EOS_ID  # EOS counted, nothing after it
            assert EOS_ID not in c.token_ids[:-1]
        else:
            assert c.finish_reason == "length"
            assert c.output_tokens == 256 and EOS_ID not in c.token_ids
    # The tiny model ends most samples early but not all: both finish reasons occur (seeded, so exact).
    assert {c.finish_reason for c in out} == {"stop", "length"}


@pytest.mark.slow
def test_small_max_tokens_gives_length(sampler: TransformersSampler) -> None:
    spec = SamplingSpec(max_tokens=3, temperature=0.6, seed=5)
    out = list(sampler.sample([_request(p, (0, 1)) for p in PROBLEMS[:3]], spec))
    assert len(out) == 6
    for c in out:
        assert c.token_ids is not None
        ended = EOS_ID in c.token_ids
        assert c.finish_reason == ("stop" if ended else "length")
        assert c.output_tokens == (c.token_ids.index(EOS_ID) + 1 if ended else 3)
    assert sum(c.finish_reason == "length" for c in out) >= 4


@pytest.mark.slow
def test_same_seed_same_samples_other_seed_other_samples(sampler: TransformersSampler) -> None:
    requests = [_request(PROBLEMS[2], (0, 1, 2, 3))]
    first = list(sampler.sample(requests, SamplingSpec(max_tokens=24, temperature=1.0, seed=7)))
    again = list(sampler.sample(requests, SamplingSpec(max_tokens=24, temperature=1.0, seed=7)))
    other = list(sampler.sample(requests, SamplingSpec(max_tokens=24, temperature=1.0, seed=8)))
    assert first == again
    assert [c.token_ids for c in first] == [c.token_ids for c in again]
    assert all(a.token_ids != b.token_ids for a, b in zip(first, other, strict=True))
    # The samples of one problem differ from each other (each has its own seed).
    assert len({c.token_ids for c in first}) == 4


@pytest.mark.slow
def test_sample_is_the_same_alone_or_in_any_batch(sampler: TransformersSampler, tiny_model_dir: Path) -> None:
    """The resume guarantee: a sample does not depend on what else was in its batch (padding included)."""
    spec = SamplingSpec(max_tokens=48, temperature=0.8, top_p=0.9, top_k=50, seed=3)
    short, long = PROBLEMS[0], PROBLEMS[4]  # different prompt lengths, so batches are left-padded
    batched = _by_key(list(sampler.sample([_request(short, (0, 1)), _request(long, (0, 1))], spec)))
    alone = list(sampler.sample([_request(long, (1,))], spec)) + list(
        sampler.sample([_request(short, (0,))], spec)
    )
    for c in alone:
        assert c == batched[(c.problem_id, c.sample_index)]
        assert c.token_ids == batched[(c.problem_id, c.sample_index)].token_ids
    one_by_one = TransformersSampler(str(tiny_model_dir), batch_size=1)
    resumed = _by_key(list(one_by_one.sample([_request(long, (0, 1)), _request(short, (1,))], spec)))
    for key, c in resumed.items():
        assert c.token_ids == batched[key].token_ids


@pytest.mark.slow
def test_temperature_zero_is_transformers_greedy(sampler: TransformersSampler, tiny_model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = SamplingSpec(max_tokens=20, temperature=0.0, seed=1)
    (ours,) = sampler.sample([_request(PROBLEMS[3], (0,))], spec)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model: Any = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    messages = [{"role": "user", "content": PROBLEMS[3].question}]
    ids = tok(
        tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False),
        add_special_tokens=False,
        return_tensors="pt",
    )["input_ids"]
    with torch.no_grad():
        reference = model.generate(
            ids, do_sample=False, max_new_tokens=20, eos_token_id=EOS_ID, pad_token_id=0
        )
    expected = tuple(reference[0, ids.shape[1] :].tolist())
    assert ours.token_ids == expected[: ours.output_tokens]
    assert ours.finish_reason == ("stop" if EOS_ID in expected else "length")


@pytest.mark.slow
def test_stop_string_cuts_text_and_counts_the_completing_token(sampler: TransformersSampler) -> None:
    free = list(sampler.sample([_request(PROBLEMS[5], (0, 1, 2))], SamplingSpec(max_tokens=64, seed=11)))
    longest = max(free, key=lambda c: len(c.text))
    assert len(longest.text) > 40
    stop = longest.text[30:33]  # three characters from the middle of a real sample
    cut = longest.text.find(stop)
    spec = SamplingSpec(max_tokens=64, seed=11, stop=(stop,))
    stopped = _by_key(list(sampler.sample([_request(PROBLEMS[5], (0, 1, 2))], spec)))
    c = stopped[(longest.problem_id, longest.sample_index)]
    assert c.token_ids is not None and longest.token_ids is not None
    assert c.finish_reason == "stop"
    assert c.text == longest.text[:cut]
    assert c.token_ids == longest.token_ids[: c.output_tokens]
    decode = sampler._tokenizer.decode  # the token that completed the stop string is the last one counted
    assert stop in decode(list(c.token_ids), skip_special_tokens=True)
    assert stop not in decode(list(c.token_ids[:-1]), skip_special_tokens=True)
    for other in free:  # samples without the stop string are unchanged
        if stop not in other.text:
            assert stopped[(other.problem_id, other.sample_index)] == other


def test_seeded_sampling_follows_the_distribution_and_filters() -> None:
    """The sampling step alone: frequencies match softmax(logits / T); top-k and top-p remove tokens."""
    import torch

    n = 4000
    logits = torch.tensor([[0.0, 1.0, 2.0]]).repeat(n, 1)
    ids = torch.zeros((n, 1), dtype=torch.long)
    expected = torch.softmax(logits[0] / 0.7, dim=-1)

    def draw(**spec_args: float) -> torch.Tensor:
        spec = SamplingSpec(max_tokens=1, **spec_args)  # type: ignore[arg-type]
        out = _SeededSampling(list(range(n)), spec)(ids, logits)
        assert (out == 0).sum(dim=-1).eq(1).all() and torch.isinf(out).sum() == n * 2  # one-hot scores
        return out.argmax(dim=-1)

    counts = torch.bincount(draw(temperature=0.7, top_p=1.0), minlength=3) / n
    assert torch.allclose(counts, expected, atol=0.03), (counts, expected)
    assert set(draw(temperature=0.7, top_k=1).tolist()) == {2}
    # top_p 0.8: {2} holds 0.77 < 0.8, so token 1 joins; token 0 never.
    assert set(draw(temperature=0.7, top_p=0.8).tolist()) == {1, 2}
    assert set(draw(temperature=0.0).tolist()) == {2}
    # Each row's draw depends only on its own seed: row 17 alone gets what it got among 4000.
    alone = _SeededSampling([17], SamplingSpec(max_tokens=1, temperature=0.7, top_p=1.0))(ids[:1], logits[:1])
    assert alone.argmax().item() == draw(temperature=0.7, top_p=1.0)[17].item()


@pytest.mark.slow
def test_engine_settings_and_close(tiny_model_dir: Path) -> None:
    import torch
    import transformers

    s = TransformersSampler(str(tiny_model_dir), batch_size=2)
    settings = s.engine_settings()
    assert settings["model"] == str(tiny_model_dir)
    assert (settings["device"], settings["dtype"], settings["batch_size"]) == ("cpu", "float32", 2)
    assert settings["eos_token_ids"] == [EOS_ID] and settings["max_context"] == 4096
    assert settings["transformers_version"] == transformers.__version__
    assert settings["torch_version"] == torch.__version__
    s.close()
    with pytest.raises(SamplerError, match="closed"):
        list(s.sample([_request(PROBLEMS[0], (0,))], SamplingSpec(max_tokens=2)))


@pytest.mark.slow
def test_clear_errors(tiny_model_dir: Path, tmp_path: Path, sampler: TransformersSampler) -> None:
    with pytest.raises(SamplerError, match="does not exist"):
        TransformersSampler(str(tmp_path / "no-such-model"))
    with pytest.raises(SamplerError, match="dtype must be one of"):
        TransformersSampler(str(tiny_model_dir), dtype="float8")
    with pytest.raises(SamplerError, match="batch_size must be"):
        TransformersSampler(str(tiny_model_dir), batch_size=0)
    with pytest.raises(SamplerError, match="exceeds the model's context"):
        list(sampler.sample([_request(PROBLEMS[0], (0,))], SamplingSpec(max_tokens=4096)))
    no_template = tmp_path / "no-template"
    shutil.copytree(tiny_model_dir, no_template)
    (no_template / "chat_template.jinja").unlink()
    config = json.loads((no_template / "tokenizer_config.json").read_text())
    del config["chat_template"]
    (no_template / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(SamplerError, match="no chat template; add a chat_template"):
        TransformersSampler(str(no_template))


def test_importing_the_backends_stays_light() -> None:
    code = (
        "import sys, harness.samplers.transformers, harness.samplers.replay, harness.samplers.registry, "
        "harness.tiny_model; "
        "print(sorted(m for m in ('torch', 'transformers', 'vllm', 'ray') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_registry_names_and_errors() -> None:
    from harness.samplers.registry import BACKENDS, PLANNED, make_sampler

    assert BACKENDS["transformers"] == "harness.samplers.transformers:TransformersSampler"
    with pytest.raises(SamplerError, match="unknown backend 'transfomers'.*did you mean 'transformers'"):
        make_sampler("transfomers", model="x")
    for name in PLANNED:
        if name not in BACKENDS:
            with pytest.raises(SamplerError, match=f"backend '{name}' is not available yet"):
                make_sampler(name, model="x")
    with pytest.raises(SamplerError, match="unexpected keyword argument 'batchsize'"):
        make_sampler("transformers", model="x", batchsize=2)


@pytest.mark.slow
def test_registry_builds_a_working_sampler(tiny_model_dir: Path) -> None:
    from harness.samplers.registry import make_sampler

    s = make_sampler("transformers", model=str(tiny_model_dir), batch_size=3)
    assert isinstance(s, TransformersSampler) and s.engine_settings()["batch_size"] == 3
    (c,) = s.sample([_request(PROBLEMS[0], (4,))], SamplingSpec(max_tokens=5))
    assert (c.problem_id, c.sample_index, c.seed) == (PROBLEMS[0].id, 4, sample_seed(0, PROBLEMS[0].id, 4))
    s.close()
