"""The gate's outputs: a terminal table, ``gate.json``, a Markdown summary (for ``$GITHUB_STEP_SUMMARY``) and
JUnit XML. Pure functions of a ``GateResult``; accuracies are fractions in JSON and percentages for people."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from harness.gate import MDE_FACTOR, GateResult, GateRow, mde_factor
from harness.gate_input import GateInput
from harness.report import md_text
from harness.scaling import INTERPOLATION_RULE

SCHEMA_VERSION = 1
MDE_RULE = (f"minimal detectable drop = (z_(1-alpha/2) + z_0.80) x SE ({MDE_FACTOR:.2f} x SE for a 95% CI), SE the bootstrap "
            "standard error of the mean paired difference: a true drop this large is flagged (CI excluding 0) "
            "in about 80% of repeated evaluations with this many problems and samples")
CI_RULE = ("percentile bootstrap over problems, resampled jointly for both runs, stored samples held fixed, "
           "the k mix held at the full data's value")
_HEADER = ("Point", "Baseline", "Candidate", "Delta pp [CI]", "MDE pp", "Verdict")


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _pp(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _delta(r: GateRow) -> str:
    if r.delta is None or r.ci_low is None or r.ci_high is None:
        return "–"
    return f"{100 * r.delta:+.1f} [{100 * r.ci_low:+.1f}, {100 * r.ci_high:+.1f}]"


def _cells(r: GateRow) -> tuple[str, ...]:
    return (r.label, _pct(r.baseline), _pct(r.candidate), _delta(r), _pp(r.mde), r.verdict)


def _side(gi: GateInput) -> str:
    tokens = gi.mean_tokens
    axis = f"{tokens:,.0f} tokens/sample" if tokens is not None else "no token axis"
    n = gi.samples_per_problem
    return f"{gi.source} (model {gi.model}; {len(gi.counts)} problems, {n} sample{'s' * (n != 1)} each, {axis})"


def _title(result: GateResult) -> str:
    return f"tts-eval gate: {result.status.upper()} (exit {result.exit_code})"


def _settings_line(result: GateResult) -> str:
    s = result.settings
    allowed = f"; allowed to differ: {', '.join(result.allowed)}" if result.allowed else ""
    return (f"{s.method}@k, tolerance {s.tolerance_pp:g} pp, {100 * s.confidence:g}% CI from {s.n_boot} paired "
            f"bootstrap resamples (seed {s.seed}) over {result.problems} problems; MDE = {mde_factor(s.confidence):.2f} x SE"
            f"{allowed}" + ("; k rows compare equal samples per problem, not equal tokens" if s.ks else ""))


def terminal_table(result: GateResult) -> str:
    """The text printed to the terminal: title, both inputs, the table (when compared), settings, reason."""
    lines = [_title(result), f"baseline : {_side(result.baseline)}", f"candidate: {_side(result.candidate)}"]
    if result.rows:
        table = [_HEADER] + [_cells(r) for r in result.rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(_HEADER))]
        lines += [""] + ["  ".join(c.ljust(w) if i in (0, 5) else c.rjust(w) for i, (c, w) in
                                   enumerate(zip(row, widths))).rstrip() for row in table]
        lines += [f"  {r.label}: {r.note}" for r in result.rows if r.note]
        lines += ["", _settings_line(result)]
    lines.append(result.reason)
    return "\n".join(lines) + "\n"


def markdown(result: GateResult) -> str:
    """A Markdown section for ``$GITHUB_STEP_SUMMARY``; every value from the runs is escaped."""
    lines = [f"## {_title(result)}", "", f"- baseline: {md_text(_side(result.baseline))}",
             f"- candidate: {md_text(_side(result.candidate))}", ""]
    if result.rows:
        lines += ["| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
        lines += ["| " + " | ".join(md_text(c) for c in _cells(r)) + " |" for r in result.rows]
        notes = [f"- {md_text(r.label)}: {md_text(r.note)}" for r in result.rows if r.note]
        lines += [""] + (notes + [""] if notes else []) + [md_text(_settings_line(result)) + ".", ""]
    lines += [f"**{md_text(result.reason)}**", ""]
    return "\n".join(lines) + "\n"


def _input_dict(gi: GateInput) -> dict[str, Any]:
    return {"source": gi.source, "model": gi.model, "benchmark": gi.benchmark,
            "benchmark_version": gi.benchmark_version, "benchmark_hash": gi.benchmark_hash,
            "prompt_name": gi.prompt_name, "prompt_hash": gi.prompt_hash, "grader_version": gi.grader_version,
            "problems": len(gi.counts), "samples_per_problem": gi.samples_per_problem,
            "mean_tokens_per_sample": gi.mean_tokens, "subset": None if gi.subset is None else dict(gi.subset),
            "token_note": gi.token_note}


def result_to_dict(result: GateResult) -> dict[str, Any]:
    """The content of gate.json: ``passed``, ``status``, ``exit_code``, ``reason``, ``budgets`` (one entry per
    compared point: budget, k, baseline, candidate, delta, ci_low, ci_high, verdict, se, mde, baseline_k,
    candidate_k, note; accuracies as fractions), ``mde`` (the largest per-point MDE, a fraction, or None),
    both inputs, every mismatch found, and the settings. Raises nothing."""
    s = result.settings
    mdes = [r.mde for r in result.rows if r.mde is not None]
    return {
        "schema_version": SCHEMA_VERSION, "passed": result.passed, "status": result.status,
        "exit_code": result.exit_code, "reason": result.reason, "problems": result.problems,
        "budgets": [{name: getattr(r, name) for name in (
            "budget", "k", "baseline", "candidate", "delta", "ci_low", "ci_high", "verdict", "se", "mde",
            "baseline_k", "candidate_k", "note")} for r in result.rows],
        "mde": max(mdes) if mdes else None,
        "baseline": _input_dict(result.baseline), "candidate": _input_dict(result.candidate),
        "mismatches": [{"name": m.name, "baseline": m.baseline, "candidate": m.candidate,
                        "allowed": m.name in result.allowed} for m in result.mismatches],
        "settings": {"budgets": list(s.budgets), "ks": list(s.ks), "tolerance_pp": s.tolerance_pp,
                     "method": s.method, "allow_mismatch": sorted(s.allow_mismatch), "n_boot": s.n_boot,
                     "seed": s.seed, "confidence": s.confidence, "ci_rule": CI_RULE, "mde_rule": MDE_RULE,
                     "interpolation_rule": INTERPOLATION_RULE},
    }


def result_json(result: GateResult) -> str:
    """``result_to_dict`` as indented JSON text (no NaN: every number is finite or null)."""
    return json.dumps(result_to_dict(result), indent=2, sort_keys=True, allow_nan=False) + "\n"


def junit_xml(result: GateResult) -> str:
    """JUnit XML: one testcase per compared point (a failure for "fail", an error for "not reached"), or one
    "comparability" testcase with an error when the runs were refused."""
    suite = ET.Element("testsuite", name="tts-eval gate")
    props = ET.SubElement(suite, "properties")
    for key, gi in (("baseline", result.baseline), ("candidate", result.candidate)):
        ET.SubElement(props, "property", name=key, value=_side(gi))
    failures = errors = 0
    if not result.rows:
        case = ET.SubElement(suite, "testcase", classname="tts-eval.gate", name="comparability")
        ET.SubElement(case, "error", message=result.reason).text = result.reason
        errors = 1
    for r in result.rows:
        case = ET.SubElement(suite, "testcase", classname="tts-eval.gate", name=f"{result.settings.method} at {r.label}")
        detail = (f"baseline {_pct(r.baseline)}, candidate {_pct(r.candidate)}, delta pp {_delta(r)}, "
                  f"MDE pp {_pp(r.mde)}" + (f"; {r.note}" if r.note else ""))
        if r.verdict == "fail":
            failures += 1
            ET.SubElement(case, "failure", message=f"regression at {r.label}").text = detail
        elif r.verdict == "not reached":
            errors += 1
            ET.SubElement(case, "error", message=f"not reached at {r.label}").text = detail
        else:
            ET.SubElement(case, "system-out").text = detail
    tests = max(1, len(result.rows))
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", "0")
    root = ET.Element("testsuites", name="tts-eval gate", tests=str(tests), failures=str(failures),
                      errors=str(errors))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
