"""Versioned prompt templates (``configs/prompts/*.toml``) rendered into chat messages.

A template's text and hash go into the run's manifest: curves made with different prompts are not comparable.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

PROMPT_DIR = Path(__file__).resolve().parents[1] / "configs" / "prompts"
PLACEHOLDER = "{question}"
_KEYS = {"name", "version", "description", "system", "user"}


class PromptError(ValueError):
    """A prompt template cannot be loaded; the message names the file and the fix."""


@dataclass(frozen=True)
class PromptTemplate:
    """A chat prompt: optional system turn, and a user turn containing ``{question}`` once."""

    name: str
    version: str
    system: str
    user: str
    description: str = ""

    @property
    def text(self) -> str:
        """The template as canonical JSON (what the hash covers and the manifest records)."""
        return json.dumps({"system": self.system, "user": self.user, "version": self.version}, sort_keys=True)

    @property
    def sha256(self) -> str:
        """sha256 of ``text``."""
        return hashlib.sha256(self.text.encode()).hexdigest()

    def messages(self, question: str) -> tuple[Mapping[str, str], ...]:
        """The chat messages for one question. ``{question}`` is replaced literally, so LaTeX braces are safe."""
        turns: list[Mapping[str, str]] = []
        if self.system:
            turns.append({"role": "system", "content": self.system})
        turns.append({"role": "user", "content": self.user.replace(PLACEHOLDER, question)})
        return tuple(turns)


def _from_file(path: Path) -> PromptTemplate:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PromptError(f"{path}: cannot read prompt template ({exc})") from exc
    unknown = set(data) - _KEYS
    if unknown:
        raise PromptError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_KEYS))}")
    for key in ("name", "version", "user"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise PromptError(f"{path}: {key!r} must be a non-empty string")
    if data["user"].count(PLACEHOLDER) != 1:
        raise PromptError(f"{path}: 'user' must contain {PLACEHOLDER} exactly once")
    return PromptTemplate(
        name=data["name"], version=data["version"], system=data.get("system", ""), user=data["user"],
        description=data.get("description", ""),
    )


def available_prompts() -> list[str]:
    """Names of the bundled templates."""
    return sorted(p.stem for p in PROMPT_DIR.glob("*.toml"))


def load_prompt(name_or_path: str) -> PromptTemplate:
    """Load a bundled template by name, or a TOML file by path. Raises PromptError with the closest names."""
    path = Path(name_or_path)
    if path.suffix == ".toml":
        if not path.is_file():
            raise PromptError(f"{path}: no such prompt file")
        return _from_file(path)
    candidate = PROMPT_DIR / f"{name_or_path}.toml"
    if candidate.is_file():
        return _from_file(candidate)
    names = available_prompts()
    close = difflib.get_close_matches(name_or_path, names, n=2, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise PromptError(f"unknown prompt {name_or_path!r}{hint} (known: {', '.join(names)}; or give a .toml path)")
