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
