"""``tts-eval gate`` (paired checkpoint-vs-checkpoint regression gate) and ``tts-eval gate-input`` (export the
per-problem counts a gate needs, e.g. to commit a baseline). Registered in ``harness.cli._register_groups``.

Exit codes of ``gate``: 0 pass, 1 regression, 2 comparison not possible (settings differ, a budget not reached,
an unreadable input or a bad flag). Heavy modules (numpy, the grader) are imported inside the commands.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


class GateUsageError(click.ClickException):
    """A gate that cannot run (bad input, bad flag): one line, exit 2 ("not comparable"), never 1, so CI does
    not read a broken setup as a regression."""

    exit_code = 2


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _parse_list(value: str, what: str, parse: Callable[[str], Any]) -> list[Any]:
    try:
        return [parse(item) for item in value.split(",") if item.strip()]
    except ValueError as exc:
        raise GateUsageError(f"{what}: {_one_line(exc)}") from exc


def _parse_k(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"expected whole numbers like 1 or 1,4, got {text!r}") from None


def _write(path: Path, text: str, *, append: bool = False) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a" if append else "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise GateUsageError(f"cannot write {path}: {exc.strerror or exc}") from exc


@click.command("gate")
@click.option("--baseline", required=True, type=click.Path(path_type=Path),
              help="The last good checkpoint: a run folder or a gate-input JSON file.")
@click.option("--candidate", required=True, type=click.Path(path_type=Path),
              help="The checkpoint under test: a run folder or a gate-input JSON file.")
@click.option("--budgets", default="", help="Average output tokens per problem to compare at, e.g. 2k,4k,8k.")
@click.option("--k", "ks", default="", help="Samples per problem to compare at (Maj@k), e.g. 1 or 1,4; for runs "
              "without output token counts.")
@click.option("--tolerance", default=1.0, show_default=True, type=float,
              help="Allowed drop in percentage points; a larger drop with a CI excluding 0 fails.")
@click.option("--allow-mismatch", default="", help="Settings allowed to differ, comma-separated: benchmark, "
              "prompt, grader, problems (problems: compare the problems both runs have).")
@click.option("--method", default="maj", show_default=True, help="Estimator: maj, pass or mean.")
@click.option("--n-boot", default=10000, show_default=True, type=int, help="Paired bootstrap resamples.")
@click.option("--seed", default=0, show_default=True, type=int, help="Bootstrap seed.")
@click.option("--out", "json_out", default="gate.json", show_default=True, type=click.Path(path_type=Path),
              help="Where to write gate.json.")
@click.option("--junit", type=click.Path(path_type=Path), help="Also write JUnit XML here.")
@click.option("--workers", type=int, help="Grader worker processes, if a run folder needs grading.")
@click.option("--no-progress", is_flag=True, help="No progress bar while grading.")
def gate(baseline: Path, candidate: Path, budgets: str, ks: str, tolerance: float, allow_mismatch: str,
         method: str, n_boot: int, seed: int, json_out: Path, junit: Path | None, workers: int | None,
         no_progress: bool) -> None:
    """Fail (exit 1) when CANDIDATE is worse than BASELINE at matched budgets; exit 0 when it passes and 2
    when the runs cannot be compared. Writes gate.json, appends Markdown to $GITHUB_STEP_SUMMARY when set."""
    from harness.gate import GateSettings, compare
    from harness.gate_input import load_gate_input
    from harness.gate_report import junit_xml, markdown, result_json, terminal_table
    from harness.scaling import parse_budget
    from harness.store import StoreError

    try:
        settings = GateSettings(
            budgets=tuple(_parse_list(budgets, "--budgets", parse_budget)), ks=tuple(_parse_list(ks, "--k", _parse_k)),
            tolerance_pp=tolerance, method=method, n_boot=n_boot, seed=seed,
            allow_mismatch=frozenset(_parse_list(allow_mismatch, "--allow-mismatch", str.strip)))
        inputs = [load_gate_input(path, workers=workers, progress=not no_progress) for path in (baseline, candidate)]
        result = compare(inputs[0], inputs[1], settings)
    except (ValueError, OSError, StoreError) as exc:
        raise GateUsageError(_one_line(exc)) from exc
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    click.echo(terminal_table(result), nl=False)
    _write(json_out, result_json(result))
    if junit is not None:
        _write(junit, junit_xml(result))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        _write(Path(summary), markdown(result), append=True)
    sys.exit(result.exit_code)


@click.command("gate-input")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True))
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="The JSON file to write, e.g. results/reference/NAME/gate-input.json.")
@click.option("--workers", type=int, help="Grader worker processes, if the run needs grading.")
@click.option("--no-progress", is_flag=True, help="No progress bar while grading.")
def gate_input(run_dir: Path, out: Path, workers: int | None, no_progress: bool) -> None:
    """Export a run's per-problem counts (a few kB) for `tts-eval gate`, e.g. to commit a baseline."""
    from harness.gate_input import load_gate_input, write_gate_input
    from harness.store import StoreError

    try:
        gi = load_gate_input(run_dir, workers=workers, progress=not no_progress)
        write_gate_input(gi, out)
    except (ValueError, OSError, StoreError) as exc:
        raise click.ClickException(_one_line(exc)) from exc
    tokens = gi.mean_tokens
    axis = f"{tokens:,.0f} tokens per sample" if tokens is not None else "no token axis"
    n = gi.samples_per_problem
    click.echo(f"wrote {out}: {len(gi.counts)} problems, {n} sample{'s' * (n != 1)} each, {axis}, "
               f"grader {gi.grader_version}")
