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
    from harness.config import ConfigError
    from harness.prompts import PromptError
    from harness.run import RunError
    from harness.samplers.base import SamplerError
    from harness.samplers.replay import ReplayError
    from harness.store import StoreError

    return (BenchmarkError, ConfigError, PromptError, RunError, SamplerError, ReplayError, StoreError, ValueError, OSError)


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


# Backend flags: passed to the backend's constructor only when given (the registry rejects options a backend
# does not take, in one line). Anything else goes through -o KEY=VALUE.
_BACKEND_FLAGS = ("batch_size", "device", "dtype", "tensor_parallel_size", "pipeline_parallel_size",
                  "max_model_len", "gpu_memory_utilization", "base_url", "api_key_env", "concurrency",
                  "requests_per_minute")


@cli.command("run")
@click.option("--config", "config_name", help="Model config: a name in configs/models/ or a .toml path; flags override it.")
@click.option("--bench", required=True, help="Bundled benchmark name (see `tts-eval benchmarks`) or a .jsonl path.")
@click.option("--backend", help="Sampler backend: transformers, vllm, openai (default: the config's, else transformers).")
@click.option("--model", help="Model path or name, as the backend loads it (required unless the config names one).")
@click.option("--samples", default=1, show_default=True, type=int, help="Samples per problem (n).")
@click.option("--max-tokens", type=int, help="Max output tokens per sample; required (here or in the config), no default on purpose.")
@click.option("--temperature", type=float, help="Sampling temperature, 0 = greedy [default: 0.6].")
@click.option("--top-p", type=float, help="Nucleus sampling threshold [default: 0.95].")
@click.option("--top-k", type=int, help="Top-k sampling, -1 = off [default: -1].")
@click.option("--seed", type=int, help="Base seed; sample i of a problem always gets the same seed [default: 0].")
@click.option("--prompt", help="Prompt template name or .toml path [default: the config's, else default].")
@click.option("--budgets", callback=_budgets, help="Average output tokens per problem to report, e.g. 1k,2k,4k.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run folder, e.g. results/NAME.")
@click.option("--limit", type=int, help="Only the first N problems.")
@click.option("--ids", "ids_file", type=click.Path(path_type=Path, exists=True, dir_okay=False), help="File of problem ids to keep.")
@click.option("--subset", type=int, help="A stratified subset of N problems, the same for every checkpoint (for CI gates).")
@click.option("--subset-seed", default=0, show_default=True, type=int, help="Which stratified subset --subset draws.")
@click.option("--resume", is_flag=True, help="Continue (or extend with a larger --samples) the run in --out.")
@click.option("--batch-size", type=int, help="transformers: sequences per generate call [default: 8].")
@click.option("--device", help="transformers: device [default: cpu].")
@click.option("--dtype", help="transformers, vllm: model dtype (auto, float32, bfloat16, float16).")
@click.option("--tensor-parallel-size", type=int, help="vllm: GPUs per model replica (tensor parallel).")
@click.option("--pipeline-parallel-size", type=int, help="vllm: pipeline stages.")
@click.option("--max-model-len", type=int, help="vllm: context length to allocate for.")
@click.option("--gpu-memory-utilization", type=float, help="vllm: fraction of GPU memory to use.")
@click.option("--base-url", help="openai: server URL, e.g. http://127.0.0.1:8000/v1.")
@click.option("--api-key-env", help="openai: environment variable holding the API key [default: OPENAI_API_KEY].")
@click.option("--concurrency", type=int, help="openai: requests in flight at once [default: 8].")
@click.option("--requests-per-minute", type=float, help="openai: rate limit on requests started.")
@click.option("-o", "--option", "extra_options", multiple=True, help="Any other backend option, KEY=VALUE (repeatable).")
@click.option("--workers", type=int, help="Grader worker processes (default: CPU count).")
@click.option("--commit-every", default=16, show_default=True, type=int,
              help="Samples per store transaction (a kill loses at most this many).")
@click.option("--no-report", is_flag=True, help="Only sample; grade and report later with `tts-eval report`.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@_guard
def run_cmd(config_name: str | None, bench: str, backend: str | None, model: str | None, samples: int,
            max_tokens: int | None, temperature: float | None, top_p: float | None, top_k: int | None,
            seed: int | None, prompt: str | None, budgets: list[int] | None, out: Path, limit: int | None,
            ids_file: Path | None, subset: int | None, subset_seed: int, resume: bool, extra_options: tuple[str, ...],
            workers: int | None, commit_every: int, no_report: bool, no_progress: bool, **flags: Any) -> None:
    """Sample a benchmark with a model into a run folder, then grade it and write the report."""
    from harness.config import RunConfig, load_config, parse_option
    from harness.run import RunRequest, run_sampling
    from harness.samplers.registry import make_sampler
    from harness.types import SamplingSpec

    config = load_config(config_name) if config_name else RunConfig(name="", backend="transformers", model="")
    model = model or config.model
    if not model:
        raise click.UsageError("--model is required (or a --config that names one)")
    given = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p, "top_k": top_k, "seed": seed}
    sampling = {**config.sampling, **{k: v for k, v in given.items() if v is not None}}
    if "max_tokens" not in sampling:
        raise click.UsageError("--max-tokens is required (or a --config with [sampling] max_tokens)")
    if "stop" in sampling:
        sampling["stop"] = tuple(sampling["stop"])
    spec = SamplingSpec(**sampling)
    options = {**config.backend_options, **{k: v for k, v in flags.items() if k in _BACKEND_FLAGS and v is not None}}
    options.update(parse_option(text) for text in extra_options)
    req = RunRequest(bench=bench, backend=backend or config.backend, model=model, samples=samples, spec=spec, out=out,
                     prompt=prompt or config.prompt, limit=limit, ids_file=ids_file, resume=resume,
                     backend_options=options, command=_command_line(), commit_every=commit_every, subset=subset,
                     subset_seed=subset_seed)
    summary = run_sampling(req, make_sampler, progress=not no_progress)
    click.echo(f"{summary.added} new samples stored ({summary.total} in all) in {summary.run_dir}")
    if not no_report:
        _report(out, budgets, workers=workers, progress=not no_progress)


def _report(run_dir: Path, budgets: list[int] | None, *, workers: int | None, progress: bool, n_boot: int = 1000,
            seed: int = 0, caps: list[int] | None = None, rm_score: str | None = None,
            rm_weighting: str = "raw") -> None:
    from harness.analysis import report_run
    from harness.scaling_cli import echo_headline

    report, paths = report_run(run_dir, budgets, n_boot=n_boot, ci_seed=seed, workers=workers, progress=progress,
                               caps=caps, rm_score=rm_score, rm_weighting=rm_weighting)
    echo_headline(report)  # budgets, matched-budget table, frontier mixes, token note
    click.echo("wrote " + ", ".join(str(p) for p in paths.values()))


@cli.command("import")
@click.argument("file", type=click.Path(path_type=Path, exists=True))
@click.option("--bench", required=True, help="Benchmark the outputs answer: a bundled name or a .jsonl path.")
@click.option("--format", "fmt", default="native", show_default=True,
              help="Input format (native, qwen-maj, deepscaler; deepscaler-sweep reads a folder of max_tokens_<CAP>.jsonl).")
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
@click.option("--caps", "caps", callback=_budgets, help="Token caps for truncated curves, e.g. 1k,2k,4k (kept with the run).")
@click.option("--rm-score", help="RM@k: weight votes by this stored per-sample score (e.g. pred_score); off by default.")
@click.option("--rm-weighting", default="raw", show_default=True, type=click.Choice(["raw", "sigmoid"]),
              help="RM@k weights: the scores as they are (>= 0), or sigmoid of reward-model logits.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@_guard
def report_cmd(run_dir: Path, budgets: list[int] | None, n_boot: int, seed: int, workers: int | None,
               caps: list[int] | None, rm_score: str | None, rm_weighting: str, no_progress: bool) -> None:
    """Write curve.csv, report.json, report.md, report.html and the plots for a run (grading it first if needed)."""
    _report(run_dir, budgets, workers=workers, progress=not no_progress, n_boot=n_boot, seed=seed, caps=caps,
            rm_score=rm_score, rm_weighting=rm_weighting)


@cli.command("plot")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output .png or .svg.")
@click.option("--method", "methods", multiple=True,
              type=click.Choice(["maj", "pass", "mean", "truncated", "forced", "rm"]),
              help="Curves to draw (repeatable) [default: Maj@k and the runs' capped curves].")
@click.option("--references", default="o1", show_default=True, type=click.Choice(["o1", "all", "none"]),
              help="Published results without a token count to draw as reference lines.")
@click.option("--frontier", is_flag=True, help="Draw the frontier over caps and k of one run instead.")
@click.option("--y-range", nargs=2, type=float, help="Accuracy axis limits in percent, e.g. --y-range 80 100 [default: 0 100].")
@_guard
def plot_cmd(run_dirs: tuple[Path, ...], out: Path, methods: tuple[str, ...], references: str, frontier: bool,
             y_range: tuple[float, float] | None) -> None:
    """Overlay several runs' accuracy-vs-tokens curves with the published baselines of their benchmark."""
    from harness.scaling_cli import plot_runs

    click.echo(f"wrote {plot_runs(run_dirs, out, methods, references, frontier, y_range)}")


@cli.command("check")
@click.argument("pred", required=False)
@click.argument("gold", required=False)
@click.option("--answer-type", default="math", show_default=True, type=click.Choice(["math", "integer", "text"]))
@click.option("--cases", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="JSONL rows {pred, gold, pred_kind?, answer_type?} to grade instead of PRED GOLD.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="With --cases: write {equal, status, answer, reason} per row here, in input order.")
@click.option("--workers", type=int, help="Grader worker processes for --cases (default: CPU count).")
@click.option("--deadline", default=5.0, show_default=True, type=float, help="Seconds per check before it is killed.")
@_guard
def check_cmd(pred: str | None, gold: str | None, answer_type: str, cases: Path | None, out: Path | None,
              workers: int | None, deadline: float) -> None:
    """Compare one answer with a gold answer (both parses, the verdict and its reason), or grade --cases."""
    from harness.grading import Grader
    from harness.grading.cases import check_cases, explain

    if cases is not None:
        if out is None or pred is not None:
            raise click.UsageError("with --cases give --out OUT.jsonl and no PRED/GOLD")
        with Grader(workers=workers, deadline_s=deadline) as grader:
            counts = check_cases(grader, cases, out)
        statuses = ", ".join(f"{k} {counts[k]}" for k in ("ok", "no_answer", "unparsable", "timeout") if counts[k])
        click.echo(f"wrote {out}: {counts['equal']} equal, {counts['not equal']} not equal ({statuses})")
        return
    if pred is None or gold is None:
        raise click.UsageError("give PRED and GOLD, or --cases IN.jsonl --out OUT.jsonl")
    with Grader(workers=1, deadline_s=deadline) as grader:
        result = explain(grader, pred, gold, answer_type)
    click.echo(f"answer: {result.pred}")
    click.echo(f"gold:   {result.gold}")
    verdict = result.verdict
    click.echo(f"{'EQUAL' if verdict.equal else 'NOT EQUAL'} ({verdict.status}): {verdict.reason}")
    sys.exit(0 if verdict.equal else 1)


def _register_groups() -> None:
    from harness.card_cli import card
    from harness.gate_cli import gate, gate_input
    from harness.scaling_cli import force
    from harness.transparency_cli import transparency

    cli.add_command(transparency)
    cli.add_command(force)
    cli.add_command(gate)
    cli.add_command(gate_input)
    cli.add_command(card)


_register_groups()

if __name__ == "__main__":
    cli()
