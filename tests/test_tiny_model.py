"""The tiny test model: builds offline, loads with transformers, tokenises as saved, is deterministic."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from harness import tiny_model

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent


def test_loads_with_auto_classes_and_has_the_promised_shape(tiny_model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    cfg = model.config
    assert (cfg.model_type, cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads) == (
        "qwen2",
        2,
        128,
        2,
    )
    assert (cfg.head_dim, cfg.num_key_value_heads, cfg.intermediate_size) == (64, 1, 256)
    assert cfg.max_position_embeddings == 4096
    assert model.dtype == torch.float32
    assert cfg.vocab_size == len(tok) == 2048
    assert (tok.eos_token, tok.pad_token) == ("<|im_end|>", "<|endoftext|>")
    assert tok.eos_token_id == cfg.eos_token_id
    ids = tok("What is $1+1$?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], 2048)
    assert torch.isfinite(logits).all()


def test_chat_template_is_chatml(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Find $x$."}]
    text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nFind $x$.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    without = tok.apply_chat_template(messages, add_generation_prompt=False, tokenize=False)
    assert without == text.removesuffix("<|im_start|>assistant\n")
    # The special tokens are single tokens, not spelled out byte by byte.
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>")
    assert ids.count(tok.eos_token_id) == 2


def test_loaded_tokenizer_matches_the_saved_one(tiny_model_dir: Path) -> None:
    """transformers rebuilds Qwen2's pipeline on load; it must tokenise exactly like tokenizer.json."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(tiny_model_dir)
    raw = Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json"))
    texts = [
        json.loads(line)["problem"]
        for line in (REPO / "benchmarks" / "aime24.jsonl").read_text().splitlines()
    ]
    texts += ["Let  $x^2 = 4$.\n\n  Then 12345 ÷ é 🙂 — naïve", "it's they'll \t tabs\r\nCRLF"]
    for text in texts:
        ids = loaded(text, add_special_tokens=False)["input_ids"]
        assert ids == raw.encode(text, add_special_tokens=False).ids
        assert loaded.decode(ids) == text  # byte-level: every text round-trips


def test_files_are_readable_by_transformers_4(tiny_model_dir: Path) -> None:
    """Both spellings of the config keys are written (vLLM builds may pin transformers 4.x)."""
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["torch_dtype"] == config["dtype"] == "float32"
    assert config["rope_theta"] == config["rope_parameters"]["rope_theta"]
    assert config["tie_word_embeddings"] is False
    tok_config = json.loads((tiny_model_dir / "tokenizer_config.json").read_text())
    assert tok_config["chat_template"] == tiny_model.CHAT_TEMPLATE
    assert tok_config["additional_special_tokens"] == ["<|im_start|>"]
    assert tok_config["tokenizer_class"] == "Qwen2Tokenizer"
    # No sampling defaults in the model's generation config: only the special token ids.
    generation = json.loads((tiny_model_dir / "generation_config.json").read_text())
    assert set(generation) - {"transformers_version"} == {"eos_token_id", "pad_token_id"}


def test_same_seed_same_files_other_seed_other_weights(
    tiny_model_dir: Path, tiny_model_builder: Callable[..., Path], tmp_path: Path
) -> None:
    import torch

    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    again = tiny_model.build_tiny_model(tmp_path / "again", seed=0)
    assert torch.equal(torch.rand(3), expected_next), "building must not disturb the caller's RNG"
    for name in ("model.safetensors", "tokenizer.json", "config.json", "tokenizer_config.json"):
        assert (again / name).read_bytes() == (tiny_model_dir / name).read_bytes(), name
    other = tiny_model_builder(seed=1)
    assert (other / "tokenizer.json").read_bytes() == (tiny_model_dir / "tokenizer.json").read_bytes()
    assert (other / "model.safetensors").read_bytes() != (tiny_model_dir / "model.safetensors").read_bytes()


def test_command_line_entry(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "cli-model"
    result = subprocess.run(
        [sys.executable, "-m", "harness.tiny_model", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert (out / "model.safetensors").read_bytes() == (tiny_model_dir / "model.safetensors").read_bytes()
    assert tiny_model.main([]) == 2


def test_too_small_vocab_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="vocab_size must be >= 512"):
        tiny_model.build_tiny_model(tmp_path, vocab_size=100)
