"""The evaluation card's definitions and its answers to the checklist's evaluation questions.

The Technical Transparency Index (harness.transparency) has six evaluation questions that a harness can
answer from what it recorded: benchmark choice, level of evaluation, metric definitions, custom metrics,
metrics applied the same way to every compared method, and sampling conditions for every compared method.
Each answer is "yes", "no" or "cannot tell", with the recorded evidence; a question the records cannot
settle (why a benchmark was chosen) is "cannot tell", never a guess.

The compared methods are the card's runs plus the published results that a run's matched-budget table reached
(a number of the run stands beside theirs). Those were scored by their authors: what is known of their metric
and sampling is what ``configs/baselines.csv`` states.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from harness.baselines import Baseline
from harness.frontier import FRONTIER_RULE
from harness.report import CI_METHOD
from harness.rm import EXACT_SUBSETS, MC_SUBSETS
from harness.scaling import INTERPOLATION_RULE, MAJ_MAX_SAMPLES
from harness.transparency import Question
from harness.types import RunReport

Verdict = Literal["yes", "no", "cannot tell"]

# Every curve method a report can hold, defined as the estimators compute it (scaling, sequential, rm).
METRIC_DEFINITIONS: Mapping[str, str] = {
    "maj": ("Maj@k: the expected correctness of a majority vote over a uniformly random k-subset of the n stored "
            "samples, computed exactly from the sizes of the answer clusters (exact for n up to "
            f"{MAJ_MAX_SAMPLES}), never from the first k samples. Votes are on meaning: samples whose answers the "
            "grader finds equivalent share one vote key. A tie among t keys that includes the correct one earns "
            "1/t; samples without an answer abstain, and a subset in which nobody answered scores 0."),
    "pass": ("pass@k: the unbiased estimator 1 - C(n-c, k)/C(n, k) of the chance that at least one of k samples "
             "is correct (c correct among n stored). It needs an oracle to pick the right sample: an upper "
             "bound, not a policy one can deploy."),
    "mean": "mean@k: c/n, the accuracy of one sample; the same for every k (it is the k = 1 point of Maj@k).",
    "truncated": ("truncated Maj@k at cap b: each stored sample cut at b output tokens keeps its answer only if it "
                  "finished within b tokens (else it abstains) and costs min(length, b) tokens; then Maj@k as above."),
    "forced": ("forced Maj@k at cap b: as truncated, but a sample cut at b answers through its budget-forcing "
               "continuation (the same engine continues the first b tokens after a short final-answer text); its "
               "cost is min(length, b) plus the continuation's tokens."),
    "rm": ("RM@k: a majority vote in which each sample's vote is weighted by a stored per-sample score (e.g. a "
           "reward model's), ties credited like Maj@k; exact where a k has at most "
           f"{EXACT_SUBSETS} subsets, else the mean over {MC_SUBSETS} random k-subsets (its largest standard error "
           "is in report.json). The scoring model's compute is not on the token axis."),
}

# Terms every card uses, whatever the curves.
TERMS: Mapping[str, str] = {
    "grading": ("Grading is at the final-answer level: the grader extracts each sample's final answer (the last "
                "\\boxed{} after any </think>, with stated fallbacks) and checks it against the gold answer with "
                "a sympy-based equivalence in a killable worker process; reasoning steps are not graded. Each "
                "grade has a status: ok, no_answer, unparsable or timeout; only ok can be correct."),
    "tokens": ("Tokens per problem at k samples = k x the mean output tokens per sample (averaged over problems), "
               "reasoning tokens included, as the engine counted them; never estimated from characters."),
    "matched": ("Accuracy at a matched budget: this run's accuracy at a published result's average output "
                "tokens per problem, read from the Maj@k budget curve, or from the frontier when the run has "
                "capped curves with token counts; a cap sweep without token counts gives a lower bound (the "
                "accuracy at the largest cap not above those tokens)."),
    "interpolation": f"Budget curve between its points: {INTERPOLATION_RULE}.",
    "frontier": f"Frontier: {FRONTIER_RULE}.",
    "ci": (f"95% intervals: {CI_METHOD}, with the stored samples held fixed; the same resampled problems for "
           "every curve of a run."),
}

# Metrics beyond Maj@k, pass@k and mean@k, each with why it is reported. The matched-budget accuracy is
# reported for every run (it is the O1-Journey report's metric).
CUSTOM_METRICS: Mapping[str, str] = {
    "matched": "compares methods at equal inference cost, the O1-Journey Part 2 metric",
    "truncated": "the sequential axis: what a smaller max_tokens would have scored, without sampling again",
    "forced": "a sample cut at the cap still gets to answer (budget forcing, as in s1)",
    "rm": "verifier-weighted voting, the usual alternative to a plain majority",
    "frontier": "the best accuracy reachable at each cost by spending tokens in length, in samples, or both",
}


@dataclass(frozen=True)
class CardAnswer:
    """One checklist question answered from the records: ``verdict`` and the ``evidence`` behind it."""

    id: str
    question: str
    verdict: Verdict
    evidence: str


@dataclass(frozen=True)
class Compared:
    """What the questions look at: each run's label and report, and the published rows in their matched
    tables (``published``: Baseline rows of configs/baselines.csv, in first-seen order)."""

    runs: Sequence[tuple[str, RunReport]]
    published: Sequence[Baseline] = ()


def methods_of(report: RunReport) -> list[str]:
    """The curve methods present in a report, in METRIC_DEFINITIONS order (unknown ones last)."""
    present: set[str] = {p.method for p in report.points}
    return [m for m in METRIC_DEFINITIONS if m in present] + sorted(present - set(METRIC_DEFINITIONS))


def custom_metrics_of(report: RunReport) -> list[str]:
    """The custom metrics a report holds (keys of CUSTOM_METRICS; "matched" always)."""
    present = set(methods_of(report))
    found = ["matched"] + [m for m in ("truncated", "forced", "rm") if m in present]
    return found + (["frontier"] if report.frontier else [])


def _benchmarks(c: Compared) -> tuple[Verdict, str]:
    names = sorted({f"{r.manifest.benchmark} ({r.manifest.benchmark_version}, sha256 {r.manifest.benchmark_hash[:16]},"
                    f" {r.n_problems} problems)" for _, r in c.runs})
    return "cannot tell", (f"Recorded: {'; '.join(names)}. Which benchmark was run is exact; why it was chosen is "
                           "a judgement no run records: state it beside this card.")


def _granularity(c: Compared) -> tuple[Verdict, str]:
    versions = sorted({r.manifest.grader_version for _, r in c.runs})
    total: dict[str, int] = {}
    for _, r in c.runs:
        for status, count in r.status_counts.items():
            total[status] = total.get(status, 0) + int(count)
    counts = ", ".join(f"{s} {total[s]}" for s in sorted(total))
    return "yes", (f"Final answer only, for every run: grader {', '.join(versions)} graded each sample's extracted "
                   f"answer against the gold ({counts}); no step-level grading.")


def _metrics(c: Compared) -> tuple[Verdict, str]:
    present = sorted({m for _, r in c.runs for m in methods_of(r)}, key=lambda m: (m not in METRIC_DEFINITIONS, m))
    undefined = [m for m in present if m not in METRIC_DEFINITIONS]
    if undefined:
        return "no", f"No definition for {', '.join(undefined)} (reported: {', '.join(present)})."
    return "yes", (f"Every reported metric ({', '.join(m + '@k' for m in present)}), the token axis, the "
                   "matched-budget accuracy and the intervals are defined under 'How it was measured'.")


def _custom(c: Compared) -> tuple[Verdict, str]:
    present = sorted({m for _, r in c.runs for m in custom_metrics_of(r)})
    missing = [m for m in present if m not in CUSTOM_METRICS]
    if missing:
        return "no", f"Custom metric(s) without a stated rule or reason: {', '.join(missing)}."
    reasons = "; ".join(f"{m}: {CUSTOM_METRICS[m]}" for m in present)
    return "yes", f"Custom metrics reported, each with its rule under 'How it was measured' and its reason: {reasons}."


def _consistency(c: Compared) -> tuple[Verdict, str]:
    differ = []
    for what, values in (("grader version", {r.manifest.grader_version for _, r in c.runs}),
                         ("interpolation rule", {r.interpolation_rule for _, r in c.runs}),
                         ("bootstrap (resamples, seed)", {(r.n_boot, r.ci_seed) for _, r in c.runs})):
        if len(values) > 1:
            differ.append(f"{what} differs ({', '.join(sorted(map(str, values)))})")
    if differ:
        return "no", "Between the runs: " + "; ".join(differ) + "."
    r0 = c.runs[0][1]
    same = (f"Every run was graded by grader {r0.manifest.grader_version} and estimated by the same code (exact "
            f"Maj@k, unbiased pass@k, {r0.n_boot} bootstrap resamples, seed {r0.ci_seed}).")
    benchmarks = {(r.manifest.benchmark_hash, r.manifest.problem_ids_hash) for _, r in c.runs}
    if len(benchmarks) > 1:
        same += " The runs answer different problem sets (see 'Where conditions differ')."
    if c.published:
        names = "; ".join(f"{series} ({_points(rows)}: {', '.join(sorted({b.metric for b in rows}))})"
                          for series, rows in _by_series(c.published).items())
        return "cannot tell", (same + f" The published results in the matched tables were scored by their "
                               f"authors, whose grading is not recorded here: {names}.")
    return "yes", same


def _conditions(c: Compared) -> tuple[Verdict, str]:
    stated, unstated = [], []
    for label, r in c.runs:
        s = r.manifest.sampling
        if s is None:
            unstated.append(f"{label} (imported; the source does not state its sampling)")
        else:
            stated.append(f"{label}: temperature {s.temperature}, top_p {s.top_p}, top_k {s.top_k}, "
                          f"max_tokens {s.max_tokens}, seed {s.seed}")
    for series, rows in _by_series(c.published).items():
        texts = [t for b in rows if (t := b.sampling.strip()) and t.lower() != "not stated"]
        if len(texts) < len(rows):
            missing = len(rows) - len(texts)
            unstated.append(f"{series} (published; sampling not stated for {missing} of {_points(rows)})")
        else:
            stated.append(f"{series} ({_points(rows)}): " + " / ".join(dict.fromkeys(texts)))
    evidence = "; ".join(x for x in ("Stated: " + "; ".join(stated) if stated else "",
                                     "not stated: " + "; ".join(unstated) if unstated else "") if x) + "."
    return ("cannot tell" if unstated else "yes"), evidence[0].upper() + evidence[1:]


def _by_series(rows: Sequence[Baseline]) -> dict[str, list[Baseline]]:
    groups: dict[str, list[Baseline]] = {}
    for b in rows:
        groups.setdefault(b.series, []).append(b)
    return groups


def _points(rows: Sequence[Baseline]) -> str:
    return "1 point" if len(rows) == 1 else f"{len(rows)} points"


_RULES: Mapping[str, Callable[[Compared], tuple[Verdict, str]]] = {
    "eval.benchmarks": _benchmarks, "eval.granularity": _granularity, "eval.metrics": _metrics,
    "eval.custom_metrics": _custom, "eval.consistency": _consistency, "eval.conditions": _conditions,
}


def answer_questions(compared: Compared, questions: Sequence[Question]) -> list[CardAnswer]:
    """Answer the checklist's evaluation questions (dimension "evaluation") from the compared runs' records.

    Takes the compared runs and the checklist (``transparency.load_checklist()``); returns one CardAnswer per
    evaluation question, in checklist order. A question tts-eval has no rule for is "cannot tell". Raises
    ValueError when ``compared`` has no run.
    """
    if not compared.runs:
        raise ValueError("an evaluation card needs at least one run")
    answers = []
    for q in questions:
        if q.dimension != "evaluation":
            continue
        rule = _RULES.get(q.id)
        verdict, evidence = rule(compared) if rule else ("cannot tell", "tts-eval has no rule for this question.")
        answers.append(CardAnswer(q.id, q.question, verdict, evidence))
    return answers
