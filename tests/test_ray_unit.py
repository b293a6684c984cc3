"""Unit tests of the ray backend's pure parts (no Ray needed): the finish reason rebuilt from Ray's output
columns, option checks, the registry entry, lazy imports. The backend itself runs in tests/engines/."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.samplers.base import SamplerError
from harness.samplers.ray import RaySampler, finish_reason, stopped_by_string

EOS = 2
CAPS = {"prompt_tokens": 10, "max_tokens": 5, "context": 100, "eos_ids": {EOS, 7}}


@pytest.mark.parametrize(("token_ids", "extra", "reason"), [
    ((5, 6, EOS), {}, "stop"),                               # EOS before max_tokens
    ((5, 6, 8, 9, EOS), {}, "stop"),                         # EOS as the max_tokens-th token: vLLM checks EOS first
    ((5, 6, 8, 9, 7), {}, "stop"),                           # a generation-config EOS id counts too
    ((5, 6, 8, 9, 4), {}, "length"),                         # max_tokens reached without EOS
    ((5, EOS, 8, 9, 4), {}, "length"),                       # an EOS id inside the text is not an ending
    ((5, 6, 8), {}, "stop"),                                 # short, no EOS: a stop string ended it
    ((5, 6, 8, 9, 4), {"stop_string": True}, "stop"),        # a stop string on the last allowed token
    ((5, 6, 8), {"context": 13}, "length"),                  # prompt 10 + 3 reached the context
    ((5, 6, 8), {"context": 14}, "stop"),
])
def test_finish_reason_follows_vllms_order_of_checks(token_ids: tuple[int, ...], extra: dict[str, Any],
                                                      reason: str) -> None:
    assert finish_reason(token_ids, **{**CAPS, **extra}) == reason


def test_a_stop_string_is_seen_only_when_it_cut_the_text() -> None:
    assert stopped_by_string("x = 1", "x = 1\n\nProblem", ["\n\nProblem"])
    assert stopped_by_string("x = 1", "x = 1 END tail", ["END"])
    assert not stopped_by_string("x = 1", "x = 1", ["END"])            # not cut
    assert not stopped_by_string("x = 1", "x = 1 tail", ["END"])        # cut, but not by a stop string
    assert not stopped_by_string("x = 1", "x = 1 tail", [""])


@pytest.mark.parametrize(("options", "message"), [
    ({"replicas": 0}, r"replicas must be an integer >= 1 or \[min, max\]"),
    ({"replicas": [3, 1]}, r"replicas must be an integer >= 1 or \[min, max\]"),
    ({"replicas": True}, r"replicas must be an integer >= 1"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
    ({"max_concurrent_batches": 1.5}, "max_concurrent_batches must be an integer >= 1"),
    ({"device": "tpu"}, r"device must be one of \('gpu', 'cpu'\), got 'tpu'"),
    ({"num_cpus": 0}, "num_cpus must be an integer >= 1 or unset"),
    ({"tensor_parallel_size": 0}, "tensor_parallel_size must be an integer >= 1"),
    ({"dtype": "fp8"}, "dtype must be one of"),
    ({"engine_kwargs": {"seed": 1, "dtype": "half"}}, r"engine_kwargs may not set \['dtype', 'seed'\]"),
])
def test_bad_options_are_refused_before_ray_is_touched(options: dict[str, Any], message: str) -> None:
    with pytest.raises(SamplerError, match=message):
        RaySampler("some/model", **options)


def test_a_missing_model_folder_is_refused() -> None:
    with pytest.raises(SamplerError, match="model path /no/such/model does not exist"):
        RaySampler("/no/such/model")


@pytest.mark.skipif(importlib.util.find_spec("ray") is not None, reason="Ray is installed here")
def test_without_ray_the_error_says_what_to_install() -> None:
    with pytest.raises(SamplerError, match=r"the ray backend needs Ray Data LLM .*pip install 'ray\[data\]'"):
        RaySampler("some/model")


def test_the_registry_builds_ray_and_checks_its_options() -> None:
    from harness.samplers.registry import BACKENDS, PLANNED, make_sampler

    assert BACKENDS["ray"] == "harness.samplers.ray:RaySampler" and "ray" not in PLANNED
    with pytest.raises(SamplerError, match=r"backend 'ray': .*unexpected keyword argument 'replica'.*replicas"):
        make_sampler("ray", model="x", replica=2)


def test_importing_the_ray_backend_loads_no_heavy_library() -> None:
    code = ("import sys, harness.samplers.ray; "
            "print(sorted(m for m in ('torch', 'transformers', 'vllm', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert out.stdout.strip() == "[]"
