"""The ``tts-eval`` command line: each command parses its flags, calls one library function, maps errors.

User mistakes end in one line on stderr and a non-zero exit, never a traceback; finished samples are kept.
"""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def _user_errors() -> tuple[type[BaseException], ...]:
    """The exception types that mean 'the user can fix this' (imported lazily: some pull heavy modules)."""
    from harness.benchmarks import BenchmarkError
    from harness.prompts import PromptError
    from harness.run import RunError
    from harness.samplers.base import SamplerError
    from harness.samplers.replay import ReplayError
    from harness.store import StoreError

    return (BenchmarkError, PromptError, RunError, SamplerError, ReplayError, StoreError, ValueError, OSError)


def _guard(func: F) -> F:
    """Turn user errors into a one-line ClickException and Ctrl-C into exit 130 with a resume hint."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except KeyboardInterrupt:
            click.echo("interrupted: finished samples are stored; rerun the same command with --resume", err=True)
            sys.exit(130)
        except _user_errors() as exc:
            raise click.ClickException(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc

    return wrapper  # type: ignore[return-value]


def _budgets(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    if value is None:
        return None
    from harness.scaling import parse_budgets

    try:
        return parse_budgets(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _command_line() -> str:
    return shlex.join(["tts-eval", *sys.argv[1:]])


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log progress details to stderr.")
@click.version_option(package_name="tts-eval")
def cli(verbose: bool) -> None:
    """tts-eval: accuracy against average output tokens per problem, for reasoning models."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@cli.command("benchmarks")
def benchmarks_cmd() -> None:
    """List the bundled benchmarks with their problem counts and versions."""
    from harness.benchmarks import BUILTINS, load_benchmark

    for name, info in BUILTINS.items():
        bench = load_benchmark(name)
        click.echo(f"{name:10} {len(bench.problems):5d} problems  {info.version:12} {info.answer_type:8} {info.description}")
    click.echo("A custom benchmark is a .jsonl path with fields id, problem, answer (optional answer_type).")


@cli.command("run")
@click.option("--bench", required=True, help="Bundled benchmark name (see `tts-eval benchmarks`) or a .jsonl path.")
@click.option("--backend", default="transformers", show_default=True, help="Sampler backend.")
@click.option("--model", required=True, help="Model path or name, as the backend loads it.")
@click.option("--samples", default=1, show_default=True, type=int, help="Samples per problem (n).")
@click.option("--max-tokens", required=True, type=int, help="Max output tokens per sample (no default on purpose).")
@click.option("--temperature", default=0.6, show_default=True, type=float, help="Sampling temperature, 0 = greedy.")
@click.option("--top-p", default=0.95, show_default=True, type=float, help="Nucleus sampling threshold.")
@click.option("--top-k", default=-1, show_default=True, type=int, help="Top-k sampling, -1 = off.")
@click.option("--seed", default=0, show_default=True, type=int, help="Base seed; sample i of a problem always gets the same seed.")
@click.option("--prompt", default="default", show_default=True, help="Prompt template name or .toml path.")
@click.option("--budgets", callback=_budgets, help="Average output tokens per problem to report, e.g. 1k,2k,4k.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run folder, e.g. results/NAME.")
@click.option("--limit", type=int, help="Only the first N problems.")
@click.option("--ids", "ids_file", type=click.Path(path_type=Path, exists=True, dir_okay=False), help="File of problem ids to keep.")
@click.option("--resume", is_flag=True, help="Continue (or extend with a larger --samples) the run in --out.")
@click.option("--batch-size", default=8, show_default=True, type=int, help="Sequences per generate call (transformers).")
@click.option("--device", default="cpu", show_default=True, help="Device for the transformers backend.")
@click.option("--dtype", default="auto", show_default=True, help="Model dtype (auto, float32, bfloat16, float16).")
@click.option("--workers", type=int, help="Grader worker processes (default: CPU count).")
@click.option("--commit-every", default=16, show_default=True, type=int,
              help="Samples per store transaction (a kill loses at most this many).")
@click.option("--no-report", is_flag=True, help="Only sample; grade and report later with `tts-eval report`.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@_guard
def run_cmd(bench: str, backend: str, model: str, samples: int, max_tokens: int, temperature: float, top_p: float,
            top_k: int, seed: int, prompt: str, budgets: list[int] | None, out: Path, limit: int | None,
            ids_file: Path | None, resume: bool, batch_size: int, device: str, dtype: str, workers: int | None,
            commit_every: int, no_report: bool, no_progress: bool) -> None:
    """Sample a benchmark with a model into a run folder, then grade it and write the report."""
    from harness.run import RunRequest, run_sampling
    from harness.samplers.registry import make_sampler
    from harness.types import SamplingSpec

    spec = SamplingSpec(max_tokens=max_tokens, temperature=temperature, top_p=top_p, top_k=top_k, seed=seed)
    options = {"batch_size": batch_size, "device": device, "dtype": dtype} if backend == "transformers" else {}
    req = RunRequest(bench=bench, backend=backend, model=model, samples=samples, spec=spec, out=out, prompt=prompt,
                     limit=limit, ids_file=ids_file, resume=resume, backend_options=options, command=_command_line(),
                     commit_every=commit_every)
    summary = run_sampling(req, make_sampler, progress=not no_progress)
    click.echo(f"{summary.added} new samples stored ({summary.total} in all) in {summary.run_dir}")
    if not no_report:
        _report(out, budgets, workers=workers, progress=not no_progress)


def _report(run_dir: Path, budgets: list[int] | None, *, workers: int | None, progress: bool, n_boot: int = 1000,
            seed: int = 0) -> None:
    from harness.analysis import report_run

    report, paths = report_run(run_dir, budgets, n_boot=n_boot, ci_seed=seed, workers=workers, progress=progress)
    for point in report.budgets:
        if point.reached and point.accuracy is not None:
            click.echo(f"budget {point.budget:>8.0f} tokens: Maj accuracy {100 * point.accuracy:5.1f}%"
                       f" [{100 * (point.ci_low or 0):.1f}, {100 * (point.ci_high or 0):.1f}]")
        else:
            click.echo(f"budget {point.budget:>8.0f} tokens: {point.note or 'not reached'}")
    if report.token_note:
        click.echo(f"no token axis: {report.token_note}")
    click.echo("wrote " + ", ".join(str(p) for p in paths.values()))


@cli.command("import")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--bench", required=True, help="Benchmark the outputs answer: a bundled name or a .jsonl path.")
@click.option("--format", "fmt", default="native", show_default=True, help="Input format (native, qwen-maj, deepscaler).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="New run folder.")
@click.option("--model", default="unknown (imported)", show_default=True, help="Model name to record.")
@click.option("--budgets", callback=_budgets, help="Average output tokens per problem to report, e.g. 1k,2k.")
@click.option("--no-report", is_flag=True, help="Only store; grade and report later.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@_guard
def import_cmd(file: Path, bench: str, fmt: str, out: Path, model: str, budgets: list[int] | None, no_report: bool,
               no_progress: bool) -> None:
    """Store recorded outputs (JSONL) as a run, then grade and report them like a sampled run."""
    from harness.importer import import_run

    summary = import_run(file, fmt, bench, out, model=model, command=_command_line())
    click.echo(f"imported {summary.completions} samples for {summary.problems} problems into {summary.run_dir}")
    if summary.token_note:
        click.echo(f"note: {summary.token_note}")
    if not no_report:
        _report(out, budgets, workers=None, progress=not no_progress)


@cli.command("grade")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--workers", type=int, help="Grader worker processes (default: CPU count).")
@click.option("--deadline", default=5.0, show_default=True, type=float, help="Seconds per answer check before it is killed.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@_guard
def grade_cmd(run_dir: Path, workers: int | None, deadline: float, no_progress: bool) -> None:
    """Re-grade a run with the current grader (grades are kept per grader version)."""
    from collections import Counter

    from harness.analysis import grade_store
    from harness.grading import GRADER_VERSION
    from harness.store import RunStore

    with RunStore.open(run_dir) as store:
        grades = grade_store(store, workers=workers, deadline_s=deadline, progress=not no_progress, force=True)
    correct = sum(g.correct for g in grades)
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(Counter(g.status for g in grades).items()))
    click.echo(f"graded {len(grades)} samples with grader {GRADER_VERSION}: {correct} correct; {statuses}")


@cli.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--budgets", callback=_budgets, help="Budgets to report (default: those given to `run`).")
@click.option("--n-boot", default=1000, show_default=True, type=int, help="Bootstrap resamples for the CIs.")
@click.option("--seed", default=0, show_default=True, type=int, help="Bootstrap seed.")
@click.option("--workers", type=int, help="Grader worker processes, if grading is needed.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@_guard
def report_cmd(run_dir: Path, budgets: list[int] | None, n_boot: int, seed: int, workers: int | None,
               no_progress: bool) -> None:
    """Write curve.csv, report.json, report.md and curve.png for a run (grading it first if needed)."""
    _report(run_dir, budgets, workers=workers, progress=not no_progress, n_boot=n_boot, seed=seed)


@cli.command("plot")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output .png or .svg.")
@click.option("--method", "methods", multiple=True, default=("maj",), show_default=True, help="Curves to draw (maj, pass, mean).")
@_guard
def plot_cmd(run_dirs: tuple[Path, ...], out: Path, methods: tuple[str, ...]) -> None:
    """Overlay several runs' accuracy-vs-tokens curves with the published baselines of their benchmark."""
    from harness.analysis import analyze
    from harness.baselines import load_baselines
    from harness.plot import plot_curves
    from harness.store import RunStore

    reports = []
    for run_dir in run_dirs:
        with RunStore.open(run_dir) as store:
            reports.append(analyze(store, progress=False))
    benches = sorted({r.manifest.benchmark for r in reports})
    baselines = [b for name in benches for b in load_baselines(benchmark=name)]
    click.echo(f"wrote {plot_curves(reports, out, baselines=baselines, methods=methods)}")


@cli.command("check")
@click.argument("pred")
@click.argument("gold")
@click.option("--answer-type", default="math", show_default=True, type=click.Choice(["math", "integer", "text"]))
@_guard
def check_cmd(pred: str, gold: str, answer_type: str) -> None:
    """Compare one answer with a gold answer and print the verdict with its reason."""
    from harness.grading import Grader

    with Grader(workers=1) as grader:
        verdict = grader.check(pred, gold, answer_type)
    click.echo(f"{'EQUAL' if verdict.equal else 'NOT EQUAL'} ({verdict.status}): {verdict.reason}")
    sys.exit(0 if verdict.equal else 1)


def _register_groups() -> None:
    from harness.transparency_cli import transparency

    cli.add_command(transparency)


_register_groups()

if __name__ == "__main__":
    cli()
