"""The analysis beyond the uncapped curves: capped curves (truncated, forced, cap sweep), the frontier, the
winning mix at each budget, the matched-budget table, and RM@k when asked for.

Called by ``analysis.analyze`` on a graded store; reads only stored rows (capped grades are made here when the
grader version changed since ``tts-eval force``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness import frontier as frontier_mod
from harness import sequential
from harness.baselines import Baseline
from harness.grading import GRADER_VERSION
from harness.scaling import ProblemCounts
from harness.sequential import CappedCurve
from harness.store import RunStore
from harness.types import Completion, CurvePoint, FrontierBudget, FrontierPoint, Grade, MatchedBudget

log = logging.getLogger(__name__)

SOURCE_LABEL = "source_correct"  # score name under which an import stores the file's own correctness labels


@dataclass(frozen=True)
class ExtraAnalysis:
    """What ``extend`` adds to a RunReport. ``cap_sweep``: the run is a cap sweep, so its uncapped curves
    (votes across different caps) mean nothing and are left out."""

    points: tuple[CurvePoint, ...] = ()
    frontier: tuple[FrontierPoint, ...] = ()
    frontier_budgets: tuple[FrontierBudget, ...] = ()
    matched: tuple[MatchedBudget, ...] = ()
    extras: dict[str, Any] = field(default_factory=dict)
    cap_sweep: bool = False


def extend(store: RunStore, grades: Sequence[Grade], completions: Sequence[Completion],
           counts: Sequence[ProblemCounts], budgets: Sequence[float], baselines: Sequence[Baseline], *,
           n_boot: int = 1000, seed: int = 0, rm_score: str | None = None, rm_weighting: str = "raw",
           workers: int | None = None) -> ExtraAnalysis:
    """Capped curves at the run's caps (``store.info("caps")``), a cap sweep's per-cap points, the frontier
    and its mixes at ``budgets``, the matched table against ``baselines``, and RM@k of score ``rm_score``.

    Raises ValueError when a cap needs token counts the run lacks, or RM@k is asked for a missing score.
    """
    benchmark = store.manifest().benchmark
    sweep = store.info(sequential.SWEEP_INFO_KEY)
    extras: dict[str, Any] = {}
    if rm_score is not None:
        extras["rm"] = _rm(store, grades, completions, rm_score, rm_weighting, n_boot, seed)
    if sweep:
        points = _sweep(store, grades, completions, list(sweep["caps"]), n_boot, seed, extras)
        matched = frontier_mod.matched_table(baselines, benchmark, [], counts, sweep_points=points,
                                             n_boot=n_boot, seed=seed)
        rm_points = tuple(extras.get("rm", {}).pop("points", ()))
        return ExtraAnalysis(tuple(points) + rm_points, matched=tuple(matched), extras=extras, cap_sweep=True)
    curves = [sequential.capped_curve(counts, "maj", None, n_boot=n_boot, seed=seed)]
    caps = sorted(store.info("caps") or [])
    with_tokens = all(c.output_tokens is not None for c in completions)
    if caps and not with_tokens:
        log.warning("caps %s skipped: the run has no token counts, so samples cannot be cut", caps)
        extras["caps_skipped"] = "the run has no token counts, so samples cannot be cut at a cap"
        caps = []
    forced_caps = set(store.forced_caps())
    for cap in caps:
        curves.append(sequential.capped_curve(sequential.truncated_counts(grades, completions, cap), "truncated",
                                              cap, n_boot=n_boot, seed=seed))
        if cap in forced_caps:
            curves.append(_forced_curve(store, completions, cap, n_boot, seed, workers))
    points = [p for c in curves[1:] for p in c.points]
    points += list(extras.get("rm", {}).pop("points", ()))
    front = frontier_mod.frontier(curves) if with_tokens else []
    mixes = frontier_mod.frontier_at_budgets(curves, budgets, n_boot=n_boot, seed=seed) if front and budgets else []
    matched = frontier_mod.matched_table(baselines, benchmark, curves, counts, n_boot=n_boot, seed=seed)
    if front:
        extras["frontier_rule"] = frontier_mod.FRONTIER_RULE
    return ExtraAnalysis(tuple(points), tuple(front), tuple(mixes), tuple(matched), extras)


def _forced_curve(store: RunStore, completions: Sequence[Completion], cap: int, n_boot: int, seed: int,
                  workers: int | None) -> CappedCurve:
    from harness import forcing

    grades = store.capped_grades(cap, GRADER_VERSION)
    if len(grades) != len(completions):
        from harness.grading import Grader

        with Grader(workers=workers) as grader:
            grades = forcing.grade_capped(store, cap, grader)
    counts = sequential.forced_counts(grades, completions, cap, forcing.continuation_tokens(store, cap))
    return sequential.capped_curve(counts, "forced", cap, n_boot=n_boot, seed=seed)


def _sweep(store: RunStore, grades: Sequence[Grade], completions: Sequence[Completion], caps: list[int],
           n_boot: int, seed: int, extras: dict[str, Any]) -> list[CurvePoint]:
    """One k=1 'truncated' point per cap, and the reproduction of the source's own accuracy per cap."""
    per_cap = sequential.sweep_counts(grades, completions, caps)
    labels = store.scores(SOURCE_LABEL)
    ours = {(g.problem_id, g.sample_index): g.correct for g in grades}
    points, rows = [], []
    for i, cap in enumerate(caps):
        point = sequential.capped_curve(per_cap[cap], "truncated", cap, n_boot=n_boot, seed=seed).points[0]
        points.append(point)
        keys = [key for key in ours if key[1] == i]
        row: dict[str, Any] = {"cap": cap, "problems": len(keys), "accuracy": point.accuracy,
                               "ci_low": point.ci_low, "ci_high": point.ci_high,
                               "no_answer_rate": point.no_answer_rate}
        if labels:
            theirs = [labels.get(key) for key in keys]
            known = [(ours[key], bool(t)) for key, t in zip(keys, theirs) if t is not None]
            row.update(source_accuracy=sum(t for _, t in known) / len(known) if known else None,
                       agree=sum(o == t for o, t in known), we_only=sum(o and not t for o, t in known),
                       source_only=sum(t and not o for o, t in known))
        rows.append(row)
    extras["cap_sweep"] = {
        "caps": caps, "rows": rows,
        "token_axis": "none: the files have no token counts; a cap is an upper bound of the tokens spent",
    }
    return points


def _rm(store: RunStore, grades: Sequence[Grade], completions: Sequence[Completion], name: str, weighting: str,
        n_boot: int, seed: int) -> dict[str, Any]:
    from harness.rm import EXACT_SUBSETS, rm_curve

    scores = store.scores(name)
    if not scores:
        known = ", ".join(store.score_names()) or "none"
        raise ValueError(f"the run has no score named {name!r} (stored scores: {known})")
    points, error = rm_curve(grades, completions, scores, weighting=weighting, n_boot=n_boot, seed=seed)
    return {"score": name, "weighting": weighting, "points": points, "max_standard_error": error,
            "exact_up_to_subsets": EXACT_SUBSETS}

