"""Budget forcing through the vllm backend on vLLM's CPU build with the tiny model: ``tts-eval run`` then
``tts-eval force`` end to end through the CLI, continuations stored, counted, seeded and reproducible.

One engine serves the whole module (it takes ~20-40 s to start): the CLI's backend factory is replaced by one
that checks the options the CLI passes and hands back that engine, so both commands run on it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.forcing import FORCE_PROMPTS, force_seed, forced_text
from harness.grading import extract_answer
from harness.prompts import load_prompt
from harness.samplers.base import SamplerError
from harness.store import RunStore
from harness.types import Completion, SamplingSpec
from tests.engines.conftest import ENGINE_OPTIONS

MAX_TOKENS = 48  # seed 0, temperature 0.8: samples ending (EOS) at 14, 28 and 31 tokens, the other 6 at 48
CAPS = (16, 32)
FORCE_MAX = 8
SEED = 0
SPEC = SamplingSpec(max_tokens=MAX_TOKENS, temperature=0.8, top_p=0.95, seed=SEED)
RUN_ARGS = ("--backend", "vllm", "--bench", "aime24", "--samples", "3", "--max-tokens", str(MAX_TOKENS),
            "--temperature", "0.8", "--seed", str(SEED), "--limit", "3", "--dtype", "float32",
            "--max-model-len", str(ENGINE_OPTIONS["max_model_len"]),
            "-o", "enforce_eager=true", "-o", f"kv_cache_memory_bytes={ENGINE_OPTIONS['kv_cache_memory_bytes']}",
            "--no-progress", "--no-report")
FORCE_ARGS = ("--caps", ",".join(map(str, CAPS)), "--max-tokens", str(FORCE_MAX), "--dtype", "float32",
              "--no-progress", "--no-report")


class Shared:
    """The module's engine as the CLI's factory hands it out: ``close()`` leaves it running for the next test."""

    name = "vllm"

    def __init__(self, engine: Any) -> None:
        self._engine = engine

    def engine_settings(self) -> Any:
        return self._engine.engine_settings()

    def sample(self, requests: Any, spec: SamplingSpec) -> Iterator[Completion]:
        return self._engine.sample(requests, spec)  # type: ignore[no-any-return]

    def prompt_token_ids(self, messages: Any) -> list[int]:
        return self._engine.prompt_token_ids(messages)  # type: ignore[no-any-return]

    def encode(self, text: str) -> list[int]:
        return self._engine.encode(text)  # type: ignore[no-any-return]

    def continue_token_ids(self, rows: Any, spec: SamplingSpec) -> Iterator[Completion]:
        return self._engine.continue_token_ids(rows, spec)  # type: ignore[no-any-return]

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> Iterator[Any]:
    from harness.samplers.vllm import VLLMSampler

    sampler = VLLMSampler(str(tiny_model_dir), **ENGINE_OPTIONS)
    yield sampler
    sampler.close()


@pytest.fixture(scope="module")
def cli_on_engine(engine: Any, tiny_model_dir: Path) -> Iterator[list[dict[str, Any]]]:
    """Route the CLI's ``make_sampler`` to the module's engine; yields the (backend, model, options) it got."""
    import harness.samplers.registry as registry

    calls: list[dict[str, Any]] = []

    def factory(backend: str, **options: Any) -> Shared:
        calls.append({"backend": backend, **options})
        return Shared(engine)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(registry, "make_sampler", factory)
        yield calls


def _invoke(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def forced_runs(cli_on_engine: list[dict[str, Any]], tiny_model_dir: Path,
                tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """One vllm run forced twice from the same stored samples (two copies): (run, copy, first force's output)."""
    root = tmp_path_factory.mktemp("vllm-force")
    _invoke("run", "--model", str(tiny_model_dir), *RUN_ARGS, "--out", str(root / "run"))
    shutil.copytree(root / "run", root / "copy")
    output = _invoke("force", str(root / "run"), *FORCE_ARGS).output
    _invoke("force", str(root / "copy"), *FORCE_ARGS)
    model = str(tiny_model_dir)
    # `force` starts the engine with the run's own recorded options (flags given to force override them)
    assert cli_on_engine == [{"backend": "vllm", "model": model, **ENGINE_OPTIONS}] * 3
    return root / "run", root / "copy", output


def _samples(run: Path) -> list[Completion]:
    with RunStore.open(run) as store:
        return store.completions(with_token_ids=True)


def _forced_rows(run: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(run / "run.sqlite") as db:
        return db.execute("SELECT problem_id, sample_index, cap, prefix_tokens, prompt_name, seed, text, output_tokens,"
                          " finish_reason, token_ids FROM forced ORDER BY problem_id, sample_index, cap").fetchall()


def test_cut_samples_get_stored_counted_seeded_continuations(forced_runs: tuple[Path, Path, str],
                                                             tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    run, _, output = forced_runs
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    samples = {(c.problem_id, c.sample_index): c for c in _samples(run)}
    assert len(samples) == 9 and {c.finish_reason for c in samples.values()} == {"stop", "length"}
    forced = _forced_rows(run)
    for cap in CAPS:
        cut = {key for key, c in samples.items() if c.finish_reason == "length" or (c.output_tokens or 0) > cap}
        assert cut, f"no sample was cut at cap {cap}; the test needs some"
        assert {(p, i) for p, i, c, *_ in forced if c == cap} == cut  # exactly the cut samples, once each
        assert f"cap {cap}: {len(cut)} of 9 samples cut, {len(cut)} continuations generated" in output
    for pid, index, cap, prefix, prompt, seed, text, tokens, finish, ids_json in forced:
        sample, ids = samples[(pid, index)], json.loads(ids_json)
        assert prefix == min(sample.output_tokens or 0, cap) and prompt == "boxed-v1"
        assert seed == force_seed(sample.seed, cap)
        assert tokens == len(ids) and 1 <= tokens <= FORCE_MAX  # counted by the engine, not re-estimated
        assert (finish == "stop" and ids[-1] == eos) or (finish == "length" and tokens == FORCE_MAX and eos not in ids)
        # vLLM's incremental detokenizer holds back a trailing incomplete UTF-8 character of a cut text (the
        # decoder writes it as U+FFFD); everything else is the decoded ids exactly.
        decoded = tokenizer.decode(ids, skip_special_tokens=True)
        assert decoded.startswith(text) and set(decoded[len(text):]) <= {"\ufffd"}
        assert decoded == text or finish == "length"


def test_forcing_is_deterministic_given_the_seed(forced_runs: tuple[Path, Path, str], engine: Any) -> None:
    run, copy, _ = forced_runs
    assert _forced_rows(run) == _forced_rows(copy)  # two forcing passes over the same samples
    with sqlite3.connect(run / "run.sqlite") as a, sqlite3.connect(copy / "run.sqlite") as b:
        query = "SELECT * FROM capped_grades ORDER BY cap, problem_id, sample_index"
        assert a.execute(query).fetchall() == b.execute(query).fetchall() != []
    # The stored continuation is what the engine gives for prompt + kept prefix + forcing text with the stored
    # seed, and another seed gives other continuations.
    cap = CAPS[0]
    samples = {(c.problem_id, c.sample_index): c for c in _samples(run)}
    with RunStore.open(run) as store:
        stored = {(f.completion.problem_id, f.completion.sample_index): f.completion for f in store.forced(cap)}
        questions = {p.id: p.question for p in store.problems()}
    force_ids = engine.encode(FORCE_PROMPTS["boxed-v1"])
    template = load_prompt("default")
    rows = [(pid, index, c.seed, engine.prompt_token_ids(template.messages(questions[pid]))
             + list(samples[(pid, index)].token_ids or ())[:cap] + force_ids) for (pid, index), c in stored.items()]
    spec = SamplingSpec(max_tokens=FORCE_MAX, temperature=0.8, top_p=0.95, seed=SEED)
    again = {(c.problem_id, c.sample_index): c for c in engine.continue_token_ids(rows, spec)}
    assert again == stored
    other = {(c.problem_id, c.sample_index): c for c in engine.continue_token_ids(
        [(pid, index, seed + 1, ids) for pid, index, seed, ids in rows], spec)}
    assert sum(other[key].token_ids != stored[key].token_ids for key in stored) >= len(stored) // 2


def test_prompt_token_ids_are_what_sample_fed_the_engine(forced_runs: tuple[Path, Path, str], engine: Any) -> None:
    # Continuing the bare prompt with a sample's seed and the run's settings regenerates that sample exactly:
    # the same prompt ids, and an n = 1 request seeded s samples like child j of an n > 1 request seeded s - j.
    run, _, _ = forced_runs
    with RunStore.open(run) as store:
        questions = {p.id: p.question for p in store.problems()}
    samples = _samples(run)
    template = load_prompt("default")
    rows = [(c.problem_id, c.sample_index, c.seed or 0,
             engine.prompt_token_ids(template.messages(questions[c.problem_id]))) for c in samples]
    again = sorted(engine.continue_token_ids(rows, SPEC), key=lambda c: (c.problem_id, c.sample_index))
    assert again == sorted(samples, key=lambda c: (c.problem_id, c.sample_index))


def test_the_forced_answer_is_graded_with_the_continuations_finish_reason(forced_runs: tuple[Path, Path, str]) -> None:
    run, _, _ = forced_runs
    with sqlite3.connect(run / "run.sqlite") as db:
        graded = {(p, i, c): ex for p, i, c, ex in db.execute(
            "SELECT problem_id, sample_index, cap, extracted FROM capped_grades")}
    forced = _forced_rows(run)
    assert len(graded) == 9 * len(CAPS)
    for pid, index, cap, _, prompt, _, text, _, finish, _ in forced:
        expected = extract_answer(forced_text(prompt, text), truncated=finish == "length").answer
        assert graded[(pid, index, cap)] == expected


def test_forcing_resumes_and_bad_rows_are_refused(forced_runs: tuple[Path, Path, str], engine: Any) -> None:
    run, _, _ = forced_runs
    before = _forced_rows(run)
    result = _invoke("force", str(run), *FORCE_ARGS)
    assert f"cap {CAPS[0]}:" in result.output and result.output.count(" 0 continuations generated") == len(CAPS)
    assert _forced_rows(run) == before
    context = engine.engine_settings()["max_model_len"]
    spec = SamplingSpec(max_tokens=FORCE_MAX, temperature=0.8)
    too_long: Sequence[tuple[str, int, int, list[int]]] = [("p", 0, 1, [1] * (context - FORCE_MAX + 1))]
    with pytest.raises(SamplerError, match=r"problem p sample 0: input \(\d+ tokens\) \+ max_tokens \(8\) exceeds"):
        engine.continue_token_ids(too_long, spec)
    with pytest.raises(SamplerError, match="nothing to continue"):
        engine.continue_token_ids([("p", 1, 1, [])], spec)
    assert not engine._llm.llm_engine.has_unfinished_requests()  # refused before anything was submitted
    (fits,) = engine.continue_token_ids([("p", 0, 1, [1] * (context - FORCE_MAX))], spec)
    assert 1 <= fits.output_tokens <= FORCE_MAX and fits.sample_index == 0 and fits.seed == 1
