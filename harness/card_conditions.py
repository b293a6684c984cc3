"""The conditions of a run, as (setting, value) text pairs for the evaluation card, and where runs differ.

Everything comes from the run's manifest and report: model and its fingerprint, backend and engine settings as
used, sampling, prompt, benchmark, grader, token counts, intervals, package versions, tts-eval commit, machine,
notes, times and command. Values are plain text (the card escapes them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from harness.provenance import FINGERPRINT_VERSION
from harness.types import RunReport

UNSTATED = "not stated by the source"
NOT_RECORDED = "not recorded"
HASH_CHARS = 16  # hashes are shown (and compared) by their first 16 hex digits; report.json has them in full
# Settings that identify one execution rather than describe its conditions: they always differ, so the
# differences table leaves them out.
RECORD_ONLY: tuple[str, ...] = ("started", "finished", "command", "machine: hostname")


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, Mapping) and value:
        for key in sorted(value, key=str):
            _flatten(f"{prefix}.{key}", value[key], out)
    else:
        out[prefix] = _value(value)


def _revision(revision: str | None, backend: str) -> str:
    if not revision:
        return NOT_RECORDED + (" (imported outputs)" if backend == "replay" else "")
    if revision.startswith(FINGERPRINT_VERSION + ":"):  # a local model's fingerprint: a sha256 like the others
        return f"{revision[:len(FINGERPRINT_VERSION) + 1 + HASH_CHARS]} (local files fingerprint)"
    return revision


def conditions(report: RunReport) -> dict[str, str]:
    """The conditions of one run as ordered (setting, value) text pairs, from its manifest and report.

    Sampling settings of a run whose source does not state them read UNSTATED; hashes are shortened to
    HASH_CHARS hex digits. Raises nothing.
    """
    m, s = report.manifest, report.manifest.sampling
    out: dict[str, str] = {
        "model": m.model,
        "model revision": _revision(m.model_revision, m.backend),
        "backend": m.backend,
    }
    engine: dict[str, str] = {}
    _flatten("engine", dict(m.engine_settings), engine)
    out.update({k.replace("engine.", "engine: ", 1): v for k, v in engine.items()})
    out.update({
        "problems": f"{report.n_problems} (ids sha256 {m.problem_ids_hash[:HASH_CHARS] or NOT_RECORDED})",
        "samples per problem": str(report.samples_per_problem),
        "total samples": str(sum(int(v) for v in report.status_counts.values())),
    })
    for name in ("max_tokens", "temperature", "top_p", "top_k", "stop", "seed"):
        value = None if s is None else list(s.stop) if name == "stop" else getattr(s, name)
        out[f"sampling: {name}"] = UNSTATED if s is None else _value(value)
    out.update({
        "prompt": f"{m.prompt_name} (version {m.prompt_version})" if m.prompt_version else m.prompt_name,
        "prompt sha256": m.prompt_hash[:HASH_CHARS] or NOT_RECORDED,
        "benchmark": f"{m.benchmark} ({m.benchmark_version})",
        "benchmark sha256": m.benchmark_hash[:HASH_CHARS],
        "grader version": m.grader_version,
        "token counts": "from the engine" if report.token_note is None else f"none: {report.token_note}",
        "intervals": f"{report.n_boot} bootstrap resamples over problems, seed {report.ci_seed}",
    })
    out.update({f"package: {k}": v for k, v in sorted(m.package_versions.items())})
    commit = NOT_RECORDED if m.git_commit is None else m.git_commit[:12] + (" (dirty)" if m.git_dirty else "")
    out["tts-eval commit"] = commit
    machine = dict(m.machine)
    gpus = machine.pop("gpus", None)
    machine.pop("gpu_count", None)
    out["machine: GPUs"] = f"{len(gpus)} x {', '.join(sorted(set(gpus)))}" if gpus else "none detected"
    out.update({f"machine: {k}": _value(v) for k, v in sorted(machine.items())})
    out.update({"notes": " | ".join(m.notes) or "none", "started": m.started_at or NOT_RECORDED,
                "finished": m.finished_at or NOT_RECORDED, "command": m.command or NOT_RECORDED})
    return out


def condition_table(reports: Sequence[RunReport]) -> list[tuple[str, list[str]]]:
    """Every setting of any run, with each run's value (NOT_RECORDED where a run lacks the setting)."""
    per_run = [conditions(r) for r in reports]
    names: list[str] = []
    for c in per_run:
        names += [k for k in c if k not in names]
    return [(name, [c.get(name, NOT_RECORDED) for c in per_run]) for name in names]


def differences(reports: Sequence[RunReport]) -> list[tuple[str, list[str]]]:
    """The settings whose values are not all equal across the runs (RECORD_ONLY settings left out)."""
    return [(name, values) for name, values in condition_table(reports)
            if name not in RECORD_ONLY and len(set(values)) > 1]
