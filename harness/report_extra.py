"""The report's scaling-analysis parts: matched-budget table (the headline), frontier, winning mixes, cap sweep
and RM@k, as report.json entries and Markdown sections. Pure functions of a RunReport.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.types import FrontierBudget, FrontierPoint, MatchedBudget, RunReport

MATCHED_KEYS: tuple[str, ...] = ("baseline", "baseline_tokens", "baseline_accuracy", "accuracy", "ci_low", "ci_high",
                                 "reached", "curve", "note")
FRONTIER_KEYS: tuple[str, ...] = ("method", "cap", "k", "tokens_per_problem", "accuracy", "ci_low", "ci_high")


def frontier_dict(p: FrontierPoint) -> dict[str, Any]:
    """A frontier point as JSON: ``{method, cap, k, tokens_per_problem, accuracy, ci_low, ci_high}``."""
    return {name: getattr(p, name) for name in FRONTIER_KEYS}


def mix_dict(b: FrontierBudget) -> dict[str, Any]:
    """A winning mix at a budget as JSON (``low``/``high`` are frontier points or null)."""
    from harness.frontier import mix_description

    return {"budget": b.budget, "reached": b.reached, "accuracy": b.accuracy, "ci_low": b.ci_low,
            "ci_high": b.ci_high, "low": None if b.low is None else frontier_dict(b.low),
            "high": None if b.high is None else frontier_dict(b.high), "share_high": b.share_high,
            "mix": mix_description(b), "note": b.note}


def matched_dict(m: MatchedBudget) -> dict[str, Any]:
    """A matched-budget row as JSON (accuracies as fractions)."""
    return {name: getattr(m, name) for name in MATCHED_KEYS}


def extra_json(report: RunReport) -> dict[str, Any]:
    """The report.json entries ``frontier``, ``frontier_budgets``, ``matched`` and ``analysis`` (extras)."""
    from harness.report import _jsonable

    return {"frontier": [frontier_dict(p) for p in report.frontier],
            "frontier_budgets": [mix_dict(b) for b in report.frontier_budgets],
            "matched": [matched_dict(m) for m in report.matched],
            "analysis": _jsonable(dict(report.extras))}


# ------------------------------------------------------------------------------------------------ Markdown


def pct(value: float | None) -> str:
    """A fraction as "12.3%", or an en dash for None."""
    return "\u2013" if value is None else f"{100 * value:.1f}%"


def acc_ci(accuracy: float | None, low: float | None, high: float | None) -> str:
    """"12.3% [4.0, 20.1]", or "not reached" when the accuracy is None."""
    if accuracy is None:
        return "not reached"
    if low is None or high is None:
        return pct(accuracy)
    return f"{100 * accuracy:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def few_problems_note(report: RunReport) -> str:
    """A sentence on what one problem is worth when the benchmark is small ("" for 100+ problems)."""
    n = report.n_problems
    if n >= 100:
        return ""
    return (f"With {n} problems one problem is worth {100 / n:.1f} points of accuracy: the 95% intervals are wide, "
            "and a difference smaller than them is not evidence of anything.")


def matched_rows(report: RunReport) -> list[tuple[str, ...]]:
    """The headline table's rows as display strings (escaping is the caller's job)."""
    rows: list[tuple[str, ...]] = []
    for m in report.matched:
        rows.append((m.baseline, f"{m.baseline_tokens:,.0f}", pct(m.baseline_accuracy),
                     acc_ci(m.accuracy, m.ci_low, m.ci_high), m.curve, m.note))
    return rows


MATCHED_HEADER = ("Baseline", "Its avg tokens", "Its accuracy", "This run at those tokens [95% CI]", "Read from", "Note")


def matched_md(report: RunReport) -> list[str]:
    """The headline section: every baseline with a token count against this run at the same tokens."""
    from harness.report import _table, md_text

    lines = ["## Matched budgets (headline)", ""]
    if not report.matched:
        return lines + ["No published baseline with an average token count exists for this benchmark.", ""]
    lines += _table(MATCHED_HEADER, [tuple(md_text(c) for c in row) for row in matched_rows(report)])
    note = few_problems_note(report)
    return lines + ([md_text(note), ""] if note else [])


def frontier_md(report: RunReport) -> list[str]:
    """The frontier vertices and the winning mix at each requested budget."""
    from harness.report import _table, md_text

    if not report.frontier:
        return []
    lines = ["## Frontier over token caps and samples", "", "![frontier](frontier.png)", ""]
    rows = [(p.method, "uncapped" if p.cap is None else str(p.cap), str(p.k), f"{p.tokens_per_problem:,.0f}",
             acc_ci(p.accuracy, p.ci_low, p.ci_high)) for p in report.frontier]
    lines += _table(("Curve", "Cap", "k", "Tokens/problem", "Accuracy [95% CI]"), rows)
    if report.frontier_budgets:
        from harness.frontier import mix_description

        mix_rows = [(f"{b.budget:,.0f}", acc_ci(b.accuracy, b.ci_low, b.ci_high), md_text(mix_description(b)),
                     md_text(b.note)) for b in report.frontier_budgets]
        lines += ["### Winning mix at each requested budget", ""]
        lines += _table(("Budget", "Accuracy [95% CI]", "Mix", "Note"), mix_rows)
    rule = report.extras.get("frontier_rule")
    if rule:
        lines += [f"**Rule.** {md_text(rule)}.", ""]
    return lines


def sweep_md(report: RunReport) -> list[str]:
    """A cap sweep's per-cap table: our grader's accuracy beside the source file's own labels."""
    from harness.report import _table, md_text

    sweep = report.extras.get("cap_sweep")
    if not isinstance(sweep, Mapping):
        return []
    rows = []
    for r in sweep.get("rows", []):
        rows.append((str(r["cap"]), acc_ci(r["accuracy"], r["ci_low"], r["ci_high"]), pct(r.get("source_accuracy")),
                     str(r.get("agree", "\u2013")), str(r.get("we_only", "\u2013")), str(r.get("source_only", "\u2013")),
                     pct(r.get("no_answer_rate"))))
    header = ("Cap (max_tokens)", "Our grader [95% CI]", "Source's own labels", "Agree", "Only ours correct",
              "Only source correct", "No answer (ours)")
    return (["## Cap sweep", "", md_text(f"Each cap's samples were generated with that max_tokens, one per problem. "
             f"Token axis: {sweep.get('token_axis', '')}."), ""] + _table(header, rows))


def rm_md(report: RunReport) -> list[str]:
    """A note on the RM@k curve (its points are in the curve table)."""
    from harness.report import md_text

    rm = report.extras.get("rm")
    if not isinstance(rm, Mapping):
        return []
    return ["## RM@k", "", md_text(
        f"Weighted majority vote by the stored score {rm.get('score')!r} ({rm.get('weighting')} weights); exact "
        f"where a k has at most {rm.get('exact_up_to_subsets')} subsets, else a Monte Carlo estimate (largest "
        f"standard error of a curve point: {100 * float(rm.get('max_standard_error') or 0):.2f} points). The "
        "reward model's own compute is not in the token axis."), ""]
