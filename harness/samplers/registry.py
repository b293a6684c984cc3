"""Backends by name: a plain dict of ``name -> "module:Class"``, imported only when asked for.

``make_sampler("transformers", model=...)`` imports the backend's module then (so ``import harness`` stays
light) and passes the options to its constructor. Replay is not here: it reads files rather than sampling
(see ``harness.samplers.replay.read_replay``).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from typing import Any

from harness.samplers.base import Sampler, SamplerError

BACKENDS: dict[str, str] = {
    "transformers": "harness.samplers.transformers:TransformersSampler",
    "vllm": "harness.samplers.vllm:VLLMSampler",
    "openai": "harness.samplers.openai:OpenAISampler",
    "ray": "harness.samplers.ray:RaySampler",
}

# Named in DESIGN.md, not written yet: asking for one says so instead of "unknown backend".
PLANNED: tuple[str, ...] = ()


def make_sampler(name: str, **options: Any) -> Sampler:
    """Build the backend called ``name`` with ``options`` passed to its constructor.

    Returns the sampler. Raises SamplerError for an unknown name (with a "did you mean" hint), for a planned
    backend that is not available yet, and for options the backend does not take; the backend's own
    constructor raises SamplerError for a bad model or settings.
    """
    if name in PLANNED and name not in BACKENDS:
        raise SamplerError(
            f"backend {name!r} is not available yet; use one of: {', '.join(sorted(BACKENDS))}"
        )
    if name not in BACKENDS:
        close = difflib.get_close_matches(name, [*BACKENDS, *PLANNED], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SamplerError(f"unknown backend {name!r} (choose from {', '.join(sorted(BACKENDS))}){hint}")
    module_name, class_name = BACKENDS[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    # Check the options against the constructor first: a wrong key is a user mistake (a typo in a config),
    # and catching TypeError from the call itself would also hide bugs inside the constructor.
    parameters = inspect.signature(cls).parameters
    try:
        inspect.signature(cls).bind(**options)
    except TypeError as exc:
        allowed = ", ".join(parameters)
        raise SamplerError(f"backend {name!r}: {exc} (options: {allowed})") from None
    sampler: Sampler = cls(**options)
    return sampler
