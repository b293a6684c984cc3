"""``tts-eval transparency``: score a work on the Technical Transparency Index, compare it with the report.

Registered in the main CLI with ``cli.add_command(transparency)``. Each command calls harness.transparency and
turns its TransparencyError into one line on stderr and exit code 1.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from harness.transparency import (
    DIMENSIONS,
    Question,
    TransparencyError,
    TTIScore,
    dimension_maxima,
    load_answers,
    load_checklist,
    load_leaderboard,
    rank,
    score_answers,
)


@click.group("transparency")
def transparency() -> None:
    """Technical Transparency Index (O1-Journey Part 2): 25 yes/no questions, 100 points.

    Copy configs/tti-template.toml, answer every question, then score it.
    """


@transparency.command("score")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (points per dimension and every answer).")
def score_cmd(file: Path, as_json: bool) -> None:
    """Score a filled checklist FILE.toml.

    Prints the points per dimension and the total out of 100 (with --json: every answer too).
    """
    try:
        questions = load_checklist()
        filled = load_answers(file, questions)
        score = score_answers(filled, questions)
    except TransparencyError as exc:
        raise click.ClickException(str(exc)) from None
    maxima = dimension_maxima(questions)
    if as_json:
        by_id = {a.id: a for a in filled.answers}
        payload = _score_json(score, maxima)
        payload["questions"] = [
            {
                "id": q.id,
                "dimension": q.dimension,
                "points": q.points,
                "answer": by_id[q.id].answer,
                "evidence": by_id[q.id].evidence,
            }
            for q in questions
        ]
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    click.echo(f"{score.name}  ({file})")
    width = max(len(d) for d in (*DIMENSIONS, "total"))
    for dimension in DIMENSIONS:
        click.echo(f"{dimension:<{width}}  {score.points(dimension):>3}/{maxima[dimension]}")
    click.echo(f"{'total':<{width}}  {score.total:>3}/{sum(maxima.values())}")


@transparency.command("leaderboard")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows instead of a table.")
def leaderboard_cmd(files: tuple[Path, ...], as_json: bool) -> None:
    """Rank the report's seven works and each FILE.toml.

    The seven o1 replications scored in the report's Table 4, plus each filled checklist given, highest
    total first; ties share a rank.
    """
    try:
        questions = load_checklist()
        scores = load_leaderboard(questions=questions)
        scores += [score_answers(load_answers(f, questions), questions) for f in files]
    except TransparencyError as exc:
        raise click.ClickException(str(exc)) from None
    maxima = dimension_maxima(questions)
    ranked = rank(scores)
    if as_json:
        rows = [{"rank": r, **_score_json(s, maxima)} for r, s in ranked]
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        click.echo(_table(ranked, questions))


def _score_json(score: TTIScore, maxima: dict[str, int]) -> dict[str, Any]:
    return {
        "name": score.name,
        "source": score.source,
        "dimensions": {d: {"points": score.points(d), "max": maxima[d]} for d in DIMENSIONS},
        "total": score.total,
        "max_total": sum(maxima.values()),
    }


def _table(ranked: Sequence[tuple[int, TTIScore]], questions: Sequence[Question]) -> str:
    """An aligned text table; headers carry each dimension's maximum, e.g. ``data/14``."""
    maxima = dimension_maxima(questions)
    header = [
        "rank",
        "work",
        *(f"{d}/{maxima[d]}" for d in DIMENSIONS),
        f"total/{sum(maxima.values())}",
        "source",
    ]
    rows = [
        [str(r), s.name, *(str(s.points(d)) for d in DIMENSIONS), str(s.total), s.source] for r, s in ranked
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    text_columns = {1, len(header) - 1}  # work and source are left-aligned, numbers right-aligned
    lines = []
    for row in [header, *rows]:
        cells = [
            c.ljust(w) if i in text_columns else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
