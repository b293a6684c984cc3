"""``report.html``: one self-contained page per run (plots embedded as base64 PNG, inline CSS, no script, no
network), so it opens offline and can be mailed or archived as one file.

Every value from the run or the model is HTML-escaped, and a Content-Security-Policy forbids scripts and any
resource that is not embedded, so a hostile sample can neither run code nor fetch anything even if it got past
the escaping.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.report_extra import MATCHED_HEADER, acc_ci, few_problems_note, matched_rows, pct
from harness.types import METHODS, CurvePoint, RunReport

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
SAMPLE_TEXT_CHARS = 4000  # characters of each sample shown (its end, where the answer is)

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:18px;
color:#222;background:#fff}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
h3{font-size:15px;margin:16px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}th,td{border:1px solid #ddd;padding:3px 7px;
text-align:left;vertical-align:top}th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{background:#fff7e0;border-left:4px solid #f0b400;padding:6px 10px;margin:8px 0}
.muted{color:#666;font-size:12px}img.plot{max-width:100%;height:auto;border:1px solid #eee}
.ok{color:#11772d;font-weight:600}.bad{color:#b3261e}.na{color:#8a6d00}
pre{white-space:pre-wrap;word-break:break-word;background:#f8f8f8;padding:8px;max-height:360px;overflow:auto;
font-size:12px}details{margin:4px 0}summary{cursor:pointer}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in numeric else ""}>{_e(c)}</td>'
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(path: Path | None, alt: str) -> str:
    if path is None or not Path(path).is_file():
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<p><img class="plot" alt="{_e(alt)}" src="data:image/png;base64,{data}"></p>'


def _tokens(value: float | None) -> str:
    return "\u2013" if value is None else f"{value:,.0f}"


def _matched(report: RunReport) -> str:
    out = ["<h2>Matched budgets (headline)</h2>"]
    if not report.matched:
        return out[0] + "<p>No published baseline with an average token count exists for this benchmark.</p>"
    out.append(_table(MATCHED_HEADER, matched_rows(report), numeric=(1, 2)))
    note = few_problems_note(report)
    return "".join(out) + (f'<p class="muted">{_e(note)}</p>' if note else "")


def _frontier(report: RunReport, image: Path | None) -> str:
    if not report.frontier:
        return ""
    from harness.frontier import mix_description

    rows = [(p.method, "uncapped" if p.cap is None else p.cap, p.k, _tokens(p.tokens_per_problem),
             acc_ci(p.accuracy, p.ci_low, p.ci_high)) for p in report.frontier]
    out = ["<h2>Frontier over token caps and samples</h2>", _img(image, "frontier plot"),
           _table(("Curve", "Cap", "k", "Tokens/problem", "Accuracy [95% CI]"), rows, numeric=(2, 3))]
    if report.frontier_budgets:
        mixes = [(_tokens(b.budget), acc_ci(b.accuracy, b.ci_low, b.ci_high), mix_description(b), b.note)
                 for b in report.frontier_budgets]
        out += ["<h3>Winning mix at each requested budget</h3>", _table(("Budget", "Accuracy [95% CI]", "Mix", "Note"),
                                                                           mixes, numeric=(0,))]
    rule = report.extras.get("frontier_rule")
    return "".join(out) + (f'<p class="muted">{_e(rule)}.</p>' if rule else "")


def _sweep(report: RunReport) -> str:
    sweep = report.extras.get("cap_sweep")
    if not isinstance(sweep, Mapping):
        return ""
    rows = [(r["cap"], acc_ci(r["accuracy"], r["ci_low"], r["ci_high"]), pct(r.get("source_accuracy")),
             r.get("agree", "\u2013"), r.get("we_only", "\u2013"), r.get("source_only", "\u2013"),
             pct(r.get("no_answer_rate"))) for r in sweep.get("rows", [])]
    header = ("Cap (max_tokens)", "Our grader [95% CI]", "Source's own labels", "Agree", "Only ours correct",
              "Only source correct", "No answer (ours)")
    return ("<h2>Cap sweep</h2><p>Each cap's samples were generated with that max_tokens, one per problem. Token axis: "
            f"{_e(sweep.get('token_axis'))}.</p>" + _table(header, rows, numeric=(0,)))


def _budgets(report: RunReport) -> str:
    if not report.budgets:
        return ""
    rows = [(_tokens(b.budget), b.method, acc_ci(b.accuracy, b.ci_low, b.ci_high) if b.reached else "not reached",
             f"k={b.k_low}\u2013{b.k_high}" if b.k_low is not None else "", b.note) for b in report.budgets]
    return "<h2>Accuracy at requested budgets (Maj@k curve)</h2>" + _table(
        ("Budget (tokens/problem)", "Method", "Accuracy [95% CI]", "Between", "Note"), rows, numeric=(0,))


def _curve_tables(report: RunReport) -> str:
    uncapped = [p for p in report.points if p.cap is None]
    methods = [m for m in METHODS if any(p.method == m for p in uncapped)]
    by_key: dict[tuple[str, int], CurvePoint] = {(p.method, p.k): p for p in uncapped}
    out = ["<h2>Curve</h2>"]
    if uncapped:
        rows = []
        for k in sorted({p.k for p in uncapped}):
            first = next(by_key[(m, k)] for m in methods if (m, k) in by_key)
            cells: list[object] = [k, _tokens(first.tokens_per_problem)]
            cells += [acc_ci(q.accuracy, q.ci_low, q.ci_high) if (q := by_key.get((m, k))) else "\u2013" for m in methods]
            rows.append(cells + [pct(first.truncation_rate), pct(first.no_answer_rate)])
        header = ["k", "Tokens/problem"] + [f"{m}@k [95% CI]" for m in methods] + ["Truncated", "No answer"]
        out.append(_table(header, rows, numeric=(0, 1)))
    capped = sorted((p for p in report.points if p.cap is not None),
                    key=lambda p: (METHODS.index(p.method), p.cap or 0, p.k))
    last = {(p.method, p.cap): p.k for p in capped}
    capped = [p for p in capped if p.k in (1, last[(p.method, p.cap)])]
    if capped:
        rows2: list[list[object]] = [[p.method, p.cap, p.k, _tokens(p.tokens_per_problem),
                                      acc_ci(p.accuracy, p.ci_low, p.ci_high), pct(p.truncation_rate),
                                      pct(p.no_answer_rate)] for p in capped]
        out += ["<h3>Capped curves (k = 1 and the largest k; every k is in curve.csv)</h3>",
                _table(("Method", "Cap", "k", "Tokens/problem", "Accuracy [95% CI]", "Truncated at cap", "No answer"),
                       rows2, numeric=(1, 2, 3))]
    return "".join(out)


def _conditions(report: RunReport) -> str:
    m, s = report.manifest, report.manifest.sampling
    unknown = "not stated by the source"
    commit = "unknown" if m.git_commit is None else m.git_commit[:12] + (" (dirty)" if m.git_dirty else "")
    rows: list[tuple[str, object]] = [
        ("Model", m.model + (f" @ {m.model_revision}" if m.model_revision else "")), ("Backend", m.backend),
        ("Problems", report.n_problems), ("Samples per problem", report.samples_per_problem),
        ("max_tokens", unknown if s is None else s.max_tokens), ("temperature", unknown if s is None else s.temperature),
        ("top_p", unknown if s is None else s.top_p), ("top_k", unknown if s is None else s.top_k),
        ("Seed", unknown if s is None else s.seed),
        ("Prompt", f"{m.prompt_name} v{m.prompt_version} (hash {m.prompt_hash[:12] or '-'})"),
        ("Benchmark", f"{m.benchmark} v{m.benchmark_version} (hash {m.benchmark_hash[:12]})"),
        ("Grader version", m.grader_version), ("Git commit", commit),
        ("CIs", f"bootstrap over problems, 95% percentile, {report.n_boot} resamples, seed {report.ci_seed}"),
    ]
    status = ", ".join(f"{k} {v}" for k, v in sorted(report.status_counts.items()))
    rows.append(("Grade statuses", status))
    return "<h2>Conditions</h2>" + _table(("Setting", "Value"), rows)


def _verdict(sample: Mapping[str, Any]) -> tuple[str, str]:
    if sample.get("correct"):
        return "correct", "ok"
    status = str(sample.get("status") or "unknown")
    return ("wrong", "bad") if status == "ok" else (status.replace("_", " "), "na")


def _samples(report: RunReport) -> str:
    if not report.samples:
        return "<h2>Sample browser</h2><p>No samples were included in this report.</p>"
    by_problem: dict[str, list[Mapping[str, Any]]] = {}
    for s in report.samples:
        by_problem.setdefault(str(s.get("problem_id")), []).append(s)
    out = [(f"<h2>Sample browser</h2><p class=muted>{len(report.samples)} samples of {len(by_problem)} problems; "
            f"each text shows its last {SAMPLE_TEXT_CHARS} stored characters at most.</p>")]
    for pid, samples in by_problem.items():
        right = sum(bool(s.get("correct")) for s in samples)
        out.append(f"<details><summary>Problem {_e(pid)}: {right} of {len(samples)} shown samples correct</summary>")
        head = "".join(f"<th>{h}</th>" for h in ("Sample", "Extracted answer", "Vote key", "Verdict", "Tokens", "Finish"))
        out.append(f"<table><thead><tr>{head}</tr></thead><tbody>")
        for s in samples:
            verdict, css = _verdict(s)
            tokens = s.get("output_tokens")
            out.append(f"<tr><td class=num>{_e(s.get('sample_index'))}</td><td>{_e(s.get('extracted') or '–')}</td>"
                       f"<td>{_e(s.get('vote_key') or '–')}</td><td class={css}>{_e(verdict)}</td>"
                       f"<td class=num>{_e('–' if tokens is None else tokens)}</td>"
                       f"<td>{_e(s.get('finish_reason') or '–')}</td></tr>")
        out.append("</tbody></table>")
        for s in samples:
            text = str(s.get("text") or "")[-SAMPLE_TEXT_CHARS:]
            out.append(f"<details><summary>Sample {_e(s.get('sample_index'))} text ({len(text)} characters)</summary>"
                       f"<pre>{_e(text)}</pre></details>")
        out.append("</details>")
    return "".join(out)


def render_html(report: RunReport, images: Mapping[str, Path | None]) -> str:
    """The page as a string. ``images``: "curve" and "frontier" PNG paths (missing ones are left out)."""
    m = report.manifest
    title = f"{m.model} on {m.benchmark}"
    head = ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)} \u2013 tts-eval</title><style>{_CSS}</style></head><body>")
    intro = (f"<h1>{_e(title)}</h1><p class=muted>tts-eval report: accuracy against average output tokens per "
             f"problem; {report.n_problems} problems, grader {_e(m.grader_version)}.</p>")
    parts = [head, intro]
    if report.token_note:
        parts.append(f'<p class="note"><b>No token axis:</b> {_e(report.token_note)}</p>')
    parts += [_matched(report), "<h2>Scaling curve</h2>", _img(images.get("curve"), "accuracy against tokens"),
              _frontier(report, images.get("frontier")), _sweep(report), _budgets(report), _curve_tables(report),
              _conditions(report), _samples(report),
              f'<h2>Method</h2><p class=muted>{_e(report.interpolation_rule)}.</p></body></html>']
    return "".join(parts)


def write_html(report: RunReport, out: Path, *, images: Mapping[str, Path | None] | None = None) -> Path:
    """Write report.html to ``out``. ``images`` defaults to curve.png and frontier.png beside ``out``.

    Returns ``out``. Raises OSError when it cannot be written.
    """
    out = Path(out)
    if images is None:
        images = {"curve": out.parent / "curve.png", "frontier": out.parent / "frontier.png" if report.frontier else None}
    out.write_text(render_html(report, images), encoding="utf-8")
    return out
