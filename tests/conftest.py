"""Shared fixtures: the tiny random-weight model, built once per test session (a few seconds, offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest


@pytest.fixture(scope="session")
def tiny_model_builder(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """A function ``build(seed=0, vocab_size=2048) -> Path`` that builds each variant once per session."""
    from harness.tiny_model import build_tiny_model

    built: dict[tuple[int, int], Path] = {}

    def build(seed: int = 0, vocab_size: int = 2048) -> Path:
        key = (seed, vocab_size)
        if key not in built:
            built[key] = build_tiny_model(
                tmp_path_factory.mktemp(f"tiny-s{seed}-v{vocab_size}"), seed=seed, vocab_size=vocab_size
            )
        return built[key]

    return build


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_model_builder: Callable[..., Path]) -> Path:
    """The tiny model with seed 0 (the default one every engine test uses)."""
    return tiny_model_builder()
