"""A tiny random-weight causal LM that real engines can load, built offline in seconds.

It exists to test the plumbing (chat templates, token counts, seeds, finish reasons, resume) through real
engines (transformers, vLLM's CPU build, a vLLM server, Ray Data) without downloading anything. What it writes
is an ordinary Hugging Face model folder: a byte-level BPE tokenizer trained on the repo's benchmark text, a
2-layer Qwen2 model with random weights, and a ``generation_config.json``. Its answers are noise; accuracy
measured with it means nothing.

One deliberate tweak to the random weights: the end-of-sequence token gets a logit bonus, so samples end at
varied lengths (a mix of "stop" and "length" finish reasons) instead of nearly always running to
``max_tokens``, as a uniform random model would. See ``_shape_weights``.

Run ``python -m harness.tiny_model OUT_DIR`` to build one from the command line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

# The repo's benchmark files: the tokenizer's training text (problems and solutions).
_BENCHMARKS_DIR = Path(__file__).resolve().parent.parent / "benchmarks"
_TEXT_FILES = ("aime24.jsonl", "math500.jsonl")

PAD_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
EOS_TOKEN = "<|im_end|>"
SPECIAL_TOKENS = (PAD_TOKEN, IM_START, EOS_TOKEN)

# Qwen-style ChatML template: every message is "<|im_start|>role\n...<|im_end|>\n"; the generation prompt
# opens the assistant turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# Qwen2's pre-tokenisation split: contractions, letter runs, single digits, punctuation, newlines, spaces.
_QWEN2_SPLIT_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# Sizes: vLLM's CPU attention kernels need head_dim 64, hence hidden 128 with 2 heads.
_HIDDEN = 128
_HEADS = 2
_KV_HEADS = 1
_INTERMEDIATE = 256
_LAYERS = 2
_MAX_POSITIONS = 4096

# See _shape_weights. Tuned by hand: with seed 0, samples at temperature 0.6 end after a median of 60-100
# tokens, about one in ten runs past 256; greedy decoding falls into a loop and runs to max_tokens. The
# EOS weight is touchy (0.5 makes most samples run past 1000 tokens, 0.6 ends them after ~35).
_BIAS_DIM = 0
_BIAS_OFFSET = 0.23
_HEAD_STD = 0.09
_EOS_WEIGHT = 0.55


def _training_text(benchmarks_dir: Path) -> Iterator[str]:
    """Yield the problem and solution texts of the benchmark files (the tokenizer's training corpus).

    Raises FileNotFoundError naming the missing file.
    """
    for name in _TEXT_FILES:
        path = benchmarks_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"tokenizer training text {path} is missing; restore benchmarks/{name}")
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    row = json.loads(line)
                    yield row["problem"]
                    yield row.get("solution") or ""


def build_tokenizer(vocab_size: int, benchmarks_dir: Path = _BENCHMARKS_DIR) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on the benchmark text and wrap it for transformers.

    Takes the target vocabulary size (special tokens included). Returns a ``PreTrainedTokenizerFast`` with
    eos ``<|im_end|>``, pad ``<|endoftext|>`` and a ChatML chat template. Training is deterministic.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    # The same pipeline as Qwen2's tokenizer class, which transformers (v5) rebuilds from the vocabulary
    # whatever tokenizer.json says: any other pipeline would tokenise differently once loaded.
    core = Tokenizer(models.BPE())
    core.normalizer = normalizers.NFC()
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN2_SPLIT_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        # All 256 byte symbols, so any text (not just the training text) can be encoded.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(_training_text(benchmarks_dir), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=core,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        additional_special_tokens=[IM_START],
        model_max_length=_MAX_POSITIONS,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _shape_weights(model: Any, eos_id: int) -> None:
    """Reshape the random weights so that samples are diverse and end at varied lengths, in place.

    Takes the freshly initialised model (untied embeddings) and the EOS id. Every input embedding gets the
    same offset in one dimension, so that dimension of the final hidden state is positive in any context;
    the output layer ignores that dimension except for EOS, which gets a logit bonus from it (and nothing
    else, so the bonus is the same for every seed). The other output rows are redrawn wider so that logits
    spread (std about 1) and sampling is not uniform noise. Uses the global torch RNG (seeded by the caller).
    """
    import torch

    with torch.no_grad():
        embeddings = model.get_input_embeddings().weight
        head = model.get_output_embeddings().weight
        embeddings[:, _BIAS_DIM] = _BIAS_OFFSET
        head.normal_(0.0, _HEAD_STD)
        head[:, _BIAS_DIM] = 0.0
        head[eos_id] = 0.0
        head[eos_id, _BIAS_DIM] = _EOS_WEIGHT


def build_tiny_model(out_dir: Path, *, seed: int = 0, vocab_size: int = 2048) -> Path:
    """Build the tiny model into ``out_dir`` (created if needed) and return ``out_dir``.

    Takes the output folder, the seed for the random weights and the tokenizer's vocabulary size. Writes
    ``config.json``, ``model.safetensors``, ``generation_config.json`` and the tokenizer files. The same seed
    (and vocab size) gives identical weights and tokenizer. Raises FileNotFoundError when the benchmark files
    used as tokenizer training text are missing, ValueError for a vocab size too small for byte-level BPE.
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    if vocab_size < 512:
        raise ValueError(f"vocab_size must be >= 512 (256 byte symbols + merges), got {vocab_size}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(vocab_size)
    eos_id, pad_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    assert isinstance(eos_id, int) and isinstance(pad_id, int)  # both were set in build_tokenizer
    settings: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "hidden_size": _HIDDEN,
        "intermediate_size": _INTERMEDIATE,
        "num_hidden_layers": _LAYERS,
        "num_attention_heads": _HEADS,
        "num_key_value_heads": _KV_HEADS,
        "head_dim": _HIDDEN // _HEADS,  # written out explicitly for engines that read it
        "max_position_embeddings": _MAX_POSITIONS,
        "max_window_layers": _LAYERS,
        "tie_word_embeddings": False,  # _shape_weights needs the output layer to be its own
        "use_sliding_window": False,
        "sliding_window": None,
        "dtype": "float32",
        "bos_token_id": None,
        "eos_token_id": eos_id,
        "pad_token_id": pad_id,
    }
    # fork_rng: seed the weights without changing the caller's global RNG state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model: Any = Qwen2ForCausalLM(Qwen2Config(**settings))
        _shape_weights(model, eos_id)
        model.eval()
    # No sampling settings in the file: engines must use what the run asks for, not a model default.
    generation = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id)  # type: ignore[no-untyped-call]
    model.generation_config = generation
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    _make_portable(out_dir)
    return out_dir


def _make_portable(out_dir: Path) -> None:
    """Rewrite the saved configs so that transformers 4.x (as pinned by some vLLM builds) loads them too.

    transformers 5 writes ``dtype``, ``rope_parameters``, a list of ``extra_special_tokens`` and the chat
    template in a separate file; 4.x reads ``torch_dtype``, ``rope_theta``, ``additional_special_tokens``
    and the template from ``tokenizer_config.json``. Both spellings are kept; each version ignores the other.
    """
    config_path = out_dir / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config.setdefault("torch_dtype", config.get("dtype", "float32"))
    config.setdefault("rope_theta", (config.get("rope_parameters") or {}).get("rope_theta", 10000.0))
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    tok_path = out_dir / "tokenizer_config.json"
    tok = json.loads(tok_path.read_text(encoding="utf-8"))
    tok.pop("extra_special_tokens", None)
    tok.pop("backend", None)
    tok["additional_special_tokens"] = [IM_START]
    tok["tokenizer_class"] = "Qwen2Tokenizer"
    tok["bos_token"] = None
    tok["chat_template"] = CHAT_TEMPLATE
    tok_path.write_text(json.dumps(tok, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    """``python -m harness.tiny_model OUT_DIR [SEED]``: build the tiny model and print its folder."""
    if len(argv) not in (1, 2):
        print("usage: python -m harness.tiny_model OUT_DIR [SEED]", file=sys.stderr)
        return 2
    seed = int(argv[1]) if len(argv) == 2 else 0
    print(build_tiny_model(Path(argv[0]), seed=seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
