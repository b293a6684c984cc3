"""Real-engine tests: vLLM's CPU build, offline and as an OpenAI-compatible server, on the tiny model.

They need the separate environment made by ``scripts/setup_engines.sh`` (``make test-engines`` runs both).
Every test here gets the ``engines`` marker; where vLLM is not installed they are skipped with that reason,
so the default environment's test run stays green. A vLLM that is installed but fails to import is an error,
not a skip.
"""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path
from typing import Any

import pytest

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
SKIP_REASON = "vLLM is not installed here; run `make test-engines` (it sets up .venv-engines and runs these)"
_HERE = Path(__file__).resolve().parent

# Engine settings every engine test uses: small, CPU-friendly, fast to start (no graph compilation).
ENGINE_OPTIONS: dict[str, Any] = {
    "dtype": "float32", "max_model_len": 1024, "enforce_eager": True, "kv_cache_memory_bytes": 64 * 2**20,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.engines)
            if not HAVE_VLLM:
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Unclosing:
    """Wraps a sampler shared by a module's tests so that the run layer's ``close()`` leaves it running."""

    def __init__(self, sampler: Any) -> None:
        self._sampler = sampler
        self.name = sampler.name

    def engine_settings(self) -> Any:
        return self._sampler.engine_settings()

    def sample(self, requests: Any, spec: Any) -> Any:
        return self._sampler.sample(requests, spec)

    def close(self) -> None:
        pass
