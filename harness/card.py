"""``tts-eval card``: an evaluation card for one or several runs, in prose and tables.

It says what was measured (the key numbers of each run), how (every metric and estimator defined), under
which conditions (each run's manifest), where the conditions of the compared runs differ, and answers the
Technical Transparency Index's evaluation questions from the records (``harness.card_questions``).

The numbers come from ``analysis.analyze`` on the stored samples, with the settings the run's own report used
(its budgets, caps and RM score, kept in the run store), so the card agrees with the run's report.json made with
the same bootstrap settings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.card_conditions import HASH_CHARS, condition_table, differences
from harness.card_questions import (
    CUSTOM_METRICS,
    METRIC_DEFINITIONS,
    TERMS,
    CardAnswer,
    Compared,
    answer_questions,
    custom_metrics_of,
    methods_of,
)
from harness.provenance import FINGERPRINT_RULE, FINGERPRINT_VERSION
from harness.report import md_text
from harness.report_extra import acc_ci, pct
from harness.types import CurvePoint, RunReport

_NAMES = {"maj": "Maj", "pass": "pass", "rm": "RM"}


@dataclass(frozen=True)
class CardRun:
    """One run on the card: a short label (its folder's name), the folder, and its analysed report."""

    label: str
    run_dir: Path
    report: RunReport


def load_runs(run_dirs: Sequence[Path], *, n_boot: int = 1000, ci_seed: int = 0, workers: int | None = None,
              progress: bool = False) -> list[CardRun]:
    """Analyse each run folder (grading it first when it has no grades of the current grader).

    Returns one CardRun per folder, in the given order. Raises ValueError when no folder or the same folder
    twice is given, StoreError when a folder holds no run, ValueError when a run has no samples.
    """
    from harness.analysis import analyze
    from harness.store import RunStore

    if not run_dirs:
        raise ValueError("give at least one run folder")
    resolved = [Path(d).resolve() for d in run_dirs]
    for i, d in enumerate(resolved):
        if d in resolved[:i]:
            raise ValueError(f"{run_dirs[i]} is given twice; name each run once")
    names = [Path(d).name for d in run_dirs]
    runs = []
    for run_dir, name in zip(run_dirs, names, strict=True):
        label = name if names.count(name) == 1 else str(run_dir)
        with RunStore.open(Path(run_dir)) as store:
            rm = store.info("rm") or {}
            report = analyze(store, store.info("budgets") or [], n_boot=n_boot, ci_seed=ci_seed, workers=workers,
                             progress=progress, rm_score=rm.get("score"), rm_weighting=rm.get("weighting", "raw"))
        runs.append(CardRun(label, Path(run_dir), report))
    return runs


def _md(value: object) -> str:
    """``report.md_text`` (safe in a table cell, one line), with quotes left as they are: they are harmless
    outside HTML attributes and entities make the file hard to read."""
    return md_text(value).replace("&#x27;", "'").replace("&quot;", '"')


def key_points(report: RunReport) -> list[tuple[str, CurvePoint]]:
    """The points a card shows for a run, with a label each: one sample, Maj@n, pass@n, RM@n uncapped, and
    k = 1 and the largest k of each capped curve (every point is in the run's report.json)."""
    groups: dict[tuple[str, int | None], list[CurvePoint]] = {}
    for p in report.points:
        groups.setdefault((p.method, p.cap), []).append(p)
    order = list(METRIC_DEFINITIONS)

    def place(group: tuple[str, int | None]) -> tuple[bool, int, int]:  # uncapped first, then by cap and method
        method, cap = group
        return cap is not None, cap or 0, order.index(method) if method in order else len(order)

    shown: list[tuple[str, CurvePoint]] = []
    for (method, cap), points in sorted(groups.items(), key=lambda g: place(g[0])):
        by_k = {p.k: p for p in points}
        top = max(by_k)
        if cap is None:
            if method == "maj":
                shown.append(("one sample (Maj@1 = pass@1 = mean)", by_k[min(by_k)]))
            if method in ("maj", "pass", "rm") and top > 1:
                shown.append((f"{_NAMES[method]}@{top}", by_k[top]))
            continue
        for k in sorted({min(by_k), top}):
            shown.append((f"{method} at cap {cap}, " + ("one sample" if k == 1 else f"Maj@{k}"), by_k[k]))
    return shown


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows] + [""]


def _tokens(value: float | None) -> str:
    return "\u2013" if value is None else f"{value:,.0f}"


def _summary(run: CardRun) -> str:
    r, m = run.report, run.report.manifest
    settings = m.engine_settings
    if m.backend == "replay":
        origin = f"imported from {settings.get('source_file', 'a file')} (format {settings.get('format', '?')})"
    else:
        origin = f"sampled with the {m.backend} backend"
    counts = ", ".join(f"{k} {v}" for k, v in sorted(r.status_counts.items()))
    per = f"{r.samples_per_problem} sample{'' if r.samples_per_problem == 1 else 's'} per problem"
    tokens = ("Output tokens were counted by the engine." if r.token_note is None else
              f"No token axis ({r.token_note.rstrip('.')}): accuracy is given by samples per problem, and no "
              "budget can be reached.")
    return (f"**{_md(run.label)}**: {_md(m.model)} on {r.n_problems} problems of {_md(m.benchmark)} "
            f"({_md(m.benchmark_version)}), {per}, {_md(origin)}. Grade statuses (grader "
            f"{_md(m.grader_version)}; ok = an answer was found and checked): {_md(counts)}. {_md(tokens)}")


def _matched_md(runs: Sequence[CardRun]) -> list[str]:
    """The matched-budget rows of the runs that reached at least one published result; one sentence for each
    run that reached none (a run without token counts reaches none, and 2 x 9 rows of "not reached" hide that)."""
    rows, unmatched = [], []
    for run in runs:
        if not any(m.reached for m in run.report.matched):
            if run.report.matched:
                reasons = sorted({m.note for m in run.report.matched if m.note})
                unmatched.append(f"{run.label}: none of the {len(run.report.matched)} published results with an "
                                 f"average token count is reached ({'; '.join(reasons) or 'not reached'}).")
            continue
        rows += [(_md(run.label), _md(m.baseline), _tokens(m.baseline_tokens), pct(m.baseline_accuracy),
                  acc_ci(m.accuracy, m.ci_low, m.ci_high), _md(m.curve), _md(m.note)) for m in run.report.matched]
    lines = _table(("Run", "Published result", "Its avg tokens", "Its accuracy", "Run at those tokens [95% CI]",
                    "Read from", "Note"), rows) if rows else []
    lines += [_md(text) + "\n" for text in unmatched]
    if not any(run.report.matched for run in runs):
        benches = ", ".join(sorted({run.report.manifest.benchmark for run in runs}))
        lines += [f"No published result with an average token count exists for {_md(benches)}.", ""]
    return lines


def _measured_md(runs: Sequence[CardRun]) -> list[str]:
    lines = ["## What was measured", ""]
    for run in runs:
        lines += [_summary(run), ""]
    rows = [(_md(run.label), _md(label), _tokens(p.tokens_per_problem), acc_ci(p.accuracy, p.ci_low, p.ci_high))
            for run in runs for label, p in key_points(run.report)]
    lines += ["### Key results", ""] + _table(("Run", "Curve", "Tokens/problem", "Accuracy [95% CI]"), rows)
    lines += ["Every point of every curve (each k, each cap) is in the run's curve.csv and report.json.", ""]
    lines += ["### Matched budgets", ""] + _matched_md(runs)
    budgets = [(_md(run.label), _tokens(b.budget), acc_ci(b.accuracy, b.ci_low, b.ci_high), _md(b.note))
               for run in runs for b in run.report.budgets]
    if budgets:
        lines += ["### Requested budgets", ""] + _table(("Run", "Budget (tokens/problem)", "Maj accuracy [95% CI]",
                                                         "Note"), budgets)
    return lines


def _how_md(runs: Sequence[CardRun]) -> list[str]:
    methods = [m for m in METRIC_DEFINITIONS if any(m in methods_of(r.report) for r in runs)]
    custom = sorted({c for r in runs for c in custom_metrics_of(r.report)})
    lines = ["## How it was measured", "", f"- {_md(TERMS['grading'])}", f"- {_md(TERMS['tokens'])}"]
    lines += [f"- {_md(METRIC_DEFINITIONS[m])}" for m in methods]
    lines += [f"- {_md(TERMS['matched'])}", f"- {_md(TERMS['interpolation'])}"]
    if any(r.report.frontier or any(p.cap is not None for p in r.report.points) for r in runs):
        lines.append(f"- {_md(TERMS['frontier'])}")
    lines.append(f"- {_md(TERMS['ci'])}")
    lines += ["- Reported beyond Maj@k, pass@k and mean@k, and why: "
              + _md("; ".join(f"{c} ({CUSTOM_METRICS[c]})" for c in custom if c in CUSTOM_METRICS)) + "."]
    for run in runs:
        rm = run.report.extras.get("rm")
        if isinstance(rm, Mapping):
            error = float(rm.get("max_standard_error") or 0)
            how = (f"largest standard error of a point {100 * error:.2f} points" if error else
                   "exact at every k (every k-subset enumerated)")
            lines.append(_md(f"- {run.label}: RM@k weights the stored score {rm.get('score')!r} "
                             f"({rm.get('weighting')} weights); {how}."))
    return lines + [""]


def _conditions_md(runs: Sequence[CardRun]) -> list[str]:
    header = ["Setting"] + [_md(r.label) for r in runs]
    rows = [[_md(name)] + [_md(v) for v in values] for name, values in condition_table([r.report for r in runs])]
    lines = ["## Conditions", "", f"Hashes are their first {HASH_CHARS} hex digits (in full in each report.json).",
             ""] + _table(header, rows)
    if any((r.report.manifest.model_revision or "").startswith(FINGERPRINT_VERSION + ":") for r in runs):
        lines += [_md(f"A local model's revision is its files fingerprint, {FINGERPRINT_RULE}."), ""]
    templates = {r.report.manifest.prompt_hash: r for r in runs if r.report.manifest.prompt_template}
    for digest, run in templates.items():
        users = ", ".join(r.label for r in runs if r.report.manifest.prompt_hash == digest)
        text = run.report.manifest.prompt_template
        # A fence longer than any run of backticks in the template, so the template cannot close it.
        fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", text)), default=0))
        lines += [f"Prompt template {_md(digest[:HASH_CHARS])} (used by {_md(users)}):", "", fence + "text",
                  text, fence, ""]
    return lines


def _differences_md(runs: Sequence[CardRun]) -> list[str]:
    lines = ["## Where conditions differ", ""]
    diff = differences([r.report for r in runs])
    if not diff:
        lines += ["No recorded condition differs between the runs."]
    else:
        lines += _table(["Setting"] + [_md(r.label) for r in runs],
                        [[_md(name)] + [_md(v) for v in values] for name, values in diff])[:-1]
    lines += ["", "Start and end times, command lines and host names identify each execution and are not compared."]
    unstated = [r.label for r in runs if r.report.manifest.sampling is None]
    if unstated:
        lines += ["", _md(f"The sampling settings of {', '.join(unstated)} are not recorded (imported outputs whose "
                          "source does not state them), so a difference in max_tokens, temperature or top_p between "
                          "the runs cannot show here.")]
    return lines + [""]


def _questions_md(answers: Sequence[CardAnswer]) -> list[str]:
    lines = ["## Evaluation questions of the Technical Transparency Index", "",
             "The checklist's evaluation questions (configs/tti-checklist.csv), answered from what the runs "
             "recorded: yes, no, or cannot tell.", ""]
    rows = [(_md(a.id), _md(a.question), f"**{a.verdict}**", _md(a.evidence)) for a in answers]
    return lines + _table(("Id", "Question", "Answer", "Evidence"), rows)


def compared_of(runs: Sequence[CardRun]) -> Compared:
    """The runs and the published rows their matched tables compare with (from configs/baselines.csv)."""
    from harness.baselines import DEFAULT_BASELINES, load_baselines

    # Compared = a number of this run was put beside theirs; rows no run reached are not a comparison.
    wanted = [(m.baseline, m.baseline_tokens) for r in runs for m in r.report.matched if m.reached]
    rows = load_baselines() if wanted and DEFAULT_BASELINES.is_file() else []
    published = []
    for series, tokens in dict.fromkeys(wanted):
        published += [b for b in rows if b.series == series and b.avg_output_tokens == tokens][:1]
    return Compared([(r.label, r.report) for r in runs], published)


def card_markdown(runs: Sequence[CardRun], command: str = "") -> str:
    """The card's Markdown: title, the command that made it, what was measured, how, conditions, differences
    (with two runs or more) and the evaluation questions. Every recorded value is escaped. Raises
    ValueError without runs, TransparencyError when the checklist file is broken."""
    from harness.transparency import load_checklist

    if not runs:
        raise ValueError("an evaluation card needs at least one run")
    first = runs[0].report.manifest
    benches = sorted({r.report.manifest.benchmark for r in runs})
    title = (f"{first.model} on {first.benchmark}" if len(runs) == 1 else
             f"{len(runs)} runs on {', '.join(benches)}")
    lines = [f"# Evaluation card: {_md(title)}", ""]
    if command:
        lines += [f"Generated by `{command.replace('`', '')}`.", ""]
    lines += _measured_md(runs) + _how_md(runs) + _conditions_md(runs)
    if len(runs) > 1:
        lines += _differences_md(runs)
    lines += _questions_md(answer_questions(compared_of(runs), load_checklist()))
    return "\n".join(lines).rstrip("\n") + "\n"


def write_card(run_dirs: Sequence[Path], out: Path, *, command: str = "", n_boot: int = 1000, ci_seed: int = 0,
               workers: int | None = None, progress: bool = False) -> Path:
    """Analyse ``run_dirs`` and write their evaluation card to ``out`` (parent folders created).

    Returns ``out``. Raises what ``load_runs`` and ``card_markdown`` raise, and OSError when ``out`` cannot
    be written. Nothing is written when a run cannot be read.
    """
    runs = load_runs(run_dirs, n_boot=n_boot, ci_seed=ci_seed, workers=workers, progress=progress)
    text = card_markdown(runs, command)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
