"""Model/run configs (``configs/models/*.toml``) -> the settings ``tts-eval run --config`` starts from.

A config names the backend, the model, the prompt template, the backend's constructor options and the sampling
settings. Flags given on the command line override it. Unknown keys are errors, so a typo never becomes a
silent default.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "models"
_TOP_KEYS = ("name", "backend", "model", "prompt", "backend_options", "sampling")
_SAMPLING_KEYS = ("max_tokens", "temperature", "top_p", "top_k", "seed", "stop")


class ConfigError(ValueError):
    """A config file cannot be used; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class RunConfig:
    """What a model config says. ``sampling`` holds only the keys the file sets."""

    name: str
    backend: str
    model: str
    prompt: str = "default"
    backend_options: Mapping[str, Any] = field(default_factory=dict)
    sampling: Mapping[str, Any] = field(default_factory=dict)


def _unknown(keys: Any, allowed: tuple[str, ...], where: str) -> None:
    for key in keys:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint} (allowed: {', '.join(allowed)})")


def load_config(name_or_path: str) -> RunConfig:
    """Load a bundled config by name (``configs/models/NAME.toml``) or a TOML file by path.

    Raises ConfigError for a missing file, malformed TOML, unknown keys or missing backend/model.
    """
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = CONFIG_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        names = sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))
        close = difflib.get_close_matches(name_or_path, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"no config {name_or_path!r}{hint} (bundled: {', '.join(names)}; or give a .toml path)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config ({exc})") from exc
    _unknown(data, _TOP_KEYS, str(path))
    _unknown(data.get("sampling", {}), _SAMPLING_KEYS, f"{path} [sampling]")
    for key in ("backend", "model"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError(f"{path}: {key!r} must be a non-empty string")
    for table in ("backend_options", "sampling"):
        if not isinstance(data.get(table, {}), dict):
            raise ConfigError(f"{path}: [{table}] must be a table")
    return RunConfig(name=str(data.get("name", path.stem)), backend=data["backend"], model=data["model"],
                     prompt=str(data.get("prompt", "default")), backend_options=dict(data.get("backend_options", {})),
                     sampling=dict(data.get("sampling", {})))


def parse_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` from ``--option``: the value is read as a TOML value when it parses (numbers, booleans,
    quoted strings), else taken as a plain string. Raises ConfigError without '='."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--option must look like KEY=VALUE, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value
