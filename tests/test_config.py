"""Model configs: the bundled ones load; typos are errors; -o values are typed."""

import pytest

from harness.config import CONFIG_DIR, ConfigError, load_config, parse_option
from harness.types import SamplingSpec


def test_bundled_configs_load_and_make_valid_sampling_specs():
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))
    assert {"qwen25-math-72b-instruct", "o1-mini", "o1-preview", "o1-distilled-72b"} <= set(names)
    for name in names:
        config = load_config(name)
        assert config.backend in ("vllm", "openai", "ray") and config.model
        SamplingSpec(**config.sampling)  # raises on an out-of-range value
    qwen = load_config("qwen25-math-72b-instruct")
    assert qwen.backend_options["tensor_parallel_size"] == 8 and qwen.backend_options["max_model_len"] == 4096
    assert qwen.sampling["max_tokens"] + 500 <= 4096  # room for the prompt in its 4k context


def test_unknown_keys_and_names(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'o1-mini'"):
        load_config("o1-mni")
    bad = tmp_path / "bad.toml"
    bad.write_text('backend = "vllm"\nmodel = "m"\n[sampling]\ntemprature = 0.5\n')
    with pytest.raises(ConfigError, match=r"unknown key 'temprature'; did you mean 'temperature'"):
        load_config(str(bad))
    bad.write_text('backend = "vllm"\n')
    with pytest.raises(ConfigError, match="'model' must be a non-empty string"):
        load_config(str(bad))


@pytest.mark.parametrize("text, expected", [
    ("enforce_eager=true", ("enforce_eager", True)), ("max_num_seqs=64", ("max_num_seqs", 64)),
    ("kv_cache_memory_bytes=2e9", ("kv_cache_memory_bytes", 2e9)), ("revision=abc123", ("revision", "abc123")),
    ('base_url="http://x/v1"', ("base_url", "http://x/v1")),
])
def test_option_values_are_typed(text, expected):
    assert parse_option(text) == expected


def test_option_needs_equals():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_option("enforce_eager")
