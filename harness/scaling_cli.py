"""CLI pieces of the scaling analysis: ``tts-eval force``, the plot command's work, and the report summary lines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from harness.types import RunReport


def echo_headline(report: RunReport) -> None:
    """Print the budget points, the matched-budget table and the winning mixes of a report, one line each."""
    from harness.frontier import mix_description

    for point in report.budgets:
        if point.reached and point.accuracy is not None:
            click.echo(f"budget {point.budget:>8.0f} tokens: Maj accuracy {100 * point.accuracy:5.1f}%"
                       f" [{100 * (point.ci_low or 0):.1f}, {100 * (point.ci_high or 0):.1f}]")
        else:
            click.echo(f"budget {point.budget:>8.0f} tokens: {point.note or 'not reached'}")
    for m in report.matched:
        ours = (f"{100 * m.accuracy:5.1f}% [{100 * (m.ci_low or 0):.1f}, {100 * (m.ci_high or 0):.1f}] ({m.curve})"
                if m.reached and m.accuracy is not None else
                (m.note if m.note.startswith("not reached") else f"not reached ({m.note})"))
        click.echo(f"vs {m.baseline} ({100 * m.baseline_accuracy:.1f}% at {m.baseline_tokens:,.0f} tokens): {ours}")
    for b in report.frontier_budgets:
        if b.reached and b.accuracy is not None:
            click.echo(f"frontier at {b.budget:>8.0f} tokens: {100 * b.accuracy:5.1f}% with {mix_description(b)}")
        else:
            click.echo(f"frontier at {b.budget:>8.0f} tokens: {b.note}")
    if report.token_note:
        click.echo(f"no token axis: {report.token_note}")


def plot_runs(run_dirs: Sequence[Path], out: Path, methods: Sequence[str], references: str, frontier: bool,
              y_range: tuple[float, float] | None = None) -> Path:
    """Analyse the runs and draw them (or, with ``frontier``, the one run's frontier) into ``out``.

    Raises ValueError when the runs cannot be drawn together or a frontier is asked of several runs.
    """
    from harness.analysis import analyze
    from harness.baselines import load_baselines
    from harness.plot import plot_curves
    from harness.plot_extra import plot_frontier, reference_rows, report_methods
    from harness.store import RunStore

    reports = []
    for run_dir in run_dirs:
        with RunStore.open(run_dir) as store:
            rm = store.info("rm") or {}  # RM@k as last asked for by `tts-eval report --rm-score`
            reports.append(analyze(store, store.info("budgets") or [], progress=False, rm_score=rm.get("score"),
                                   rm_weighting=rm.get("weighting", "raw")))
    benches = sorted({r.manifest.benchmark for r in reports})
    baselines = [b for name in benches for b in load_baselines(benchmark=name)]
    if frontier:
        if len(reports) != 1:
            raise ValueError("--frontier draws one run; pass a single run folder")
        return plot_frontier(reports[0], out, baselines=baselines)
    if not methods:
        methods = tuple(dict.fromkeys(m for r in reports for m in report_methods(r)))
    refs = [b for name in benches for b in reference_rows(baselines, name, references)]
    return plot_curves(reports, out, baselines=baselines, methods=methods, references=refs, y_range=y_range)


@click.command("force")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--caps", required=True, help="Token caps, e.g. 1k,2k,4k (k = 1000; write 1024 for powers of two).")
@click.option("--prompt", "prompt_name", default="boxed-v1", show_default=True,
              help="Forcing text appended to the cut sample (boxed-v1, think-boxed-v1).")
@click.option("--max-tokens", default=32, show_default=True, type=int, help="Max tokens of each forced continuation.")
@click.option("--batch-size", type=int, help="transformers: sequences per generate call [default: 8].")
@click.option("--device", help="transformers: device [default: cpu].")
@click.option("--dtype", help="Model dtype (auto, float32, bfloat16, float16).")
@click.option("-o", "--option", "extra_options", multiple=True,
              help="Any other backend option, KEY=VALUE (repeatable); the run's own options are reused by default.")
@click.option("--workers", type=int, help="Grader worker processes (default: CPU count).")
@click.option("--no-report", is_flag=True, help="Only generate and grade; report later with `tts-eval report`.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def force(run_dir: Path, caps: str, prompt_name: str, max_tokens: int, batch_size: int | None, device: str | None,
          dtype: str | None, extra_options: tuple[str, ...], workers: int | None, no_report: bool,
          no_progress: bool) -> None:
    """Budget forcing: make samples cut at each cap answer with a short final-answer continuation, and count it.

    The engine starts with the backend options the run was sampled with (tensor parallel size, context length,
    ...), recorded in its store; flags given here override them."""
    from harness.cli import _guard, _report
    from harness.forcing import force_run
    from harness.samplers.registry import make_sampler
    from harness.sequential import parse_caps

    @_guard
    def go() -> None:
        try:
            cap_list = parse_caps(caps)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--caps") from exc
        from harness.config import parse_option
        from harness.store import RunStore

        with RunStore.open(run_dir) as store:
            options = dict(store.info("backend_options") or {})
        options.update({k: v for k, v in {"batch_size": batch_size, "device": device, "dtype": dtype}.items()
                        if v is not None})
        options.update(parse_option(text) for text in extra_options)
        summary = force_run(run_dir, cap_list, make_sampler, prompt_name=prompt_name, max_tokens=max_tokens,
                            backend_options=options, workers=workers, progress=not no_progress)
        for cap in cap_list:
            click.echo(f"cap {cap}: {summary.cut[cap]} of {summary.samples} samples cut, "
                       f"{summary.generated[cap]} continuations generated")
        if not no_report:
            _report(run_dir, None, workers=workers, progress=not no_progress)

    go()
