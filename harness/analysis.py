"""From a run store to a RunReport: grade (if needed), estimate, pick budgets, and write the report files.

Works on stored rows only, so a run can be re-graded or re-plotted without touching a model.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from harness import scaling
from harness.baselines import Baseline
from harness.grading import GRADER_VERSION, Grader
from harness.store import RunStore
from harness.types import Completion, Grade, RunReport

log = logging.getLogger(__name__)

METHODS = ("maj", "pass", "mean")
SAMPLE_TEXT_CHARS = 1200


def grade_store(store: RunStore, *, workers: int | None = None, deadline_s: float = 5.0,
                progress: bool = True, force: bool = False) -> list[Grade]:
    """Grade every completion with the current grader and store the grades (kept per grader version).

    Returns the stored grades; when ``force`` is False and grades of this grader version already cover every
    completion, they are reused.
    """
    completions = store.completions()
    if not force:
        existing = store.grades(GRADER_VERSION)
        if len(existing) == len(completions):
            return existing
    problems = {p.id: p for p in store.problems()}
    with Grader(workers=workers, deadline_s=deadline_s, progress=progress) as grader:
        grades = grader.grade_many(problems, completions)
    store.write_grades(grades, GRADER_VERSION)
    manifest = store.manifest()
    if manifest.grader_version != GRADER_VERSION:
        store.write_manifest(replace(manifest, grader_version=GRADER_VERSION))
    return grades


def _token_note(store: RunStore, completions: Sequence[Completion]) -> str | None:
    missing = sum(c.output_tokens is None for c in completions)
    if not missing:
        return None
    stored = store.info("token_note")
    if isinstance(stored, str) and stored:
        return stored
    return f"{missing} of {len(completions)} samples have no output token count (the backend reported none)"


def _sample_rows(completions: Sequence[Completion], grades: Sequence[Grade], per_problem: int = 2,
                 problems: int = 5) -> tuple[dict[str, Any], ...]:
    """A few samples of the first problems, for the report's sample browser."""
    by_key = {(g.problem_id, g.sample_index): g for g in grades}
    rows: list[dict[str, Any]] = []
    seen: Counter[str] = Counter()
    for c in completions:
        if seen[c.problem_id] >= per_problem or (c.problem_id not in seen and len(seen) >= problems):
            continue
        seen[c.problem_id] += 1
        g = by_key[(c.problem_id, c.sample_index)]
        rows.append({
            "problem_id": c.problem_id, "sample_index": c.sample_index, "extracted": g.extracted,
            "vote_key": g.vote_key, "correct": g.correct, "status": g.status, "reason": g.reason,
            "output_tokens": c.output_tokens, "finish_reason": c.finish_reason,
            "text": c.text[-SAMPLE_TEXT_CHARS:],
        })
    return tuple(rows)


def analyze(store: RunStore, budgets: Sequence[float] = (), *, n_boot: int = 1000, ci_seed: int = 0,
            workers: int | None = None, progress: bool = True, baselines: Sequence[Baseline] | None = None,
            rm_score: str | None = None, rm_weighting: str = "raw") -> RunReport:
    """Grade (reusing stored grades of this grader version) and compute every curve and budget point.

    Also the capped curves, frontier and matched-budget table (``budget_analysis.extend``): ``baselines``
    None reads configs/baselines.csv (none when the file is absent); ``rm_score`` names a stored per-sample
    score for RM@k (off when None), ``rm_weighting`` "raw" or "sigmoid".
    """
    from harness import budget_analysis
    from harness.baselines import DEFAULT_BASELINES, load_baselines

    completions = store.completions()
    if not completions:
        raise ValueError(f"{store.path}: the run has no completions yet; run `tts-eval run ... --resume`")
    grades = grade_store(store, workers=workers, progress=progress)
    counts = scaling.problem_counts(grades, completions)
    points = []
    for method in METHODS:
        points.extend(scaling.curve(counts, method, n_boot=n_boot, seed=ci_seed))
    budget_points = scaling.accuracy_at_budgets(counts, budgets, "maj", n_boot=n_boot, seed=ci_seed) if budgets else []
    manifest = store.manifest()
    if baselines is None:
        baselines = load_baselines(benchmark=manifest.benchmark) if DEFAULT_BASELINES.is_file() else []
    extra = budget_analysis.extend(store, grades, completions, counts, budgets, baselines, n_boot=n_boot,
                                   seed=ci_seed, rm_score=rm_score, rm_weighting=rm_weighting, workers=workers)
    if extra.cap_sweep:  # votes across different caps mean nothing: keep only the per-cap points
        points = []
    return RunReport(
        manifest=manifest, n_problems=len(counts),
        samples_per_problem=1 if extra.cap_sweep else min(pc.n for pc in counts),
        points=tuple(points) + extra.points, budgets=tuple(budget_points),
        status_counts=dict(Counter(g.status for g in grades)),
        token_note=_token_note(store, completions), n_boot=n_boot, ci_seed=ci_seed,
        interpolation_rule=scaling.INTERPOLATION_RULE,
        samples=_sample_rows(completions, grades, per_problem=4, problems=8),
        frontier=extra.frontier, frontier_budgets=extra.frontier_budgets, matched=extra.matched, extras=extra.extras,
    )


def report_run(run_dir: Path, budgets: Sequence[float] | None = None, *, n_boot: int = 1000, ci_seed: int = 0,
               workers: int | None = None, progress: bool = True, caps: Sequence[int] | None = None,
               rm_score: str | None = None, rm_weighting: str = "raw") -> tuple[RunReport, dict[str, Path]]:
    """Analyse the run in ``run_dir`` and write curve.csv, report.json, report.md, report.html and the plots.

    ``budgets`` None reuses the budgets stored with the run (from ``tts-eval run --budgets``); ``caps`` adds
    token caps for truncated curves (kept with the run; ``tts-eval force`` adds its caps too). ``rm_score``:
    see ``analyze``.
    """
    from harness.baselines import load_baselines
    from harness.report import write_report

    with RunStore.open(run_dir) as store:
        if budgets is None:
            budgets = store.info("budgets") or []
        else:
            store.set_info("budgets", list(budgets))
        if caps:
            store.set_info("caps", sorted(set(caps) | set(store.info("caps") or [])))
        report = analyze(store, budgets, n_boot=n_boot, ci_seed=ci_seed, workers=workers, progress=progress,
                         rm_score=rm_score, rm_weighting=rm_weighting)
        if rm_score is not None:  # kept with the run (once it worked), so `tts-eval plot` draws the same RM@k
            store.set_info("rm", {"score": rm_score, "weighting": rm_weighting})
    baselines = load_baselines(benchmark=report.manifest.benchmark)
    return report, write_report(report, run_dir, baselines)
