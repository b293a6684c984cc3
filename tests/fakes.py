"""A fast fake engine for unit tests of the layers above the samplers (never proof that a backend works)."""

from __future__ import annotations

import random
from typing import Any, Iterator, Mapping, Sequence

from harness.samplers.base import SampleRequest
from harness.types import Completion, SamplingSpec


class FakeSampler:
    """Answers each sample with a seeded random integer in a box; can fail after ``fail_after`` samples."""

    name = "fake"

    def __init__(self, model: str = "fake", *, fail_after: int | None = None, answers: Sequence[str] = ("1", "2", "3"),
                 **_: Any) -> None:
        self.model = model
        self.fail_after = fail_after
        self.answers = tuple(answers)
        self.requested: list[tuple[str, tuple[int, ...]]] = []
        self.closed = False

    def engine_settings(self) -> Mapping[str, Any]:
        return {"engine": "fake", "answers": list(self.answers)}

    def sample(self, requests: Sequence[SampleRequest], spec: SamplingSpec) -> Iterator[Completion]:
        made = 0
        for req in requests:
            self.requested.append((req.problem.id, req.sample_indices))
            for index, seed in zip(req.sample_indices, req.seeds(spec.seed)):
                if self.fail_after is not None and made >= self.fail_after:
                    raise KeyboardInterrupt
                rng = random.Random(seed)
                tokens = rng.randint(10, spec.max_tokens)
                text = f"thinking {seed} ... \\boxed{{{rng.choice(self.answers)}}}"
                yield Completion(req.problem.id, index, seed, text, tokens, "length" if tokens == spec.max_tokens else "stop")
                made += 1

    def close(self) -> None:
        self.closed = True


def fake_factory(**defaults: Any):
    """A sampler factory for ``run_sampling`` that records the samplers it made."""
    made: list[FakeSampler] = []

    def factory(backend: str, **options: Any) -> FakeSampler:
        sampler = FakeSampler(**{**options, **defaults})
        made.append(sampler)
        return sampler

    factory.made = made  # type: ignore[attr-defined]
    return factory
