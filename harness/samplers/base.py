"""The sampler protocol: the one plug point that touches a model.

A backend takes a batch of ``SampleRequest``s and yields ``Completion``s as they finish, in any order.
Seeds are a pure function of (base seed, problem id, sample index), so sample i of a problem is the same
however a run is split, resumed or extended.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Protocol, Sequence

from harness.types import Completion, Problem, SamplingSpec

# Problem seeds stay below this so that problem_seed + sample_index fits in a signed 32-bit int
# (vLLM and torch both accept that range) for up to 2**20 samples per problem.
_SEED_SPAN = 2**31 - 2**20


def problem_seed(base_seed: int, problem_id: str) -> int:
    """The seed of sample 0 of ``problem_id`` under ``base_seed`` (stable across runs and machines)."""
    digest = hashlib.sha256(f"{base_seed}:{problem_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _SEED_SPAN


def sample_seed(base_seed: int, problem_id: str, sample_index: int) -> int:
    """The seed of sample ``sample_index``: the problem's seed + index, as vLLM seeds child i of n."""
    return problem_seed(base_seed, problem_id) + sample_index


@dataclass(frozen=True)
class SampleRequest:
    """Samples still missing for one problem.

    ``messages`` is the chat (``[{"role": ..., "content": ...}]``) the backend renders with the model's chat
    template. ``sample_indices`` are the missing indices, ascending; each gets ``sample_seed(...)``.
    """

    problem: Problem
    messages: tuple[Mapping[str, str], ...]
    sample_indices: tuple[int, ...]

    def seeds(self, base_seed: int) -> tuple[int, ...]:
        """The seed of each requested sample, in the order of ``sample_indices``."""
        return tuple(sample_seed(base_seed, self.problem.id, i) for i in self.sample_indices)


class Sampler(Protocol):
    """What every backend provides. Backends need no inheritance; a fake for tests just has these."""

    name: str

    def engine_settings(self) -> Mapping[str, Any]:
        """The engine settings as actually used (recorded in the manifest)."""
        ...

    def sample(self, requests: Sequence[SampleRequest], spec: SamplingSpec) -> Iterator[Completion]:
        """Yield one Completion per requested (problem, sample index), as they finish."""
        ...

    def close(self) -> None:
        """Release the engine (processes, GPU memory)."""
        ...


class SamplerError(RuntimeError):
    """A backend failed in a way the user can fix (bad model path, unreachable server, bad settings)."""


def refuse_greedy_repeats(requests: Sequence[SampleRequest], spec: SamplingSpec) -> None:
    """Raise SamplerError when temperature 0 is asked for more than one sample of a problem (they would all be
    the same sample). Shared by the engine backends, which check before anything is submitted."""
    if spec.temperature == 0 and any(r.sample_indices and r.sample_indices[-1] > 0 for r in requests):
        raise SamplerError("temperature 0 is greedy: every sample of a problem would be the same; "
                           "ask for 1 sample per problem or use a temperature > 0")


def refuse_max_tokens_over(spec: SamplingSpec, context: int, *, whose: str, fix: str) -> None:
    """Raise SamplerError when max_tokens alone fills ``context`` (no room is left for any prompt).

    ``whose`` names the context ("model's", "served"); ``fix`` is the advice that ends the message."""
    if spec.max_tokens >= context:
        raise SamplerError(f"max_tokens ({spec.max_tokens}) must leave room for the prompt within the {whose} "
                           f"context ({context} tokens); {fix}")


def refuse_prompt_overflow(problem_id: str, prompt_tokens: int, spec: SamplingSpec, context: int) -> None:
    """Raise SamplerError when a prompt plus max_tokens does not fit ``context``, naming the largest max_tokens."""
    if prompt_tokens + spec.max_tokens > context:
        raise SamplerError(
            f"problem {problem_id}: prompt ({prompt_tokens} tokens) + max_tokens ({spec.max_tokens}) exceeds the "
            f"model's context ({context} tokens); use max_tokens <= {context - prompt_tokens}")
