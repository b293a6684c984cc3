"""Budget forcing (``tts-eval force``): make a sample cut at a token cap answer anyway, and count what it costs.

For each cap b and each stored sample that did not finish within b, the engine is fed the sample's own prompt
ids, the first min(length, b) of its stored token ids, and a short versioned "final answer" text
(``FORCE_PROMPTS``), and generates at most ``max_tokens`` more tokens with the run's sampling settings and a
seed derived from the sample's seed and the cap. The continuation is stored as a derived completion keyed by
(problem, sample index, cap), graded (the forcing text plus the continuation, so the answer is the box it
opens), and its generated tokens are counted: tokens of that sample at b = min(length, b) + continuation
tokens. The injected forcing text is prompt, not output, and is not counted (its size is recorded).

Backends plug in through ``PrefixEngine`` (three methods); the transformers backend has them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from harness.grading import GRADER_VERSION, Grader
from harness.prompts import PromptTemplate
from harness.sequential import finished_within
from harness.store import ForcedAnswer, RunStore
from harness.types import Completion, Grade, RunManifest, SamplingSpec

log = logging.getLogger(__name__)

# Versioned forcing texts: a new wording is a new name, never an edit (stored continuations refer to it).
FORCE_PROMPTS: Mapping[str, str] = {
    "boxed-v1": "\n\nFinal Answer: The final answer is $\\boxed{",
    # For models that reason inside <think> ... </think>: close the reasoning first, as s1 does.
    "think-boxed-v1": "\n</think>\n\nFinal Answer: The final answer is $\\boxed{",
}
DEFAULT_FORCE_PROMPT = "boxed-v1"
DEFAULT_FORCE_MAX_TOKENS = 32
INFO_KEY = "forcing"


class ForceError(ValueError):
    """Budget forcing cannot run as asked (imported run, no token ids, settings differ from earlier forcing)."""


@runtime_checkable
class PrefixEngine(Protocol):
    """What a backend needs for budget forcing, on top of ``Sampler`` (vLLM: TokensPrompt with n=1 per row)."""

    def prompt_token_ids(self, messages: Sequence[Mapping[str, str]]) -> list[int]:
        """The ids the backend's ``sample`` feeds the model for this chat (template and generation prompt)."""
        ...

    def encode(self, text: str) -> list[int]:
        """Token ids of plain text, no special tokens."""
        ...

    def continue_token_ids(self, rows: Sequence[tuple[str, int, int, Sequence[int]]],
                           spec: SamplingSpec) -> Iterator[Completion]:
        """Continue rows of (problem id, sample index, seed, input ids) as they are (no template); yield one
        Completion per row with only the new tokens (ids, count, finish reason), in any order."""
        ...

    def close(self) -> None:
        """Release the engine."""
        ...


@dataclass(frozen=True)
class ForceSummary:
    """What a forcing pass did: continuations generated per cap, and how many samples were cut per cap."""

    run_dir: Path
    generated: Mapping[int, int]
    cut: Mapping[int, int]
    samples: int


def force_seed(sample_seed: int | None, cap: int) -> int:
    """The seed of the forced continuation of a sample at ``cap`` (stable; differs across caps)."""
    digest = hashlib.sha256(f"{sample_seed}:{cap}:force".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (2**31 - 1)


def forced_text(prompt_name: str, continuation: str) -> str:
    """The text graded for a forced answer: the forcing text then the continuation."""
    return FORCE_PROMPTS[prompt_name] + continuation


def _template(manifest: RunManifest) -> PromptTemplate:
    """Rebuild the run's prompt template from its manifest (and check it against the stored hash)."""
    try:
        data = json.loads(manifest.prompt_template)
        template = PromptTemplate(name=manifest.prompt_name, version=data["version"], system=data["system"],
                                  user=data["user"])
    except (ValueError, KeyError, TypeError):
        raise ForceError("the run's manifest has no usable prompt template; only runs sampled by tts-eval "
                         "can be forced") from None
    if template.sha256 != manifest.prompt_hash:
        raise ForceError("the run's prompt template does not match its stored hash; the store is inconsistent")
    return template


def check_forcing_settings(store: RunStore, prompt_name: str, max_tokens: int) -> dict[str, Any]:
    """Refuse to mix forcing settings in one run; return the settings to record. Raises ForceError."""
    if prompt_name not in FORCE_PROMPTS:
        raise ForceError(f"unknown forcing prompt {prompt_name!r}; choose from {', '.join(FORCE_PROMPTS)}")
    if max_tokens < 1:
        raise ForceError(f"forcing max_tokens must be >= 1, got {max_tokens}")
    settings = {"prompt": prompt_name, "text": FORCE_PROMPTS[prompt_name], "max_tokens": max_tokens}
    old = store.info(INFO_KEY)
    if old and (old.get("prompt"), old.get("max_tokens")) != (prompt_name, max_tokens):
        raise ForceError(f"this run was forced with prompt {old.get('prompt')!r} and max_tokens "
                         f"{old.get('max_tokens')}; use the same settings (continuations are not mixed)")
    return settings


def plan_rows(store: RunStore, cap: int, prompt_ids: Mapping[str, list[int]], force_ids: list[int]
              ) -> tuple[list[tuple[str, int, int, list[int]]], dict[tuple[str, int], int], int]:
    """The engine rows still missing at ``cap``: (problem id, sample index, seed, prompt + prefix + forcing).

    Returns (rows, prefix tokens by sample, samples cut at the cap). Raises ForceError for a cut sample
    without stored token ids.
    """
    done = {(f.completion.problem_id, f.completion.sample_index) for f in store.forced(cap)}
    rows, prefix, cut = [], {}, 0
    for c in store.completions(with_token_ids=True):
        if finished_within(c, cap):
            continue
        cut += 1
        if (c.problem_id, c.sample_index) in done:
            continue
        if c.token_ids is None:
            raise ForceError(f"problem {c.problem_id!r} sample {c.sample_index} has no stored token ids; "
                             "budget forcing needs a run sampled by tts-eval with a backend that keeps them")
        kept = list(c.token_ids[:cap])
        prefix[(c.problem_id, c.sample_index)] = len(kept)
        rows.append((c.problem_id, c.sample_index, force_seed(c.seed, cap),
                     prompt_ids[c.problem_id] + kept + force_ids))
    return rows, prefix, cut


def force_run(run_dir: Path, caps: Sequence[int], factory: Callable[..., Any], *,
              prompt_name: str = DEFAULT_FORCE_PROMPT, max_tokens: int = DEFAULT_FORCE_MAX_TOKENS,
              backend_options: Mapping[str, Any] | None = None, workers: int | None = None,
              commit_every: int = 16, progress: bool = False) -> ForceSummary:
    """Generate, store and grade the forced continuations of the run in ``run_dir`` at each cap.

    ``factory(backend, model=..., **backend_options)`` builds the run's engine (``make_sampler`` in the CLI);
    it must provide ``PrefixEngine``. Resumable: continuations already stored are kept. Raises ForceError for
    an imported run, a run without sampling settings or token ids, mixed settings, or an engine without the
    forcing methods; StoreError for a missing run; SamplerError from the engine.
    """
    if not caps or any(c < 1 for c in caps):
        raise ForceError(f"caps must be positive token counts, got {list(caps)}")
    with RunStore.open(run_dir) as store:
        manifest = store.manifest()
        if manifest.backend == "replay" or manifest.sampling is None:
            raise ForceError(f"{run_dir} was imported ({manifest.backend}); forcing needs a run sampled by tts-eval "
                             "with its token ids and sampling settings")
        settings = check_forcing_settings(store, prompt_name, max_tokens)
        template = _template(manifest)
        spec = replace(manifest.sampling, max_tokens=max_tokens, stop=())
        engine = factory(manifest.backend, model=manifest.model, **dict(backend_options or {}))
        try:
            if not isinstance(engine, PrefixEngine):
                raise ForceError(f"backend {manifest.backend!r} cannot continue token prefixes yet (it needs "
                                 "prompt_token_ids, encode and continue_token_ids)")
            prompt_ids = {p.id: engine.prompt_token_ids(template.messages(p.question)) for p in store.problems()}
            force_ids = engine.encode(FORCE_PROMPTS[prompt_name])
            generated, cut = {}, {}
            for cap in sorted(set(caps)):
                rows, prefix, cut[cap] = plan_rows(store, cap, prompt_ids, force_ids)
                generated[cap] = _generate(store, engine, rows, prefix, cap, prompt_name, spec, commit_every)
                log.info("cap %d: %d samples cut, %d continuations generated", cap, cut[cap], generated[cap])
        finally:
            engine.close()
        recorded = sorted(set(caps) | set((store.info(INFO_KEY) or {}).get("caps", [])))
        store.set_info(INFO_KEY, {**settings, "caps": recorded, "force_text_tokens": len(force_ids),
                                  "sampling": {"temperature": spec.temperature, "top_p": spec.top_p,
                                               "top_k": spec.top_k}})
        store.set_info("caps", sorted(set(caps) | set(store.info("caps") or [])))
        with Grader(workers=workers, progress=progress) as grader:
            for cap in sorted(set(caps)):
                grade_capped(store, cap, grader)
        return ForceSummary(run_dir, generated, cut, store.count_completions())


def _generate(store: RunStore, engine: PrefixEngine, rows: list[tuple[str, int, int, list[int]]],
              prefix: Mapping[tuple[str, int], int], cap: int, prompt_name: str, spec: SamplingSpec,
              commit_every: int) -> int:
    """Run the engine on ``rows`` and store its continuations in small batches; return how many were new."""
    buffer: list[ForcedAnswer] = []
    added = 0
    try:
        for c in engine.continue_token_ids(rows, spec):
            buffer.append(ForcedAnswer(cap, prefix[(c.problem_id, c.sample_index)], prompt_name, c))
            if len(buffer) >= commit_every:
                added += store.add_forced(buffer)
                buffer = []
    finally:
        added += store.add_forced(buffer)
    return added


def capped_set(store: RunStore, cap: int) -> list[Completion]:
    """The samples as they stand at ``cap`` with forcing: a sample that finished within the cap as it is, a cut
    one as its forcing text plus continuation with the continuation's finish reason (or an empty text, no
    answer, when it has none)."""
    forced = {(f.completion.problem_id, f.completion.sample_index): f for f in store.forced(cap)}
    out = []
    for c in store.completions():
        if finished_within(c, cap):
            out.append(c)
            continue
        f = forced.get((c.problem_id, c.sample_index))
        if f is None:
            out.append(replace(c, text="", finish_reason="length"))  # cut at the cap and never forced
            continue
        # The graded text ends where the continuation ended, so its finish reason is the continuation's: the
        # grader reads only a closed box from a "length" text, and more from one that stopped on its own.
        out.append(replace(c, text=forced_text(f.prompt_name, f.completion.text),
                           finish_reason=f.completion.finish_reason))
    return out


def grade_capped(store: RunStore, cap: int, grader: Grader) -> list[Grade]:
    """Grade the samples at ``cap`` together (one vote-key clustering per problem) and store the grades."""
    problems = {p.id: p for p in store.problems()}
    grades = grader.grade_many(problems, capped_set(store, cap))
    store.write_capped_grades(cap, grades, GRADER_VERSION)
    return grades


def continuation_tokens(store: RunStore, cap: int) -> dict[tuple[str, int], int]:
    """Output tokens of each stored continuation at ``cap``, by (problem id, sample index)."""
    return {(f.completion.problem_id, f.completion.sample_index): int(f.completion.output_tokens or 0)
            for f in store.forced(cap)}
