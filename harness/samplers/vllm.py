"""The vllm backend: vLLM's offline engine (``vllm.LLM``) in this process, the main path on a GPU box.

How samples map to engine requests (checked against vLLM 0.32's source, ``vllm/v1/engine/parallel_sampling.py``,
and by the engine tests): a request with ``n`` > 1 and ``seed`` s is split by vLLM into n children, child j
sampled with its own generator seeded s + j. Sample i of a problem has seed ``problem_seed + i``
(``samplers.base.sample_seed``), so a run of *contiguous* missing indices i..i+k-1 is one request with
``n = k`` and ``seed = sample_seed(i)``. Missing indices that are not contiguous (a resume after a crash that
lost a batch in the middle) are split into one request per contiguous run: one request with n = 2 for the
indices {1, 3} would give index 3 the seed of index 2. Each sample's draws then depend only on its own seed,
not on the batch it ran in, so a run split, resumed or extended gives the samples an uninterrupted run gives.

Other choices: ``generation_config="vllm"`` so the model's ``generation_config.json`` cannot silently change
sampling; ``max_tokens`` is always passed (vLLM's default is 16); the prompt is the model's chat template
applied by the harness, so its token count is known before anything is submitted. Output tokens are
``len(token_ids)`` of each vLLM output (the EOS token that ended a sample is counted; nothing is
re-estimated). Requests are fed to ``LLM.llm_engine`` and completions are yielded as each request finishes,
so the run layer stores them while the rest are still generating.

Budget forcing (``harness.forcing``) uses ``prompt_token_ids``, ``encode`` and ``continue_token_ids``: each
continuation is its own request (a token prompt, n = 1, the row's seed) on the same streaming path, so it too
depends only on its own seed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.samplers.base import (
    SampleRequest,
    SamplerError,
    refuse_greedy_repeats,
    refuse_max_tokens_over,
    refuse_prompt_overflow,
)
from harness.types import Completion, FinishReason, SamplingSpec

if TYPE_CHECKING:
    from vllm import LLM, RequestOutput, SamplingParams

logger = logging.getLogger(__name__)

DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")
# On CPU, vLLM reserves gpu_memory_utilization x RAM (90% by default), more than a shared machine has free.
_CPU_KV_CACHE_BYTES = 2 * 2**30
_FINISH_REASONS: dict[str, FinishReason] = {"stop": "stop", "length": "length"}


def contiguous_runs(indices: Sequence[int]) -> list[tuple[int, int]]:
    """Split ascending sample indices into runs of consecutive ones: ``[(first index, length), ...]``.

    ``contiguous_runs([0, 1, 2, 5, 6, 9]) == [(0, 3), (5, 2), (9, 1)]``. Raises ValueError when the indices
    are not strictly ascending (the seed arithmetic below would silently go wrong).
    """
    runs: list[tuple[int, int]] = []
    for index in indices:
        if runs and index == runs[-1][0] + runs[-1][1]:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        elif runs and index <= runs[-1][0] + runs[-1][1] - 1:
            raise ValueError(f"sample indices must be strictly ascending, got {list(indices)}")
        else:
            runs.append((index, 1))
    return runs


@dataclass(frozen=True)
class _Job:
    """One engine request: ``n`` samples of one problem, indices first..first+n-1, seeds seed..seed+n-1."""

    request_id: str
    problem_id: str
    first_index: int
    seed: int
    n: int
    prompt_ids: tuple[int, ...]


def _check_chat_template_files(model: str) -> None:
    """For a local model folder, raise SamplerError before the (slow) engine start when it has no chat template.

    Hub ids and folders without a tokenizer_config.json are left to the check after loading.
    """
    folder = Path(model).expanduser()
    config = folder / "tokenizer_config.json"
    if not folder.is_dir() or not config.is_file():
        return
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return
    try:
        has_template = bool(json.loads(config.read_text(encoding="utf-8")).get("chat_template"))
    except (OSError, ValueError):
        return  # let the engine's own loader report a broken file
    if not has_template:
        raise SamplerError(
            f"the tokenizer of {model!r} has no chat template; add a chat_template to its tokenizer_config.json "
            "(or a chat_template.jinja) or use a chat/instruct model")


def _check_options(model: str, tensor_parallel_size: int, pipeline_parallel_size: int, dtype: str,
                   max_model_len: int | None, gpu_memory_utilization: float | None) -> None:
    """Raise SamplerError naming the first bad option (before the engine starts)."""
    for name, value in (("tensor_parallel_size", tensor_parallel_size),
                        ("pipeline_parallel_size", pipeline_parallel_size)):
        if not isinstance(value, int) or value < 1:
            raise SamplerError(f"{name} must be an integer >= 1, got {value!r}")
    if dtype not in DTYPES:
        raise SamplerError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if max_model_len is not None and (not isinstance(max_model_len, int) or max_model_len < 1):
        raise SamplerError(f"max_model_len must be an integer >= 1 or unset, got {max_model_len!r}")
    if gpu_memory_utilization is not None and not 0.0 < gpu_memory_utilization <= 1.0:
        raise SamplerError(f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}")
    path = Path(model).expanduser()
    if not path.exists() and (model.startswith(("/", ".", "~")) or model.count("/") > 1):
        raise SamplerError(f"model path {model} does not exist; pass a local model folder or a Hugging Face id")


class VLLMSampler:
    """Sample with vLLM's offline engine (see the module docstring for how seeds and token counts work).

    model: a local folder or Hugging Face id. tensor_parallel_size / pipeline_parallel_size: GPUs per model
    replica (e.g. 8 and 1 for a 72B model on 8x80 GB). dtype: "auto", "float32", "bfloat16" or "float16".
    max_model_len: the context length (None: the model's own). gpu_memory_utilization: fraction of each
    GPU's memory vLLM may use, in (0, 1] (None: 0.9; but on CPU, where vLLM reserves that fraction of RAM,
    None with no kv_cache_memory_bytes means a 2 GiB KV cache). enable_prefix_caching: share the prompt's KV
    cache between the samples of a problem. enforce_eager: skip graph compilation (faster start, slower
    decoding). kv_cache_memory_bytes: a fixed KV-cache size (overrides gpu_memory_utilization).
    enable_chunked_prefill: None = vLLM's default, except on CPU, where it is turned off: vLLM 0.32's CPU build
    crashes ("CPU Generator does not use offset") when the prefill of a seeded request is split over two steps,
    which happens as soon as a batch's prompts exceed the step's token budget.
    Raises SamplerError for bad options, a missing model or chat template, or an engine that fails to start.
    """

    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        tensor_parallel_size: int = 1,
        pipeline_parallel_size: int = 1,
        dtype: str = "auto",
        max_model_len: int | None = None,
        gpu_memory_utilization: float | None = None,
        enable_prefix_caching: bool = True,
        enforce_eager: bool = False,
        kv_cache_memory_bytes: int | None = None,
        enable_chunked_prefill: bool | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
    ) -> None:
        _check_options(model, tensor_parallel_size, pipeline_parallel_size, dtype, max_model_len,
                       gpu_memory_utilization)
        _check_chat_template_files(model)
        try:
            from vllm import LLM
            from vllm.platforms import current_platform
        except ImportError as exc:
            raise SamplerError(f"the vllm backend needs vLLM installed ({exc}); pip install vllm") from None
        if enable_chunked_prefill is None and current_platform.is_cpu():
            enable_chunked_prefill = False  # see the docstring: seeded sampling needs it off on CPU
        if gpu_memory_utilization is None and kv_cache_memory_bytes is None and current_platform.is_cpu():
            kv_cache_memory_bytes = _CPU_KV_CACHE_BYTES
        try:
            self._llm: LLM | None = LLM(
                model, tensor_parallel_size=tensor_parallel_size, pipeline_parallel_size=pipeline_parallel_size,
                dtype=dtype, max_model_len=max_model_len,
                gpu_memory_utilization=0.9 if gpu_memory_utilization is None else gpu_memory_utilization,
                enable_prefix_caching=enable_prefix_caching, enforce_eager=enforce_eager,
                kv_cache_memory_bytes=kv_cache_memory_bytes, enable_chunked_prefill=enable_chunked_prefill,
                trust_remote_code=trust_remote_code,
                revision=revision, generation_config="vllm",
            )
        except Exception as exc:  # noqa: BLE001 - vLLM raises many types at start-up; all mean "cannot run"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SamplerError(f"vLLM could not start model {model!r}: {first} "
                               "(vLLM's log above has the cause)") from None
        self._model = model
        self._tokenizer = self._llm.get_tokenizer()
        self._template: str | None = getattr(self._tokenizer, "chat_template", None)
        if not self._template:
            self.close()
            raise SamplerError(f"the tokenizer of {model!r} has no chat template; add a chat_template to its "
                               "tokenizer_config.json or use a chat/instruct model")
        self._run_id = uuid.uuid4().hex[:8]
        self._next_id = 0

    def _require_llm(self) -> LLM:
        if self._llm is None:
            raise SamplerError("the vllm sampler is closed")
        return self._llm

    def engine_settings(self) -> Mapping[str, Any]:
        """The settings read back from the running engine's config, and the vllm/torch/transformers versions."""
        import torch
        import transformers
        import vllm
        from vllm.platforms import current_platform

        llm = self._require_llm()
        model_config = llm.model_config
        config = llm.llm_engine.vllm_config
        return {
            "model": model_config.model,
            "revision": model_config.revision,
            "tokenizer": model_config.tokenizer,
            "device": current_platform.device_type,
            "dtype": str(model_config.dtype).removeprefix("torch."),
            "max_model_len": model_config.max_model_len,
            "tensor_parallel_size": config.parallel_config.tensor_parallel_size,
            "pipeline_parallel_size": config.parallel_config.pipeline_parallel_size,
            "gpu_memory_utilization": config.cache_config.gpu_memory_utilization,
            "kv_cache_memory_bytes": config.cache_config.kv_cache_memory_bytes,
            "enable_prefix_caching": config.cache_config.enable_prefix_caching,
            "block_size": config.cache_config.block_size,
            "enable_chunked_prefill": config.scheduler_config.enable_chunked_prefill,
            "max_num_batched_tokens": config.scheduler_config.max_num_batched_tokens,
            "max_num_seqs": config.scheduler_config.max_num_seqs,
            "enforce_eager": model_config.enforce_eager,
            "trust_remote_code": model_config.trust_remote_code,
            "generation_config": model_config.generation_config,
            # Sampling defaults the engine would apply from the model's files: empty with "vllm".
            "model_sampling_defaults": dict(model_config.get_diff_sampling_param()),
            "chat_template_sha256": hashlib.sha256((self._template or "").encode()).hexdigest(),
            "seeding": "one request per contiguous run of missing sample indices: n = run length, "
                       "seed = seed of the run's first index; vLLM seeds child j with seed + j",
            "vllm_version": vllm.__version__,
            "torch_version": torch.__version__,
            "transformers_version": transformers.__version__,
        }

    def sample(self, requests: Sequence[SampleRequest], spec: SamplingSpec) -> Iterator[Completion]:
        """Submit every requested sample to the engine and yield Completions as requests finish.

        Everything is checked before anything is submitted. Raises SamplerError when the sampler is closed,
        temperature 0 is asked for more than one sample per problem, or a prompt plus max_tokens does not fit
        the context; the returned iterator raises SamplerError if vLLM ends a sample abnormally (completions
        yielded before that are complete and valid).
        """
        llm = self._require_llm()
        refuse_greedy_repeats(requests, spec)
        context = llm.model_config.max_model_len
        refuse_max_tokens_over(spec, context, whose="model's", fix="lower max_tokens or raise max_model_len")
        jobs = self._jobs(requests, spec, context)
        return self._stream(llm, jobs, spec)

    def _jobs(self, requests: Sequence[SampleRequest], spec: SamplingSpec, context: int) -> list[_Job]:
        """Render each prompt once and cut each request into one job per contiguous run of indices."""
        jobs: list[_Job] = []
        longest: tuple[int, str] = (0, "")
        for request in requests:
            if not request.sample_indices:
                continue
            prompt = tuple(self._render(request))
            longest = max(longest, (len(prompt), request.problem.id))
            seeds = dict(zip(request.sample_indices, request.seeds(spec.seed), strict=True))
            for first, n in contiguous_runs(request.sample_indices):
                jobs.append(_Job(f"tts-{self._run_id}-{self._next_id}", request.problem.id, first, seeds[first], n,
                                 prompt))
                self._next_id += 1
        refuse_prompt_overflow(longest[1], longest[0], spec, context)
        return jobs

    def _render(self, request: SampleRequest) -> list[int]:
        """The prompt's token ids: the chat template applied, no extra special tokens (the template has them)."""
        return self.prompt_token_ids(request.messages)

    def prompt_token_ids(self, messages: Sequence[Mapping[str, str]]) -> list[int]:
        """The token ids ``sample`` feeds the engine for this chat (chat template applied, generation prompt added).

        Raises SamplerError when the sampler is closed.
        """
        self._require_llm()
        text = self._tokenizer.apply_chat_template([dict(m) for m in messages], add_generation_prompt=True,
                                                   tokenize=False)
        ids: list[int] = self._tokenizer.encode(text, add_special_tokens=False)
        return ids

    def encode(self, text: str) -> list[int]:
        """Token ids of plain ``text`` with the engine's tokenizer (no special tokens added)."""
        ids: list[int] = self._tokenizer.encode(text, add_special_tokens=False)
        return ids

    def continue_token_ids(self, rows: Sequence[tuple[str, int, int, Sequence[int]]],
                           spec: SamplingSpec) -> Iterator[Completion]:
        """Continue raw token sequences (budget forcing): rows of (problem id, sample index, seed, input ids).

        Each row is one engine request: the ids as a token prompt (no template added), n = 1 and the row's own
        seed, so a continuation depends only on its row. Yields one Completion per row as its request finishes
        (any order), holding only the new tokens: text, ids, output tokens = len(ids), finish reason; seed and
        sample index are the row's. Everything is checked before anything is submitted: raises SamplerError
        when the sampler is closed, a row has no input ids, or a row's input plus max_tokens exceeds the
        context; the returned iterator raises SamplerError if vLLM ends a continuation abnormally.
        """
        llm = self._require_llm()
        context = llm.model_config.max_model_len
        jobs: list[_Job] = []
        for problem_id, index, seed, ids in rows:
            if not ids:
                raise SamplerError(f"problem {problem_id} sample {index}: nothing to continue (no input ids)")
            if len(ids) + spec.max_tokens > context:
                raise SamplerError(f"problem {problem_id} sample {index}: input ({len(ids)} tokens) + max_tokens "
                                   f"({spec.max_tokens}) exceeds the model's context ({context} tokens); use a "
                                   "smaller cap or forcing max_tokens, or raise max_model_len")
            jobs.append(_Job(f"force-{self._run_id}-{self._next_id}", problem_id, index, seed, 1, tuple(ids)))
            self._next_id += 1
        return self._stream(llm, jobs, spec, retry="rerun `tts-eval force` (stored continuations are kept)")

    @staticmethod
    def _params(spec: SamplingSpec, job: _Job) -> SamplingParams:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        return SamplingParams(
            n=job.n, seed=job.seed, temperature=spec.temperature, top_p=spec.top_p,
            top_k=0 if spec.top_k == -1 else spec.top_k,  # vLLM's "off" is 0
            max_tokens=spec.max_tokens, stop=list(spec.stop) or None,
            output_kind=RequestOutputKind.FINAL_ONLY,  # one output per request, when all n samples are done
        )

    def _stream(self, llm: LLM, jobs: Sequence[_Job], spec: SamplingSpec,
                retry: str = "rerun with --resume") -> Iterator[Completion]:
        """Feed the jobs to the engine, step it, and yield each request's completions when it finishes.

        ``retry`` ends error messages (how to redo what was lost). Unfinished requests are aborted when the
        consumer stops early (an error, Ctrl-C, ``close()``).
        """
        engine = llm.llm_engine
        pending: dict[str, _Job] = {}
        try:
            for job in jobs:
                try:
                    engine.add_request(job.request_id, {"prompt_token_ids": list(job.prompt_ids)},
                                       self._params(spec, job))
                except ValueError as exc:  # vLLM's own validation (e.g. a bad stop string or sampling value)
                    raise SamplerError(f"vLLM refused problem {job.problem_id}: {exc}") from None
                pending[job.request_id] = job
            while pending and engine.has_unfinished_requests():
                try:
                    outputs = engine.step()
                except Exception as exc:  # noqa: BLE001 - the engine died (a worker crashed, out of memory)
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    raise SamplerError(f"the vLLM engine failed: {first} (vLLM's log above has the cause); "
                                       f"finished samples are kept: {retry}") from None
                for output in outputs:
                    if output.finished and output.request_id in pending:
                        yield from self._completions(pending.pop(output.request_id), output, retry)
            if pending:
                lost = sorted({job.problem_id for job in pending.values()})
                raise SamplerError(f"vLLM dropped requests without output for problems {lost[:5]}; {retry}")
        finally:
            if pending and self._llm is not None:
                engine.abort_request(list(pending))

    @staticmethod
    def _completions(job: _Job, output: RequestOutput, retry: str) -> Iterator[Completion]:
        """One Completion per child output; child j is sample first_index + j with seed seed + j."""
        for child in output.outputs:
            reason = _FINISH_REASONS.get(child.finish_reason or "")
            if reason is None:
                raise SamplerError(
                    f"vLLM ended problem {job.problem_id} sample {job.first_index + child.index} with finish reason "
                    f"{child.finish_reason!r}; it was not stored; {retry}")
            token_ids = tuple(child.token_ids)
            yield Completion(problem_id=job.problem_id, sample_index=job.first_index + child.index,
                             seed=job.seed + child.index, text=child.text, output_tokens=len(token_ids),
                             finish_reason=reason, token_ids=token_ids)

    def close(self) -> None:
        """Shut the engine down (its worker processes and GPU memory); later calls to sample raise SamplerError."""
        llm, self._llm = self._llm, None
        if llm is None:
            return
        try:
            llm.llm_engine.engine_core.shutdown()
        except Exception as exc:  # noqa: BLE001 - best effort; the process exit cleans up the rest
            logger.debug("vLLM engine shutdown: %s", exc)
        del llm
        import gc

        gc.collect()
