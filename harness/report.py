"""A run's derived files: ``curve.csv``, ``report.json``, ``report.md`` and ``curve.png``.

Everything here is a pure function of a ``RunReport`` (plus the baselines table), so a run can be re-reported
from its store at any time. ``report.json`` keeps full float precision (accuracies are fractions in [0, 1]);
``curve.csv`` is fixed-point for people and spreadsheets; ``report.md`` is the page to read.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import io
import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from harness.baselines import DEFAULT_BASELINES, Baseline, load_baselines
from harness.types import METHODS, BudgetPoint, CurvePoint, RunReport

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
CI_METHOD = "bootstrap over problems, 95% percentile"
CSV_COLUMNS: tuple[str, ...] = ("method", "k", "cap", "tokens_per_problem", "accuracy", "ci_low", "ci_high",
                                "truncation_rate", "no_answer_rate")
REQUIRED_KEYS: tuple[str, ...] = ("benchmark", "n_problems", "samples_per_problem", "points", "budgets",
                                  "token_note", "interpolation_rule", "ci", "status_counts", "manifest")
POINT_KEYS: tuple[str, ...] = CSV_COLUMNS
BUDGET_KEYS: tuple[str, ...] = ("budget", "method", "accuracy", "reached", "ci_low", "ci_high", "k_low", "k_high",
                                "note")
# How much of each sampled answer the Markdown page shows (this many characters from its start and from its
# end), and how many samples at most.
TEXT_PREVIEW_CHARS = 300
MAX_SAMPLES_SHOWN = 20
# Characters that Markdown (GitHub flavour, with math) would interpret inside a table cell.
_MD_SPECIAL = set("\\`*_[]|~$")


def write_report(report: RunReport, out_dir: Path, baselines: Sequence[Baseline] | None = None) -> dict[str, Path]:
    """Write curve.csv, report.json, report.md and curve.png into ``out_dir`` (created if missing).

    ``baselines``: drawn on the plot (rows of other benchmarks are ignored); None loads the default
    ``configs/baselines.csv`` (skipped with a warning when that file is absent), ``()`` draws none.
    Also writes report.html (self-contained, plots embedded) and, when the run has a frontier, frontier.png.
    Returns ``{"csv", "json", "markdown", "plot", "html"}`` (and ``"frontier"``) mapped to the written paths.
    Raises ValueError when a value cannot be written as JSON (NaN or infinity) or the baselines file is bad.
    """
    from harness.plot import plot_curves  # matplotlib is imported only when a report is written

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if baselines is None:
        if DEFAULT_BASELINES.is_file():
            baselines = load_baselines(benchmark=report.manifest.benchmark)
        else:
            log.warning("no baselines drawn: %s not found", DEFAULT_BASELINES)
            baselines = ()
    paths = {"csv": out_dir / "curve.csv", "json": out_dir / "report.json", "markdown": out_dir / "report.md",
             "plot": out_dir / "curve.png"}
    # Render everything before writing anything, so a report that cannot be written leaves no partial files.
    texts = {"csv": curve_csv(report), "json": _dump_json(report_to_json_dict(report)),
             "markdown": report_markdown(report)}
    for name, text in texts.items():
        paths[name].write_text(text, encoding="utf-8")
    from harness.html_report import write_html
    from harness.plot_extra import plot_frontier, reference_rows, report_methods

    plot_curves([report], paths["plot"], baselines=baselines, methods=report_methods(report),
                references=reference_rows(baselines, report.manifest.benchmark))
    if report.frontier:
        paths["frontier"] = plot_frontier(report, out_dir / "frontier.png", baselines=baselines)
    paths["html"] = write_html(report, out_dir / "report.html")
    return paths


def _sorted_points(points: Sequence[CurvePoint]) -> list[CurvePoint]:
    """Points in a fixed order: by method (types.METHODS order), then cap (uncapped first), then k."""
    return sorted(points, key=lambda p: (METHODS.index(p.method), -1 if p.cap is None else p.cap, p.k))


def _point_dict(p: CurvePoint) -> dict[str, Any]:
    return {name: getattr(p, name) for name in POINT_KEYS}


def _budget_dict(b: BudgetPoint) -> dict[str, Any]:
    return {name: getattr(b, name) for name in BUDGET_KEYS}


def _jsonable(value: Any) -> Any:
    """Mappings (any kind) to dicts, tuples to lists, recursively; other values unchanged."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def report_to_json_dict(report: RunReport) -> dict[str, Any]:
    """The content of report.json as plain JSON types: accuracies as fractions, points in a fixed order.

    Takes a RunReport; returns a dict with (at least) the keys in ``REQUIRED_KEYS``. Raises nothing.
    """
    from harness.report_extra import extra_json

    manifest = report.manifest
    return {
        "schema_version": SCHEMA_VERSION,
        "model": manifest.model,
        "benchmark": manifest.benchmark,
        "n_problems": report.n_problems,
        "samples_per_problem": report.samples_per_problem,
        "points": [_point_dict(p) for p in _sorted_points(report.points)],
        "budgets": [_budget_dict(b) for b in report.budgets],
        "token_note": report.token_note,
        "interpolation_rule": report.interpolation_rule,
        "ci": {"method": CI_METHOD, "n_boot": report.n_boot, "seed": report.ci_seed},
        "status_counts": {k: int(v) for k, v in sorted(report.status_counts.items())},
        # Engine settings and package versions may be read-only mappings, which asdict cannot copy as dicts.
        "manifest": _jsonable(dataclasses.asdict(dataclasses.replace(
            manifest, engine_settings=dict(manifest.engine_settings),
            package_versions=dict(manifest.package_versions), machine=dict(manifest.machine)))),
        "samples": [_jsonable(s) for s in report.samples],
        **extra_json(report),
    }


def _dump_json(data: Mapping[str, Any]) -> str:
    try:
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False, default=str) + "\n"
    except ValueError as exc:
        raise ValueError(f"report has a NaN or infinite number and cannot be written as JSON ({exc}); "
                         "check the scaling step's inputs") from None


def read_report_json(path: Path) -> dict[str, Any]:
    """Read a report.json written by ``write_report``.

    Returns the dict. Raises ValueError (one line, naming the file) when it is missing, not JSON, or lacks a
    required key at the top level, in a point or in a budget.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"report not found: {path}; run `tts-eval report` on the run first") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); regenerate it with `tts-eval report`") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object at the top level, got {type(data).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ValueError(f"{path} lacks key(s) {missing}; regenerate it with `tts-eval report`")
    for field_name, keys in (("points", POINT_KEYS), ("budgets", BUDGET_KEYS)):
        if not isinstance(data[field_name], list):
            raise ValueError(f"{path}: {field_name} must be a list")
        for i, item in enumerate(data[field_name]):
            lacking = [k for k in keys if not isinstance(item, dict) or k not in item]
            if lacking:
                raise ValueError(f"{path}: {field_name}[{i}] lacks key(s) {lacking}")
    return data


def _fixed(value: float | None, digits: int) -> str:
    """Fixed-point text, or an empty cell for None."""
    return "" if value is None else f"{value:.{digits}f}"


def curve_csv(report: RunReport) -> str:
    """The content of curve.csv: a header and one row per curve point (order as in report.json).

    Fractions have 6 decimals and tokens 2; None is an empty cell. Raises nothing.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for p in _sorted_points(report.points):
        writer.writerow([p.method, p.k, "" if p.cap is None else p.cap, _fixed(p.tokens_per_problem, 2),
                         _fixed(p.accuracy, 6), _fixed(p.ci_low, 6), _fixed(p.ci_high, 6),
                         _fixed(p.truncation_rate, 6), _fixed(p.no_answer_rate, 6)])
    return buffer.getvalue()


def md_text(value: object, limit: int | None = None) -> str:
    """Text safe in a Markdown table cell: shown literally, no HTML, no links, no emphasis, one line.

    HTML-significant characters become entities and Markdown-significant ones are backslash-escaped, so model
    output can neither break the table nor inject markup. ``limit`` shortens long values (with an ellipsis).
    """
    text = " ".join(str(value).split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    text = html.escape(text, quote=True)
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in text)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table (cells must already be escaped), followed by a blank line."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows] + [""]


def _pct(value: float | None) -> str:
    return "\u2013" if value is None else f"{100 * value:.1f}%"


def _acc_ci(accuracy: float, low: float, high: float) -> str:
    return f"{100 * accuracy:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def _tokens(value: float | None) -> str:
    return "\u2013" if value is None else f"{value:,.0f}"


def _conditions_md(report: RunReport) -> list[str]:
    m, s = report.manifest, report.manifest.sampling
    commit = "unknown" if m.git_commit is None else m.git_commit[:12] + (" (dirty)" if m.git_dirty else "")
    # Imported outputs may not say how they were sampled; say so rather than print defaults.
    unknown = "not stated by the source"
    rows = [
        ("Model", m.model + (f" @ {m.model_revision}" if m.model_revision else "")),
        ("Backend", m.backend),
        ("Problems", str(report.n_problems)),
        ("Samples per problem", str(report.samples_per_problem)),
        ("max_tokens", unknown if s is None else str(s.max_tokens)),
        ("temperature", unknown if s is None else str(s.temperature)),
        ("top_p", unknown if s is None else str(s.top_p)),
        ("top_k", unknown if s is None else str(s.top_k)),
        ("Seed", unknown if s is None else str(s.seed)),
        ("Prompt", f"{m.prompt_name} v{m.prompt_version} (hash {m.prompt_hash[:12]})"),
        ("Benchmark", f"{m.benchmark} v{m.benchmark_version} (hash {m.benchmark_hash[:12]})"),
        ("Grader version", m.grader_version),
        ("Git commit", commit),
    ]
    return ["## Conditions", ""] + _table(("Setting", "Value"), [(k, md_text(v)) for k, v in rows])


def _budgets_md(report: RunReport) -> list[str]:
    lines = ["## Accuracy at requested budgets", ""]
    if not report.budgets:
        return lines + ["No budgets were requested.", ""]
    rows = []
    for b in report.budgets:
        if b.reached and b.accuracy is not None and b.ci_low is not None and b.ci_high is not None:
            value = _acc_ci(b.accuracy, b.ci_low, b.ci_high)
        else:
            value = "not reached"
        between = f"k={b.k_low}\u2013{b.k_high}" if b.k_low is not None and b.k_high is not None else ""
        rows.append((_tokens(b.budget), b.method, value, between, md_text(b.note)))
    header = ("Budget (tokens/problem)", "Method", "Accuracy [95% CI]", "Between", "Note")
    return lines + _table(header, rows)


def _curve_md(report: RunReport) -> list[str]:
    uncapped = [p for p in _sorted_points(report.points) if p.cap is None]
    methods = [m for m in METHODS if any(p.method == m for p in uncapped)]
    by_key: dict[tuple[str, int], CurvePoint] = {(p.method, p.k): p for p in uncapped}
    rows: list[list[str]] = []
    with_tokens = any(p.tokens_per_problem is not None for p in uncapped)
    for k in sorted({p.k for p in uncapped}):
        # Tokens and rates describe the samples, not the estimator: take them from the first method present.
        first = next(by_key[(m, k)] for m in methods if (m, k) in by_key)
        cells = [str(k)] + ([_tokens(first.tokens_per_problem)] if with_tokens else [])
        cells += [_acc_ci(p.accuracy, p.ci_low, p.ci_high) if (p := by_key.get((m, k))) else "\u2013"
                  for m in methods]
        rows.append(cells + [_pct(first.truncation_rate), _pct(first.no_answer_rate)])
    header = ["k"] + (["Tokens/problem"] if with_tokens else []) + [f"{m}@k [95% CI]" for m in methods]
    header += ["Truncated", "No answer"]
    lines = ["## Curve", ""] + (_table(header, rows) if rows else [])
    capped = [p for p in _sorted_points(report.points) if p.cap is not None]
    # Per cap only k = 1 and the largest k: every k of every cap is in curve.csv and report.json.
    last_k = {(p.method, p.cap): p.k for p in capped}
    capped = [p for p in capped if p.k in (1, last_k[(p.method, p.cap)])]
    if capped:
        capped_rows = [(p.method, str(p.cap), str(p.k), _tokens(p.tokens_per_problem), _acc_ci(p.accuracy, p.ci_low,
                 p.ci_high), _pct(p.truncation_rate), _pct(p.no_answer_rate)) for p in capped]
        header = ["Method", "Cap", "k", "Tokens/problem", "Accuracy [95% CI]", "Truncated", "No answer"]
        lines += ["### Capped curves (k = 1 and the largest k; every k is in curve.csv)", ""]
        lines += _table(header, capped_rows)
    return lines


def _status_md(report: RunReport) -> list[str]:
    counts = dict(report.status_counts)
    total = sum(counts.values())
    order = [s for s in ("ok", "no_answer", "unparsable", "timeout") if s in counts] + sorted(
        s for s in counts if s not in ("ok", "no_answer", "unparsable", "timeout"))
    rows = [(md_text(s), str(counts[s]), _pct(counts[s] / total if total else None)) for s in order]
    return ["## Grade status", ""] + _table(("Status", "Grades", "Share"), rows + [("total", str(total), "")])


def _method_md(report: RunReport) -> list[str]:
    rule = (report.interpolation_rule or "not stated by the analysis step").strip().rstrip(".") + "."
    return ["## Method", "", f"**Interpolation between curve points.** {md_text(rule)}", "",
            (f"**Confidence intervals.** {CI_METHOD.capitalize()} interval with the stored samples held "
             f"fixed, {report.n_boot} resamples, seed {report.ci_seed}."), ""]


def _verdict(sample: Mapping[str, Any]) -> str:
    if sample.get("correct"):
        return "correct"
    status = str(sample.get("status") or "unknown")
    return "wrong" if status == "ok" else status.replace("_", " ")


def _samples_md(report: RunReport) -> list[str]:
    shown = report.samples[:MAX_SAMPLES_SHOWN]
    lines = ["## Sampled answers", ""]
    if not shown:
        return lines + ["No samples were included in this report.", ""]
    lines += [f"{len(shown)} of the run's samples, each with the start and end of its stored text.", ""]
    header = ("Problem", "Sample", "Extracted", "Vote key", "Verdict", "Tokens", "Finish")
    for s in shown:
        text = str(s.get("text") or "")
        row = [md_text(s.get("problem_id", "")), md_text(s.get("sample_index", "")),
               md_text(s.get("extracted") or "\u2013", 80), md_text(s.get("vote_key") or "\u2013", 80),
               _verdict(s), md_text(s.get("output_tokens") if s.get("output_tokens") is not None else "\u2013"),
               md_text(s.get("finish_reason") or "\u2013")]
        # The start shows how the model read the problem; the end holds the final answer the grader took.
        if len(text) > 2 * TEXT_PREVIEW_CHARS:
            skipped = len(text) - 2 * TEXT_PREVIEW_CHARS
            preview = f"{text[:TEXT_PREVIEW_CHARS]}\n[\u2026 {skipped} characters \u2026]\n{text[-TEXT_PREVIEW_CHARS:]}"
            summary = f"Text (first and last {TEXT_PREVIEW_CHARS} of {len(text)} characters)"
        else:
            preview, summary = text, f"Text ({len(text)} characters)"
        # Inside <pre> the text is raw HTML to Markdown, so escaping every '<' and '&' is enough to show
        # it literally; the block can only end at our own </pre>.
        lines += _table(header, [row]) + [f"<details><summary>{summary}</summary>", "", "<pre>",
                                          html.escape(preview, quote=False), "</pre>", "", "</details>", ""]
    return lines


def report_markdown(report: RunReport) -> str:
    """The content of report.md: title, token-axis warning (if any), plot, conditions, budgets, curve,
    grade statuses, method notes and sampled answers. Every value from the run or the model is escaped.
    Raises nothing."""
    m = report.manifest
    lines = [f"# {md_text(m.model)} on {md_text(m.benchmark)}", ""]
    if report.token_note:
        note = report.token_note.strip().rstrip(".")
        lines += [(f"> **This run has no token axis:** {md_text(note)}. The report therefore "
                   "shows accuracy by k (samples per problem) instead of by average output tokens, and no "
                   "budget can be reached."), ""]
    from harness.report_extra import frontier_md, matched_md, rm_md, sweep_md

    lines += matched_md(report)
    lines += ["![curve](curve.png)", ""]
    for section in (_conditions_md, _budgets_md, frontier_md, sweep_md, _curve_md, rm_md, _status_md, _method_md,
                    _samples_md):
        lines += section(report)
    return "\n".join(lines).rstrip("\n") + "\n"
