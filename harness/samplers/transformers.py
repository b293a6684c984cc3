"""The transformers backend: in-process sampling with Hugging Face ``generate``, on CPU or GPU.

For small models and machines without vLLM. Two choices make its samples reproducible per sample:

- Sampling is done by this module, not by transformers: ``generate`` runs greedy over scores that a logits
  processor (``_SeededSampling``) has reduced to one token per row, drawn with that row's own
  ``torch.Generator`` seeded with the sample's seed. Sample i of a problem is then the same whether it is
  generated alone, in a batch with other samples or problems (left padding), or after a resume: nothing
  depends on the global RNG or on the batch's make-up. Only floating-point differences between batch
  shapes could still change a draw, in the rare step where they decide a near-tie.
- Stop strings are checked by a stopping criterion (``_StopStrings``) on the decoded tail of each row after
  every step, so a row stops as soon as it writes one; the returned text is cut before the stop string, as
  vLLM does, and the token that completed it is counted.

Output tokens are the generated ids up to and including the first EOS (or the token that completed a stop
string); padding is never counted. The model's ``generation_config.json`` is ignored apart from its EOS ids,
so a model file cannot silently change sampling.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from harness.samplers.base import SampleRequest, SamplerError
from harness.types import Completion, SamplingSpec

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")


class _SeededSampling:
    """Logits processor: draw each row's next token with the row's own generator; return one-hot scores.

    Temperature 0 is greedy (argmax, no randomness used). Otherwise the scores are divided by the
    temperature, filtered by top-k then top-p (the smallest set of most likely tokens whose probability
    reaches top_p, never empty), and the token is drawn by an exponential race: argmax of logit - log(E)
    with one Exp(1) number per vocabulary entry from the row's generator (exactly a draw from the softmax).
    Why a race and not inverse CDF: tiny floating-point differences between batch shapes can move a
    token in or out of the top-p set; with a CDF that shifts every later token's interval and often changes
    the draw, while in a race it matters only if that marginal token would have won.
    """

    def __init__(self, seeds: Sequence[int], spec: SamplingSpec, device: str = "cpu") -> None:
        import torch

        self._spec = spec
        self._generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        logits = scores.float()
        if self._spec.temperature == 0:
            chosen = logits.argmax(dim=-1)
        else:
            logits = self._filter(logits / self._spec.temperature)
            vocab = logits.shape[-1]
            races = [
                torch.empty(vocab, device=logits.device).exponential_(generator=g) for g in self._generators
            ]
            # An Exp(1) draw of exactly 0 would make log() -inf; clamp so a filtered token stays at -inf.
            noise = torch.stack(races).clamp_(min=torch.finfo(torch.float32).tiny)
            chosen = (logits - noise.log()).argmax(dim=-1)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, chosen.unsqueeze(1), 0.0)
        return out

    def _filter(self, logits: torch.Tensor) -> torch.Tensor:
        import torch

        top_k, top_p = self._spec.top_k, self._spec.top_p
        if top_k != -1 and top_k < logits.shape[-1]:
            kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if top_p < 1.0:
            sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
            sorted_probs = torch.softmax(sorted_logits, dim=-1)
            # Drop a token when the tokens ranked above it already reach top_p (so the top token stays).
            drop = (sorted_probs.cumsum(dim=-1) - sorted_probs) >= top_p
            logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
        return logits


class _StopStrings:
    """Stopping criterion: a row stops at the step where its decoded tail first contains a stop string.

    Only the last ``window`` generated tokens are decoded each step (enough to hold the longest stop string,
    since every ordinary token is at least one byte), so the cost does not grow with the output length.
    ``stopped_at[row]`` is the number of generated tokens when the row stopped (None while running).
    """

    def __init__(self, tokenizer: Any, stops: Sequence[str], prompt_width: int, eos_ids: set[int], rows: int):
        self._tokenizer = tokenizer
        self._stops = tuple(stops)
        self._prompt_width = prompt_width
        self._eos_ids = eos_ids
        self._window = max(len(s.encode("utf-8")) for s in stops) + 8
        self._ended = [False] * rows  # rows that wrote EOS: generate pads them from then on
        self.stopped_at: list[int | None] = [None] * rows

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        import torch

        generated = input_ids.shape[1] - self._prompt_width
        tails = input_ids[:, input_ids.shape[1] - min(generated, self._window) :].tolist()
        for row, tail in enumerate(tails):
            if self.stopped_at[row] is not None or self._ended[row]:
                continue
            if tail[-1] in self._eos_ids:
                self._ended[row] = True
            elif any(stop in self._tokenizer.decode(tail, skip_special_tokens=True) for stop in self._stops):
                self.stopped_at[row] = generated
        done = [at is not None for at in self.stopped_at]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _check_model_path(model: str) -> None:
    """Raise SamplerError when ``model`` is written as a local path that does not exist.

    A name like ``org/name`` that is not a local folder is left to transformers (a Hugging Face Hub id).
    """
    path = Path(model).expanduser()
    looks_local = model.startswith(("/", ".", "~")) or "\\" in model or model.count("/") > 1
    if path.exists() and not path.is_dir():
        raise SamplerError(f"model path {model} is a file; pass the model's folder (with config.json)")
    if not path.exists() and looks_local:
        raise SamplerError(
            f"model path {model} does not exist; pass a local model folder or a Hugging Face id like org/name"
        )


class TransformersSampler:
    """Sample with a Hugging Face causal LM in this process (see the module docstring for the guarantees).

    model: a local folder or Hub id. device: a torch device ("cpu", "cuda", "cuda:1"). dtype: "auto" (the
    model's own), "float32", "bfloat16" or "float16". batch_size: rows (samples) per ``generate`` call, >= 1.
    Raises SamplerError for a missing model, a model that fails to load, a tokenizer without a chat
    template, an unknown dtype or device, or a bad batch size.
    """

    name = "transformers"

    def __init__(
        self,
        model: str,
        *,
        device: str = "cpu",
        dtype: str = "auto",
        batch_size: int = 8,
        trust_remote_code: bool = False,
    ) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise SamplerError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if dtype not in DTYPES:
            raise SamplerError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        _check_model_path(model)
        self._model_name = model
        self._batch_size = batch_size
        self._trust_remote_code = trust_remote_code
        self._tokenizer, self._model, self._device = self._load(model, device, dtype, trust_remote_code)
        self._eos_ids = self._collect_eos_ids()
        pad_id = self._tokenizer.pad_token_id
        self._pad_id: int = pad_id if pad_id is not None else min(self._eos_ids)

    @staticmethod
    def _load(
        model: str, device: str, dtype: str, trust_remote_code: bool
    ) -> tuple[Any, Any, torch.device]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

        try:
            torch_device = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise SamplerError(f"unknown device {device!r}; use cpu, cuda or cuda:N ({exc})") from None
        if torch_device.type == "cuda" and not torch.cuda.is_available():
            raise SamplerError(f"device {device!r} asked for but CUDA is not available; use device cpu")
        try:
            tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
            if not getattr(tokenizer, "chat_template", None):
                raise SamplerError(
                    f"the tokenizer of {model!r} has no chat template; add a chat_template to its "
                    "tokenizer_config.json or use a chat/instruct model"
                )
            lm: Any = AutoModelForCausalLM.from_pretrained(
                model,
                dtype=dtype if dtype == "auto" else getattr(torch, dtype),
                trust_remote_code=trust_remote_code,
            )
        except (OSError, ValueError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SamplerError(f"could not load model {model!r}: {first_line}") from None
        tokenizer.padding_side = "left"
        eos = lm.generation_config.eos_token_id
        # A fresh generation config: the model file's sampling defaults (repetition penalty) must not apply.
        lm.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
            eos_token_id=eos, pad_token_id=lm.generation_config.pad_token_id
        )
        return tokenizer, lm.to(torch_device).eval(), torch_device

    def _collect_eos_ids(self) -> set[int]:
        """EOS ids from the model's generation config and the tokenizer (Qwen lists two)."""
        found = self._model.generation_config.eos_token_id
        ids = set(found if isinstance(found, list) else [] if found is None else [found])
        if self._tokenizer.eos_token_id is not None:
            ids.add(self._tokenizer.eos_token_id)
        if not ids:
            raise SamplerError(
                f"model {self._model_name!r} defines no EOS token; set eos_token_id in its config"
            )
        return ids

    def engine_settings(self) -> Mapping[str, Any]:
        """The settings as actually used: model, device, resolved dtype, batch size, EOS ids, versions."""
        import torch
        import transformers

        if self._model is None:
            raise SamplerError("the transformers sampler is closed")
        return {
            "model": self._model_name,
            "device": str(self._device),
            "dtype": str(self._model.dtype).removeprefix("torch."),
            "batch_size": self._batch_size,
            "trust_remote_code": self._trust_remote_code,
            "attn_implementation": getattr(self._model.config, "_attn_implementation", None),
            "eos_token_ids": sorted(self._eos_ids),
            "pad_token_id": self._pad_id,
            "max_context": self._max_context(),
            "sampling": "per-sample torch.Generator; temperature, top-k, top-p applied by the harness",
            "stop_strings": "checked on the decoded tail every step; text cut before the stop string",
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
        }

    def _max_context(self) -> int | None:
        value = getattr(self._model.config, "max_position_embeddings", None)
        return value if isinstance(value, int) else None

    def sample(self, requests: Sequence[SampleRequest], spec: SamplingSpec) -> Iterator[Completion]:
        """Yield one Completion per requested (problem, sample index), a batch at a time.

        Raises SamplerError when the sampler is closed or a prompt plus max_tokens exceeds the model's
        context length.
        """
        if self._model is None:
            raise SamplerError("the transformers sampler is closed")
        rows: list[tuple[str, int, int, list[int]]] = []
        for request in requests:
            prompt = self._render(request, spec)
            for index, seed in zip(request.sample_indices, request.seeds(spec.seed), strict=True):
                rows.append((request.problem.id, index, seed, prompt))
        for start in range(0, len(rows), self._batch_size):
            batch = rows[start : start + self._batch_size]
            logger.debug("generating rows %d-%d of %d", start, start + len(batch) - 1, len(rows))
            yield from self._generate(batch, spec)

    def _render(self, request: SampleRequest, spec: SamplingSpec) -> list[int]:
        """The prompt's token ids: the chat template applied to the request's messages."""
        text = self._tokenizer.apply_chat_template(
            [dict(m) for m in request.messages], add_generation_prompt=True, tokenize=False
        )
        # The template already wrote any BOS it wants; do not let the tokenizer add another.
        ids: list[int] = self._tokenizer(text, add_special_tokens=False)["input_ids"]
        limit = self._max_context()
        if limit is not None and len(ids) + spec.max_tokens > limit:
            raise SamplerError(
                f"problem {request.problem.id}: prompt ({len(ids)} tokens) + max_tokens ({spec.max_tokens}) "
                f"exceeds the model's context ({limit}); lower max_tokens"
            )
        return ids

    def _generate(
        self, batch: Sequence[tuple[str, int, int, list[int]]], spec: SamplingSpec
    ) -> Iterator[Completion]:
        import torch
        from transformers import GenerationConfig

        width = max(len(prompt) for *_, prompt in batch)
        input_ids = torch.tensor(
            [[self._pad_id] * (width - len(p)) + p for *_, p in batch], device=self._device
        )
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for *_, p in batch], device=self._device)
        config = GenerationConfig(  # type: ignore[no-untyped-call]
            do_sample=False,
            num_beams=1,
            max_new_tokens=spec.max_tokens,
            eos_token_id=sorted(self._eos_ids),
            pad_token_id=self._pad_id,
        )
        stops = (
            _StopStrings(self._tokenizer, spec.stop, width, self._eos_ids, len(batch)) if spec.stop else None
        )
        with torch.inference_mode():
            output = self._model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                generation_config=config,
                logits_processor=[
                    _SeededSampling([seed for _, _, seed, _ in batch], spec, str(self._device))
                ],
                stopping_criteria=[stops] if stops else [],
            )
        for row, (problem_id, index, seed, _) in enumerate(batch):
            ids = output[row, width:].tolist()
            yield self._completion(
                problem_id, index, seed, ids, stops.stopped_at[row] if stops else None, spec
            )

    def _completion(
        self,
        problem_id: str,
        index: int,
        seed: int,
        ids: list[int],
        stopped_at: int | None,
        spec: SamplingSpec,
    ) -> Completion:
        """Cut a row's generated ids at its end (first EOS or stop string) and build the Completion."""
        eos_at = next((i + 1 for i, token in enumerate(ids) if token in self._eos_ids), None)
        ends = [end for end in (eos_at, stopped_at) if end is not None]
        length = min(ends) if ends else len(ids)
        kept = ids[:length]
        text = self._tokenizer.decode(kept, skip_special_tokens=True)
        if stopped_at is not None and length == stopped_at:
            cuts = [text.find(stop) for stop in spec.stop if stop in text]
            text = text[: min(cuts)] if cuts else text
        return Completion(
            problem_id=problem_id,
            sample_index=index,
            seed=seed,
            text=text,
            output_tokens=len(kept),
            finish_reason="stop" if ends else "length",
            token_ids=tuple(kept),
        )

    # --- budget forcing (harness.forcing.PrefixEngine) ---------------------------------------------------

    def prompt_token_ids(self, messages: Sequence[Mapping[str, str]]) -> list[int]:
        """The token ids ``sample`` feeds the model for this chat (template applied, generation prompt added)."""
        if self._model is None:
            raise SamplerError("the transformers sampler is closed")
        text = self._tokenizer.apply_chat_template([dict(m) for m in messages], add_generation_prompt=True,
                                                   tokenize=False)
        ids: list[int] = self._tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids

    def encode(self, text: str) -> list[int]:
        """Token ids of plain ``text`` (no special tokens added)."""
        ids: list[int] = self._tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids

    def continue_token_ids(self, rows: Sequence[tuple[str, int, int, Sequence[int]]],
                           spec: SamplingSpec) -> Iterator[Completion]:
        """Continue raw token sequences: rows of (problem id, sample index, seed, input ids), no template added.

        Yields one Completion per row, in row order, holding only the newly generated tokens (counted like any
        sample's). Raises SamplerError when closed or when an input plus max_tokens exceeds the context.
        """
        if self._model is None:
            raise SamplerError("the transformers sampler is closed")
        limit = self._max_context()
        batch_rows = [(pid, index, seed, list(ids)) for pid, index, seed, ids in rows]
        for pid, index, _, ids in batch_rows:
            if limit is not None and len(ids) + spec.max_tokens > limit:
                raise SamplerError(f"problem {pid} sample {index}: input ({len(ids)} tokens) + max_tokens "
                                   f"({spec.max_tokens}) exceeds the model's context ({limit})")
        for start in range(0, len(batch_rows), self._batch_size):
            yield from self._generate(batch_rows[start : start + self._batch_size], spec)

    def close(self) -> None:
        """Drop the model (and free GPU memory); later calls to sample raise SamplerError."""
        if self._model is None:
            return
        device_type = self._device.type
        self._model = None
        if device_type == "cuda":
            import torch

            torch.cuda.empty_cache()
