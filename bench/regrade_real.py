"""Re-grade the real model outputs in ../shared/data/real/ and list every disagreement with the sources' labels.

Run from the repository root:

    .venv/bin/python bench/regrade_real.py [--out docs/grading-disagreements.md]

Sources: Qwen2.5-Math's ``math_cot_100.jsonl`` (100 MATH problems x 8 responses; ``score`` is the source's
verdict against ``gt``), graded against ``gt`` and against the MATH ``answer`` field; and the seven files of the
DeepScaleR-1.5B AIME 2024 max_tokens sweep (``is_correct``). Responses carry no finish reason, so extraction
runs with ``truncated=None``. Each disagreement gets the one-line verdict from :data:`VERDICTS` (written after
reading the response); one without a verdict is marked "not reviewed". Math-Verify's verdict is shown for
reference. Prints the summary table and writes the list as Markdown.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # running the file directly puts bench/ on sys.path, not the repository root

from harness.grading import GRADER_VERSION, Grader
from harness.types import AnswerType, Completion, Grade, Problem

DATA = next((p for p in (ROOT / "shared" / "data", ROOT.parent / "shared" / "data") if p.is_dir()), ROOT)
QWEN = DATA / "real" / "qwen25math-cot-100-n8" / "math_cot_100.jsonl"
SWEEP = DATA / "real" / "deepscaler-1.5b-aime24-budget-sweep"

# (source, problem id, sample index) -> who is right, in one line. Written by reading each response.
_TIME = ("ours: every sample boxes `4:30 \\text{ p.m.}` and MATH's answer is `\\text{4:30 p.m.}`; the source's "
         "gold `4:30p..` is cut short and its grader compared `4:30`")
_THINK = ("policy, ours by the rule that reasoning is not the answer: the only box (`**Final Answer** \\boxed{{{}}}`) is "
          "inside `<think>`, and the answer after `</think>` was cut off at the 4096-token cap; the source took the "
          "reasoning's box")
VERDICTS: dict[tuple[str, str, int], str] = {
    **{("qwen25math-cot-100-n8", "3", k): _TIME for k in range(8)},
    ("qwen25math-cot-100-n8", "72", 7): ("ours: `\\boxed{10000}` is the gold `10{,}000` (the response computes "
                                         "70,000 / 7 = 10,000); the source's grader missed it"),
    ("deepscaler-aime24", "69", 5): _THINK.format(116),
    ("deepscaler-aime24", "71", 5): _THINK.format(294),
    ("deepscaler-aime24", "72", 5): _THINK.format(540),
    ("deepscaler-aime24", "84", 5): _THINK.format(33),
}


@dataclass(frozen=True)
class Sample:
    """One graded response with the source's label and answer."""

    source: str
    problem_id: str
    index: int
    gold: str
    text: str
    label: bool
    their_answer: str


def qwen_samples(gold_field: str) -> list[Sample]:
    """The 800 Qwen2.5-Math responses, with ``gold_field`` ("gt" or "answer") as the gold."""
    rows = [json.loads(line) for line in QWEN.read_text(encoding="utf-8").splitlines() if line.strip()]
    source = f"qwen25math-cot-100-n8 vs {gold_field}"
    return [Sample(source, str(r["idx"]), k, r[gold_field], text, bool(r["score"][k]), str(r["pred"][k]))
            for r in rows for k, text in enumerate(r["code"])]


def sweep_samples() -> list[Sample]:
    """The 210 DeepScaleR responses (30 AIME problems x 7 caps; the cap is the sample index, in cap order)."""
    files = sorted(SWEEP.glob("max_tokens_*.jsonl"), key=lambda p: int(p.stem.split("_")[-1]))
    out = []
    for k, path in enumerate(files):
        for line in path.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            texts = r["generated_responses"]
            text = texts[0] if isinstance(texts, list) else str(texts)
            answers = r.get("generated_answers") or [""]
            out.append(Sample(f"deepscaler-aime24 {path.stem}", str(r["id"]), k, str(r["gold_answer"]), text,
                              bool(r["is_correct"]), str(answers[0])))
    return out


def grade(grader: Grader, samples: list[Sample], answer_type: AnswerType) -> list[tuple[Sample, Grade]]:
    """Our Grade for every sample (grouped by problem, as a run is graded)."""
    problems = {s.problem_id: Problem(s.problem_id, "real", "", s.gold, answer_type=answer_type) for s in samples}
    completions = [Completion(s.problem_id, i, None, s.text, None, None) for i, s in enumerate(samples)]
    return list(zip(samples, grader.grade_many(problems, completions)))


def math_verify(sample: Sample) -> bool:
    """Math-Verify's verdict on the full response (default settings)."""
    from math_verify import parse, verify

    return bool(verify(parse(f"\\boxed{{{sample.gold}}}"), parse(sample.text)))


def _cell(text: str | None, limit: int = 60) -> str:
    if text is None:
        return "—"
    flat = " ".join(text.split())
    flat = flat if len(flat) <= limit else flat[:limit - 1] + "…"
    return "`" + flat.replace("|", "\\|").replace("`", "'") + "`"


def report(groups: dict[str, list[tuple[Sample, Grade]]]) -> tuple[str, str]:
    """(summary table, Markdown list of disagreements)."""
    summary = [("| source | samples | source labels correct | ours correct | agree | we credit, they don't | "
                "they credit, we don't | Math-Verify agrees with the source |"), "|---|---|---|---|---|---|---|---|"]
    lines = []
    for name, graded in groups.items():
        mv = [math_verify(s) for s, _ in graded]
        ours_yes = [g.correct for _, g in graded]
        labels = [s.label for s, _ in graded]
        agree = sum(a == b for a, b in zip(ours_yes, labels))
        summary.append(f"| {name} | {len(graded)} | {sum(labels)} | {sum(ours_yes)} | {agree} | "
                       f"{sum(a and not b for a, b in zip(ours_yes, labels))} | "
                       f"{sum(b and not a for a, b in zip(ours_yes, labels))} | "
                       f"{sum(m == b for m, b in zip(mv, labels))} |")
        rows = [(s, g, m) for (s, g), m in zip(graded, mv) if g.correct != s.label]
        lines.append(f"\n## {name}: {len(rows)} disagreements\n")
        if not rows:
            continue
        lines.append("| problem | sample | gold | source's answer | ours | source | Math-Verify | who is right |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for s, g, m in rows:
            verdict = VERDICTS.get((s.source.split(" ")[0], s.problem_id, s.index), "not reviewed")
            ours = f"{'correct' if g.correct else 'wrong'} ({g.status}): {_cell(g.extracted, 40)}"
            lines.append(f"| {s.problem_id} | {s.index} | {_cell(s.gold, 30)} | {_cell(s.their_answer, 30)} | "
                         f"{ours} | {'correct' if s.label else 'wrong'} | {'correct' if m else 'wrong'} | {verdict} |")
    return "\n".join(summary), "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "grading-disagreements.md")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    with Grader(workers=args.workers) as grader:
        groups = {
            "Qwen2.5-Math, gold `gt`": grade(grader, qwen_samples("gt"), "math"),
            "Qwen2.5-Math, gold MATH `answer`": grade(grader, qwen_samples("answer"), "math"),
            "DeepScaleR-1.5B AIME 2024 sweep (7 caps)": grade(grader, sweep_samples(), "integer"),
        }
    summary, details = report(groups)
    print(summary)
    header = (f"# Grading disagreements on real outputs\n\nGenerated by `bench/regrade_real.py` with grader "
              f"{GRADER_VERSION}; do not edit by hand. Every sample where tts-eval's verdict differs from the "
              f"label the source shipped, with a one-line verdict on who is right.\n\n{summary}\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(header + details + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
